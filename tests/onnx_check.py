#!/usr/bin/python3
"""onnx_check.py DIR - Debian's python3-onnx over the daemon's ONNX exports.

Run by tests/server_onnx.c (make test) on the DIR it fills: for each
<name>.onnx, <name>.json holds "expect" (model, version, loss,
standardized, inputs_width, units per layer, the op sequence, classes).
Each model must pass onnx.checker.check_model(full_check=True) and carry
exactly the documented graph: IR 8, default-domain opset 13, producer
backpropd, input "input" [N, F] and output "output" [N, K] with a symbolic
batch dimension, Sub/Div standardization, Gemm with transB=1 per layer and
its activation (LeakyRelu alpha 0.01 as float32, Softmax axis -1), float
initializers as raw_data of the documented shapes, and the metadata.
Prints one line per model; exits 1 on the first failure.
"""
import json
import os
import struct
import sys

import onnx
from onnx import TensorProto, helper, numpy_helper


def fail(name, msg):
    print(f"{name}: FAIL: {msg}")
    sys.exit(1)


def check(path, want):
    name = os.path.basename(path)
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    if m.ir_version != 8:
        fail(name, f"ir_version {m.ir_version}")
    ops = [(o.domain, o.version) for o in m.opset_import]
    if ops != [("", 13)]:
        fail(name, f"opset_import {ops}")
    if m.producer_name != "backpropd" or not m.producer_version:
        fail(name, f"producer {m.producer_name!r} {m.producer_version!r}")
    if m.model_version != want["version"]:
        fail(name, f"model_version {m.model_version}, want {want['version']}")

    g = m.graph
    k = want["units"][-1]
    for vi, vname, width in ((g.input, "input", want["inputs_width"]), (g.output, "output", k)):
        if len(vi) != 1 or vi[0].name != vname:
            fail(name, f"graph {vname}s: {[v.name for v in vi]}")
        t = vi[0].type.tensor_type
        dims = t.shape.dim
        if t.elem_type != TensorProto.FLOAT or len(dims) != 2:
            fail(name, f"{vname}: type {t}")
        if not dims[0].dim_param or dims[0].HasField("dim_value"):
            fail(name, f"{vname}: batch dimension is not symbolic: {dims[0]}")
        if dims[1].dim_value != width:
            fail(name, f"{vname}: width {dims[1].dim_value}, want {width}")

    got_ops = [n.op_type for n in g.node]
    if got_ops != want["ops"]:
        fail(name, f"ops {got_ops}, want {want['ops']}")
    if any(n.domain for n in g.node):
        fail(name, "a node outside the default domain")

    inits = {t.name: t for t in g.initializer}
    for t in g.initializer:
        if t.data_type != TensorProto.FLOAT or not t.HasField("raw_data") or len(t.float_data):
            fail(name, f"initializer {t.name}: not float raw_data")
        if len(t.raw_data) != 4 * int(numpy_helper.to_array(t).size):
            fail(name, f"initializer {t.name}: {len(t.raw_data)} bytes for dims {list(t.dims)}")

    # the chain: every node reads the previous node's output
    prev = "input"
    fan_in = want["inputs_width"]
    layer = 0
    for n in g.node:
        if n.input[0] != prev:
            fail(name, f"{n.name} reads {n.input[0]}, want {prev}")
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type in ("Sub", "Div"):
            if list(inits[n.input[1]].dims) != [want["inputs_width"]]:
                fail(name, f"{n.name}: {n.input[1]} dims {list(inits[n.input[1]].dims)}")
            if n.op_type == "Div" and (numpy_helper.to_array(inits[n.input[1]]) <= 0).any():
                fail(name, f"{n.name}: a std <= 0")
        elif n.op_type == "Gemm":
            units = want["units"][layer]
            w, b = inits[n.input[1]], inits[n.input[2]]
            if list(w.dims) != [units, fan_in] or list(b.dims) != [units]:
                fail(name, f"{n.name}: W {list(w.dims)} b {list(b.dims)}, want [{units}, {fan_in}]")
            if attrs != {"transB": 1}:
                fail(name, f"{n.name}: attributes {attrs}")
            fan_in = units
            layer += 1
        elif n.op_type == "LeakyRelu":
            if list(attrs) != ["alpha"] or struct.pack("<f", attrs["alpha"]) != struct.pack("<f", 0.01):
                fail(name, f"{n.name}: attributes {attrs}")
        elif n.op_type == "Softmax":
            if attrs != {"axis": -1}:
                fail(name, f"{n.name}: attributes {attrs}")
        elif attrs:
            fail(name, f"{n.name}: attributes {attrs}")
        prev = n.output[0]
    if prev != "output" or layer != len(want["units"]):
        fail(name, f"the last node writes {prev}; {layer} Gemm nodes")
    if bool(want["standardized"]) != (got_ops[:2] == ["Sub", "Div"]):
        fail(name, "standardization nodes do not match the job")

    meta = {p.key: p.value for p in m.metadata_props}
    expect_meta = {
        "model": want["model"],
        "version": str(want["version"]),
        "loss": want["loss"],
        "standardized": "true" if want["standardized"] else "false",
    }
    if want["classes"] is not None:
        expect_meta["classes"] = json.dumps(want["classes"], separators=(",", ":"))
    if meta != expect_meta:
        fail(name, f"metadata {meta}, want {expect_meta}")
    if want["classes"] is not None and json.loads(meta["classes"]) != want["classes"]:
        fail(name, f"classes {meta['classes']}")
    print(f"{name}: ok ({len(g.node)} nodes, {len(g.initializer)} initializers)")


def main():
    d = sys.argv[1]
    names = sorted(f for f in os.listdir(d) if f.endswith(".onnx"))
    if not names:
        print(f"onnx_check: no .onnx file in {d}")
        sys.exit(1)
    for f in names:
        with open(os.path.join(d, f[:-5] + ".json")) as fh:
            want = json.load(fh)["expect"]
        check(os.path.join(d, f), want)
    print(f"onnx_check: {len(names)} models pass onnx {onnx.__version__}'s full check")


if __name__ == "__main__":
    main()
