#!/usr/bin/env node
// onnx_roundtrip.js DIR - onnxruntime (onnxruntime-node, CPU) over the
// daemon's ONNX exports, against the daemon's own predictions.
//
// Run by tests/server_onnx.c (make test) on the DIR it fills: for each
// <name>.onnx, <name>.json holds the 100 input rows and what
// POST /v1/models/{name}/predict answered for them, asked one row at a time
// (outputs_batch1) and 37 rows at a time (outputs_batch37).  The model is
// run the same two ways, and every output must be within 1e-5 of the
// daemon's (absolute; relative to the value where it exceeds 1 in
// magnitude, for regression outputs).  Prints the largest difference per
// model and batch size; exits 1 when any is over.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const TOL = 1e-5;

async function runBatches(session, inputs, batch) {
  const width = inputs[0].length;
  const out = [];
  for (let i = 0; i < inputs.length; i += batch) {
    const rows = inputs.slice(i, i + batch);
    const x = new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, width]);
    const r = await session.run({ input: x });
    const y = r.output;
    if (y.type !== 'float32' || y.dims.length !== 2 || y.dims[0] !== rows.length)
      throw new Error(`output ${y.type} [${y.dims}] for ${rows.length} rows`);
    for (let j = 0; j < rows.length; j++)
      out.push(Array.from(y.data.slice(j * y.dims[1], (j + 1) * y.dims[1])));
  }
  return out;
}

// Largest scaled difference between got and want (rows of numbers).
function maxDiff(got, want) {
  if (got.length !== want.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    if (got[i].length !== want[i].length) return Infinity;
    for (let j = 0; j < want[i].length; j++) {
      const d = Math.abs(got[i][j] - want[i][j]) / Math.max(1, Math.abs(want[i][j]));
      if (!(d <= worst)) worst = d; // NaN propagates as a failure
    }
  }
  return worst;
}

async function main() {
  const dir = process.argv[2];
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort();
  if (files.length === 0) {
    console.log(`onnx_roundtrip: no .onnx file in ${dir}`);
    process.exit(1);
  }
  let bad = 0;
  let overall = 0;
  for (const f of files) {
    const doc = JSON.parse(fs.readFileSync(path.join(dir, f.replace(/\.onnx$/, '.json')), 'utf8'));
    const session = await ort.InferenceSession.create(path.join(dir, f));
    if (session.inputNames.join() !== 'input' || session.outputNames.join() !== 'output')
      throw new Error(`${f}: inputs ${session.inputNames}, outputs ${session.outputNames}`);
    // a model whose outputs do not vary over the rows (a dead relu, say)
    // would make the comparison prove little: refuse it
    const spread = Math.max(...doc.outputs_batch37[0].map((_, j) => {
      const col = doc.outputs_batch37.map((r) => r[j]);
      return Math.max(...col) - Math.min(...col);
    }));
    if (!(spread > 1e-3)) {
      console.log(`${f}: the daemon's outputs hardly vary over the rows (spread ${spread}) FAIL`);
      bad++;
      continue;
    }
    const line = [];
    let over = false;
    for (const [batch, want] of [[1, doc.outputs_batch1], [37, doc.outputs_batch37]]) {
      const d = maxDiff(await runBatches(session, doc.inputs, batch), want);
      overall = Math.max(overall, d);
      line.push(`batch ${batch}: max diff ${d.toExponential(2)}`);
      if (!(d <= TOL)) over = true;
    }
    if (over) bad++;
    console.log(`${f}: ${doc.inputs.length} rows, ${line.join(', ')}${over ? ' FAIL' : ''}`);
  }
  console.log(`onnx_roundtrip: ${files.length} models, largest difference ${overall.toExponential(2)}` +
              ` (tolerance ${TOL}), ${bad} over it`);
  process.exit(bad ? 1 : 0);
}

main().catch((e) => {
  console.log(`onnx_roundtrip: ${e.stack || e}`);
  process.exit(1);
});
