// jetflow's live status page. Plain JavaScript, no dependencies: it talks
// to the HTTP API of the origin it was served from, reads server-sent
// events with fetch() so that the API key travels in a header, and never
// polls: the list and the instance follow their watch streams.
'use strict';

(() => {
  const BASE = location.pathname.replace(/\/ui\/.*$/, '') + '/runtime/webhooks/durabletask';
  const PAGE = 50;
  const STATUSES = ['Pending', 'Running', 'Completed', 'ContinuedAsNew', 'Failed', 'Canceled', 'Terminated', 'Suspended'];
  const TERMINAL = new Set(['Completed', 'Failed', 'Canceled', 'Terminated']);
  const KEY_ITEM = 'jetflow.key';
  const $ = (sel, root = document) => root.querySelector(sel);

  // ---- small helpers ----

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) {
      if (c !== null && c !== undefined) e.append(c);
    }
    return e;
  }

  const parseTime = (s) => (s ? new Date(s) : null);

  function fmtTime(s) {
    const d = parseTime(s);
    if (!d || isNaN(d)) return '—';
    return d.toLocaleString(undefined, { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  // fmtDuration writes a duration; precise ones (task times) show
  // milliseconds under a second.
  function fmtDuration(ms, precise) {
    if (ms === null || isNaN(ms)) return '—';
    if (ms < 0) ms = 0;
    if (precise && ms < 1000) return Math.round(ms) + ' ms';
    let s = Math.round(ms / 1000);
    if (s < 60) return s + ' s';
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    const two = (n) => String(n).padStart(2, '0');
    if (d) return `${d} d ${h} h`;
    if (h) return `${h} h ${two(m)} min`;
    return `${m} min ${two(s)} s`;
  }

  // duration of an instance: to its last update once finished, to now while it runs.
  function instanceDuration(st) {
    const c = parseTime(st.createdTime);
    if (!c) return null;
    const end = TERMINAL.has(st.runtimeStatus) ? parseTime(st.lastUpdatedTime) : new Date();
    return end - c;
  }

  function short(v, n = 60) {
    if (v === null || v === undefined) return '—';
    const s = typeof v === 'string' ? v : JSON.stringify(v);
    return s.length > n ? s.slice(0, n - 1) + '…' : s;
  }

  const pretty = (v) => (v === null || v === undefined ? 'null' : JSON.stringify(v, null, 2));

  function badge(status) {
    return el('span', { class: 'badge s-' + (status || 'unknown'), text: status || '?' });
  }

  function instanceLink(id, text) {
    return el('a', { href: '#/i/' + encodeURIComponent(id), class: 'mono', text: text || id });
  }

  // debounce returns fn delayed until ms passed without another call.
  function debounce(fn, ms) {
    let t;
    return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
  }

  const sleep = (ms, signal) => new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (signal) signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });

  function show(node, text, kind) {
    node.textContent = text || '';
    node.className = 'msg' + (kind ? ' ' + kind : '');
  }

  // ---- the key and the API ----

  let key = sessionStorage.getItem(KEY_ITEM) || '';
  let who = { name: '', scopes: [], keyRequired: false };

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function errorText(res) {
    const text = await res.text().catch(() => '');
    try {
      const v = JSON.parse(text);
      if (v && typeof v.error === 'string') return v.error;
    } catch (_) { /* plain text, as rewind answers */ }
    return text.trim() || `${res.status} ${res.statusText}`;
  }

  function headers(extra) {
    const h = Object.assign({}, extra);
    if (key) h['x-functions-key'] = key;
    return h;
  }

  // api calls the HTTP API; a 401 asks for the key once and tries again.
  async function api(method, path, opts = {}) {
    for (let tries = 0; ; tries++) {
      const h = headers(opts.headers);
      if (opts.body !== undefined) h['Content-Type'] = 'application/json';
      const res = await fetch(BASE + path, { method, headers: h, body: opts.body, cache: 'no-store', signal: opts.signal });
      if (res.status === 401 && tries < 3) {
        await askKey(await errorText(res));
        continue;
      }
      if (!res.ok) throw new ApiError(res.status, await errorText(res));
      return res;
    }
  }

  let keyPrompt = null;

  // askKey shows the key dialog (once, however many calls wait for it) and
  // resolves when a key was entered and accepted.
  function askKey(message) {
    if (keyPrompt) return keyPrompt;
    keyPrompt = new Promise((resolve) => {
      const dlg = $('#key-dialog');
      const input = $('#key-input');
      const msg = $('#key-msg');
      msg.textContent = key ? 'The key was refused: ' + message : 'This server needs an API key.';
      msg.className = key ? 'error' : '';
      input.value = '';
      const submit = async (ev) => {
        ev.preventDefault();
        const k = input.value.trim();
        if (!k) { msg.textContent = 'Enter the key.'; msg.className = 'error'; return; }
        const res = await fetch(BASE + '/whoami', { headers: { 'x-functions-key': k }, cache: 'no-store' }).catch((e) => e);
        if (!(res instanceof Response) || !res.ok) {
          msg.textContent = res instanceof Response ? 'The key was refused: ' + await errorText(res) : 'The server cannot be reached: ' + res.message;
          msg.className = 'error';
          input.select();
          return;
        }
        key = k;
        sessionStorage.setItem(KEY_ITEM, k);
        setWho(await res.json());
        $('#key-form').removeEventListener('submit', submit);
        dlg.close();
        keyPrompt = null;
        resolve();
      };
      $('#key-form').addEventListener('submit', submit);
      if (!dlg.open) dlg.showModal();
      input.focus();
    });
    return keyPrompt;
  }
  $('#key-dialog').addEventListener('cancel', (ev) => ev.preventDefault()); // the page needs the key

  $('#forget-key').addEventListener('click', () => {
    sessionStorage.removeItem(KEY_ITEM);
    key = '';
    location.reload();
  });

  // What the key may do (GET /whoami).
  const can = {
    has: (s) => who.scopes.includes(s),
    admin: () => can.has('admin'),
    startSome: () => can.admin() || who.scopes.some((s) => s === 'start' || s.startsWith('start:')),
    start: (name) => can.admin() || can.has('start') || can.has('start:' + name),
    raise: (name) => can.admin() || can.has('raise') || can.has('raise:' + name),
  };

  function setWho(w) {
    who = { name: w.name || '', scopes: w.scopes || [], keyRequired: !!w.keyRequired };
    const label = $('#who');
    label.textContent = '';
    if (who.keyRequired) {
      label.append(el('span', { text: 'key ' }), el('strong', { text: who.name }),
        el('span', { text: ' · ' + (can.admin() ? 'admin' : who.scopes.every((s) => s === 'read') ? 'read-only' : 'may only ' + who.scopes.join(', ')) }));
      label.classList.toggle('readonly', !can.admin());
    }
    $('#forget-key').hidden = !who.keyRequired;
    applyScopes();
  }

  async function loadWho() {
    const res = await api('GET', '/whoami');
    setWho(await res.json());
  }

  // ---- server-sent events over fetch ----

  const conn = $('#conn');
  const streamsDown = new Set();
  function setConn(name, up) {
    if (up) streamsDown.delete(name); else streamsDown.add(name);
    conn.textContent = streamsDown.size ? 'reconnecting…' : 'live';
    conn.className = 'conn ' + (streamsDown.size ? 'down' : 'up');
  }

  // stream reads the server-sent events of path until signal aborts, the
  // server answers 204 (nothing more will come) or an error that retrying
  // cannot fix (given to onError). Broken connections are resumed after
  // the last event id (Last-Event-ID), with a growing delay.
  async function stream(name, path, onEvent, signal, onError) {
    let last = '';
    let delay = 500;
    while (!signal.aborted) {
      let events = 0;
      try {
        const h = headers({ Accept: 'text/event-stream' });
        if (last) h['Last-Event-ID'] = last;
        const res = await fetch(BASE + path, { headers: h, signal, cache: 'no-store' });
        if (res.status === 204) { setConn(name, true); return; }
        if (res.status === 401) { await askKey(await errorText(res)); continue; }
        if (!res.ok) throw new ApiError(res.status, await errorText(res));
        setConn(name, true);
        delay = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        let ev = { event: 'message', data: [], id: null };
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          const lines = buf.split('\n');
          buf = lines.pop();
          for (let line of lines) {
            if (line.endsWith('\r')) line = line.slice(0, -1);
            if (line === '') {
              if (ev.id !== null) last = ev.id;
              if (ev.data.length) { events++; onEvent(ev.event, ev.data.join('\n'), Number(ev.id) || 0); }
              ev = { event: 'message', data: [], id: null };
              continue;
            }
            if (line[0] === ':') continue; // keep-alive
            const c = line.indexOf(':');
            const field = c < 0 ? line : line.slice(0, c);
            let v = c < 0 ? '' : line.slice(c + 1);
            if (v[0] === ' ') v = v.slice(1);
            if (field === 'event') ev.event = v;
            else if (field === 'data') ev.data.push(v);
            else if (field === 'id') ev.id = v;
          }
        }
      } catch (e) {
        if (signal.aborted) return;
        if (e instanceof ApiError && e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429) {
          setConn(name, true);
          if (onError) onError(e);
          return;
        }
      }
      if (signal.aborted) return;
      // A stream that ended after events (an instance's ends after its
      // terminal status) is asked again at once: 204 says it is over.
      if (events) continue;
      setConn(name, false);
      await sleep(delay, signal);
      delay = Math.min(delay * 2, 10000);
    }
  }

  // ---- what the fleet watch has seen ----

  // known holds, per instance id, what the watches last said: the
  // status chips count it, and trail keeps the custom statuses seen while
  // the page is open (an instance may be done before its view opens).
  const known = new Map();
  const names = new Set();
  let fleetAbort = null;
  let fleetPrefix = null;

  // remember records a status a watch delivered with its KV revision, and
  // reports whether it is newer than what was known: the fleet's watch and
  // the instance's deliver the same changes, in either order.
  function remember(st, rev) {
    const k = known.get(st.instanceId);
    if (k && rev && rev <= k.rev) return false;
    const cs = JSON.stringify(st.customStatus);
    const trail = k ? k.trail : [];
    if (trail[trail.length - 1] !== cs) {
      trail.push(cs);
      if (trail.length > 20) trail.shift();
    }
    const brief = { instanceId: st.instanceId, name: st.name, runtimeStatus: st.runtimeStatus, customStatus: st.customStatus,
      createdTime: st.createdTime, lastUpdatedTime: st.lastUpdatedTime };
    known.set(st.instanceId, { st: brief, trail, rev });
    if (!names.has(st.name)) {
      names.add(st.name);
      $('#names').append(el('option', { value: st.name }));
    }
    return true;
  }

  // onStatus takes a status from either watch.
  function onStatus(st, rev) {
    if (remember(st, rev)) {
      listUpdated(st);
      countsLater();
    }
    if (view.id === st.instanceId && !(rev && rev <= view.rev)) {
      view.rev = rev;
      renderStatus(st);
      refreshDetails();
    }
  }

  function startFleet(prefix) {
    if (fleetAbort && fleetPrefix === prefix) return;
    if (fleetAbort) fleetAbort.abort();
    fleetAbort = new AbortController();
    fleetPrefix = prefix;
    for (const [id] of known) {
      if (!id.startsWith(prefix)) known.delete(id);
    }
    const q = prefix ? '?instanceIdPrefix=' + encodeURIComponent(prefix) : '';
    stream('fleet', '/watch' + q, onFleetEvent, fleetAbort.signal, (e) => show($('#list-msg'), 'Live updates stopped: ' + e.message, 'error'));
  }

  function onFleetEvent(type, data, rev) {
    let v;
    try { v = JSON.parse(data); } catch (_) { return; }
    if (type === 'deleted') {
      known.delete(v.instanceId);
      listRemoved(v.instanceId);
      countsLater();
    } else if (type === 'status') {
      onStatus(v, rev);
    }
  }

  // ---- the list ----

  const list = {
    statuses: new Set(),
    name: '', prefix: '', from: '', to: '',
    tokens: [], // continuation tokens of the pages before this one ('' = first)
    token: '', // this page's token
    next: '',
    rows: new Map(), // id -> {tr, st}
    loading: 0,
  };

  const tbody = $('#instances tbody');

  function matchesFilters(st, ignoreStatus) {
    if (!ignoreStatus && list.statuses.size && !list.statuses.has(st.runtimeStatus)) return false;
    if (list.name && !(st.name || '').toLowerCase().includes(list.name.toLowerCase())) return false;
    if (list.prefix && !st.instanceId.startsWith(list.prefix)) return false;
    const c = parseTime(st.createdTime);
    if (list.from && (!c || c < new Date(list.from))) return false;
    if (list.to && (!c || c > new Date(list.to))) return false;
    return true;
  }

  function rowCells(tr, st) {
    tr.textContent = '';
    tr.append(
      el('td', {}, instanceLink(st.instanceId)),
      el('td', { text: st.name }),
      el('td', {}, badge(st.runtimeStatus)),
      el('td', { class: 'hide-narrow mono', text: short(st.customStatus), title: short(st.customStatus, 500) }),
      el('td', { text: fmtTime(st.createdTime) }),
      el('td', { class: 'hide-narrow', text: fmtTime(st.lastUpdatedTime) }),
      el('td', { class: 'dur', text: fmtDuration(instanceDuration(st)) }),
    );
    tr.dataset.id = st.instanceId;
    tr.classList.toggle('gone', !matchesFilters(st)); // left the selection (its status changed)
  }

  function addRow(st, before) {
    const tr = el('tr');
    rowCells(tr, st);
    tbody.insertBefore(tr, before || null);
    list.rows.set(st.instanceId, { tr, st });
    return tr;
  }

  function flash(node) {
    node.classList.remove('flash');
    void node.offsetWidth; // restart the animation
    node.classList.add('flash');
  }

  function listUpdated(st) {
    if (view.name !== 'list') return;
    const row = list.rows.get(st.instanceId);
    if (row) {
      const same = row.st.lastUpdatedTime === st.lastUpdatedTime && row.st.runtimeStatus === st.runtimeStatus &&
        JSON.stringify(row.st.customStatus) === JSON.stringify(st.customStatus);
      if (same) return;
      row.st = st;
      rowCells(row.tr, st);
      flash(row.tr);
      return;
    }
    if (!matchesFilters(st) || list.loading) return;
    // A new instance in this page's range of ids (the list is in id order).
    const ids = [...list.rows.keys()];
    const first = ids[0];
    const last = ids[ids.length - 1];
    if (list.token && first !== undefined && st.instanceId < first) return;
    if (list.next && last !== undefined && st.instanceId > last) return;
    const before = ids.find((id) => id > st.instanceId);
    flash(addRow(st, before ? list.rows.get(before).tr : null));
    pageInfo();
  }

  function pageInfo() {
    const n = list.rows.size;
    $('#list-empty').hidden = n > 0;
    $('#prev-page').disabled = list.tokens.length === 0;
    $('#first-page').disabled = list.tokens.length === 0;
    $('#next-page').disabled = !list.next;
    $('#page-info').textContent = `page ${list.tokens.length + 1} · ${n} shown` + (list.next ? ' · more follow' : '');
  }

  function listRemoved(id) {
    const row = list.rows.get(id);
    if (!row) return;
    row.tr.remove();
    list.rows.delete(id);
    pageInfo();
  }

  async function loadList(token) {
    const my = ++list.loading;
    const q = new URLSearchParams({ showInput: 'false', top: String(PAGE) });
    if (list.statuses.size) q.set('runtimeStatus', [...list.statuses].join(','));
    if (list.prefix) q.set('instanceIdPrefix', list.prefix);
    if (list.from) q.set('createdTimeFrom', new Date(list.from).toISOString());
    if (list.to) q.set('createdTimeTo', new Date(list.to).toISOString());
    show($('#list-msg'), '');
    const rows = [];
    let next = token;
    let reads = 0;
    try {
      // The list API has no name filter: read pages until one is full.
      do {
        const res = await api('GET', '/instances?' + q, { headers: next ? { 'x-ms-continuation-token': next } : {} });
        const batch = await res.json();
        next = res.headers.get('x-ms-continuation-token') || '';
        rows.push(...batch.filter((st) => matchesFilters(st)));
        reads++;
      } while (next && rows.length < PAGE && reads < 20);
    } catch (e) {
      if (my === list.loading) {
        list.loading = 0;
        show($('#list-msg'), e.status === 403 ? 'This key may not read instances: ' + e.message : 'Loading the instances failed: ' + e.message, 'error');
      }
      return;
    }
    if (my !== list.loading) return; // a newer load started
    list.loading = 0;
    list.token = token;
    list.next = next;
    tbody.textContent = '';
    list.rows.clear();
    // The page's rows show what the watches said last: a change that came
    // while the page was read is not lost, and a change the watches have not
    // delivered yet will update the row when it comes.
    for (const st of rows) {
      const k = known.get(st.instanceId);
      addRow(k ? k.st : st);
    }
    pageInfo();
  }

  $('#next-page').addEventListener('click', () => { list.tokens.push(list.token); loadList(list.next); });
  $('#prev-page').addEventListener('click', () => { loadList(list.tokens.pop() || ''); });
  $('#first-page').addEventListener('click', () => { list.tokens = []; loadList(''); });

  function renderChips() {
    const box = $('#chips');
    const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
    let all = 0;
    for (const k of known.values()) {
      if (!matchesFilters(k.st, true)) continue;
      counts[k.st.runtimeStatus] = (counts[k.st.runtimeStatus] || 0) + 1;
      all++;
    }
    const chip = (status, label, n) => {
      const pressed = status ? list.statuses.has(status) : list.statuses.size === 0;
      const b = el('button', { type: 'button', class: 'chip' + (status ? ' s-' + status : ''), 'aria-pressed': String(pressed), 'data-status': status || '' },
        el('span', { text: label }), el('span', { class: 'count', text: String(n) }));
      return b;
    };
    const focused = document.activeElement && box.contains(document.activeElement) ? document.activeElement.dataset.status : null;
    box.textContent = '';
    box.append(chip('', 'All', all));
    for (const s of STATUSES) box.append(chip(s, s, counts[s]));
    if (focused !== null) {
      const again = box.querySelector(`[data-status="${focused}"]`);
      if (again) again.focus();
    }
  }
  const countsLater = debounce(renderChips, 150);

  $('#chips').addEventListener('click', (ev) => {
    const b = ev.target.closest('button.chip');
    if (!b) return;
    const s = b.dataset.status;
    if (!s) list.statuses.clear();
    else if (list.statuses.has(s)) list.statuses.delete(s);
    else list.statuses.add(s);
    filtersChanged();
  });

  const filters = $('#filters');
  function filtersChanged() {
    list.name = filters.elements.name.value.trim();
    list.prefix = filters.elements.prefix.value.trim();
    list.from = filters.elements.from.value;
    list.to = filters.elements.to.value;
    list.tokens = [];
    renderChips();
    startFleet(list.prefix);
    loadList('');
  }
  const filtersLater = debounce(filtersChanged, 300);
  filters.addEventListener('input', filtersLater);
  filters.addEventListener('submit', (ev) => { ev.preventDefault(); filtersChanged(); });
  filters.addEventListener('reset', () => { list.statuses.clear(); setTimeout(filtersChanged, 0); });

  // parseJSONField reads an optional JSON textarea: undefined when empty,
  // else the compact JSON text; throws with a message for invalid JSON.
  function parseJSONField(text) {
    const t = text.trim();
    if (!t) return undefined;
    try {
      return JSON.stringify(JSON.parse(t));
    } catch (e) {
      throw new Error('not valid JSON: ' + e.message);
    }
  }

  function fieldError(form, field, out, message) {
    out.textContent = message || '';
    for (const f of form.querySelectorAll('[aria-invalid]')) f.removeAttribute('aria-invalid');
    if (message && field) { field.setAttribute('aria-invalid', 'true'); field.focus(); }
  }

  // readForm checks a form of a name and an optional JSON value before
  // anything is sent: it returns {name, body}, or null after saying in out
  // what is wrong.
  function readForm(form, out, nameField, nameWhat, jsonField, jsonWhat) {
    const name = form.elements[nameField].value.trim();
    if (!name) { fieldError(form, form.elements[nameField], out, `Enter ${nameWhat}.`); return null; }
    let body;
    try { body = parseJSONField(form.elements[jsonField].value); } catch (e) {
      fieldError(form, form.elements[jsonField], out, `${jsonWhat} is ${e.message}`);
      return null;
    }
    fieldError(form, null, out, '');
    return { name, body };
  }

  $('#start-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.target;
    const out = $('#start-error');
    const v = readForm(form, out, 'name', 'the orchestrator’s name', 'input', 'Input');
    if (!v) return;
    const { name, body } = v;
    if (!can.start(name)) return fieldError(form, form.elements.name, out, `This key may not start ${name} (it needs the scope start:${name}).`);
    const id = form.elements.id.value.trim();
    const path = '/orchestrators/' + encodeURIComponent(name) + (id ? '/' + encodeURIComponent(id) : '');
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const res = await api('POST', path, { body });
      const started = await res.json();
      location.hash = '#/i/' + encodeURIComponent(started.id || started.instanceId);
    } catch (e) {
      fieldError(form, null, out, `Start failed (${e.status || 'network'}): ${e.message}`);
    } finally {
      button.disabled = false;
    }
  });

  // ---- one instance ----

  // view is what the page shows; rev is the KV revision of the status the
  // instance view shows.
  const view = { name: '', id: '', abort: null, st: null, rev: 0, tasks: null, history: null, busy: false, dirty: false };

  function setText(sel, text) { $(sel).textContent = text; }

  function renderStatus(st) {
    view.st = st;
    setText('#i-id', st.instanceId);
    const b = $('#i-badge');
    b.className = 'badge s-' + st.runtimeStatus;
    b.textContent = st.runtimeStatus;
    setText('#i-name', st.name);
    setText('#i-created', fmtTime(st.createdTime));
    setText('#i-updated', fmtTime(st.lastUpdatedTime));
    setText('#i-duration', fmtDuration(instanceDuration(st)));
    const custom = $('#i-custom');
    const text = st.customStatus === null ? '(none)' : pretty(st.customStatus);
    if (custom.textContent !== text) {
      custom.textContent = text;
      flash(custom);
    }
    const failed = st.runtimeStatus === 'Failed';
    setText('#h-output', failed ? 'Failure' : st.runtimeStatus === 'Terminated' ? 'Output (reason)' : 'Output');
    const out = $('#i-output');
    out.classList.toggle('failure', failed);
    out.textContent = st.output === null && !TERMINAL.has(st.runtimeStatus) ? '(not finished)' : pretty(st.output);
    if (st.input !== undefined) setText('#i-input', pretty(st.input));
    renderTrail();
    renderProgress();
    applyScopes();
  }

  function renderTrail() {
    const ol = $('#i-trail');
    const k = known.get(view.id);
    const trail = (k ? k.trail : []).filter((v) => v !== 'null');
    ol.textContent = '';
    trail.forEach((v, i) => {
      ol.append(el('li', { class: i === trail.length - 1 ? 'current mono' : 'mono', text: short(JSON.parse(v), 40) }));
    });
    ol.hidden = trail.length < 2;
  }

  function renderProgress() {
    const box = $('#i-progress');
    box.textContent = '';
    const tasks = view.tasks ? view.tasks.tasks : [];
    const calls = new Map(); // activity id -> its latest attempt
    for (const t of tasks) if (t.kind === 'activity') calls.set(t.id, t);
    const done = [...calls.values()].filter((t) => t.state === 'completed').length;
    if (calls.size) {
      box.append(el('p', {}, el('label', { for: 'i-act-progress', text: `Activities: ${done} of ${calls.size} done ` }),
        el('progress', { id: 'i-act-progress', max: String(calls.size), value: String(done) })));
    }
    const p = view.st && view.st.activityProgress;
    if (p) {
      const v = p.progress;
      const line = el('p', {}, el('strong', { text: p.name }), el('span', { text: ` (task ${p.taskId}) reports ` }), el('code', { text: short(v, 200) }));
      if (v && typeof v === 'object' && typeof v.done === 'number' && typeof v.of === 'number' && v.of > 0) {
        line.append(' ', el('progress', { max: String(v.of), value: String(v.done), 'aria-label': `${p.name} progress` }));
      }
      box.append(line);
    }
    if (!box.childNodes.length) box.append(el('p', { class: 'muted', text: 'No activity yet.' }));
  }

  function renderPending() {
    const ul = $('#i-pending');
    ul.textContent = '';
    const now = Date.now();
    for (const t of (view.tasks ? view.tasks.tasks : [])) {
      if (t.state !== 'pending') continue;
      const since = 'since ' + fmtTime(t.scheduledTime);
      if (t.kind === 'activity') {
        ul.append(el('li', {}, el('span', { class: 'kind', text: 'activity' }), ' ', el('strong', { text: t.name }),
          el('span', { text: ` · attempt ${t.attempt} · ${since}` })));
      } else if (t.kind === 'timer') {
        const due = parseTime(t.fireAt);
        ul.append(el('li', {}, el('span', { class: 'kind', text: 'timer' }),
          el('span', { text: ` due ${fmtTime(t.fireAt)} (${due - now > 0 ? 'in ' + fmtDuration(due - now) : 'now'})`, class: 'countdown', 'data-due': t.fireAt })));
      } else if (t.kind === 'subOrchestration') {
        ul.append(el('li', {}, el('span', { class: 'kind', text: 'sub-orchestration' }), ' ', el('strong', { text: t.name }), ' ',
          instanceLink(t.instanceId), el('span', { text: ' · ' + since })));
      }
    }
    if (!ul.childNodes.length) {
      const finished = view.st && TERMINAL.has(view.st.runtimeStatus);
      ul.append(el('li', { class: 'muted', text: finished ? 'Nothing: the instance has finished.' : 'Nothing scheduled (it may be waiting for an event).' }));
    }
  }

  function renderLinks() {
    const t = view.tasks;
    const parent = t && t.parent;
    $('#i-parent-row').hidden = !parent;
    const pd = $('#i-parent');
    pd.textContent = '';
    if (parent) pd.append(instanceLink(parent.instanceId), el('span', { text: parent.name ? ' (' + parent.name + ')' : '' }));
    const kids = t ? t.tasks.filter((x) => x.kind === 'subOrchestration') : [];
    $('#i-children-row').hidden = kids.length === 0;
    const cd = $('#i-children');
    cd.textContent = '';
    kids.forEach((k, i) => {
      if (i) cd.append(', ');
      cd.append(instanceLink(k.instanceId), el('span', { text: ` (${k.name}, ${k.state})` }));
    });
  }

  function renderTimeline() {
    const box = $('#i-timeline');
    box.textContent = '';
    const tasks = view.tasks ? view.tasks.tasks : [];
    const st = view.st;
    if (!tasks.length || !st) {
      box.append(el('p', { class: 'muted', text: 'Nothing scheduled yet.' }));
      return;
    }
    const now = Date.now();
    // Status times are whole seconds, task times milliseconds: start at the
    // first task when the creation time is its second, truncated.
    const created = parseTime(st.createdTime).getTime();
    const first = Math.min(...tasks.map((t) => parseTime(t.scheduledTime).getTime()));
    const t0 = first >= created && first - created < 1000 ? first : created;
    // What an execution's end abandoned ends with its last result.
    const finished = TERMINAL.has(st.runtimeStatus) ?
      Math.max(parseTime(st.lastUpdatedTime).getTime(), ...tasks.filter((t) => t.endTime).map((t) => parseTime(t.endTime).getTime())) : null;
    const ends = tasks.map((t) => {
      if (t.endTime) return parseTime(t.endTime).getTime();
      if (t.state === 'abandoned') return Math.max(finished || now, parseTime(t.scheduledTime).getTime());
      if (t.kind === 'timer' && t.fireAt) return Math.max(parseTime(t.fireAt).getTime(), now);
      return now;
    });
    let t1 = Math.max(...ends, parseTime(st.lastUpdatedTime).getTime());
    if (t1 - t0 < 1000) t1 = t0 + 1000;
    const pct = (ms) => ((ms - t0) / (t1 - t0)) * 100;
    const axis = el('div', { class: 'tl-axis' }, el('span', { text: fmtTime(new Date(t0).toISOString()) }), el('span', { text: '+' + fmtDuration(t1 - t0) }));
    box.append(axis);
    const labels = { activity: 'activity', timer: 'timer', subOrchestration: 'sub-orchestration', event: 'event' };
    tasks.forEach((t, i) => {
      const start = parseTime(t.scheduledTime).getTime();
      const end = ends[i];
      let name = t.kind === 'timer' ? 'due ' + fmtTime(t.fireAt) : t.name;
      if (t.kind === 'activity' && t.attempt > 1) name += ` · attempt ${t.attempt}`;
      if (t.rewound) name += ' · rewound';
      const what = t.kind === 'event' ? 'arrived' : t.state;
      const span = fmtDuration(end - start, true);
      const desc = `${labels[t.kind]} ${name}: ${what}` +
        `, ${t.kind === 'event' ? 'waited' : 'took'} ${t.state === 'pending' ? span + ' so far' : span}` + (t.failure ? ' — ' + t.failure : '');
      const bar = el('div', { class: `tl-bar k-${t.kind} t-${t.state}`, title: desc });
      bar.style.left = pct(start) + '%';
      bar.style.width = Math.max(pct(end) - pct(start), 0.6) + '%';
      const label = el('div', { class: 'tl-label' }, el('span', { class: 'kind', text: labels[t.kind] }), ' ', el('span', { text: name }));
      const row = el('div', { class: 'tl-row', role: 'listitem' }, label, el('div', { class: 'tl-track' }, bar), el('span', { class: 'sr-only', text: desc }));
      if (t.kind === 'subOrchestration' && t.instanceId) label.append(' ', instanceLink(t.instanceId, '↗'));
      box.append(row);
    });
    box.setAttribute('role', 'list');
  }

  function historyDetails(e) {
    const parts = [];
    if (e.OrchestrationStatus) parts.push(e.OrchestrationStatus);
    if (e.FireAt) parts.push('due ' + fmtTime(e.FireAt));
    if (e.Input !== undefined) parts.push('input ' + short(e.Input, 120));
    if (e.Result !== undefined) parts.push('result ' + short(e.Result, 120));
    if (e.Reason || e.Details) parts.push([e.Reason, e.Details].filter(Boolean).join(': '));
    return parts.join(' · ');
  }

  function renderHistory() {
    const body = $('#i-history tbody');
    body.textContent = '';
    for (const e of (view.history || [])) {
      const failed = e.EventType.endsWith('Failed') || !!e.Reason;
      body.append(el('tr', { class: failed ? 'failed' : '' },
        el('td', { text: fmtTime(e.Timestamp) }),
        el('td', { text: e.EventType }),
        el('td', { text: e.FunctionName || e.Name || '' }),
        el('td', { text: e.ScheduledTime ? fmtTime(e.ScheduledTime) : '' }),
        el('td', { class: 'mono', text: historyDetails(e) }),
      ));
    }
  }

  // refreshDetails reads the history and the tasks again (after a status
  // change): one read at a time, and one more if a change came meanwhile.
  async function refreshDetails() {
    if (view.busy) { view.dirty = true; return; }
    view.busy = true;
    const id = view.id;
    try {
      do {
        view.dirty = false;
        const p = '/instances/' + encodeURIComponent(id);
        const [h, t] = await Promise.all([
          api('GET', p + '?showHistory=true&showHistoryOutput=true').then((r) => r.json()),
          api('GET', p + '/tasks').then((r) => r.json()),
        ]);
        if (view.id !== id) return;
        view.history = h.historyEvents || [];
        view.tasks = t;
        if (h.input !== undefined && view.st) setText('#i-input', pretty(h.input));
        renderHistory();
        renderTimeline();
        renderPending();
        renderProgress();
        renderLinks();
      } while (view.dirty && view.id === id);
    } catch (e) {
      if (view.id === id && e.status !== 404) show($('#i-msg'), 'Reading the history failed: ' + e.message, 'error');
    } finally {
      view.busy = false;
    }
  }

  function watchInstance() {
    if (view.abort) view.abort.abort();
    view.abort = new AbortController();
    const id = view.id;
    stream('instance', '/instances/' + encodeURIComponent(id) + '/watch', (type, data, rev) => {
      if (view.id !== id) return;
      let v;
      try { v = JSON.parse(data); } catch (_) { return; }
      if (type === 'deleted') show($('#i-msg'), 'This instance was purged.', 'ok');
      else if (type === 'status') onStatus(v, rev);
    }, view.abort.signal, (e) => {
      if (view.id !== id) return;
      show($('#i-msg'), e.status === 404 ? 'No instance with this id (it may have been purged).' :
        e.status === 403 ? 'This key may not read this instance: ' + e.message : 'Watching failed: ' + e.message, 'error');
    });
  }

  // ---- actions ----

  const ACTIONS = {
    terminate: { title: 'Terminate this instance?', text: 'It stops at once; the reason becomes its output.', reason: true, path: 'terminate' },
    suspend: { title: 'Suspend this instance?', text: 'Nothing runs until it is resumed; what reaches it meanwhile is kept.', reason: true, path: 'suspend' },
    resume: { title: 'Resume this instance?', text: 'It goes on from where it was suspended.', reason: true, path: 'resume' },
    restart: { title: 'Restart this instance?', text: 'A new run starts with the same input.', same: true, path: 'restart' },
    rewind: { title: 'Rewind this instance?', text: 'A failed instance retries what failed and keeps what succeeded.', reason: true, path: 'rewind' },
    purge: { title: 'Purge this instance?', text: 'Its status and history are deleted for good. Only finished instances can be purged.', method: 'DELETE' },
  };

  // confirm asks in a dialog; it resolves to null when cancelled, else to
  // the reason and the same-id choice.
  function confirmDialog(a) {
    return new Promise((resolve) => {
      const dlg = $('#confirm-dialog');
      setText('#confirm-title', a.title);
      setText('#confirm-text', a.text);
      $('#confirm-reason-row').hidden = !a.reason;
      $('#confirm-same-row').hidden = !a.same;
      $('#confirm-reason').value = '';
      $('#confirm-same').checked = false;
      const form = $('#confirm-form');
      const done = (v) => {
        form.removeEventListener('submit', ok);
        $('#confirm-cancel').removeEventListener('click', cancel);
        dlg.removeEventListener('cancel', cancel);
        if (dlg.open) dlg.close();
        resolve(v);
      };
      const ok = (ev) => { ev.preventDefault(); done({ reason: $('#confirm-reason').value, same: $('#confirm-same').checked }); };
      const cancel = (ev) => { if (ev) ev.preventDefault(); done(null); };
      form.addEventListener('submit', ok);
      $('#confirm-cancel').addEventListener('click', cancel);
      dlg.addEventListener('cancel', cancel);
      dlg.showModal();
      (a.reason ? $('#confirm-reason') : $('#confirm-ok')).focus();
    });
  }

  $('#i-actions').addEventListener('click', async (ev) => {
    const b = ev.target.closest('button[data-action]');
    if (!b || !view.id) return;
    const name = b.dataset.action;
    const a = ACTIONS[name];
    const answer = await confirmDialog(a);
    if (!answer) return;
    const id = view.id;
    let path = '/instances/' + encodeURIComponent(id) + (a.path ? '/' + a.path : '');
    const q = new URLSearchParams();
    if (a.reason && answer.reason) q.set('reason', answer.reason);
    if (a.same && answer.same) q.set('restartWithNewInstanceId', 'false');
    if ([...q].length) path += '?' + q;
    show($('#i-msg'), name + '…');
    try {
      const res = await api(a.method || 'POST', path);
      if (name === 'purge') {
        show($('#list-msg'), `Instance ${id} purged.`, 'ok');
        location.hash = '#/';
        return;
      }
      if (name === 'restart') {
        const started = await res.json();
        location.hash = '#/i/' + encodeURIComponent(started.id);
        return;
      }
      show($('#i-msg'), `${name}: accepted (${res.status}).`, 'ok');
      watchInstance(); // a finished instance's stream has ended; rewind or resume brings it back
    } catch (e) {
      show($('#i-msg'), `${name} failed (${e.status || 'network'}): ${e.message}`, 'error');
      if (e.status === 403) b.hidden = true;
    }
  });

  $('#raise-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.target;
    const out = $('#raise-error');
    const v = readForm(form, out, 'event', 'the event’s name', 'data', 'Data');
    if (!v) return;
    const { name: event, body } = v;
    const answer = await confirmDialog({ title: `Raise ${event}?`, text: `The instance receives the event ${event} with data ${body === undefined ? 'null' : short(body, 200)}.` });
    if (!answer) return;
    try {
      await api('POST', '/instances/' + encodeURIComponent(view.id) + '/raiseEvent/' + encodeURIComponent(event), { body });
      show($('#i-msg'), `Event ${event} raised.`, 'ok');
    } catch (e) {
      fieldError(form, null, out, `Raising ${event} failed (${e.status || 'network'}): ${e.message}`);
    }
  });

  // applyScopes hides what the key may not do.
  function applyScopes() {
    $('#start-box').hidden = !can.startSome();
    for (const b of $('#i-actions').querySelectorAll('button')) b.hidden = !can.admin();
    $('#i-actions').hidden = !can.admin();
    $('#raise-box').hidden = !(view.st ? can.raise(view.st.name) : can.admin());
  }

  // ---- routing ----

  function showList() {
    view.name = 'list';
    view.id = '';
    if (view.abort) { view.abort.abort(); view.abort = null; setConn('instance', true); }
    $('#instance-view').hidden = true;
    $('#list-view').hidden = false;
    document.title = 'Instances · jetflow';
    filtersChanged();
  }

  function showInstance(id) {
    Object.assign(view, { name: 'instance', id, st: null, rev: 0, tasks: null, history: null });
    $('#list-view').hidden = true;
    $('#instance-view').hidden = false;
    document.title = id + ' · jetflow';
    show($('#i-msg'), '');
    for (const s of ['#i-id', '#i-name', '#i-created', '#i-updated', '#i-duration', '#i-custom', '#i-output', '#i-input']) setText(s, '');
    setText('#i-id', id);
    $('#i-badge').textContent = '';
    for (const s of ['#i-history tbody', '#i-timeline', '#i-pending', '#i-progress', '#i-trail']) $(s).textContent = '';
    $('#raise-form').reset();
    $('#main').focus();
    watchInstance();
  }

  function route() {
    const m = location.hash.match(/^#\/i\/(.+)$/);
    if (m) showInstance(decodeURIComponent(m[1]));
    else showList();
  }

  // Durations and countdowns move with the clock (no request is made).
  setInterval(() => {
    if (view.name === 'list') {
      for (const { tr, st } of list.rows.values()) {
        if (!TERMINAL.has(st.runtimeStatus)) tr.querySelector('.dur').textContent = fmtDuration(instanceDuration(st));
      }
    } else if (view.st) {
      setText('#i-duration', fmtDuration(instanceDuration(view.st)));
      for (const c of $('#i-pending').querySelectorAll('.countdown')) {
        const left = parseTime(c.dataset.due) - Date.now();
        c.textContent = ` due ${fmtTime(c.dataset.due)} (${left > 0 ? 'in ' + fmtDuration(left) : 'now'})`;
      }
    }
  }, 1000);

  async function boot() {
    try {
      await loadWho();
    } catch (e) {
      show($('#list-msg'), 'The API cannot be reached: ' + e.message, 'error');
      $('#list-view').hidden = false;
      return;
    }
    startFleet(list.prefix);
    window.addEventListener('hashchange', route);
    route();
  }
  boot();
})();
