/*
 * app.js - the backpropd dashboard (ui/index.html): lists models, data sets
 * and jobs; starts and cancels jobs; draws the chosen jobs' loss and
 * accuracy curves with uPlot, growing them from each job's event stream
 * (GET /v1/jobs/{id}/events, read with fetch so the API key can go in the
 * Authorization header, which EventSource cannot send), and keeps the best
 * validation metrics in a table.
 *
 * Keys: when the daemon answers 401 the page asks for a key once, keeps it
 * in sessionStorage (this tab only, never in a URL) and retries; another
 * 401 asks again.
 */
'use strict';

/* ---- Server-Sent Events, parsed by hand (the stream arrives in chunks that
 * may split a line, a CRLF or a UTF-8 sequence anywhere). ---- */
class SSEParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.decoder = new TextDecoder();
    this.buf = '';
    this.reset();
    this.lastId = null;
  }
  reset() { this.type = ''; this.data = []; this.hasData = false; }
  /* Feeds one chunk (a Uint8Array or a string). */
  push(chunk) {
    this.buf += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) break;
      /* A CR at the very end may be the first half of a CRLF. */
      if (m[0] === '\r' && m.index === this.buf.length - 1) break;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      this.line(line);
    }
  }
  /* The stream ended: a trailing lone CR still ends its line. */
  end() {
    if (this.buf.endsWith('\r')) this.line(this.buf.slice(0, -1));
    this.buf = '';
  }
  line(line) {
    if (line === '') {
      /* Dispatch; an event with a type but no data line ("event: done")
       * still counts, the daemon's last word on a stream. */
      if (this.hasData || this.type) {
        this.onEvent({ type: this.type || 'message', data: this.data.join('\n'), id: this.lastId });
      }
      this.reset();
      return;
    }
    if (line[0] === ':') return; /* a comment: the keep-alive */
    const c = line.indexOf(':');
    const field = c < 0 ? line : line.slice(0, c);
    let value = c < 0 ? '' : line.slice(c + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'event') this.type = value;
    else if (field === 'data') { this.data.push(value); this.hasData = true; }
    else if (field === 'id' && !value.includes('\0')) this.lastId = value;
  }
}
globalThis.BackpropdSSE = SSEParser; /* tests/ui/ feeds it split streams */

(() => {
  const KEY_STORE = 'backpropd.key';
  const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
  const COLORS = ['#2f6fde', '#e0672b', '#2a9d4b', '#a23bc4', '#c9a227', '#1f9fb4', '#d43d6e', '#6b7280'];
  const POLL_MS = 2000;
  /* A browser keeps at most 6 HTTP/1.1 connections per host and an open
   * stream holds one: past this many, further jobs are polled so the
   * tables' requests still get through. */
  const MAX_STREAMS = 4;
  let openStreams = 0;

  const $ = (id) => document.getElementById(id);
  const el = (tag, props, ...kids) => {
    const e = document.createElement(tag);
    if (props) for (const [k, v] of Object.entries(props)) {
      if (k === 'class') e.className = v; else if (k === 'data') Object.assign(e.dataset, v); else e[k] = v;
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  };
  const sleep = (ms, signal) => new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (signal) signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
  const fmt = (x, digits = 4) => (x == null || !Number.isFinite(x) ? '—' : Number(x).toPrecision(digits));
  const pct = (x) => (x == null || !Number.isFinite(x) ? '—' : (100 * x).toFixed(1) + '%');

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  /* ---- the API key prompt ---- */
  let keyPrompt = null;   /* the pending prompt's promise, shared by every 401 */
  let keyDeclined = false;
  function askKey(why) {
    if (keyPrompt) return keyPrompt;
    const dlg = $('key-dialog');
    $('key-why').textContent = why;
    $('key-input').value = '';
    keyPrompt = new Promise((resolve) => {
      const done = (key) => {
        dlg.removeEventListener('close', onClose);
        keyPrompt = null;
        resolve(key);
      };
      const onClose = () => {
        const key = dlg.returnValue === 'ok' ? $('key-input').value.trim() : '';
        if (key) { sessionStorage.setItem(KEY_STORE, key); keyDeclined = false; done(key); }
        else { keyDeclined = true; done(null); }
      };
      dlg.returnValue = '';
      dlg.addEventListener('close', onClose);
      dlg.showModal();
    });
    return keyPrompt;
  }
  $('key-form').addEventListener('submit', () => { $('key-dialog').returnValue = 'ok'; });
  $('key-button').addEventListener('click', () => {
    askKey('Enter an API key (a predict key reads, a train key starts and cancels jobs).')
      .then((k) => { if (k) refresh(); });
  });

  /* fetch() with the key; a 401 asks for one and tries again.  raw: the
   * Response itself (the event stream), else the parsed JSON body. */
  async function api(path, opts = {}) {
    for (;;) {
      const headers = Object.assign({}, opts.headers);
      const key = sessionStorage.getItem(KEY_STORE);
      if (key) headers.Authorization = 'Bearer ' + key;
      if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
      const res = await fetch(path, {
        method: opts.method || 'GET', headers, signal: opts.signal, cache: 'no-store',
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      });
      if (res.status === 401) {
        const msg = await errorMessage(res);
        if (key) sessionStorage.removeItem(KEY_STORE);
        if (keyDeclined && !key) throw new ApiError(401, 'no API key (use the "API key" button)');
        const k = await askKey(key ? `The key was refused: ${msg}` : `This daemon needs an API key: ${msg}`);
        if (!k) throw new ApiError(401, 'no API key (use the "API key" button)');
        continue;
      }
      if (opts.raw) return res;
      if (!res.ok) throw new ApiError(res.status, `${res.status}: ${await errorMessage(res)}`);
      return res.status === 204 ? null : res.json();
    }
  }
  async function errorMessage(res) {
    try {
      const j = await res.json();
      return (j && j.error && (j.error.message || j.error)) || res.statusText;
    } catch (e) { return res.statusText; }
  }

  /* ---- state ---- */
  const state = {
    models: [], datasets: [], jobs: new Map(), /* id -> job object */
    versions: new Map(),                       /* model name -> {version, list} */
    follows: new Map(),                        /* id -> follow (the plotted jobs) */
    order: [],                                 /* plotted ids, in the order picked */
    firstJobs: true,
  };

  function setStatus(text, isError) {
    $('status').textContent = text;
    $('status').classList.toggle('error', !!isError);
  }

  /* ---- following a job: its metrics rows, from the stream or by polling ---- */
  function follow(id) {
    if (state.follows.has(id)) return;
    const f = { id, rows: [], last: 0, mode: 'starting', ctrl: new AbortController() };
    state.follows.set(id, f);
    state.order.push(id);
    rebuildCharts();
    streamJob(f);
  }
  function unfollow(id) {
    const f = state.follows.get(id);
    if (!f) return;
    f.ctrl.abort();
    state.follows.delete(id);
    state.order = state.order.filter((x) => x !== id);
    rebuildCharts();
  }
  function addRow(f, row) {
    if (!row || !(row.epoch > f.last)) return; /* a duplicate after a resume */
    f.rows.push(row);
    f.last = row.epoch;
    const job = state.jobs.get(f.id);
    if (job && row.epoch > (job.epoch || 0)) {
      Object.assign(job, { epoch: row.epoch, train_loss: row.train_loss, val_loss: row.val_loss,
                           val_accuracy: row.val_accuracy });
      if (job.epochs) job.progress = Math.min(1, row.epoch / job.epochs);
      renderJobRow(job);
    }
    scheduleDraw();
  }

  async function streamJob(f) {
    const signal = f.ctrl.signal;
    let failures = 0;
    while (!signal.aborted) {
      if (openStreams >= MAX_STREAMS) return pollJob(f);
      openStreams++; /* held from before the request: no race past the cap */
      let outcome;
      try { outcome = await streamOnce(f, signal); } finally { openStreams--; }
      if (outcome === 'done' || outcome === 'error' || signal.aborted) return;
      if (outcome === 'fallback') return pollJob(f);
      if (++failures > 5 && f.mode !== 'stream') return pollJob(f);
      await sleep(Math.min(5000, 500 * failures), signal); /* resume at f.last + 1 */
    }
  }
  /* One connection to the job's stream: 'done' (its done event came),
   * 'retry' (it broke off: reconnect with Last-Event-ID), 'fallback' (no
   * stream here: 404, or 429 with every slot taken) or 'error'. */
  async function streamOnce(f, signal) {
    let res;
    try {
      const headers = { Accept: 'text/event-stream' };
      if (f.last > 0) headers['Last-Event-ID'] = String(f.last);
      res = await api(`/v1/jobs/${encodeURIComponent(f.id)}/events`, { raw: true, headers, signal });
    } catch (e) {
      if (e instanceof ApiError) { f.mode = 'error: ' + e.message; return 'error'; }
      return 'retry';
    }
    const ctype = res.headers.get('Content-Type') || '';
    if (!res.ok || !ctype.startsWith('text/event-stream')) {
      if (res.body) res.body.cancel().catch(() => {});
      return 'fallback';
    }
    f.mode = 'stream';
    updateStatusLine();
    let finished = false;
    const parser = new SSEParser((ev) => {
      try {
        if (ev.type === 'epoch') addRow(f, JSON.parse(ev.data));
        else if (ev.type === 'status') mergeJob(JSON.parse(ev.data));
        else if (ev.type === 'done') finished = true;
      } catch (e) { console.warn(`bad ${ev.type} event`, e); }
    });
    try {
      const reader = res.body.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value);
        if (finished) { reader.cancel().catch(() => {}); break; }
      }
      parser.end();
    } catch (e) { /* a broken connection, or the follow was stopped */ }
    if (!finished) return 'retry';
    f.mode = 'done';
    updateStatusLine();
    return 'done';
  }

  async function pollJob(f) {
    const signal = f.ctrl.signal;
    f.mode = 'polling';
    updateStatusLine();
    while (!signal.aborted) {
      try {
        const job = await api(`/v1/jobs/${encodeURIComponent(f.id)}`, { signal });
        const m = await api(`/v1/jobs/${encodeURIComponent(f.id)}/metrics`, { signal });
        for (const row of m.epochs || []) addRow(f, row);
        mergeJob(job);
        if (TERMINAL.has(job.status)) { f.mode = 'done'; updateStatusLine(); return; }
      } catch (e) {
        if (signal.aborted) return;
        if (e instanceof ApiError && e.status === 404) { f.mode = 'gone'; return; }
      }
      await sleep(1000, signal);
    }
  }

  /* ---- the charts ---- */
  let charts = [];
  let drawPending = false;
  const CHARTS = [
    { id: 'chart-loss', title: 'Loss', keys: ['train_loss', 'val_loss'], log: () => $('loss-axis').value === 'log' },
    { id: 'chart-accuracy', title: 'Accuracy', keys: ['train_accuracy', 'val_accuracy'], log: () => false },
  ];
  function jobLabel(id) {
    const j = state.jobs.get(id);
    return (j ? j.model + ' ' : '') + id.slice(-6);
  }
  function rebuildCharts() {
    for (const c of charts) c.plot.destroy();
    charts = [];
    if (typeof uPlot === 'undefined') return;
    for (const spec of CHARTS) {
      const box = $(spec.id);
      const series = [{ label: 'epoch' }];
      state.order.forEach((id, k) => {
        const color = COLORS[k % COLORS.length];
        series.push({ label: jobLabel(id) + ' train', stroke: color, width: 1.5, dash: [6, 4], spanGaps: true, points: { show: false } });
        series.push({ label: jobLabel(id) + ' val', stroke: color, width: 2, spanGaps: true, points: { show: false } });
      });
      const log = spec.log();
      const opts = {
        title: spec.title + (log ? ' (log)' : ''),
        width: Math.max(320, box.clientWidth || 600), height: 280,
        scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
        axes: [{ label: 'epoch' },
               { label: spec.title.toLowerCase(), size: 60, values: (u, vals) => vals.map(tick) }],
        series,
      };
      box.textContent = '';
      charts.push({ spec, log, box, plot: new uPlot(opts, chartData(spec, log), box) });
    }
    renderBest();
  }
  /* Axis labels that stay readable on a log axis (uPlot's default prints
   * 0.0001 as "0" at its precision). */
  function tick(v) {
    if (v == null) return '';
    if (v === 0) return '0';
    const a = Math.abs(v);
    return a >= 1e-2 && a < 1e5 ? String(+v.toPrecision(3)) : v.toExponential(0);
  }
  /* TensorBoard's smoothing: an exponential moving average, debiased so
   * the first points are not pulled toward 0. */
  function smooth(values, w) {
    if (!(w > 0)) return values;
    let s = 0, n = 0;
    return values.map((v) => {
      if (v == null) return null;
      s = w * s + (1 - w) * v;
      n++;
      return s / (1 - Math.pow(w, n));
    });
  }
  function chartData(spec, log) {
    let max = 0;
    for (const id of state.order) max = Math.max(max, state.follows.get(id).last);
    const xs = Array.from({ length: max }, (_, i) => i + 1);
    const out = [xs];
    const w = Number($('smoothing').value);
    for (const id of state.order) {
      const f = state.follows.get(id);
      for (const key of spec.keys) {
        const ys = new Array(max).fill(null);
        for (const r of f.rows) {
          const v = r[key];
          if (typeof v === 'number' && Number.isFinite(v) && (!log || v > 0)) ys[r.epoch - 1] = v;
        }
        out.push(smooth(ys, w));
      }
    }
    return out;
  }
  function scheduleDraw() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => {
      drawPending = false;
      for (const c of charts) c.plot.setData(chartData(c.spec, c.log));
      for (const c of charts) c.box.dataset.points = state.order.map((id) => `${id}:${state.follows.get(id).rows.length}`).join(' ');
      renderBest();
    });
  }
  $('smoothing').addEventListener('input', () => {
    $('smoothing-value').textContent = Number($('smoothing').value).toFixed(2);
    scheduleDraw();
  });
  $('loss-axis').addEventListener('change', rebuildCharts);
  window.addEventListener('resize', () => {
    for (const c of charts) c.plot.setSize({ width: Math.max(320, c.box.clientWidth || 600), height: 280 });
  });

  /* The best validation loss (lowest) and accuracy (highest) and the first
   * epoch each came at, from the raw rows (never the smoothed curve). */
  function best(rows, key, better) {
    let b = null;
    for (const r of rows) {
      const v = r[key];
      if (typeof v === 'number' && Number.isFinite(v) && (b === null || better(v, b.value))) b = { value: v, epoch: r.epoch };
    }
    return b;
  }
  function renderBest() {
    const tbody = $('best-table').tBodies[0];
    tbody.textContent = '';
    state.order.forEach((id, k) => {
      const f = state.follows.get(id);
      const job = state.jobs.get(id);
      const bl = best(f.rows, 'val_loss', (a, b) => a < b);
      const ba = best(f.rows, 'val_accuracy', (a, b) => a > b);
      const cell = (b, show, cls) => el('td', { class: 'num ' + cls, textContent: b ? show(b.value) : '—',
                                               data: b ? { value: String(b.value) } : {} });
      tbody.append(el('tr', { data: { job: id } },
        el('td', null, el('span', { class: 'swatch sw' + (k % COLORS.length) }), el('span', { class: 'id', textContent: id })),
        el('td', { textContent: job ? job.model : '' }),
        el('td', { class: 'num epochs', textContent: String(f.rows.length) }),
        cell(bl, (v) => fmt(v, 5), 'best-loss'),
        el('td', { class: 'num best-loss-epoch', textContent: bl ? String(bl.epoch) : '—' }),
        cell(ba, pct, 'best-acc'),
        el('td', { class: 'num best-acc-epoch', textContent: ba ? String(ba.epoch) : '—' })));
    });
  }

  /* ---- tables ---- */
  function mergeJob(job) {
    const old = state.jobs.get(job.id);
    /* a live epoch may be ahead of a poll that left before it */
    if (old && old.epoch > job.epoch && !TERMINAL.has(job.status)) {
      job = Object.assign({}, job, { epoch: old.epoch, progress: old.progress, train_loss: old.train_loss,
                                     val_loss: old.val_loss, val_accuracy: old.val_accuracy });
    }
    state.jobs.set(job.id, job);
    renderJobRow(job);
  }
  const jobRows = new Map(); /* id -> tr */
  function renderJobRow(job) {
    let tr = jobRows.get(job.id);
    if (!tr) {
      tr = el('tr', { data: { job: job.id } });
      const box = el('input', { type: 'checkbox', className: 'plot', title: 'plot this job' });
      box.addEventListener('change', () => (box.checked ? follow(job.id) : unfollow(job.id)));
      const cancel = el('button', { type: 'button', className: 'cancel', textContent: 'Cancel' });
      cancel.addEventListener('click', () => cancelJob(job.id, cancel));
      tr.append(el('td', null, box), el('td', { class: 'id', textContent: job.id }), el('td'), el('td'),
                el('td', null, el('span', { class: 'st' })),
                el('td', null, el('progress', { max: 1, value: 0 }), el('span', { class: 'ep' })),
                el('td', { class: 'num' }), el('td', { class: 'num' }), el('td', null, cancel));
      jobRows.set(job.id, tr);
      $('jobs-table').tBodies[0].prepend(tr); /* newest first */
    }
    const c = tr.cells;
    c[0].firstChild.checked = state.follows.has(job.id);
    c[2].textContent = job.model;
    c[3].textContent = job.dataset == null ? '(inline)' : job.dataset;
    c[4].firstChild.textContent = job.status;
    c[4].firstChild.className = 'st st-' + job.status;
    c[4].title = job.error || '';
    c[5].firstChild.value = job.progress || 0;
    c[5].lastChild.textContent = ` ${job.epoch}/${job.epochs}`;
    c[6].textContent = fmt(job.val_loss);
    c[7].textContent = pct(job.val_accuracy);
    c[8].firstChild.hidden = TERMINAL.has(job.status);
  }
  async function cancelJob(id, button) {
    button.disabled = true;
    try {
      mergeJob(await api(`/v1/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' }));
    } catch (e) {
      setStatus(`cancel ${id}: ${e.message}`, true);
    } finally {
      button.disabled = false;
    }
  }

  function layersText(m) {
    return [String(m.inputs)].concat((m.layers || []).map((l) => `${l.units} ${l.activation}`)).join(' → ');
  }
  async function renderModels() {
    const tbody = $('models-table').tBodies[0];
    const rows = [];
    for (const m of state.models) {
      let v = state.versions.get(m.name);
      if (!v || v.version !== m.version) {
        try {
          const r = await api(`/v1/models/${encodeURIComponent(m.name)}/versions`);
          v = { version: m.version, list: r.versions || [] };
          state.versions.set(m.name, v);
        } catch (e) { v = { version: -1, list: [] }; }
      }
      const labels = Object.entries(m.labels || {}).map(([k, n]) => `${k} → v${n}`).join(', ');
      const vs = el('td', { class: 'versions' });
      for (const ver of v.list) {
        const mt = ver.metrics || {};
        vs.append(el('span', { title: `job ${ver.job}, data set ${ver.dataset || '(inline)'}` ,
                               textContent: `v${ver.version}: ${fmt(mt.val_loss)} / ${pct(mt.val_accuracy)}` }));
      }
      if (!v.list.length) vs.textContent = 'not trained yet';
      rows.push(el('tr', { data: { model: m.name } }, el('td', { textContent: m.name }),
                   el('td', { textContent: `${layersText(m)} (${m.loss}, ${m.parameters} parameters)` }),
                   el('td', { textContent: labels || '—' }), vs));
    }
    tbody.replaceChildren(...rows);
  }
  function renderDatasets() {
    $('datasets-table').tBodies[0].replaceChildren(...state.datasets.map((d) => el('tr', { data: { dataset: d.name } },
      el('td', { textContent: d.name }), el('td', { class: 'num', textContent: String(d.rows) }),
      el('td', { class: 'num', textContent: String(d.features) }),
      el('td', { textContent: d.classes ? d.classes.join(', ') : d.targets != null ? `${d.targets} numeric` : 'class indices' }),
      el('td', { textContent: d.created_at }))));
  }
  function fillSelect(sel, names) {
    const keep = sel.value;
    const have = Array.from(sel.options).map((o) => o.value);
    if (have.join('\n') === names.join('\n')) return;
    sel.replaceChildren(...names.map((n) => el('option', { value: n, textContent: n })));
    if (names.includes(keep)) sel.value = keep;
  }

  function updateStatusLine() {
    const modes = {};
    for (const f of state.follows.values()) modes[f.mode] = (modes[f.mode] || 0) + 1;
    const live = Object.entries(modes).map(([k, n]) => `${n} ${k}`).join(', ');
    setStatus(`${state.models.length} models · ${state.datasets.length} data sets · ${state.jobs.size} jobs` +
              (live ? ` · curves: ${live}` : ''));
  }

  let refreshing = false;
  async function refresh() {
    if (refreshing) return;
    refreshing = true;
    try {
      const [models, datasets, jobs] = await Promise.all([
        api('/v1/models'), api('/v1/datasets'), api('/v1/jobs')]);
      state.models = models.models || [];
      state.datasets = datasets.datasets || [];
      for (const j of jobs.jobs || []) mergeJob(j);
      fillSelect($('job-model'), state.models.map((m) => m.name));
      fillSelect($('job-dataset'), state.datasets.map((d) => d.name));
      renderDatasets();
      await renderModels();
      if (state.firstJobs) {
        state.firstJobs = false;
        /* start with the newest job plotted, if there is one */
        const list = jobs.jobs || [];
        if (list.length && !state.order.length) { follow(list[list.length - 1].id); renderJobRow(list[list.length - 1]); }
      }
      updateStatusLine();
    } catch (e) {
      setStatus(e.message, true);
    } finally {
      refreshing = false;
    }
  }

  $('job-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const msg = $('job-form-msg');
    const body = {
      model: $('job-model').value,
      dataset: $('job-dataset').value,
      epochs: Number($('job-epochs').value),
      optimizer: { type: $('job-optimizer').value, learning_rate: Number($('job-lr').value) },
      validation_split: Number($('job-val').value || 0),
    };
    $('job-start').disabled = true;
    try {
      const job = await api('/v1/jobs', { method: 'POST', body });
      mergeJob(job);
      follow(job.id);
      renderJobRow(job);
      msg.className = 'msg';
      msg.textContent = `started ${job.id}`;
    } catch (e) {
      msg.className = 'msg error';
      msg.textContent = e.message;
    } finally {
      $('job-start').disabled = false;
    }
  });

  rebuildCharts();
  refresh();
  setInterval(refresh, POLL_MS);
})();
