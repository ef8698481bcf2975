// dashboard.mjs - the dashboard (ui/, served by server/api/api_ui.c) in a
// real browser: Debian's chromium driven by playwright-core, against the real
// daemon on a free 127.0.0.1 port with a temporary database.
//
//   node tests/ui/dashboard.mjs BUILD_DIR     (tests/ui/run.sh, from make test)
//
// It checks the headers and sizes of the page and its files, the page's SSE
// parser on a stream split at every byte, starts two jobs through the form,
// sees both curves gain points while they train, compares the best-metric
// table with the API's /metrics numbers, cancels a job from its button, runs
// the API-key prompt against a daemon that has keys, and fails on any
// console error, page error or CSP violation.  It saves BUILD_DIR/ui-dashboard.png.
// Every wait is bounded.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const build = process.argv[2] || 'build';
const daemonBin = join(build, 'backpropd');
const tmp = mkdtempSync(join(tmpdir(), 'bpd-ui-'));
const daemons = [];
let browser = null;
let currentPage = null; // screenshot on failure

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function step(msg) { console.log(`ui: ${msg}`); }

// Polls fn until it returns a truthy value, at most ms; throws with what.
async function until(what, ms, fn, every = 100) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last})`);
    await sleep(every);
  }
}

// Starts the daemon on a free port (--port 0; the port is read from its
// "listening on" log line).  Resolves to {base, proc}.
async function startDaemon(name, db = join(tmp, `${name}.db`)) {
  const log = createWriteStream(join(tmp, `${name}.log`));
  const proc = spawn(daemonBin, ['--bind', '127.0.0.1', '--port', '0', '--db', db, '--workers', '2',
                                 '--http-threads', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
  daemons.push(proc);
  let text = '';
  proc.stderr.on('data', (d) => { text += d; log.write(d); });
  const port = await until('the daemon to listen', 15000, () => {
    if (proc.exitCode !== null) throw new Error(`daemon exited ${proc.exitCode}: ${text}`);
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(text);
    return m && Number(m[1]);
  }, 50);
  return { base: `http://127.0.0.1:${port}`, proc, db };
}

async function http(base, path, opts = {}) {
  const res = await fetch(base + path, { ...opts, signal: AbortSignal.timeout(15000) });
  const body = await res.text();
  return { status: res.status, headers: res.headers, body, json: () => JSON.parse(body) };
}
async function post(base, path, body, headers = {}) {
  const r = await http(base, path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body),
                                     headers: { 'Content-Type': 'application/json', ...headers } });
  return r;
}

// A three-class data set big enough that an epoch takes tens of
// milliseconds: the curves must be seen growing while the jobs run.
function makeCsv(rows, features) {
  let s = 0x2545f491;
  const rnd = () => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return s / 4294967296; };
  const head = Array.from({ length: features }, (_, i) => `x${i}`).concat('y').join(',');
  const lines = [head];
  for (let r = 0; r < rows; r++) {
    const x = Array.from({ length: features }, () => rnd() * 2 - 1);
    const score = x[0] + 0.5 * x[1] - x[2] * x[3];
    const y = score < -0.3 ? 'low' : score < 0.3 ? 'mid' : 'high';
    lines.push(x.map((v) => v.toFixed(4)).concat(y).join(','));
  }
  return lines.join('\n') + '\n';
}

// The best value of key over the rows (lowest or highest) and the first
// epoch it came at: the reference for the page's table.
function bestOf(rows, key, lower) {
  let b = null;
  for (const r of rows) {
    const v = r[key];
    if (typeof v !== 'number') continue;
    if (b === null || (lower ? v < b.value : v > b.value)) b = { value: v, epoch: r.epoch };
  }
  return b;
}

// Console errors, page errors and CSP violations of a page.  allow(msg)
// lets through the browser's own "Failed to load resource" lines for the
// responses a test provokes (the 401s of the key prompt).
function watch(page, allow = () => false) {
  const problems = [];
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = `${m.text()} @ ${m.location().url || ''}`;
    if (!allow(text)) problems.push(`console: ${text}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return problems;
}
async function cspViolations(page) {
  return page.evaluate(() => window.__csp || []);
}
const CSP_HOOK = () => {
  window.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
};

async function checkAssets(base) {
  const page = await http(base, '/');
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /^text\/html/);
  assert.equal(page.headers.get('content-security-policy').split(';')[0], "default-src 'self'");
  assert.equal(page.headers.get('cache-control'), 'no-cache');
  const ui = await http(base, '/ui');
  assert.equal(ui.body, page.body, '/ui serves the same page as /');
  // The page holds no inline script or style for the CSP to block.
  assert.doesNotMatch(page.body, /<script(?![^>]*\ssrc=)[^>]*>/i, 'inline <script>');
  assert.doesNotMatch(page.body, /<style|\sstyle=|\son[a-z]+=/i, 'inline style or handler');
  let total = Buffer.byteLength(page.body);
  for (const [path, ctype] of [['/ui/app.js', 'text/javascript'], ['/ui/app.css', 'text/css'], ['/ui/favicon.svg', 'image/svg+xml'],
                               ['/ui/uplot.js', 'text/javascript'], ['/ui/uplot.css', 'text/css']]) {
    const r = await http(base, path);
    assert.equal(r.status, 200, path);
    assert.ok(r.headers.get('content-type').startsWith(ctype), `${path}: ${r.headers.get('content-type')}`);
    const etag = r.headers.get('etag');
    assert.match(etag, /^"[0-9a-f]{16}"$/, `${path} ETag`);
    const again = await http(base, path, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304, `${path} with If-None-Match`);
    assert.equal(again.body, '');
    const other = await http(base, path, { headers: { 'If-None-Match': '"0000000000000000"' } });
    assert.equal(other.status, 200, `${path} with another ETag`);
    total += Buffer.byteLength(r.body);
    if (path === '/ui/uplot.js') {
      // uPlot from npm (package-lock.json), its MIT notice kept in front.
      const lic = readFileSync(join(root, 'node_modules/uplot/LICENSE'), 'utf8');
      const min = readFileSync(join(root, 'node_modules/uplot/dist/uPlot.iife.min.js'), 'utf8');
      assert.ok(r.body.startsWith('/*! uPlot '), 'uplot.js starts with its licence comment');
      assert.ok(r.body.includes(lic.trim()), 'uplot.js carries the MIT licence text');
      assert.ok(r.body.endsWith(min), 'ui/vendor/uplot.js is node_modules\' uPlot (run scripts/ui_vendor.sh)');
    }
  }
  step(`page and assets: ${total} bytes`);
  assert.ok(total < 150 * 1024, `page and assets ${total} bytes, over 150 KB`);
  return total;
}

// The page's SSE parser on one stream cut at every byte offset (into two
// pieces) and into single bytes: the events must come out the same.
async function checkParser(page) {
  const out = await page.evaluate(() => {
    const text = ': keep-alive \u00e9\u2014\r\n\r\nevent: epoch\r\nid: 1\r\ndata: {"epoch":1,"val_loss":0.5}\r\n\r\n' +
      'event: epoch\nid: 2\ndata: {"epoch":2,\ndata: "val_loss":0.25}\n\n' +
      'event: status\rdata: {"status":"succeeded","note":"\u00fc"}\r\r' +
      'event: done\n\n';
    const bytes = new TextEncoder().encode(text);
    const run = (cuts) => {
      const evs = [];
      const p = new BackpropdSSE((e) => evs.push(e));
      let at = 0;
      for (const c of cuts.concat(bytes.length)) { p.push(bytes.slice(at, c)); at = c; }
      p.end();
      return JSON.stringify(evs);
    };
    const whole = run([]);
    const bad = [];
    for (let i = 1; i < bytes.length; i++) if (run([i]) !== whole) bad.push(i);
    const ones = run(Array.from({ length: bytes.length - 1 }, (_, i) => i + 1));
    return { whole, bad, ones };
  });
  const evs = JSON.parse(out.whole);
  assert.deepEqual(evs.map((e) => e.type), ['epoch', 'epoch', 'status', 'done']);
  assert.deepEqual(JSON.parse(evs[1].data), { epoch: 2, val_loss: 0.25 });
  assert.equal(evs[1].id, '2');
  assert.equal(JSON.parse(evs[2].data).note, '\u00fc');
  assert.deepEqual(out.bad, [], 'split points that change the events');
  assert.equal(out.ones, out.whole, 'byte-at-a-time');
}

async function startJobFromForm(page, { optimizer, lr, epochs }) {
  await page.selectOption('#job-model', 'mlp');
  await page.selectOption('#job-dataset', 'blobs');
  await page.fill('#job-epochs', String(epochs));
  await page.selectOption('#job-optimizer', optimizer);
  await page.fill('#job-lr', String(lr));
  const before = await page.textContent('#job-form-msg');
  await page.click('#job-start');
  const msg = await until('the form to start a job', 10000, async () => {
    const t = await page.textContent('#job-form-msg');
    if (t && t !== before) return t;
  });
  const m = /^started (\S+)$/.exec(msg);
  assert.ok(m, `form message: ${msg}`);
  return m[1];
}

async function bestRow(page, id) {
  return page.evaluate((jid) => {
    const tr = document.querySelector(`#best-table tr[data-job="${jid}"]`);
    if (!tr) return null;
    const q = (c) => tr.querySelector(c);
    return {
      epochs: Number(q('.epochs').textContent),
      loss: q('.best-loss').dataset.value, lossEpoch: q('.best-loss-epoch').textContent,
      acc: q('.best-acc').dataset.value, accEpoch: q('.best-acc-epoch').textContent,
    };
  }, id);
}
async function jobStatus(page, id) {
  return page.textContent(`#jobs-table tr[data-job="${id}"] .st`);
}

async function mainRun() {
  const { base } = await startDaemon('open');
  step(`daemon at ${base}`);
  await checkAssets(base);

  const up = await http(base, '/v1/datasets?name=blobs&label=y', { method: 'POST', body: makeCsv(3000, 32),
                                                                   headers: { 'Content-Type': 'text/csv' } });
  assert.equal(up.status, 201, up.body);
  const mk = await post(base, '/v1/models', { name: 'mlp', inputs: 32, loss: 'cross_entropy', seed: 7,
    layers: [{ units: 256, activation: 'relu' }, { units: 256, activation: 'relu' }, { units: 3, activation: 'softmax' }] });
  assert.equal(mk.status, 201, mk.body);

  const ctx = await browser.newContext({ viewport: { width: 1360, height: 1000 } });
  const page = await ctx.newPage();
  currentPage = page;
  await page.addInitScript(CSP_HOOK);
  const problems = watch(page);
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const streams = new Map(); // job id -> "status content-type" of its /events answers
  page.on('response', (r) => {
    const m = /\/v1\/jobs\/([^/]+)\/events$/.exec(r.url());
    if (m) streams.set(m[1], `${r.status()} ${r.headers()['content-type']}`);
  });
  await page.goto(base + '/', { timeout: 15000 });
  await until('the model and data set in the form', 10000, async () =>
    (await page.$$eval('#job-model option', (os) => os.map((o) => o.value))).includes('mlp') &&
    (await page.$$eval('#job-dataset option', (os) => os.map((o) => o.value))).includes('blobs'));
  assert.equal(await page.textContent('#models-table tr[data-model="mlp"] td:nth-child(4)'), 'not trained yet');
  assert.equal(await page.textContent('#datasets-table tr[data-dataset="blobs"] td:nth-child(2)'), '3000');
  await checkParser(page);
  step('SSE parser: same events at every split');

  const EPOCHS = 120;
  const a = await startJobFromForm(page, { optimizer: 'adam', lr: 0.001, epochs: EPOCHS });
  const b = await startJobFromForm(page, { optimizer: 'sgd', lr: 0.05, epochs: EPOCHS });
  step(`started ${a} (adam) and ${b} (sgd) from the form`);

  // Both curves gain points while their jobs run: several growing counts
  // each, seen while the page still shows the job running.
  const seen = { [a]: new Set(), [b]: new Set() };
  await until('both curves to grow while training', 90000, async () => {
    // the points each job has on the loss chart, as the page last drew it
    const drawn = Object.fromEntries(((await page.getAttribute('#chart-loss', 'data-points')) || '')
      .split(' ').filter(Boolean).map((p) => p.split(':')).map(([id, n]) => [id, Number(n)]));
    for (const id of [a, b]) {
      const st = await jobStatus(page, id);
      if (drawn[id] > 0 && drawn[id] < EPOCHS && st === 'running') seen[id].add(drawn[id]);
    }
    return seen[a].size >= 3 && seen[b].size >= 3;
  }, 50);
  // ...from the event stream, not the /metrics fallback.
  for (const id of [a, b]) assert.equal(streams.get(id), '200 text/event-stream', `${id}'s /events`);
  step(`curves grew live: ${a} at ${[...seen[a]].join(',')}; ${b} at ${[...seen[b]].join(',')}`);

  await until('both jobs to succeed', 180000, async () =>
    (await jobStatus(page, a)) === 'succeeded' && (await jobStatus(page, b)) === 'succeeded', 200);
  for (const id of [a, b]) {
    const m = (await http(base, `/v1/jobs/${id}/metrics`)).json();
    assert.equal(m.epochs.length, EPOCHS);
    const row = await until(`${id}'s table row to hold every epoch`, 10000, async () => {
      const r = await bestRow(page, id);
      return r && r.epochs === EPOCHS && r;
    });
    const bl = bestOf(m.epochs, 'val_loss', true), ba = bestOf(m.epochs, 'val_accuracy', false);
    assert.equal(Number(row.loss), bl.value, `${id} best val_loss`);
    assert.equal(Number(row.lossEpoch), bl.epoch, `${id} best val_loss epoch`);
    assert.equal(Number(row.acc), ba.value, `${id} best val_accuracy`);
    assert.equal(Number(row.accEpoch), ba.epoch, `${id} best val_accuracy epoch`);
    step(`${id}: best val_loss ${bl.value} at ${bl.epoch}, val_accuracy ${ba.value} at ${ba.epoch} (page = API)`);
    assert.equal(await page.$eval(`#jobs-table tr[data-job="${id}"] progress`, (p) => p.value), 1);
  }
  const points = await page.getAttribute('#chart-loss', 'data-points');
  assert.equal(points, `${a}:${EPOCHS} ${b}:${EPOCHS}`, 'both jobs drawn in the loss chart');
  assert.ok(await page.$('#chart-loss canvas') && await page.$('#chart-accuracy canvas'), 'uPlot canvases');
  const legend = await page.$$eval('#chart-loss .u-legend .u-series .u-label', (ls) => ls.map((l) => l.textContent));
  assert.equal(legend.length, 5, `legend: ${legend}`); // epoch + train/val of two jobs
  // The model table shows the two versions the jobs stored.
  await until('two versions in the model table', 10000, async () =>
    (await page.$$('#models-table tr[data-model="mlp"] .versions span')).length === 2);

  // Log axis and smoothing redraw without errors.
  await page.selectOption('#loss-axis', 'log');
  await until('the log title', 5000, async () => (await page.textContent('#chart-loss .u-title')) === 'Loss (log)');
  await page.$eval('#smoothing', (s) => { s.value = '0.6'; s.dispatchEvent(new Event('input')); });
  assert.equal(await page.textContent('#smoothing-value'), '0.60');
  await sleep(300);
  await page.screenshot({ path: join(build, 'ui-dashboard.png'), fullPage: true });
  step(`screenshot ${join(build, 'ui-dashboard.png')}`);

  // Cancel from the jobs table.
  const c = await startJobFromForm(page, { optimizer: 'adam', lr: 0.001, epochs: 5000 });
  await until('the long job to run', 30000, async () => (await jobStatus(page, c)) === 'running');
  await page.click(`#jobs-table tr[data-job="${c}"] button.cancel`);
  await until('the job to be cancelled', 30000, async () => (await jobStatus(page, c)) === 'cancelled');
  assert.equal((await http(base, `/v1/jobs/${c}`)).json().status, 'cancelled');
  step(`cancelled ${c} from its button`);

  problems.push(...(await cspViolations(page)).map((v) => `CSP: ${v}`));
  assert.deepEqual(problems, [], 'console errors or CSP violations');
  assert.ok(requests.every((u) => u.startsWith(base)), 'the page loads nothing from elsewhere');
  await ctx.close();
}

// With keys: the page asks once, keeps the key in sessionStorage, asks again
// after a 401, and never puts the key in a URL.
async function keysRun() {
  const db = join(tmp, 'keys.db');
  const key = execFileSync(daemonBin, ['keys', 'create', '--db', db, '--scope', 'train', '--name', 'ui'],
                           { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 15000 }).trim();
  assert.match(key, /^\S{16,}$/);
  const { base } = await startDaemon('keys', db);
  const page0 = await http(base, '/');
  assert.equal(page0.status, 200, 'the page is open');
  assert.equal((await http(base, '/v1/models')).status, 401, 'the API is not');

  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  currentPage = page;
  await page.addInitScript(CSP_HOOK);
  const problems = watch(page, (t) => /status of 401/.test(t));
  const urls = [];
  page.on('request', (r) => urls.push(r.url()));
  await page.goto(base + '/ui', { timeout: 15000 });
  await page.waitForSelector('#key-dialog[open]', { timeout: 10000 });
  await page.fill('#key-input', 'not-the-key');
  await page.click('#key-ok');
  await until('the prompt to come back after a 401', 10000, async () =>
    (await page.$('#key-dialog[open]')) && /refused/.test(await page.textContent('#key-why')));
  await page.fill('#key-input', key);
  await page.click('#key-ok');
  await until('the tables to load with the key', 10000, async () => /0 models/.test(await page.textContent('#status')));
  assert.equal(await page.evaluate(() => sessionStorage.getItem('backpropd.key')), key);
  await page.reload({ timeout: 15000 });
  await until('a reload to load with the kept key', 10000, async () => /0 models/.test(await page.textContent('#status')));
  assert.equal(await page.$('#key-dialog[open]'), null, 'no prompt once the key is kept');
  assert.ok(urls.every((u) => !u.includes(key)), 'the key never appears in a URL');
  problems.push(...(await cspViolations(page)).map((v) => `CSP: ${v}`));
  assert.deepEqual(problems, [], 'console errors or CSP violations');
  step('keys: prompt, 401 re-prompt, sessionStorage, reload without prompt');
  await ctx.close();
}
// Stops every daemon started here (SIGTERM, then SIGKILL after 10 s) and
// checks each exited cleanly.
async function stopDaemons() {
  const bad = [];
  for (const p of daemons) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    p.kill('SIGTERM');
    const end = Date.now() + 10000;
    while (p.exitCode === null && p.signalCode === null && Date.now() < end) await sleep(50);
    if (p.exitCode === null && p.signalCode === null) { p.kill('SIGKILL'); bad.push(`pid ${p.pid} ignored SIGTERM`); }
    else if (p.exitCode !== 0) bad.push(`pid ${p.pid} exited ${p.exitCode ?? p.signalCode}`);
  }
  return bad;
}

const watchdog = setTimeout(() => { console.error('ui: FAIL: the whole test took over 6 minutes'); process.exit(1); }, 360000);
let rc = 0;
try {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'], timeout: 30000 });
  await mainRun();
  await keysRun();
} catch (e) {
  rc = 1;
  console.error(`ui: FAIL: ${e.stack || e}`);
  console.error(`ui: daemon logs kept in ${tmp}`);
  if (currentPage) {
    await currentPage.screenshot({ path: join(build, 'ui-failure.png'), fullPage: true, timeout: 10000 }).catch(() => {});
    console.error(`ui: the page at the failure: ${join(build, 'ui-failure.png')}`);
  }
} finally {
  if (browser) await browser.close().catch(() => {});
  const bad = await stopDaemons();
  if (bad.length) { rc = 1; console.error(`ui: FAIL: ${bad.join('; ')}`); }
  clearTimeout(watchdog);
}
if (rc === 0) { rmSync(tmp, { recursive: true, force: true }); console.log('ui: dashboard test passed'); }
process.exit(rc);
