// logbox search page.
//
// Security rule for this file: everything that comes from the API (log lines,
// hosts, sources, field names, error messages) is untrusted. It is put into
// the page only as text (textContent, createTextNode, attribute values via
// setAttribute on non-URL attributes) and never parsed as HTML. Control
// characters are made visible (ESC shows as ␛) so terminal escapes are inert.
//
// Layout of this file: small helpers, the API client, URL state, then one
// section per part of the page (Discover with its histogram, field sidebar,
// surrounding lines and live tail; Sources; Status), then start-up. Styles
// are set only through classes or element.style (the CSP forbids style
// attributes in markup); SVG is built with createElementNS.
'use strict';

// ---------------------------------------------------------------------------
// Helpers

const $ = (id) => document.getElementById(id);

// el creates an element with an optional class and text content.
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function show(node, visible) {
  node.hidden = !visible;
}

// setText replaces the content of node with plain text and shows or hides it.
function setText(node, text) {
  node.textContent = printable(text);
  show(node, Boolean(text));
}

// Control characters in untrusted text are shown as small labelled marks
// (ESC, NUL, U+202E ...) so that a log line can neither style the page nor
// the terminal it is copied to (ANSI escapes), nor hide or reorder text (bidi
// overrides). Tab and newline stay as they are; the line block keeps them.
// The marks are built as elements, not with a symbol font, because the
// Control Pictures glyphs (␛) are missing from many systems' fonts.
const CONTROL_CHARS = /[\u0000-\u0008\u000b-\u001f\u007f\u202a-\u202e\u2066-\u2069]/g;
const C0_NAMES = ['NUL', 'SOH', 'STX', 'ETX', 'EOT', 'ENQ', 'ACK', 'BEL', 'BS', 'HT', 'LF', 'VT', 'FF', 'CR', 'SO', 'SI',
  'DLE', 'DC1', 'DC2', 'DC3', 'DC4', 'NAK', 'SYN', 'ETB', 'CAN', 'EM', 'SUB', 'ESC', 'FS', 'GS', 'RS', 'US'];

function codePoint(c) {
  return 'U+' + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
}

function controlName(c) {
  const n = c.charCodeAt(0);
  if (n < 0x20) return C0_NAMES[n];
  if (n === 0x7f) return 'DEL';
  return codePoint(c);
}

// appendText appends value to parent as text, with control characters as
// marks, and returns parent.
function appendText(parent, value) {
  const s = value === undefined || value === null ? '' : String(value);
  let last = 0;
  for (const m of s.matchAll(CONTROL_CHARS)) {
    if (m.index > last) parent.append(document.createTextNode(s.slice(last, m.index)));
    const mark = el('span', 'ctl', controlName(m[0]));
    mark.title = `control character ${controlName(m[0])} (${codePoint(m[0])})`;
    parent.append(mark);
    last = m.index + m[0].length;
  }
  if (last < s.length) parent.append(document.createTextNode(s.slice(last)));
  return parent;
}

// textEl creates an element holding untrusted text (see appendText).
function textEl(tag, className, value) {
  return appendText(el(tag, className), value);
}

// printable is appendText for places that take a plain string, such as
// titles and labels.
function printable(value) {
  if (value === undefined || value === null) return '';
  return String(value).replace(CONTROL_CHARS, (c) => `<${controlName(c)}>`);
}

// formatTs renders an RFC 3339 timestamp in local time with milliseconds.
function formatTs(ts) {
  const d = new Date(ts);
  if (ts === undefined || ts === null || Number.isNaN(d.getTime())) return printable(ts);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

const LEVEL_CLASSES = {
  trace: 'debug', debug: 'debug',
  info: 'info', notice: 'info',
  warn: 'warn', warning: 'warn',
  error: 'error', err: 'error',
  fatal: 'fatal', critical: 'fatal', crit: 'fatal', panic: 'fatal', alert: 'fatal', emerg: 'fatal', emergency: 'fatal',
};

// levelClass maps a level to one of a fixed set of classes; the level text
// itself never becomes a class name.
function levelClass(level) {
  return 'level level-' + (LEVEL_CLASSES[String(level).toLowerCase()] || 'other');
}

function plural(n, one, many) {
  return `${Number(n).toLocaleString()} ${n === 1 ? one : many}`;
}

// ---------------------------------------------------------------------------
// API client

// APIError is a refused or failed API call: message is the server's
// {"error"}, status its HTTP status (0 when logbox could not be reached),
// and position, for a query the server could not read, where in the query
// (1-based byte offset; 0 when the answer names none), and field, for a
// refused object, the field the server named ("" when none).
class APIError extends Error {
  constructor(message, status = 0, position = 0, field = '') {
    super(message);
    this.status = status;
    this.position = position;
    this.field = field;
  }
}

// api calls the logbox HTTP API on the same origin. It resolves to the
// decoded JSON body (null for 204) and rejects with an APIError that carries
// the server's {"error": "..."} message.
async function api(method, path, { params, body, signal } = {}) {
  let url = path;
  if (params) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== '') qs.set(k, v);
    }
    const s = qs.toString();
    if (s) url += '?' + s;
  }
  const init = { method, signal, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(url, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new APIError('Cannot reach logbox: ' + err.message);
  }
  if (!resp.ok) {
    const { message, position, field } = await refusalOf(resp);
    throw new APIError(message, resp.status, position, field);
  }
  const text = resp.status === 204 ? '' : await resp.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new APIError(`Unexpected response from ${path} (not JSON)`);
  }
}

// refusalOf reads what a refused request says: the server's
// {"error": "...", "position": N, "field": "..."}, or else its status.
async function refusalOf(resp) {
  let data = null;
  try {
    data = JSON.parse(await resp.text());
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    data = null;
  }
  const message = data && typeof data.error === 'string' && data.error ? data.error : `${resp.status} ${resp.statusText}`;
  const position = data && Number.isInteger(data.position) && data.position > 0 ? data.position : 0;
  const field = data && typeof data.field === 'string' ? data.field : '';
  return { message, position, field };
}

// errorOf is refusalOf's message.
async function errorOf(resp) {
  return (await refusalOf(resp)).message;
}

// ---------------------------------------------------------------------------
// More helpers: numbers, times, highlighting

const SVG_NS = 'http://www.w3.org/2000/svg';

function svgEl(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

function fmtNum(n) {
  const v = Number(n);
  return Number.isFinite(v) ? v.toLocaleString() : '—';
}

function fmtRate(n) {
  const v = Number(n);
  if (!Number.isFinite(v)) return '—';
  return (v >= 100 ? Math.round(v).toLocaleString() : v.toFixed(1)) + '/s';
}

function fmtBytes(n) {
  let v = Number(n);
  if (!Number.isFinite(v)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? String(v) : v.toFixed(1)) + ' ' + units[i];
}

const pad2 = (n) => String(n).padStart(2, '0');

// shortDuration drops the zero units Go puts at the end of a duration
// ("5m0s" is "5m", "1h0m0s" is "1h").
function shortDuration(d) {
  return printable(d).replace(/([hm])0s$/, '$1').replace(/h0m$/, 'h');
}

// clockTime renders a time (RFC 3339, a Date or ms since the epoch) as
// local time of day, with the date when it is not today.
function clockTime(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return printable(ts);
  const hms = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  if (d.toDateString() === new Date().toDateString()) return hms;
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${hms}`;
}

// ago says how long ago an RFC 3339 time was, roughly.
function ago(ts) {
  const s = Math.max(0, Math.round((Date.now() - new Date(ts).getTime()) / 1000));
  if (!Number.isFinite(s)) return '';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// localInput formats a Date for a datetime-local input (local time, seconds).
function localInput(d) {
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}T` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

const REL_UNITS = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 };

// resolveTime turns a from/to value (now, now-15m, RFC 3339) into a Date,
// or null for an open end or a value it cannot read.
function resolveTime(v, now = Date.now()) {
  if (!v) return null;
  const m = /^now(?:([+-])(\d+)([smhdw]))?$/.exec(v);
  if (m) {
    if (!m[1]) return new Date(now);
    const d = Number(m[2]) * REL_UNITS[m[3]];
    return new Date(m[1] === '-' ? now - d : now + d);
  }
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

// queryTerms lists the plain words and phrases of a query that a line can
// show: not the excluded ones (-x), not field queries (host:x).
function queryTerms(q) {
  const out = [];
  const re = /([+-]?)(?:([A-Za-z_][\w.]*):)?("(?:[^"\\]|\\.)*"?|\S+)/g;
  for (const m of String(q || '').matchAll(re)) {
    if (m[1] === '-' || m[2]) continue;
    let v = m[3];
    if (v.startsWith('"')) {
      v = v.replace(/^"|"$/g, '').replace(/\\(.)/g, '$1').trim();
      if (v) out.push({ text: v, phrase: true });
      continue;
    }
    v = v.replace(/[~^][\d.]*$/, '').replace(/\\(.)/g, '$1');
    if (v.startsWith('/')) continue; // a regexp query: not worth guessing
    if (v.replace(/[*?]/g, '')) out.push({ text: v, phrase: false });
  }
  return out;
}

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// highlighter returns a RegExp matching the query's terms in a line
// (case-insensitive), or null when there is nothing to mark.
function highlighter(q) {
  const parts = [];
  for (const t of queryTerms(q)) {
    let p;
    if (t.phrase) p = t.text.split(/\s+/).map(escapeRegExp).join('\\s+');
    else p = t.text.split(/([*?])/).map((s) => (s === '*' ? '\\S*?' : s === '?' ? '\\S' : escapeRegExp(s))).join('');
    if (new RegExp('^(?:' + p + ')$', 'i').test('')) continue;
    parts.push(p);
  }
  if (!parts.length) return null;
  parts.sort((a, b) => b.length - a.length);
  try {
    return new RegExp(parts.join('|'), 'gi');
  } catch {
    return null;
  }
}

// appendHighlighted appends text to parent, wrapping what re matches in
// <mark> elements. Everything stays text (see appendText).
function appendHighlighted(parent, value, re) {
  const s = value === undefined || value === null ? '' : String(value);
  if (!re) return appendText(parent, s);
  let last = 0;
  for (const m of s.matchAll(re)) {
    if (!m[0]) continue;
    if (m.index > last) appendText(parent, s.slice(last, m.index));
    parent.append(appendText(el('mark', 'hl'), m[0]));
    last = m.index + m[0].length;
  }
  if (last < s.length) appendText(parent, s.slice(last));
  return parent;
}

// ---------------------------------------------------------------------------
// Query errors: a query the server could not read (a 400 that names a
// position) is shown under the query box, with a copy of the query in
// which the place is marked; the next query that runs clears it.

// charIndex turns pos, a 1-based byte position in s as UTF-8 (the API's
// "position"), into an index into the JavaScript string s. A position
// inside a character stands for that character.
function charIndex(s, pos) {
  const bytes = new TextEncoder().encode(s);
  let n = Math.max(0, Math.min(bytes.length, pos - 1));
  while (n > 0 && n < bytes.length && (bytes[n] & 0xc0) === 0x80) n--;
  return new TextDecoder().decode(bytes.subarray(0, n)).length;
}

// charLength is the length (1 or 2 UTF-16 units) of the character at i in
// s, or 0 past its end.
function charLength(s, i) {
  if (i >= s.length) return 0;
  return s.codePointAt(i) > 0xffff ? 2 : 1;
}

const QUERY_ERROR_CONTEXT = 40; // characters shown either side of the mark

const queryError = {
  q: null,   // the query the error is about
  index: 0,  // where in it, as a string index
  length: 0, // how many units the mark covers (0: at the end)

  // show puts err (an APIError with a position) about query q under the
  // query box.
  show(q, err) {
    const i = charIndex(q, err.position);
    const len = charLength(q, i);
    this.q = q;
    this.index = i;
    this.length = len;
    $('query-error-msg').textContent = printable(err.message);
    const where = $('query-error-where');
    const from = Math.max(0, i - QUERY_ERROR_CONTEXT);
    const to = Math.min(q.length, i + len + QUERY_ERROR_CONTEXT);
    where.replaceChildren();
    if (from > 0) where.append(el('span', 'query-error-cut', '…'));
    appendText(where, q.slice(from, i));
    const at = el('mark', len ? 'query-error-at' : 'query-error-at at-end');
    appendText(at, len ? q.slice(i, i + len) : ' ');
    at.title = `position ${err.position}`;
    where.append(at);
    appendText(where, q.slice(i + len, to));
    if (to < q.length) where.append(el('span', 'query-error-cut', '…'));
    where.setAttribute('aria-label', printable(`position ${err.position} of the query, marked; select it in the query box`));
    where.dataset.position = String(err.position);
    show($('query-error-viz'), activeView === 'discover' && hasPipes(q));
    show($('query-error'), true);
  },

  clear() {
    this.q = null;
    $('query-error-msg').textContent = '';
    $('query-error-where').replaceChildren();
    show($('query-error'), false);
  },

  // select selects the marked place in the query box, if the box still
  // holds the query the error is about.
  select() {
    const input = $('q');
    if (this.q === null || input.value.trim() !== this.q) return;
    const lead = input.value.length - input.value.trimStart().length;
    input.focus();
    input.setSelectionRange(lead + this.index, lead + this.index + Math.max(1, this.length));
  },
};

// showQueryError shows err about query q: under the query box when the
// server named a place in the query, else in fallback (an error element).
function showQueryError(q, err, fallback) {
  if (err instanceof APIError && err.position > 0) {
    setText(fallback, '');
    queryError.show(q, err);
    return;
  }
  queryError.clear();
  setText(fallback, err.message);
}

// ---------------------------------------------------------------------------
// URL state: the view, the query, the time range and live tail live in the
// address so that a link is shareable and back/forward work.

const views = ['discover', 'visualize', 'alerts', 'sources', 'status'];
const CHARTS = ['bar', 'line', 'table'];
let activeView = '';

function readState() {
  const p = new URLSearchParams(location.search);
  const tab = p.get('tab');
  return {
    view: views.includes(tab) ? tab : 'discover',
    q: p.get('q') || '',
    from: p.get('from') || '',
    to: p.get('to') || '',
    live: p.get('live') === '1',
    chart: CHARTS.includes(p.get('chart')) ? p.get('chart') : '',
    mode: p.get('show') === 'patterns' ? 'patterns' : 'docs',
    newp: p.get('new') === '1',
    rule: p.get('rule') || '',
  };
}

function stateURL(state) {
  const p = new URLSearchParams();
  if (state.view !== 'discover') p.set('tab', state.view);
  if (state.q) p.set('q', state.q);
  if (state.from) p.set('from', state.from);
  if (state.to) p.set('to', state.to);
  if (state.live) p.set('live', '1');
  if (state.view === 'visualize' && state.chart) p.set('chart', state.chart);
  if (state.view === 'discover' && state.mode === 'patterns') {
    p.set('show', 'patterns');
    if (state.newp) p.set('new', '1');
  }
  if (state.view === 'alerts' && state.rule) p.set('rule', state.rule);
  const s = p.toString();
  return location.pathname + (s ? '?' + s : '');
}

function pushState(state) {
  const url = stateURL(state);
  if (url !== location.pathname + location.search) history.pushState(null, '', url);
}

function replaceState(state) {
  history.replaceState(null, '', stateURL(state));
}

// rangeFromInputs is the time range the inputs select: a preset, or the
// custom range set by the date inputs or the chart.
function rangeFromInputs() {
  const v = $('range').value;
  if (v === 'custom') return { from: discover.from, to: discover.to };
  return { from: v, to: '' };
}

function currentState(view) {
  return {
    view, q: $('q').value.trim(), ...rangeFromInputs(), live: tail.on, chart: viz.chart,
    mode: discover.mode, newp: patterns.newOn, rule: alertsView.selected || '',
  };
}

// ---------------------------------------------------------------------------
// Query history (this browser only)

const HISTORY_KEY = 'logbox.queryHistory';

function loadHistory() {
  try {
    const list = JSON.parse(localStorage.getItem(HISTORY_KEY) || '[]');
    return Array.isArray(list) ? list.filter((s) => typeof s === 'string').slice(0, 20) : [];
  } catch {
    return [];
  }
}

function renderHistory() {
  const opts = loadHistory().map((q) => {
    const o = document.createElement('option');
    o.value = q;
    return o;
  });
  $('q-history').replaceChildren(...opts);
}

function addHistory(q) {
  if (!q) return;
  const list = [q, ...loadHistory().filter((s) => s !== q)].slice(0, 20);
  try {
    localStorage.setItem(HISTORY_KEY, JSON.stringify(list));
  } catch {
    // Storage full or disabled: history is a convenience.
  }
  renderHistory();
}

// ---------------------------------------------------------------------------
// Views

function showView(view) {
  activeView = view;
  for (const v of views) {
    show($('view-' + v), v === view);
    const tab = $('tab-' + v);
    tab.setAttribute('aria-selected', String(v === view));
    tab.classList.toggle('active', v === view);
  }
  document.title = { discover: 'logbox', visualize: 'Visualize · logbox', alerts: 'Alerts · logbox', sources: 'Sources · logbox', status: 'Status · logbox' }[view];
  show($('query-area'), view === 'discover' || view === 'visualize');
  $('query-area').classList.toggle('visualize', view === 'visualize');
  show($('query-error-viz'), view === 'discover' && queryError.q !== null && hasPipes(queryError.q));
  if (view === 'sources') sources.start();
  else sources.stop();
  if (view === 'status') statusView.start();
  else statusView.stop();
  if (view === 'alerts') alertsView.start();
  else alertsView.stop();
  if (view !== 'discover') contextPanel.close();
  partialAnswers.render();
}

// ---------------------------------------------------------------------------
// Discover

const PAGE_SIZE = 50;
const MAX_SHOWN = 5000; // live tail trims the oldest lines beyond this

const discover = {
  controller: null, // AbortController of the search in flight
  params: null,     // parameters of the search shown, reused by the next page
  cursor: '',
  shown: 0,
  total: 0,
  from: '',
  to: '',
  ids: new Set(),   // hits shown, so that live tail does not repeat one
  highlight: null,  // RegExp of the shown query's terms
  loading: false,
  mode: 'docs',     // what the results column shows: 'docs' (the lines) or 'patterns'
};

const PRESETS = new Set(['now-15m', 'now-1h', 'now-24h', 'now-7d', 'now-30d', '']);

function rangeLabel(from, to) {
  const f = (v) => {
    const d = /^now/.test(v) ? null : resolveTime(v);
    return d ? formatTs(d.toISOString()).replace(/\.\d{3}$/, '') : (v || 'start');
  };
  return `${f(from)} → ${to ? f(to) : 'now'}`;
}

// setRange shows a time range in the inputs: a preset in the select, a
// relative value from a shared link as an extra option, anything else as
// the custom range.
function setRange(from, to) {
  discover.from = from;
  discover.to = to;
  const select = $('range');
  const custom = $('range-custom');
  if (!to && (PRESETS.has(from) || /^now-\d+[smhdw]$/.test(from))) {
    if (![...select.options].some((o) => o.value === from)) {
      const opt = el('option', 'custom', printable(`Since ${from}`));
      opt.value = from;
      select.insertBefore(opt, select.firstChild);
    }
    select.value = from;
    custom.textContent = 'Custom range';
  } else {
    custom.textContent = printable('Custom: ' + rangeLabel(from, to));
    select.value = 'custom';
  }
  showAbsolute();
}

// showAbsolute fills the date inputs with the range's resolved ends.
function showAbsolute() {
  const f = resolveTime(discover.from);
  const t = resolveTime(discover.to);
  $('abs-from').value = f ? localInput(f) : '';
  $('abs-to').value = t ? localInput(t) : (f && /^now/.test(discover.from) ? localInput(new Date()) : '');
}

// runRange applies a new time range (from the chart or the date inputs).
function runRange(from, to) {
  setRange(from, to);
  pushState(currentState(activeView));
  runQuery();
}

function hitFieldRow(table, name, value, filterField) {
  const tr = el('tr');
  tr.append(textEl('th', 'detail-name', name));
  const td = el('td', 'detail-value');
  appendText(td, value);
  tr.append(td);
  const act = el('td', 'detail-actions');
  if (filterField && value !== '') {
    for (const neg of [false, true]) {
      const b = el('button', neg ? 'filter-out' : 'filter-in', neg ? '−' : '+');
      b.type = 'button';
      b.title = `${neg ? 'Filter out' : 'Filter for'} ${printable(name)}: ${printable(value)}`;
      b.setAttribute('aria-label', b.title);
      b.addEventListener('click', () => addFilter(filterField, value, neg));
      act.append(b);
    }
  }
  tr.append(act);
  table.append(tr);
}

function renderDetails(hit) {
  const box = el('div', 'hit-details');
  const table = el('table', 'detail-table');
  const tbody = el('tbody');
  hitFieldRow(tbody, 'ts', hit.ts ?? '');
  hitFieldRow(tbody, 'host', hit.host ?? '', 'host');
  hitFieldRow(tbody, 'source', hit.source ?? '', 'source');
  if (hit.level) hitFieldRow(tbody, 'level', hit.level, 'level');
  hitFieldRow(tbody, 'offset', hit.offset ?? '');
  if (hit.file_id) hitFieldRow(tbody, 'file_id', hit.file_id);
  for (const f of (Array.isArray(hit.flags) ? hit.flags : [])) hitFieldRow(tbody, 'flags', f, 'flags');
  if (hit.fields && typeof hit.fields === 'object') {
    for (const [k, v] of Object.entries(hit.fields).sort()) {
      hitFieldRow(tbody, 'fields.' + k, typeof v === 'string' ? v : JSON.stringify(v), 'fields.' + k);
    }
  }
  hitFieldRow(tbody, 'id', hit.id ?? '');
  table.append(tbody);
  const actions = el('div', 'detail-buttons');
  const ctx = el('button', 'context-open', 'Surrounding lines');
  ctx.type = 'button';
  ctx.addEventListener('click', () => contextPanel.open(hit));
  actions.append(ctx);
  box.append(actions, table);
  return box;
}

function toggleHit(li, hit, open) {
  const btn = li.querySelector('.expand');
  const isOpen = li.classList.contains('expanded');
  if (open === undefined) open = !isOpen;
  if (open === isOpen) return;
  li.classList.toggle('expanded', open);
  btn.setAttribute('aria-expanded', String(open));
  btn.textContent = open ? '▾' : '▸';
  if (open) li.append(renderDetails(hit));
  else li.querySelector('.hit-details')?.remove();
}

function renderHit(hit) {
  const li = el('li', 'hit');
  if (typeof hit.id === 'string') li.dataset.id = hit.id;
  const meta = el('div', 'meta');

  const expand = el('button', 'expand', '▸');
  expand.type = 'button';
  expand.setAttribute('aria-expanded', 'false');
  expand.setAttribute('aria-label', 'Show all fields');
  expand.addEventListener('click', (e) => {
    e.stopPropagation();
    toggleHit(li, hit);
  });
  meta.append(expand);
  meta.addEventListener('click', () => toggleHit(li, hit));

  const time = el('time', 'ts', formatTs(hit.ts));
  if (typeof hit.ts === 'string') {
    time.setAttribute('datetime', hit.ts);
    time.title = hit.ts;
  }
  meta.append(time);

  if (hit.level) meta.append(textEl('span', levelClass(hit.level), hit.level));
  if (hit.host) {
    const host = textEl('span', 'host', hit.host);
    host.title = 'host';
    meta.append(host);
  }
  if (hit.source) {
    const source = textEl('span', 'source', hit.source);
    source.title = 'source';
    meta.append(source);
  }
  for (const f of (Array.isArray(hit.flags) ? hit.flags : [])) meta.append(textEl('span', 'flag', f));
  li.append(meta);

  li.append(appendHighlighted(el('pre', 'line'), hit.line, discover.highlight));

  if (hit.fields && typeof hit.fields === 'object') {
    const entries = Object.entries(hit.fields);
    if (entries.length) {
      const fields = el('div', 'fields');
      for (const [k, v] of entries) {
        const f = el('span', 'field');
        f.append(textEl('span', 'field-name', k), document.createTextNode('='),
          textEl('span', 'field-value', typeof v === 'string' ? v : JSON.stringify(v)));
        fields.append(f);
      }
      li.append(fields);
    }
  }
  return li;
}

function renderSummary() {
  // A common term is counted up to a bound (the API says "gte"); the
  // histogram above counts every line.
  $('hit-count').textContent = discover.totalGte
    ? `${Number(discover.total).toLocaleString()}+ hits`
    : plural(discover.total, 'hit', 'hits');
  const more = Boolean(discover.cursor);
  show($('load-more'), more);
  $('search-status').textContent = more ? `showing ${discover.shown.toLocaleString()}` : '';
}

// showEmptyState explains an empty result, and points to the Sources tab
// when nothing is collected yet. params identifies the search it belongs to.
async function showEmptyState(params) {
  show($('empty-state'), true);
  show($('empty-nosources'), false);
  try {
    const data = await api('GET', '/api/sources');
    const list = (data && Array.isArray(data.sources)) ? data.sources : [];
    if (discover.params === params) show($('empty-nosources'), list.length === 0);
  } catch {
    // The hint is optional; the search result is already shown.
  }
}

function updateExportLinks(params) {
  for (const format of ['ndjson', 'csv']) {
    const qs = new URLSearchParams();
    for (const k of ['q', 'from', 'to']) if (params[k]) qs.set(k, params[k]);
    qs.set('format', format);
    $('export-' + format).setAttribute('href', '/api/export?' + qs.toString());
  }
}

// search runs a new search (append false) or fetches the next page of the
// current one (append true). A newer call cancels an older one in flight.
async function search(append) {
  if (discover.controller) discover.controller.abort();
  const controller = new AbortController();
  discover.controller = controller;
  discover.loading = true;

  let params;
  if (append) {
    params = { ...discover.params, cursor: discover.cursor };
  } else {
    const range = rangeFromInputs();
    discover.from = range.from;
    discover.to = range.to;
    params = { q: $('q').value.trim(), from: range.from, to: range.to, limit: PAGE_SIZE };
    discover.params = params;
    discover.highlight = highlighter(params.q);
    updateExportLinks(params);
    partialAnswers.forget('search', 'histogram', 'facets');
    discover.histogramDone = histogram.load(params);
    facets.load(params, null);
    tail.queryChanged(params.q);
    if (discover.mode === 'patterns') patterns.load(params);
    showAbsolute();
    show($('zoom-out'), $('range').value === 'custom' && Boolean(resolveTime(discover.from)));
  }

  const results = $('results');
  results.setAttribute('aria-busy', 'true');
  results.classList.add('loading');
  $('search-status').textContent = append ? 'Loading more…' : 'Searching…';
  $('load-more').disabled = true;
  setText($('search-error'), '');
  if (!append) show($('empty-state'), false);

  try {
    const data = await api('GET', '/api/search', { params, signal: controller.signal });
    partialAnswers.note('search', data);
    const hits = (data && Array.isArray(data.hits)) ? data.hits : [];
    const frag = document.createDocumentFragment();
    if (!append) discover.ids = new Set();
    let added = 0;
    for (const hit of hits) {
      if (discover.ids.has(hit.id)) continue;
      discover.ids.add(hit.id);
      frag.append(renderHit(hit));
      added++;
    }
    if (append) {
      results.append(frag);
      discover.shown += added;
    } else {
      results.replaceChildren(frag);
      discover.shown = added;
      facets.load(params, hits);
    }
    discover.total = Number.isFinite(data && data.total) ? data.total : discover.shown;
    discover.totalGte = Boolean(data && data.total_relation === 'gte');
    discover.cursor = (data && typeof data.cursor === 'string') ? data.cursor : '';
    if (!append) queryError.clear();
    renderSummary();
    if (!append && hits.length === 0) showEmptyState(params);
  } catch (err) {
    if (err.name === 'AbortError') return;
    if (!append) {
      partialAnswers.note('search', null);
      results.replaceChildren();
      discover.ids = new Set();
      discover.cursor = '';
      discover.shown = 0;
      $('hit-count').textContent = '';
      show($('load-more'), false);
    }
    $('search-status').textContent = '';
    if (append) setText($('search-error'), err.message);
    else showQueryError(params.q, err, $('search-error'));
  } finally {
    if (discover.controller === controller) {
      discover.controller = null;
      discover.loading = false;
      results.removeAttribute('aria-busy');
      results.classList.remove('loading');
      $('load-more').disabled = false;
      // A short page may leave the sentinel in view: keep filling.
      if (discover.cursor) requestAnimationFrame(() => sentinelCheck());
    }
  }
}

// Infinite scroll: the next page loads when the sentinel below the results
// comes near the window. Load more stays as the fallback.
// The observer only says "look now"; the position is measured here, so a
// stale observation from before the page grew never loads a page.
function sentinelCheck() {
  const near = $('scroll-sentinel').getBoundingClientRect().top < window.innerHeight + 300;
  if (near && discover.cursor && !discover.loading && activeView === 'discover' && discover.mode === 'docs' && discover.shown > 0) {
    search(true);
  }
}

// addFilter adds +field:"value" (or -field:"value") to the query, replacing
// the same filter of the other sign, and runs it.
function addFilter(field, value, negate) {
  const quoted = '"' + String(value).replace(/[\\"]/g, '\\$&') + '"';
  const term = `${field}:${quoted}`;
  const words = $('q').value.trim().split(/\s+(?=(?:[^"]*"[^"]*")*[^"]*$)/).filter(Boolean);
  const kept = words.filter((w) => w !== '+' + term && w !== '-' + term);
  kept.push((negate ? '-' : '+') + term);
  $('q').value = kept.join(' ');
  pushState(currentState('discover'));
  search(false);
}

// ---------------------------------------------------------------------------
// The fleet of indexers (issue 16): several indexers split the Kafka
// partitions, and an answer the live indexers cannot give in full says so
// ("partial": true, "missing": [{partition, from, to}]). Offsets are
// Kafka's: a range [from, to) of one partition ("topic/partition"); the
// page shows its first and last offset.

// offsetRange renders the Kafka offsets [from, to) as "first–last", or
// "first" for one offset.
function offsetRange(from, to) {
  const f = Number(from);
  const t = Number(to);
  if (!Number.isFinite(f) || !Number.isFinite(t)) return `${printable(from)}–${printable(to)}`;
  if (t - f <= 1) return String(f);
  return `${f}–${t - 1}`;
}

// missingRanges returns the well-formed entries of an answer's "missing".
function missingRanges(list) {
  if (!Array.isArray(list)) return [];
  return list.filter((m) => m && typeof m === 'object' && typeof m.partition === 'string' &&
    Number.isFinite(Number(m.from)) && Number.isFinite(Number(m.to)));
}

// comparePart orders partition names ("topic/3") by topic, then number.
function comparePart(a, b) {
  const split = (p) => {
    const s = String(p);
    const i = s.lastIndexOf('/');
    return i < 0 ? [s, -1] : [s.slice(0, i), Number(s.slice(i + 1))];
  };
  const [ta, na] = split(a);
  const [tb, nb] = split(b);
  if (ta !== tb) return ta < tb ? -1 : 1;
  if (na !== nb) return (Number.isFinite(na) ? na : -1) - (Number.isFinite(nb) ? nb : -1);
  return 0;
}

// coverageRanges reads one partition's coverage: [[from, to], …] (or
// {from, to} objects), the offsets [from, to) an indexer holds.
function coverageRanges(list) {
  if (!Array.isArray(list)) return [];
  const out = [];
  for (const r of list) {
    const from = Array.isArray(r) ? r[0] : r && r.from;
    const to = Array.isArray(r) ? r[1] : r && r.to;
    if (Number.isFinite(Number(from)) && Number.isFinite(Number(to))) out.push([Number(from), Number(to)]);
  }
  return out;
}

const PARTIAL_SHOWN = 3; // missing ranges the banner names; the rest are counted

// partialAnswers keeps which of the answers shown are partial and shows
// the banner over Discover and Visualize while one of those its view
// shows is. Kinds: 'search', 'histogram', 'facets:FIELD', 'patterns'
// (Discover; patterns only while listed) and 'stats' (Visualize).
const partialAnswers = {
  got: new Map(), // kind → its missing ranges (an empty list: partial, not saying where)
  whole: false,   // the last status said the live indexers now hold every partition in full

  // fleetNow takes the fleet of each /api/status: once it is complete,
  // a partial answer shown can be asked again.
  fleetNow(f) {
    const whole = Boolean(f && typeof f === 'object' && f.complete === true);
    if (whole === this.whole) return;
    this.whole = whole;
    this.render();
  },

  // note records the answer data of kind (null: none, or a failed one).
  // A facets answer's "missing" is its count of lines without the field:
  // its ranges are "missing_ranges".
  note(kind, data) {
    if (data && typeof data === 'object' && data.partial === true) {
      this.got.set(kind, missingRanges(Array.isArray(data.missing) ? data.missing : data.missing_ranges));
    } else this.got.delete(kind);
    this.render();
  },

  // forget drops the kinds named, and 'facets' every 'facets:FIELD'
  // (their answers are about to be replaced).
  forget(...prefixes) {
    for (const k of [...this.got.keys()]) if (prefixes.some((p) => k === p || k.startsWith(p + ':'))) this.got.delete(k);
    this.render();
  },

  // shownKind says whether kind belongs to what the active view shows.
  shownKind(kind) {
    if (activeView === 'visualize') return kind === 'stats';
    if (activeView !== 'discover') return false;
    if (kind === 'patterns') return discover.mode === 'patterns';
    return kind === 'search' || kind === 'histogram' || kind.startsWith('facets:');
  },

  render() {
    const b = $('partial-banner');
    if (!b) return;
    let partial = false;
    const seen = new Set();
    const ranges = [];
    for (const [kind, list] of this.got) {
      if (!this.shownKind(kind)) continue;
      partial = true;
      for (const m of list) {
        const key = `${m.partition}\u0000${m.from}\u0000${m.to}`;
        if (seen.has(key)) continue;
        seen.add(key);
        ranges.push(m);
      }
    }
    if (!partial) {
      b.replaceChildren();
      delete b.dataset.missing;
      show(b, false);
      return;
    }
    ranges.sort((x, y) => comparePart(x.partition, y.partition) || Number(x.from) - Number(y.from));
    b.dataset.missing = String(ranges.length);
    const title = el('strong', 'partial-title', 'Partial answer: ');
    const what = el('span', 'partial-what');
    if (!ranges.length) {
      what.append(document.createTextNode('some Kafka offsets are held by no live indexer.'));
    } else {
      what.append(document.createTextNode('no live indexer holds '));
      ranges.slice(0, PARTIAL_SHOWN).forEach((m, i) => {
        if (i > 0) what.append(document.createTextNode(i === Math.min(ranges.length, PARTIAL_SHOWN) - 1 && ranges.length <= PARTIAL_SHOWN ? ' and ' : ', '));
        const r = el('span', 'partial-range');
        r.append(textEl('code', 'partial-part', m.partition), document.createTextNode(' offsets ' + offsetRange(m.from, m.to)));
        what.append(r);
      });
      if (ranges.length > PARTIAL_SHOWN) what.append(document.createTextNode(` and ${fmtNum(ranges.length - PARTIAL_SHOWN)} more`));
      what.append(document.createTextNode('.'));
    }
    const effect = el('span', 'partial-effect', ' Lines from there are missing from the results and counts, until an indexer that holds them is back or has read them again from Kafka (see Status).');
    b.replaceChildren(title, what, effect);
    if (this.whole) {
      const again = el('button', 'link partial-again', 'The indexers hold every partition now: ask again');
      again.type = 'button';
      again.id = 'partial-again';
      again.addEventListener('click', () => runQuery());
      b.append(document.createTextNode(' '), again);
    }
    show(b, true);
  },
};

// ---------------------------------------------------------------------------
// Histogram: SVG bars over the range; drag to zoom in, click a bar to narrow.

const histogram = {
  controller: null,
  data: null,
  height: 120,
  pad: { left: 44, right: 8, top: 8, bottom: 20 },

  params: null, // the search params of data

  async load(params) {
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.params = null;
    const chart = $('histogram-chart');
    chart.classList.add('loading');
    $('histogram-label').textContent = 'Counting…';
    const buckets = Math.max(10, Math.min(120, Math.floor((chart.clientWidth || 800) / 12)));
    try {
      const data = await api('GET', '/api/histogram', {
        params: { q: params.q, from: params.from, to: params.to, buckets }, signal: controller.signal,
      });
      this.data = data && Array.isArray(data.buckets) ? data : { buckets: [] };
      this.params = params;
      partialAnswers.note('histogram', data);
      this.render();
    } catch (err) {
      if (err.name === 'AbortError') return;
      this.data = null;
      partialAnswers.note('histogram', null);
      chart.replaceChildren();
      $('histogram-label').textContent = err.position ? 'No chart: the query has an error (see above).' : 'No chart: ' + printable(err.message);
    } finally {
      if (this.controller === controller) {
        this.controller = null;
        chart.classList.remove('loading');
      }
    }
  },

  // span is the chart's time domain in ms: [first bucket, last bucket + interval).
  span() {
    const b = this.data.buckets;
    const iv = (this.data.interval_seconds || 1) * 1000;
    return [Date.parse(b[0].ts), Date.parse(b[b.length - 1].ts) + iv, iv];
  },

  render() {
    const chart = $('histogram-chart');
    const d = this.data;
    if (!d || !d.buckets.length) {
      chart.replaceChildren();
      $('histogram-label').textContent = 'No lines in this range.';
      return;
    }
    const W = Math.max(200, chart.clientWidth || 800);
    const H = this.height;
    const { left, right, top, bottom } = this.pad;
    const pw = W - left - right;
    const ph = H - top - bottom;
    const n = d.buckets.length;
    const max = Math.max(1, ...d.buckets.map((b) => b.count));
    const bw = pw / n;
    const svg = svgEl('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img' });
    svg.setAttribute('aria-label', `${plural(d.total, 'matching line', 'matching lines')}, ${n} bars of ${d.interval || '?'}`);
    svg.append(svgEl('line', { x1: left, x2: W - right, y1: top + ph + 0.5, y2: top + ph + 0.5, class: 'axis' }));
    const ymax = svgEl('text', { x: left - 6, y: top + 8, class: 'tick', 'text-anchor': 'end' });
    ymax.textContent = fmtNum(max);
    const y0 = svgEl('text', { x: left - 6, y: top + ph, class: 'tick', 'text-anchor': 'end' });
    y0.textContent = '0';
    svg.append(ymax, y0);
    const [t0, , iv] = this.span();
    d.buckets.forEach((b, i) => {
      const h = b.count ? Math.max(1, (b.count / max) * ph) : 0;
      const r = svgEl('rect', {
        x: left + i * bw + (bw > 4 ? 1 : 0), y: top + ph - h, width: Math.max(1, bw - (bw > 4 ? 2 : 0)), height: h,
        class: 'bar', 'data-i': i, 'data-count': b.count,
      });
      const title = svgEl('title');
      title.textContent = `${formatTs(b.ts)} · ${plural(b.count, 'line', 'lines')}`;
      r.append(title);
      svg.append(r);
    });
    // About six time labels, on bucket edges.
    const every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(pw / 110))));
    for (let i = 0; i < n; i += every) {
      const t = new Date(t0 + i * iv);
      const label = svgEl('text', { x: left + i * bw, y: H - 5, class: 'tick' });
      const hm = `${pad2(t.getHours())}:${pad2(t.getMinutes())}`;
      label.textContent = iv >= 86400e3 ? `${t.getMonth() + 1}-${pad2(t.getDate())}` :
        iv < 60e3 ? `${hm}:${pad2(t.getSeconds())}` : hm;
      svg.append(label);
    }
    const brush = svgEl('rect', { x: 0, y: top, width: 0, height: ph, class: 'brush' });
    brush.setAttribute('visibility', 'hidden');
    svg.append(brush);
    this.attach(svg, brush, left, pw);
    chart.replaceChildren(svg);
    $('histogram-label').textContent = `${plural(d.total, 'line', 'lines')} · ${d.interval || ''} per bar · drag to zoom, click a bar to narrow`;
  },

  attach(svg, brush, left, pw) {
    let x0 = null;
    // The SVG may be drawn scaled (narrower window, before a redraw).
    const xOf = (e) => {
      const r = svg.getBoundingClientRect();
      const scale = r.width / Number(svg.getAttribute('width')) || 1;
      return Math.min(pw, Math.max(0, (e.clientX - r.left) / scale - left));
    };
    svg.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      x0 = xOf(e);
      svg.setPointerCapture(e.pointerId);
      e.preventDefault();
    });
    svg.addEventListener('pointermove', (e) => {
      if (x0 === null) return;
      const x1 = xOf(e);
      brush.setAttribute('x', left + Math.min(x0, x1));
      brush.setAttribute('width', Math.abs(x1 - x0));
      brush.setAttribute('visibility', 'visible');
    });
    const end = (e, cancel) => {
      if (x0 === null) return;
      const x1 = xOf(e);
      const start = x0;
      x0 = null;
      brush.setAttribute('visibility', 'hidden');
      if (cancel) return;
      const [t0, t1, iv] = this.span();
      const at = (x) => t0 + (x / pw) * (t1 - t0);
      if (Math.abs(x1 - start) < 4) {
        const i = Math.floor((x1 / pw) * this.data.buckets.length);
        const b = this.data.buckets[Math.min(i, this.data.buckets.length - 1)];
        if (!b) return;
        const bs = Date.parse(b.ts);
        runRange(new Date(bs).toISOString(), new Date(bs + iv).toISOString());
        return;
      }
      runRange(new Date(at(Math.min(start, x1))).toISOString(), new Date(at(Math.max(start, x1))).toISOString());
    };
    svg.addEventListener('pointerup', (e) => end(e, false));
    svg.addEventListener('pointercancel', (e) => end(e, true));
  },

  // zoomOut doubles the range around its middle, never past now.
  zoomOut() {
    const f = resolveTime(discover.from);
    const t = resolveTime(discover.to) || new Date();
    if (!f) return;
    const span = t - f;
    const now = Date.now();
    const nf = new Date(f.getTime() - span / 2);
    const nt = t.getTime() + span / 2;
    runRange(nf.toISOString(), nt >= now ? '' : new Date(nt).toISOString());
  },
};

// ---------------------------------------------------------------------------
// Field sidebar: top values per field, click to filter in or out.

const FACET_FIELDS = ['level', 'host', 'source', 'flags'];

const facets = {
  controller: null,
  params: null,
  fixedBox: null, // the fixed fields' sections
  extraBox: null, // the fields.* sections, filled once hits are known

  // load fetches the fixed fields at once and, when the first page of
  // hits is known, the fields.* names seen in it.
  async load(params, hits) {
    let fields;
    if (!hits) {
      if (this.controller) this.controller.abort();
      this.controller = new AbortController();
      this.params = params;
      fields = FACET_FIELDS;
      this.fixedBox = el('div', 'facets-fixed');
      this.fixedBox.append(el('p', 'status', 'Loading fields…'));
      this.extraBox = el('div', 'facets-extra');
      $('facets').replaceChildren(this.fixedBox, this.extraBox);
    } else {
      if (this.params !== params) return;
      const seen = new Set();
      for (const h of hits) for (const k of Object.keys(h.fields || {})) seen.add('fields.' + k);
      fields = [...seen].sort().slice(0, 8);
      if (!fields.length) return;
    }
    const controller = this.controller;
    const results = await Promise.allSettled(fields.map((field) => api('GET', '/api/facets', {
      params: { q: params.q, from: params.from, to: params.to, field, size: 6 }, signal: controller.signal,
    })));
    if (controller.signal.aborted || this.params !== params) return;
    const box = hits ? this.extraBox : this.fixedBox;
    const sections = [];
    results.forEach((r, i) => {
      partialAnswers.note('facets:' + fields[i], r.status === 'fulfilled' ? r.value : null);
      if (r.status === 'fulfilled' && r.value) sections.push(this.renderField(fields[i], r.value));
    });
    if (!hits && !sections.length) {
      const why = results.find((r) => r.status === 'rejected');
      const msg = !why ? 'No fields.' : why.reason.position ? 'No fields: the query has an error (see above).' : 'No fields: ' + printable(why.reason.message);
      sections.push(el('p', 'status', msg));
    }
    box.replaceChildren(...sections);
  },

  renderField(field, data) {
    const sec = el('section', 'facet');
    sec.dataset.field = field;
    const values = Array.isArray(data.values) ? data.values : [];
    const head = el('div', 'facet-head');
    head.append(textEl('h3', 'facet-name', field));
    // flags are not a field stats can group by.
    const vizBtn = el('button', 'link facet-viz', 'visualize');
    vizBtn.hidden = field === 'flags';
    vizBtn.type = 'button';
    vizBtn.title = `Count the lines by ${printable(field)} in Visualize`;
    vizBtn.addEventListener('click', () => visualizeField(field, 'count'));
    head.append(vizBtn);
    // A field whose top values are all numbers: its average and 99th
    // percentile over time.
    if (values.length && values.every((v) => /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(String(v.value)))) {
      const avgBtn = el('button', 'link facet-viz-avg', 'avg & p99');
      avgBtn.type = 'button';
      avgBtn.title = `The average and 99th percentile of ${printable(field)} over time, in Visualize`;
      avgBtn.addEventListener('click', () => visualizeField(field, 'avg'));
      head.append(avgBtn);
    }
    sec.append(head);
    const total = Math.max(1, Number(data.total) || 0);
    if (!values.length) sec.append(el('p', 'facet-none', 'no values'));
    const ul = el('ul', 'facet-values');
    for (const v of values) {
      const li = el('li', 'facet-value');
      li.dataset.value = String(v.value);
      const inBtn = el('button', 'facet-in');
      inBtn.type = 'button';
      inBtn.title = `Filter for ${printable(field)}: ${printable(v.value)}`;
      inBtn.append(textEl('span', 'facet-label', v.value === '' ? '(empty)' : v.value), el('span', 'facet-count', fmtNum(v.count)));
      const bar = el('span', 'facet-bar');
      bar.style.width = Math.min(100, (v.count / total) * 100).toFixed(1) + '%';
      inBtn.append(bar);
      inBtn.addEventListener('click', () => addFilter(field, v.value, false));
      const outBtn = el('button', 'facet-out', '−');
      outBtn.type = 'button';
      outBtn.title = `Filter out ${printable(field)}: ${printable(v.value)}`;
      outBtn.setAttribute('aria-label', outBtn.title);
      outBtn.addEventListener('click', () => addFilter(field, v.value, true));
      li.append(inBtn, outBtn);
      ul.append(li);
    }
    sec.append(ul);
    const extra = [];
    if (data.other) extra.push(`${fmtNum(data.other)} other`);
    if (data.missing) extra.push(`${fmtNum(data.missing)} without`);
    if (extra.length) sec.append(el('p', 'facet-extra', extra.join(' · ')));
    return sec;
  },
};

// ---------------------------------------------------------------------------
// Surrounding lines: the exact file context of one hit.

const contextPanel = {
  hit: null,
  before: 20,
  after: 20,
  controller: null,

  open(hit) {
    this.hit = hit;
    this.before = 20;
    this.after = 20;
    show($('context-panel'), true);
    $('context-file').replaceChildren(textEl('span', 'host', hit.host), document.createTextNode(' '),
      textEl('span', 'source', hit.source));
    $('context-lines').replaceChildren(el('li', 'status', 'Loading…'));
    this.load(true);
    $('context-close').focus();
  },

  close() {
    if (this.controller) this.controller.abort();
    this.hit = null;
    show($('context-panel'), false);
  },

  isOpen() {
    return !$('context-panel').hidden;
  },

  async load(scrollToAnchor) {
    if (!this.hit) return;
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller;
    setText($('context-error'), '');
    try {
      const data = await api('GET', '/api/context', {
        params: { id: this.hit.id, before: this.before, after: this.after }, signal: controller.signal,
      });
      const hits = data && Array.isArray(data.hits) ? data.hits : [];
      const list = $('context-lines');
      const items = hits.map((h, i) => {
        const li = el('li', 'context-line');
        if (h.anchor || i === data.anchor_index) li.classList.add('anchor');
        li.dataset.offset = String(h.offset);
        li.append(el('span', 'context-offset', fmtNum(h.offset)));
        li.append(appendHighlighted(el('pre', 'line'), h.line, discover.highlight));
        return li;
      });
      list.replaceChildren(...items);
      $('context-earlier').disabled = this.before >= 500 || data.anchor_index < this.before;
      $('context-later').disabled = this.after >= 500 || hits.length - 1 - data.anchor_index < this.after;
      if (scrollToAnchor) list.querySelector('.anchor')?.scrollIntoView({ block: 'center' });
    } catch (err) {
      if (err.name === 'AbortError') return;
      $('context-lines').replaceChildren();
      setText($('context-error'), err.message);
    } finally {
      if (this.controller === controller) this.controller = null;
    }
  },

  more(which) {
    if (which === 'before') this.before = Math.min(500, this.before + 50);
    else this.after = Math.min(500, this.after + 50);
    this.load(false);
  },
};

// ---------------------------------------------------------------------------
// Live tail: new matching lines stream in over Server-Sent Events and are
// put on top. Scrolling away from the top pauses the display (not the
// stream); the lines that arrive meanwhile wait in a bounded buffer.

const MAX_PENDING = 1000;

const tail = {
  on: false,
  es: null,
  retryTimer: 0,
  q: null,
  paused: false,
  pending: [],
  dropped: 0,

  setOn(on) {
    this.on = on;
    const btn = $('live-toggle');
    btn.setAttribute('aria-pressed', String(on));
    btn.classList.toggle('on', on);
    btn.textContent = on ? '● Live' : 'Live';
    if (on) this.connect($('q').value.trim());
    else this.disconnect();
  },

  toggle() {
    this.setOn(!this.on);
    replaceState(currentState('discover'));
  },

  queryChanged(q) {
    this.pending = [];
    this.dropped = 0;
    this.paused = window.scrollY > 40;
    this.banner();
    if (this.on && q !== this.q) this.connect(q);
  },

  connect(q) {
    this.disconnect();
    this.q = q;
    this.paused = window.scrollY > 40;
    const qs = new URLSearchParams();
    if (q) qs.set('q', q);
    const url = '/api/tail' + (q ? '?' + qs.toString() : '');
    const es = new EventSource(url);
    this.es = es;
    this.status('connecting…');
    es.onopen = () => this.status('live: new lines appear on top');
    es.onmessage = (e) => {
      let hit;
      try {
        hit = JSON.parse(e.data);
      } catch {
        return;
      }
      this.receive(hit);
    };
    es.addEventListener('gap', (e) => this.status('some lines were skipped: ' + printable(this.message(e))));
    es.addEventListener('overflow', () => this.status('fell behind; reconnecting…'));
    es.addEventListener('end', (e) => {
      this.status('tail ended: ' + printable(this.message(e)));
      es.close();
    });
    es.addEventListener('error', (e) => {
      if (e.data) {
        this.status('tail failed: ' + printable(this.message(e)), true);
        es.close();
      } else if (es.readyState === EventSource.CLOSED) {
        this.whyClosed(es, url);
      } else {
        this.status('reconnecting…');
      }
    });
  },

  // whyClosed finds out why the server refused the stream: an EventSource
  // does not tell the status or body of a refused request, so the same
  // request is made once more with fetch. A 429 (too many live tails) is
  // shown with the server's words and retried after its Retry-After; a
  // stream that would open now is reopened.
  async whyClosed(es, url) {
    if (this.es !== es) return;
    this.status('tail closed by the server');
    const controller = new AbortController();
    let msg = '';
    let retry = 0;
    try {
      const resp = await fetch(url, { signal: controller.signal, headers: { Accept: 'text/event-stream' } });
      if (resp.ok) {
        controller.abort();
        if (this.es === es && this.on) this.connect(this.q);
        return;
      }
      msg = await errorOf(resp);
      if (resp.status === 429) retry = Math.min(60, Math.max(1, Number(resp.headers.get('Retry-After')) || 5));
    } catch (err) {
      msg = err.message;
    }
    if (this.es !== es || !this.on) return;
    this.status('live tail refused: ' + printable(msg) + (retry ? ` — retrying in ${retry} s` : ''), true);
    if (retry) {
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => {
        if (this.on && this.es === es) this.connect(this.q);
      }, retry * 1000);
    }
  },

  message(e) {
    try {
      const d = JSON.parse(e.data);
      return d.message || d.error || '';
    } catch {
      return '';
    }
  },

  disconnect() {
    clearTimeout(this.retryTimer);
    if (this.es) this.es.close();
    this.es = null;
    this.q = null;
    this.pending = [];
    this.dropped = 0;
    this.paused = false;
    this.banner();
    show($('tail-status'), false);
  },

  status(text, failed) {
    const s = $('tail-status');
    s.textContent = text;
    s.classList.toggle('failed', Boolean(failed));
    show(s, this.on);
  },

  receive(hit) {
    if (!hit || discover.ids.has(hit.id)) return;
    if (this.paused) {
      this.pending.push(hit);
      if (this.pending.length > MAX_PENDING) {
        this.pending.shift();
        this.dropped++;
      }
      this.banner();
      return;
    }
    this.prepend([hit]);
  },

  prepend(hits) {
    const results = $('results');
    for (const hit of hits) {
      if (discover.ids.has(hit.id)) continue;
      discover.ids.add(hit.id);
      const li = renderHit(hit);
      li.classList.add('new');
      results.prepend(li);
      discover.shown++;
      discover.total++;
    }
    while (results.children.length > MAX_SHOWN) {
      results.lastElementChild.remove();
      discover.cursor = '';
    }
    show($('empty-state'), false);
    renderSummary();
  },

  banner() {
    const b = $('tail-banner');
    if (!this.on || !this.paused) {
      show(b, false);
      return;
    }
    const n = this.pending.length + this.dropped;
    b.textContent = `paused — ${plural(n, 'new line', 'new lines')}, click to resume`;
    show(b, true);
  },

  resume() {
    window.scrollTo(0, 0);
    this.paused = false;
    if (this.dropped) {
      search(false);
      return;
    }
    const hits = this.pending;
    this.pending = [];
    this.prepend(hits);
    this.banner();
  },

  onScroll() {
    if (!this.on) return;
    const top = window.scrollY <= 40;
    if (!top && !this.paused) {
      this.paused = true;
      this.banner();
    } else if (top && this.paused) {
      this.resume();
    }
  },
};

// ---------------------------------------------------------------------------
// Patterns: Discover's other way to show the lines of a query and range,
// grouped into templates by /api/patterns (numbers, ids and such masked as
// <*>). Each template has its exact count, its share of the total, a
// sparkline over the range and, with "new since the previous period" on,
// a badge when no line of the same length of time right before the range
// fits it. Clicking a template puts its query in the box and lists its
// lines. The counts shown always add up to the total: templates the
// answer leaves out are summed in one "other" row.

const PATTERN_BUCKETS = 40;
const PATTERN_LIMIT = 500;
const PLACEHOLDER = '<*>';

// appendPattern appends a template as text, each <*> as a styled
// placeholder whose text is still <*> (so the text copies as the template).
function appendPattern(parent, pattern) {
  String(pattern ?? '').split(PLACEHOLDER).forEach((part, i) => {
    if (i) {
      const ph = el('span', 'ph', PLACEHOLDER);
      ph.title = 'a masked value: a number, id, address, quoted string …';
      parent.append(ph);
    }
    appendText(parent, part);
  });
  return parent;
}

// fmtShare writes count as a share of total: 12.3%, <0.1%.
function fmtShare(count, total) {
  if (!(total > 0)) return '—';
  const pct = (count * 100) / total;
  if (pct > 0 && pct < 0.1) return '<0.1%';
  return (pct >= 99.95 || pct === 0 ? pct.toFixed(0) : pct.toFixed(1)) + '%';
}

// compareRange is the same length of time right before from..to, as the
// API takes it (relative when the range is, so both ends move with now),
// or null for a range open at the start (all time), which has no "before".
function compareRange(from, to, now = Date.now()) {
  const m = /^now-(\d+)([smhdw])$/.exec(from || '');
  if (m && !to) return { from: `now-${Number(m[1]) * 2}${m[2]}`, to: from };
  const f = resolveTime(from, now);
  if (!f) return null;
  const t = resolveTime(to, now) || new Date(now);
  const len = t.getTime() - f.getTime();
  if (!(len > 0)) return null;
  return { from: new Date(f.getTime() - len).toISOString(), to: f.toISOString() };
}

// sparkline draws counts as a small SVG line over an area, scaled to its
// own peak; label says what it shows.
function sparkline(counts, label) {
  const W = 120;
  const H = 26;
  const n = counts.length;
  const svg = svgEl('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: 'spark', role: 'img' });
  svg.setAttribute('aria-label', label);
  const title = svgEl('title');
  title.textContent = label;
  svg.append(title);
  if (!n) return svg;
  const max = Math.max(1, ...counts);
  const x = (i) => (n === 1 ? W / 2 : 1 + (i * (W - 2)) / (n - 1));
  const y = (v) => H - 1 - (v / max) * (H - 4);
  const pts = counts.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  if (n === 1) {
    // One bucket: a level line across.
    pts.unshift(`1,${y(counts[0]).toFixed(1)}`);
    pts.push(`${W - 1},${y(counts[0]).toFixed(1)}`);
  }
  const first = pts[0].split(',')[0];
  const last = pts[pts.length - 1].split(',')[0];
  svg.append(svgEl('path', { d: `M${first},${H - 1} L${pts.join(' L')} L${last},${H - 1} Z`, class: 'spark-area' }));
  svg.append(svgEl('polyline', { points: pts.join(' '), class: 'spark-line', 'data-n': n }));
  return svg;
}

const patterns = {
  controller: null,
  key: '',      // the request of the answer shown (or in flight)
  data: null,
  newOn: false, // "new since the previous period"
  open: new Set(), // templates whose example is shown

  // requestOf is the /api/patterns request for a search's params. The
  // sparklines need a closed range: an open end is now, and all time is
  // the histogram's span (from its first bucket to the end of its last)
  // once it is known.
  requestOf(params) {
    const req = { q: params.q, from: params.from, to: params.to || 'now', buckets: PATTERN_BUCKETS, limit: PATTERN_LIMIT };
    const h = histogram.params === params && histogram.data ? histogram.data.buckets : [];
    if (!params.from && h.length) {
      req.from = new Date(Date.parse(h[0].ts)).toISOString();
      if (!params.to) {
        const end = Date.parse(h[h.length - 1].ts) + (histogram.data.interval_seconds || 0) * 1000;
        req.to = end > Date.now() ? new Date(end).toISOString() : 'now';
      }
    }
    const cmp = this.newOn ? compareRange(params.from, params.to) : null;
    if (cmp) {
      req.compare_from = cmp.from;
      req.compare_to = cmp.to;
    }
    return req;
  },

  // ensure loads the patterns of params unless they are shown already.
  ensure(params) {
    if (!params) return;
    if (JSON.stringify(this.requestOf(params)) !== this.key) this.load(params);
  },

  async load(params) {
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller;
    $('patterns').classList.add('loading');
    // All time: wait for the histogram's span (see requestOf).
    if (!params.from && histogram.params !== params && discover.histogramDone) {
      await discover.histogramDone;
      if (this.controller !== controller) return;
    }
    const req = this.requestOf(params);
    this.key = JSON.stringify(req);
    const canCompare = Boolean(compareRange(params.from, params.to));
    const toggle = $('patterns-new');
    toggle.disabled = !canCompare;
    toggle.closest('label').title = canCompare
      ? 'Mark the templates that did not occur in the same length of time right before the range'
      : 'All time has no period before it: pick a time range to compare';
    $('patterns-status').textContent = 'Grouping lines…';
    setText($('patterns-error'), '');
    try {
      const data = await api('GET', '/api/patterns', { params: req, signal: controller.signal });
      this.data = data && typeof data === 'object' ? data : { total: 0, patterns: [] };
      partialAnswers.note('patterns', data);
      this.shownNew = Boolean(req.compare_from);
      this.render();
      if (this.newOn && !canCompare) $('patterns-status').textContent = 'new: needs a time range';
    } catch (err) {
      if (err.name === 'AbortError') return;
      this.key = '';
      this.data = null;
      partialAnswers.note('patterns', null);
      $('patterns-body').replaceChildren();
      show($('patterns-table'), false);
      show($('patterns-empty'), false);
      $('patterns-summary').textContent = '';
      $('patterns-status').textContent = '';
      if (err.position) setText($('patterns-error'), 'No patterns: the query has an error (see above).');
      else setText($('patterns-error'), err.message);
    } finally {
      if (this.controller === controller) {
        this.controller = null;
        $('patterns').classList.remove('loading');
      }
    }
  },

  render() {
    const d = this.data;
    const list = Array.isArray(d.patterns) ? d.patterns.filter((p) => p && typeof p === 'object') : [];
    const total = Number(d.total) || 0;
    const showNew = this.newOn && this.shownNew && d.compared !== false;
    const step = Number(d.bucket_ms) > 0 ? fmtInterval(Math.max(1, Math.round(d.bucket_ms / 1000))) : '';
    const rows = list.map((p) => this.renderRow(p, total, showNew, step));
    // What the answer left out (its limit) is one row, so that the
    // counts shown add up to the total.
    const listed = list.reduce((n, p) => n + (Number(p.count) || 0), 0);
    const rest = Math.max(0, total - listed);
    if (rest > 0) {
      const tr = el('tr', 'pattern-row pattern-rest');
      tr.dataset.count = String(rest);
      const more = Math.max(0, (Number(d.templates) || 0) - list.length);
      const td = el('td', 'pt-template');
      td.append(el('span', 'pt-other', more ? `${plural(more, 'more template', 'more templates')}, not listed` : 'templates not listed'));
      tr.append(td, el('td', 'num pt-count', fmtNum(rest)), el('td', 'num pt-share', fmtShare(rest, total)), el('td', 'pt-spark'));
      rows.push(tr);
    }
    $('patterns-body').replaceChildren(...rows);
    $('patterns-total').textContent = fmtNum(total);
    $('patterns-spark-head').textContent = step ? `Over the range, per ${step}` : 'Over the range';
    show($('patterns-table'), list.length > 0);
    show($('patterns-empty'), total === 0);
    const templates = Number(d.templates) || list.length;
    let summary = `${plural(templates, 'template', 'templates')} in ${plural(total, 'line', 'lines')}`;
    if (showNew) summary += ` · ${fmtNum(Number.isFinite(d.new) ? d.new : list.filter((p) => p.new === true).length)} new`;
    if (d.partial) summary += ' · partial (see above)';
    $('patterns-summary').textContent = summary;
    setText($('patterns-status'), d.overflow ? 'More distinct lines than one answer keeps: the rest are counted under “other lines”.' : '');
  },

  renderRow(p, total, showNew, step) {
    const count = Number(p.count) || 0;
    const tr = el('tr', p.other ? 'pattern-row pattern-other' : 'pattern-row');
    tr.dataset.count = String(count);
    const pattern = String(p.pattern ?? '');
    const td = el('td', 'pt-template');
    const expand = el('button', 'expand pt-expand', this.open.has(pattern) ? '▾' : '▸');
    expand.type = 'button';
    expand.setAttribute('aria-expanded', String(this.open.has(pattern)));
    expand.setAttribute('aria-label', 'Show an example line');
    const open = el('button', 'pt-open');
    open.type = 'button';
    if (p.other) open.append(el('span', 'pt-other', 'other lines (more distinct than one answer keeps)'));
    else appendPattern(open, pattern);
    const query = typeof p.query === 'string' && p.query ? p.query : '';
    open.disabled = !query;
    const what = p.overlap ? `List the lines of this template (its query also matches ${plural(count, 'line', 'lines')} of others)` : `List these ${plural(count, 'line', 'lines')}`;
    open.title = printable((query ? what : 'These lines have no one query') + (p.example ? `, e.g.\n${p.example}` : ''));
    open.addEventListener('click', () => this.filter(query));
    td.append(expand, open);
    if (showNew && p.new === true) {
      const b = el('span', 'badge pt-new', 'new');
      b.title = 'No line of the period before the range fits this template';
      td.append(b);
    }
    const example = el('pre', 'line pt-example');
    appendText(example, p.example ?? '');
    example.hidden = !this.open.has(pattern);
    td.append(example);
    expand.addEventListener('click', () => {
      const now = example.hidden;
      example.hidden = !now;
      expand.textContent = now ? '▾' : '▸';
      expand.setAttribute('aria-expanded', String(now));
      if (now) this.open.add(pattern);
      else this.open.delete(pattern);
    });
    tr.append(td, el('td', 'num pt-count', fmtNum(count)), el('td', 'num pt-share', fmtShare(count, total)));
    const spark = el('td', 'pt-spark');
    const buckets = Array.isArray(p.buckets) ? p.buckets.map((v) => Number(v) || 0) : [];
    if (buckets.length) {
      spark.append(sparkline(buckets, `${plural(count, 'line', 'lines')} over the range, at most ${fmtNum(Math.max(...buckets))}` +
        (step ? ` in one ${step}` : ' in one step')));
    }
    tr.append(spark);
    return tr;
  },

  // filter lists the lines of a template: its query in the box, the
  // documents shown.
  filter(query) {
    if (!query) return;
    $('q').value = query;
    setMode('docs');
    pushState(currentState('discover'));
    addHistory(query);
    search(false);
    window.scrollTo(0, 0);
  },

  setNew(on) {
    this.newOn = on;
    $('patterns-new').checked = on;
  },
};

// setMode shows the lines ('docs') or the patterns of the query.
function setMode(mode) {
  discover.mode = mode === 'patterns' ? 'patterns' : 'docs';
  const pat = discover.mode === 'patterns';
  for (const b of document.querySelectorAll('.discover-mode')) {
    b.setAttribute('aria-pressed', String(b.dataset.mode === discover.mode));
  }
  $('view-discover').classList.toggle('patterns-mode', pat);
  show($('patterns'), pat);
  partialAnswers.render();
  if (pat && activeView === 'discover') patterns.ensure(discover.params);
}

function initPatterns() {
  for (const b of document.querySelectorAll('.discover-mode')) {
    b.addEventListener('click', () => {
      if (b.dataset.mode === discover.mode) return;
      setMode(b.dataset.mode);
      pushState(currentState('discover'));
    });
  }
  $('patterns-new').addEventListener('change', () => {
    patterns.setNew($('patterns-new').checked);
    replaceState(currentState('discover'));
    if (discover.params) patterns.load(discover.params);
  });
}

function initDiscover() {
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const st = currentState(activeView === 'visualize' ? 'visualize' : 'discover');
    discover.from = st.from;
    discover.to = st.to;
    pushState(st);
    addHistory(st.q);
    runQuery();
  });
  $('range').addEventListener('change', () => {
    if ($('range').value === 'custom') {
      showAbsolute();
      $('abs-from').focus();
      return;
    }
    setRange($('range').value, ''); // a preset range ends now
    pushState(currentState(activeView));
    runQuery();
  });
  for (const id of ['abs-from', 'abs-to']) {
    $(id).addEventListener('change', () => {
      const f = $('abs-from').value ? new Date($('abs-from').value) : null;
      const t = $('abs-to').value ? new Date($('abs-to').value) : null;
      if ((f && Number.isNaN(f.getTime())) || (t && Number.isNaN(t.getTime()))) return;
      runRange(f ? f.toISOString() : '', t ? t.toISOString() : '');
    });
  }
  $('zoom-out').addEventListener('click', () => histogram.zoomOut());
  $('query-error-where').addEventListener('click', () => queryError.select());
  $('load-more').addEventListener('click', () => search(true));
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) sentinelCheck();
  }, { rootMargin: '0px 0px 300px 0px' }).observe($('scroll-sentinel'));
  $('syntax-toggle').addEventListener('click', () => {
    const help = $('syntax-help');
    show(help, help.hidden);
    $('syntax-toggle').setAttribute('aria-expanded', String(!help.hidden));
  });
  $('empty-sources-link').addEventListener('click', (e) => {
    e.preventDefault();
    pushState(currentState('sources'));
    showView('sources');
  });
  $('live-toggle').addEventListener('click', () => tail.toggle());
  $('tail-banner').addEventListener('click', () => tail.resume());
  window.addEventListener('scroll', () => tail.onScroll(), { passive: true });
  $('context-close').addEventListener('click', () => contextPanel.close());
  $('context-earlier').addEventListener('click', () => contextPanel.more('before'));
  $('context-later').addEventListener('click', () => contextPanel.more('after'));
  // Redraw the chart for its new width before the next paint.
  let chartWidth = 0;
  new ResizeObserver(() => {
    const w = $('histogram-chart').clientWidth;
    if (w !== chartWidth && histogram.data) histogram.render();
    chartWidth = w;
  }).observe($('histogram-chart'));
  if (window.matchMedia('(max-width: 800px)').matches) $('sidebar').open = false;
  renderHistory();
}

// ---------------------------------------------------------------------------
// Visualize: a query with a stats pipe (/api/stats) as a table and a chart
// drawn here in SVG: bars for groups, lines for a _time series. The query
// and the time range are Discover's (the same inputs and URL).

// splitPipes cuts a query at its pipes as the server does (index.splitPipes):
// a | inside a quoted phrase, a /regular expression/, after a backslash,
// doubled (||) or inside a word (a line id, host|file|offset) is not a pipe. It returns the query before the first pipe
// and the pipes' texts, trimmed.
function splitPipes(s) {
  let cut = -1;
  let start = 0;
  let phrase = false;
  let regexp = false;
  const pipes = [];
  const termStart = (i) => i === 0 || ' \t\r\n:(+-!'.includes(s[i - 1]);
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') i++;
    else if (phrase) phrase = c !== '"';
    else if (regexp) regexp = c !== '/';
    else if (c === '"') phrase = true;
    else if (c === '/' && termStart(i)) regexp = true;
    else if (c === '|' && s[i + 1] === '|') i++;
    else if (c === '|' && (i === 0 || ' \t\r\n'.includes(s[i - 1]))) {
      if (cut < 0) cut = i;
      else pipes.push(s.slice(start, i));
      start = i + 1;
    }
  }
  if (cut < 0) return { query: s, pipes: [] };
  pipes.push(s.slice(start));
  return { query: s.slice(0, cut), pipes: pipes.map((p) => p.trim()) };
}

const hasPipes = (q) => splitPipes(q).pipes.length > 0;
const statsPipe = (q) => splitPipes(q).pipes.find((p) => /^stats\b/i.test(p)) || '';

// The bucket sizes a default series picks from (the server's histogram's).
const NICE_INTERVALS = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 10800, 43200, 86400, 7 * 86400, 30 * 86400, 365 * 86400];
const AUTO_BUCKETS = 60;

// fmtInterval writes seconds as the largest whole unit: 30s, 5m, 3h, 7d.
function fmtInterval(s) {
  if (s % 86400 === 0) return `${s / 86400}d`;
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

// parseInterval reads 30s, 5m, 3h, 7d (and ms) as milliseconds; 0 if not.
function parseInterval(v) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(String(v || '').trim());
  if (!m) return 0;
  return Number(m[1]) * { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 }[m[2]];
}

// autoInterval is the smallest nice bucket size that cuts [from, to) into
// at most AUTO_BUCKETS buckets, as text (5m), or '' when the range is open
// at the start (all time): the server's histogram then says.
function autoInterval(from, to) {
  const f = resolveTime(from);
  if (!f) return '';
  const t = resolveTime(to) || new Date();
  for (const s of NICE_INTERVALS) {
    const iv = s * 1000;
    const start = Math.floor(f.getTime() / iv) * iv;
    if (Math.ceil((t.getTime() - start) / iv) <= AUTO_BUCKETS) return fmtInterval(s);
  }
  return fmtInterval(365 * 86400 * Math.ceil((t - f) / (365 * 86400e3 * AUTO_BUCKETS)));
}

// statsFunctions maps the columns of a stats pipe (an alias, or a function
// as written) to the function's name: count, sum, avg, ...
function statsFunctions(pipe) {
  const out = new Map();
  const funcs = pipe.replace(/^stats\s*/i, '').replace(/\bby\s*\([^)]*\)/gi, '');
  const re = /([A-Za-z_]\w*)\s*\(([^()]*)\)(?:\s+as\s+("[^"]*"|[^\s,()]+))?/gi;
  for (const m of funcs.matchAll(re)) {
    const fn = m[1].toLowerCase();
    // The server names a column fn(arg, arg) (lower case, one space).
    out.set(`${fn}(${m[2].split(',').map((a) => a.trim()).filter(Boolean).join(', ')})`, fn);
    if (m[3]) out.set(m[3].replace(/^"|"$/g, ''), fn);
  }
  return out;
}

// Columns whose values add up across groups (an "other" line is their sum).
const ADDITIVE = new Set(['count', 'sum']);

// fmtStat writes an aggregate: whole numbers grouped, others with up to
// four significant decimals; null (no numeric value in the group) as —.
function fmtStat(v) {
  if (v === null || v === undefined || v === '') return '—';
  const n = Number(v);
  if (!Number.isFinite(n)) return printable(v);
  if (Number.isInteger(n)) return n.toLocaleString();
  const digits = Math.abs(n) >= 100 ? 2 : Math.abs(n) >= 1 ? 3 : Math.min(10, 3 - Math.floor(Math.log10(Math.abs(n))));
  return n.toLocaleString(undefined, { maximumFractionDigits: digits });
}

// fmtAxis writes an axis tick short: 1.2k, 3M, 0.25.
function fmtAxis(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return +(v / 1e9).toFixed(1) + 'G';
  if (a >= 1e6) return +(v / 1e6).toFixed(1) + 'M';
  if (a >= 1e4) return +(v / 1e3).toFixed(1) + 'k';
  return String(+v.toPrecision(4));
}

// niceTicks covers [lo, hi] with about n round steps (1, 2, 5 × 10^k).
function niceTicks(lo, hi, n) {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw);
  const ticks = [];
  const first = Math.floor(lo / step) * step;
  for (let v = first; v < hi + step * 0.999; v += step) ticks.push(+v.toPrecision(12));
  return ticks;
}

// timeLabel writes a time tick for a series whose ticks are step ms apart.
function timeLabel(ms, step, spanMs) {
  const d = new Date(ms);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  const md = `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
  if (step >= 86400e3) return md;
  if (step < 60e3) return `${hm}:${pad2(d.getSeconds())}`;
  return spanMs > 86400e3 ? `${md} ${hm}` : hm;
}

const TIME_TICKS = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400, 30 * 86400].map((s) => s * 1000);
const TOP_SERIES = 5;  // lines drawn one per group; the rest are "other"
const MAX_BARS = 60;   // groups drawn as bars; the table has every row
const SERIES_CLASSES = 6;

// statsModel reads an /api/stats answer: which columns are group values
// (strings, and _time) and which are aggregates (numbers or null).
function statsModel(data, pipe) {
  const columns = Array.isArray(data && data.columns) ? data.columns.map(String) : [];
  const rows = Array.isArray(data && data.rows) ? data.rows.filter(Array.isArray) : [];
  const ti = columns.indexOf('_time');
  const isGroup = columns.map((c, j) => j === ti || rows.some((r) => typeof r[j] === 'string'));
  const fns = statsFunctions(pipe);
  const fnOf = (c) => fns.get(c) || ((/^(\w+)\(/.exec(c) || [])[1] || '').toLowerCase();
  return {
    columns, rows, ti,
    groups: columns.map((_, j) => j).filter((j) => isGroup[j] && j !== ti),
    metrics: columns.map((_, j) => j).filter((j) => !isGroup[j]),
    additive: (j) => ADDITIVE.has(fnOf(columns[j])),
    capped: Boolean(data && data.groups_capped),
  };
}

const viz = {
  controller: null,
  shown: null,   // {q, from, to}: the inputs of the answer shown
  sent: '',      // the query sent to /api/stats
  model: null,
  chart: '',     // the chart asked for in the URL ('' = by the data)
  stash: null,   // {query, full}: the pipes kept while Discover shows the query
  hover: null,   // what the pointer is over, for the tooltip

  // ensure runs the query unless the answer shown belongs to the inputs.
  ensure() {
    const r = rangeFromInputs();
    const s = this.shown;
    if (!s || s.q !== $('q').value.trim() || s.from !== r.from || s.to !== r.to) this.load();
    else this.render();
  },

  // effective is the chart drawn: the one asked for, else lines for a
  // _time series and bars for groups.
  effective() {
    const series = this.model && this.model.ti >= 0;
    if (this.chart === 'table' || this.chart === 'bar' || (this.chart === 'line' && series)) return this.chart;
    return series ? 'line' : 'bar';
  },

  setChart(chart) {
    this.chart = chart;
    pushState(currentState('visualize'));
    this.render();
  },

  // statsQuery is the query to send for q: q itself when it has pipes,
  // else its count over time in about AUTO_BUCKETS buckets.
  async statsQuery(q, range, signal) {
    if (hasPipes(q)) return { sent: q, auto: false };
    let iv = autoInterval(range.from, range.to);
    if (!iv) {
      const h = await api('GET', '/api/histogram', { params: { q, from: range.from, to: range.to, buckets: AUTO_BUCKETS }, signal });
      iv = (h && typeof h.interval === 'string' && parseInterval(h.interval)) ? h.interval : '1h';
    }
    return { sent: `${q || '*'} | stats count() by (_time:${iv})`, auto: true };
  },

  async load() {
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller;
    const q = $('q').value.trim();
    const range = rangeFromInputs();
    discover.from = range.from;
    discover.to = range.to;
    showAbsolute();
    this.shown = { q, from: range.from, to: range.to };
    $('viz-chart').classList.add('loading');
    $('viz-status').textContent = 'Counting…';
    setText($('viz-error'), '');
    let sent = q;
    try {
      const s = await this.statsQuery(q, range, controller.signal);
      sent = s.sent;
      const data = await api('GET', '/api/stats', { params: { q: sent, from: range.from, to: range.to }, signal: controller.signal });
      partialAnswers.note('stats', data);
      this.sent = sent;
      this.model = statsModel(data, statsPipe(sent));
      queryError.clear();
      $('viz-hint-text').textContent = s.auto
        ? printable(`The query has no stats pipe, so this is its count over time: ${sent}`)
        : '';
      show($('viz-hint'), s.auto);
      this.render();
    } catch (err) {
      if (err.name === 'AbortError') return;
      partialAnswers.note('stats', null);
      this.model = null;
      this.sent = sent;
      // Asked again (back from Discover, which clears the error), it runs
      // again and says so again.
      this.shown = null;
      $('viz-chart').replaceChildren();
      $('viz-legend').replaceChildren();
      show($('viz-table'), false);
      show($('viz-empty'), false);
      show($('viz-hint'), false);
      show($('viz-capped'), false);
      $('viz-status').textContent = '';
      showQueryError(sent, err, $('viz-error'));
    } finally {
      if (this.controller === controller) {
        this.controller = null;
        $('viz-chart').classList.remove('loading');
      }
    }
  },

  render() {
    const chart = this.effective();
    for (const b of document.querySelectorAll('.viz-type')) {
      b.setAttribute('aria-pressed', String(b.dataset.chart === chart));
      b.disabled = b.dataset.chart === 'line' && Boolean(this.model) && this.model.ti < 0;
      b.title = b.disabled ? 'Lines need a time series: group by _time (by (_time:5m))' : '';
    }
    const m = this.model;
    if (!m) return;
    const n = m.rows.length;
    $('viz-status').textContent = plural(n, 'row', 'rows');
    setText($('viz-capped'), m.capped ? 'Too many groups: the answer holds only the first ones the server counted (the cap on groups). Narrow the query or group by fewer fields.' : '');
    show($('viz-empty'), n === 0);
    this.renderTable(m);
    const box = $('viz-chart');
    this.hover = null;
    if (!n || !m.metrics.length || chart === 'table') {
      box.replaceChildren();
      $('viz-legend').replaceChildren();
      return;
    }
    const series = chart === 'line' && m.ti >= 0 ? this.lineSeries(m) : null;
    if (series) this.drawLines(box, m, series);
    else this.drawBars(box, m);
  },

  renderTable(m) {
    const head = el('tr');
    m.columns.forEach((c, j) => {
      const th = textEl('th', m.metrics.includes(j) ? 'num' : '', c);
      th.scope = 'col';
      head.append(th);
    });
    $('viz-thead').replaceChildren(head);
    const rows = m.rows.map((r) => {
      const tr = el('tr');
      m.columns.forEach((c, j) => {
        const v = r[j];
        let td;
        if (j === m.ti) {
          td = el('td', 'viz-time', formatTs(v).replace(/\.000$/, ''));
          td.title = printable(v);
        } else if (m.metrics.includes(j)) {
          td = el('td', 'num', fmtStat(v));
          if (v !== null && v !== undefined) td.title = printable(v);
        } else {
          td = textEl('td', '', v === '' ? '(empty)' : v);
        }
        td.dataset.value = v === null || v === undefined ? 'null' : String(v);
        tr.append(td);
      });
      return tr;
    });
    $('viz-tbody').replaceChildren(...rows);
    show($('viz-table'), m.rows.length > 0);
  },

  // groupLabel names a row's group: its group values, joined.
  groupLabel(m, r) {
    return m.groups.map((j) => (r[j] === '' ? '(empty)' : String(r[j] ?? '—'))).join(' · ');
  },

  // lineSeries turns a _time answer into lines: one per group of the other
  // by-fields (and per aggregate when there are several), the TOP_SERIES
  // largest by total, plus "other" summing the rest of an additive column.
  lineSeries(m) {
    const byKey = new Map();
    const times = new Set();
    for (const r of m.rows) {
      const t = Date.parse(r[m.ti]);
      if (!Number.isFinite(t)) continue;
      times.add(t);
      const group = this.groupLabel(m, r);
      for (const j of m.metrics) {
        const name = [group, m.metrics.length > 1 || !group ? m.columns[j] : ''].filter(Boolean).join(' · ');
        const key = group + '\u0000' + j;
        if (!byKey.has(key)) byKey.set(key, { name, metric: j, points: new Map(), total: 0 });
        const s = byKey.get(key);
        const v = r[j] === null || r[j] === undefined ? null : Number(r[j]);
        s.points.set(t, v);
        if (Number.isFinite(v)) s.total += Math.abs(v);
      }
    }
    if (!times.size) return null;
    // Groups' lines, largest first; the columns of one group in their order.
    const all = [...byKey.values()];
    if (m.groups.length) all.sort((a, b) => b.total - a.total || a.name.localeCompare(b.name));
    const top = all.slice(0, TOP_SERIES);
    const rest = all.slice(TOP_SERIES);
    const others = [];
    for (const j of m.metrics) {
      const mine = rest.filter((s) => s.metric === j);
      if (!mine.length || !m.additive(j)) continue;
      const o = { name: m.metrics.length > 1 ? `other · ${m.columns[j]}` : 'other', metric: j, points: new Map(), total: 0, other: mine.length };
      for (const s of mine) {
        for (const [t, v] of s.points) if (Number.isFinite(v)) o.points.set(t, (o.points.get(t) || 0) + v);
        o.total += s.total;
      }
      others.push(o);
    }
    // The buckets: every step from the first to the last time; a step
    // is the query's _time:N, else the smallest gap seen.
    const sorted = [...times].sort((a, b) => a - b);
    let step = parseInterval((/_time\s*:\s*([0-9.]+[a-z]+)/i.exec(statsPipe(this.sent)) || [])[1]);
    if (!step) for (let i = 1; i < sorted.length; i++) step = Math.min(step || Infinity, sorted[i] - sorted[i - 1]);
    // A closed range is drawn whole (its empty buckets too); all time
    // from the first bucket to the last.
    let lo = sorted[0];
    let hi = sorted[sorted.length - 1];
    const from = resolveTime(this.shown && this.shown.from);
    if (from && step > 0) {
      const to = resolveTime(this.shown.to) || new Date();
      const a = Math.floor(from.getTime() / step) * step;
      const b = Math.floor((to.getTime() - 1) / step) * step;
      if (a <= lo && b >= hi && (b - a) / step <= 2000) [lo, hi] = [a, b];
    }
    let buckets = sorted;
    if (step > 0 && (hi - lo) / step <= 2000) {
      buckets = [];
      for (let t = lo; t <= hi; t += step) buckets.push(t);
      for (const t of sorted) if (!buckets.includes(t)) buckets.push(t);
      buckets.sort((a, b) => a - b);
    }
    const lines = [...top, ...others].map((s, k) => ({
      ...s,
      cls: s.other ? 'viz-other' : `viz-s${k % SERIES_CLASSES}`,
      // A missing bucket counted nothing (0) for count and sum; for the
      // others it has no value and the line breaks.
      values: buckets.map((t) => (s.points.has(t) ? s.points.get(t) : (m.additive(s.metric) ? 0 : null))),
    }));
    return { buckets, step: step || 0, lines, hidden: rest.length - others.reduce((a, o) => a + o.other, 0) };
  },

  // frame draws the empty chart: the y axis with its ticks and grid over
  // [lo, hi]; it returns the svg, the plot's geometry and y().
  frame(box, lo, hi, bottom) {
    const W = Math.max(280, box.clientWidth || 800);
    const H = 320;
    const ticks = niceTicks(Math.min(0, lo), Math.max(0, hi), 5);
    const y0 = ticks[0];
    const y1 = ticks[ticks.length - 1];
    const left = 12 + 7 * Math.max(...ticks.map((v) => fmtAxis(v).length));
    const pad = { left, right: 16, top: 12, bottom };
    const pw = W - pad.left - pad.right;
    const ph = H - pad.top - pad.bottom;
    const y = (v) => pad.top + ph - ((v - y0) / (y1 - y0 || 1)) * ph;
    const svg = svgEl('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: 'viz-svg', role: 'img' });
    for (const v of ticks) {
      const yy = Math.round(y(v)) + 0.5;
      svg.append(svgEl('line', { x1: pad.left, x2: W - pad.right, y1: yy, y2: yy, class: v === 0 ? 'axis' : 'grid' }));
      const label = svgEl('text', { x: pad.left - 6, y: yy + 4, class: 'tick y-tick', 'text-anchor': 'end' });
      label.textContent = fmtAxis(v);
      svg.append(label);
    }
    return { svg, W, H, pad, pw, ph, y };
  },

  drawBars(box, m) {
    const rows = m.rows.slice(0, MAX_BARS);
    // A bar's label: its group, and its bucket's start for a _time answer.
    const when = (r) => (m.ti >= 0 ? clockTime(r[m.ti]) : '');
    const labels = rows.map((r) => printable([this.groupLabel(m, r), when(r)].filter(Boolean).join(' · ') || 'all'));
    const values = rows.flatMap((r) => m.metrics.map((j) => Number(r[j])).filter(Number.isFinite));
    const W = Math.max(280, box.clientWidth || 800);
    const slot = (W - 80) / Math.max(1, rows.length);
    const longest = Math.max(...labels.map((l) => l.length));
    const slanted = longest * 7 > slot - 6;
    const cut = (l) => (slanted && l.length > 22 ? l.slice(0, 21) + '…' : l);
    const bottom = slanted ? 16 + Math.min(22, longest) * 5 : 24;
    const f = this.frame(box, Math.min(0, ...values), Math.max(0, ...values), bottom);
    const { svg, pad, pw, ph, y } = f;
    const bw = pw / rows.length;
    const inner = Math.max(1, Math.min(80, bw * 0.8) / m.metrics.length);
    const zero = y(0);
    svg.setAttribute('aria-label', `bar chart: ${m.metrics.map((j) => m.columns[j]).join(', ')} of ${plural(rows.length, 'group', 'groups')}`);
    rows.forEach((r, i) => {
      const x0 = pad.left + i * bw + (bw - inner * m.metrics.length) / 2;
      m.metrics.forEach((j, k) => {
        const v = Number(r[j]);
        if (r[j] === null || !Number.isFinite(v)) return;
        const top = Math.min(y(v), zero);
        const rect = svgEl('rect', {
          x: x0 + k * inner, y: top, width: Math.max(1, inner - (inner > 4 ? 1 : 0)), height: Math.max(v ? 1 : 0, Math.abs(zero - y(v))),
          class: `viz-bar viz-s${k % SERIES_CLASSES}`, 'data-row': i, 'data-value': v,
        });
        const title = svgEl('title');
        title.textContent = `${labels[i]} · ${printable(m.columns[j])}: ${fmtStat(r[j])}`;
        rect.append(title);
        svg.append(rect);
      });
      const cx = pad.left + i * bw + bw / 2;
      const ly = pad.top + ph + 14;
      const label = svgEl('text', slanted
        ? { x: cx, y: ly, class: 'tick x-tick', 'text-anchor': 'end', transform: `rotate(-35 ${cx} ${ly})` }
        : { x: cx, y: ly, class: 'tick x-tick', 'text-anchor': 'middle' });
      label.textContent = cut(labels[i]);
      svg.append(label);
    });
    this.attachHover(svg, f, (x) => {
      const i = Math.floor((x - pad.left) / bw);
      if (i < 0 || i >= rows.length) return null;
      return {
        x: pad.left + i * bw + bw / 2, band: [pad.left + i * bw, bw],
        title: labels[i],
        items: m.metrics.map((j, k) => ({ cls: `viz-s${k % SERIES_CLASSES}`, name: m.columns[j], value: rows[i][j] })),
      };
    });
    box.replaceChildren(svg, vizTip());
    this.legend(m.metrics.length > 1 ? m.metrics.map((j, k) => ({ cls: `viz-s${k % SERIES_CLASSES}`, name: m.columns[j] })) : [],
      m.rows.length > MAX_BARS ? `the first ${MAX_BARS} of ${plural(m.rows.length, 'group', 'groups')} drawn; the table has all` : '');
  },

  drawLines(box, m, s) {
    const { buckets, lines } = s;
    const values = lines.flatMap((l) => l.values.filter(Number.isFinite));
    const f = this.frame(box, Math.min(0, ...values), Math.max(0, ...values), 24);
    const { svg, pad, pw, ph, y } = f;
    const t0 = buckets[0];
    const t1 = buckets[buckets.length - 1];
    const span = t1 - t0;
    const x = (t) => pad.left + (span ? ((t - t0) / span) * pw : pw / 2);
    svg.setAttribute('aria-label', `line chart: ${plural(lines.length, 'line', 'lines')} over ${plural(buckets.length, 'time bucket', 'time buckets')}`);
    // Time ticks on round times, about one per 110 px.
    const want = Math.max(2, Math.floor(pw / 110));
    const every = TIME_TICKS.find((d) => span / d <= want) || TIME_TICKS[TIME_TICKS.length - 1];
    const tz = new Date(t0).getTimezoneOffset() * 60e3;
    for (let t = Math.ceil((t0 - tz) / every) * every + tz; t <= t1; t += every) {
      const xx = Math.round(x(t)) + 0.5;
      svg.append(svgEl('line', { x1: xx, x2: xx, y1: pad.top + ph, y2: pad.top + ph + 4, class: 'axis' }));
      const label = svgEl('text', { x: xx, y: pad.top + ph + 16, class: 'tick x-tick', 'text-anchor': 'middle' });
      label.textContent = timeLabel(t, every, span);
      svg.append(label);
    }
    const dots = buckets.length <= 40;
    lines.forEach((l, k) => {
      let d = '';
      let pen = false;
      l.values.forEach((v, i) => {
        if (!Number.isFinite(v)) {
          pen = false;
          return;
        }
        d += `${pen ? 'L' : 'M'}${x(buckets[i]).toFixed(1)},${y(v).toFixed(1)}`;
        pen = true;
      });
      const path = svgEl('path', { d: d || 'M0,0', class: `viz-line ${l.cls}`, 'data-series': k });
      path.dataset.name = l.name;
      const title = svgEl('title');
      title.textContent = printable(l.name);
      path.append(title);
      svg.append(path);
      if (dots) {
        l.values.forEach((v, i) => {
          if (Number.isFinite(v)) svg.append(svgEl('circle', { cx: x(buckets[i]), cy: y(v), r: 2.5, class: `viz-dot ${l.cls}` }));
        });
      }
    });
    this.attachHover(svg, f, (px) => {
      let i = 0;
      for (let k = 1; k < buckets.length; k++) if (Math.abs(x(buckets[k]) - px) < Math.abs(x(buckets[i]) - px)) i = k;
      return {
        x: x(buckets[i]),
        title: formatTs(new Date(buckets[i]).toISOString()).replace(/\.000$/, ''),
        items: lines.map((l) => ({ cls: l.cls, name: l.name, value: l.values[i] }))
          .sort((a, b) => (Number(b.value) || 0) - (Number(a.value) || 0)),
      };
    });
    box.replaceChildren(svg, vizTip());
    const more = [];
    if (lines.some((l) => l.other)) more.push(`other: the sum of ${plural(lines.filter((l) => l.other).reduce((a, l) => a + l.other, 0), 'smaller group', 'smaller groups')}`);
    if (s.hidden > 0) more.push(`${plural(s.hidden, 'smaller line', 'smaller lines')} not drawn; the table has them`);
    this.legend(lines.map((l) => ({ cls: l.cls, name: l.name, total: m.additive(l.metric) ? l.total : null })), more.join(' · '));
  },

  legend(items, note) {
    const box = $('viz-legend');
    const out = items.map((it) => {
      const span = el('span', 'viz-key');
      span.append(el('span', `viz-swatch ${it.cls}`), textEl('span', 'viz-key-name', it.name));
      if (it.total !== null && it.total !== undefined) span.append(el('span', 'viz-key-total', fmtStat(it.total)));
      return span;
    });
    if (note) out.push(el('span', 'viz-note', note));
    box.replaceChildren(...out);
  },

  // attachHover shows, while the pointer is over the plot, a guide at the
  // nearest bucket or bar and a tooltip with its values (at(x) says what
  // is at plot x, or null).
  attachHover(svg, f, at) {
    const guide = svgEl('rect', { x: 0, y: f.pad.top, width: 1, height: f.ph, class: 'viz-guide' });
    guide.setAttribute('visibility', 'hidden');
    svg.append(guide);
    const hide = () => {
      guide.setAttribute('visibility', 'hidden');
      const tip = svg.parentNode && svg.parentNode.querySelector('.viz-tip');
      if (tip) show(tip, false);
      this.hover = null;
    };
    svg.addEventListener('pointerleave', hide);
    svg.addEventListener('pointermove', (e) => {
      const r = svg.getBoundingClientRect();
      const scale = r.width / f.W || 1;
      const px = (e.clientX - r.left) / scale;
      const py = (e.clientY - r.top) / scale;
      const hit = px >= f.pad.left && px <= f.W - f.pad.right && py >= f.pad.top && py <= f.pad.top + f.ph ? at(px) : null;
      if (!hit) {
        hide();
        return;
      }
      this.hover = hit;
      const [gx, gw] = hit.band || [hit.x - 0.5, 1];
      guide.setAttribute('x', gx);
      guide.setAttribute('width', gw);
      guide.setAttribute('class', hit.band ? 'viz-guide band' : 'viz-guide');
      guide.setAttribute('visibility', 'visible');
      const tip = svg.parentNode.querySelector('.viz-tip');
      tip.replaceChildren(textEl('div', 'viz-tip-title', hit.title));
      for (const it of hit.items) {
        const row = el('div', 'viz-tip-row');
        row.append(el('span', `viz-swatch ${it.cls}`), textEl('span', 'viz-tip-name', it.name), el('span', 'viz-tip-value', fmtStat(it.value)));
        tip.append(row);
      }
      show(tip, true);
      const left = hit.x * scale;
      const wide = tip.offsetWidth;
      tip.style.left = `${Math.max(0, Math.min(r.width - wide, left + 12 > r.width - wide ? left - wide - 12 : left + 12))}px`;
      tip.style.top = `${Math.max(0, py * scale - 20)}px`;
    });
  },
};

// vizTip is the chart's tooltip, hidden until the pointer is over a value.
function vizTip() {
  const tip = el('div', 'viz-tip');
  tip.hidden = true;
  return tip;
}

// visualizeField opens Visualize on a field of the sidebar: its top values
// (stat 'count'), or its average and 99th percentile over time ('avg').
function visualizeField(field, stat) {
  const base = splitPipes($('q').value.trim()).query.trim();
  const r = rangeFromInputs();
  const pipe = stat === 'avg'
    ? `stats avg(${field}), quantile(0.99, ${field}) by (_time:${autoInterval(r.from, r.to) || '1h'})`
    : `stats count() by (${field}) | sort by (count() desc) | limit 20`;
  $('q').value = `${base || '*'} | ${pipe}`;
  viz.chart = '';
  pushState(currentState('visualize'));
  showView('visualize');
  viz.load();
}

// switchView moves to another tab. The query's pipes belong to Visualize:
// Discover shows the query before them, and going back restores them.
function switchView(v) {
  if (v === activeView) return;
  const q = $('q').value.trim();
  if (v === 'discover' && hasPipes(q)) {
    const query = splitPipes(q).query.trim();
    viz.stash = { query, full: q };
    $('q').value = query;
  } else if (v === 'visualize' && !hasPipes(q) && viz.stash && viz.stash.query === q) {
    $('q').value = viz.stash.full;
  }
  pushState(currentState(v));
  showView(v);
  if (v === 'discover') ensureSearched();
  if (v === 'visualize') viz.ensure();
}

// runQuery runs the inputs' query in the view shown.
function runQuery() {
  if (activeView === 'visualize') viz.load();
  else search(false);
}

function initVisualize() {
  for (const b of document.querySelectorAll('.viz-type')) {
    b.addEventListener('click', () => viz.setChart(b.dataset.chart));
  }
  $('viz-hint-use').addEventListener('click', () => {
    $('q').value = viz.sent;
    viz.shown = { ...viz.shown, q: viz.sent };
    show($('viz-hint'), false);
    pushState(currentState('visualize'));
    $('q').focus();
  });
  $('query-error-viz').addEventListener('click', () => {
    $('q').value = queryError.q ?? $('q').value;
    viz.stash = null;
    switchView('visualize');
  });
  let width = 0;
  new ResizeObserver(() => {
    const w = $('viz-chart').clientWidth;
    if (w !== width && viz.model && activeView === 'visualize') viz.render();
    width = w;
  }).observe($('viz-chart'));
}

// ---------------------------------------------------------------------------
// Saved searches (/api/searches, kept in etcd and shared by every user of
// this logbox): the query, the range and the view with its chart. Save,
// open, rename and delete from the query bar.

function savedPath(name) {
  return '/api/searches/' + encodeURIComponent(name);
}

// savedState is what the page saves: the inputs and the view shown.
function savedState() {
  const st = currentState(activeView === 'visualize' ? 'visualize' : 'discover');
  // An empty query box is every line; the API wants that said (*).
  const out = { query: st.q || '*', from: st.from, to: st.to, view: st.view };
  if (st.view === 'visualize') out.chart = viz.effective();
  return out;
}

function describeRange(from, to) {
  if (!from && !to) return 'all time';
  if (!to && /^now-\d+[smhdw]$/.test(from)) return `last ${from.slice(4)}`;
  return rangeLabel(from || '', to || '');
}

const saved = {
  list: [],
  controller: null,

  toggleSave(open) {
    const panel = $('save-panel');
    if (open === undefined) open = panel.hidden;
    show(panel, open);
    $('save-toggle').setAttribute('aria-expanded', String(open));
    if (!open) return;
    this.toggleList(false);
    const s = savedState();
    $('save-what').textContent = printable(`${s.query || '(every line)'} · ${describeRange(s.from, s.to)} · ${s.view}${s.chart ? ' (' + s.chart + ')' : ''}`);
    setText($('save-error'), '');
    show($('save-replace'), false);
    $('save-name').focus();
  },

  async toggleList(open) {
    const panel = $('saved-panel');
    if (open === undefined) open = panel.hidden;
    show(panel, open);
    $('saved-toggle').setAttribute('aria-expanded', String(open));
    if (!open) return;
    this.toggleSave(false);
    // The rows are drawn anew from the server's list (a row left from
    // before would be replaced under the user's hands).
    $('saved-body').replaceChildren();
    show($('saved-table'), false);
    show($('saved-empty'), false);
    await this.load();
  },

  // save creates the saved search (replace false) or overwrites the one
  // of that name (replace true).
  async save(replace) {
    const name = $('save-name').value.trim();
    const body = { name, ...savedState(), description: $('save-description').value.trim() };
    setText($('save-error'), '');
    show($('save-replace'), false);
    $('save-submit').disabled = true;
    try {
      if (replace) await api('PUT', savedPath(name), { body });
      else await api('POST', '/api/searches', { body });
      $('save-name').value = '';
      $('save-description').value = '';
      this.toggleSave(false);
      this.flash(`Saved “${name}”.`);
    } catch (err) {
      // The name is taken: offer to replace that search.
      const taken = err.status === 409 && !replace;
      setText($('save-error'), taken ? `${err.message}: “${name}” is taken; replace it, or choose another name.` : err.message);
      show($('save-replace'), taken);
    } finally {
      $('save-submit').disabled = false;
    }
  },

  flash(text) {
    const s = $('search-status');
    if (activeView === 'discover') s.textContent = printable(text);
    else $('viz-status').textContent = printable(text);
  },

  async load() {
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller;
    $('saved-status').textContent = 'Loading…';
    try {
      const data = await api('GET', '/api/searches', { signal: controller.signal });
      const list = Array.isArray(data) ? data : (data && Array.isArray(data.searches) ? data.searches : []);
      this.list = list.filter((s) => s && typeof s === 'object' && typeof s.name === 'string');
      this.list.sort((a, b) => a.name.localeCompare(b.name));
      // Entries written to etcd by hand that the server refused.
      const invalid = data && data.invalid && typeof data.invalid === 'object' ? Object.entries(data.invalid) : [];
      setText($('saved-error'), invalid.map(([k, v]) => `invalid entry ${k}: ${v}`).join('\n'));
      this.render();
    } catch (err) {
      if (err.name === 'AbortError') return;
      setText($('saved-error'), err.message);
    } finally {
      if (this.controller === controller) {
        this.controller = null;
        $('saved-status').textContent = '';
      }
    }
  },

  render() {
    const rows = this.list.map((s) => this.renderRow(s));
    $('saved-body').replaceChildren(...rows);
    show($('saved-table'), rows.length > 0);
    show($('saved-empty'), rows.length === 0);
  },

  renderRow(s) {
    const tr = el('tr', 'saved-row');
    tr.dataset.name = s.name;
    const nameTd = el('td', 'saved-name');
    const open = textEl('button', 'link saved-open', s.name);
    open.type = 'button';
    open.title = printable(`Open “${s.name}”`);
    open.addEventListener('click', () => this.open(s));
    nameTd.append(open);
    if (s.description) nameTd.append(textEl('span', 'saved-description', s.description));
    tr.append(nameTd);
    tr.append(textEl('td', 'saved-query', s.query || '(every line)'));
    tr.append(textEl('td', 'saved-range', describeRange(s.from, s.to)));
    tr.append(el('td', 'saved-view', s.view === 'visualize' ? `Visualize${CHARTS.includes(s.chart) ? ' · ' + s.chart : ''}` : 'Discover'));
    const actions = el('td', 'saved-actions');
    const rename = el('button', 'rename', 'Rename');
    rename.type = 'button';
    rename.setAttribute('aria-label', printable(`Rename saved search ${s.name}`));
    rename.addEventListener('click', () => this.startRename(tr, s));
    const del = el('button', 'remove', 'Delete');
    del.type = 'button';
    del.setAttribute('aria-label', printable(`Delete saved search ${s.name}`));
    del.addEventListener('click', () => this.remove(s, del));
    const alert = el('button', 'alert-saved', 'Alert');
    alert.type = 'button';
    alert.title = printable(`Create an alert rule on the query of ${s.name}`);
    alert.setAttribute('aria-label', printable(`Alert on saved search ${s.name}`));
    alert.addEventListener('click', () => {
      this.toggleList(false);
      alertOnSearch({ query: String(s.query || '*'), window: windowOfRange(s.from, s.to), name: s.name, description: s.description || '' });
    });
    actions.append(alert, rename, del);
    tr.append(actions);
    return tr;
  },

  // open restores a saved search: its query, range and view (and chart).
  open(s) {
    $('q').value = String(s.query || '');
    setRange(String(s.from || ''), String(s.to || ''));
    const view = s.view === 'visualize' ? 'visualize' : 'discover';
    viz.chart = view === 'visualize' && CHARTS.includes(s.chart) ? s.chart : '';
    viz.stash = null;
    this.toggleList(false);
    pushState(currentState(view));
    showView(view);
    runQuery();
  },

  startRename(tr, s) {
    const td = tr.querySelector('.saved-name');
    const form = el('form', 'saved-rename');
    const input = el('input', 'saved-rename-input');
    input.value = s.name;
    input.setAttribute('aria-label', printable(`New name for ${s.name}`));
    const ok = el('button', 'primary', 'Rename');
    ok.type = 'submit';
    const cancel = el('button', '', 'Cancel');
    cancel.type = 'button';
    const err = el('div', 'error inline');
    err.hidden = true;
    form.append(input, ok, cancel, err);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const name = input.value.trim();
      if (!name || name === s.name) {
        this.render();
        return;
      }
      ok.disabled = true;
      try {
        await api('POST', savedPath(s.name) + '/rename', { body: { name } });
        await this.load();
      } catch (e2) {
        setText(err, e2.message);
        ok.disabled = false;
      }
    });
    cancel.addEventListener('click', () => this.render());
    td.replaceChildren(form);
    input.focus();
    input.select();
  },

  // remove deletes on a second click (the first arms the button).
  async remove(s, btn) {
    if (!btn.classList.contains('armed')) {
      btn.classList.add('armed');
      btn.textContent = 'Delete?';
      setTimeout(() => {
        btn.classList.remove('armed');
        btn.textContent = 'Delete';
      }, 4000);
      return;
    }
    btn.disabled = true;
    try {
      await api('DELETE', savedPath(s.name));
      await this.load();
    } catch (err) {
      setText($('saved-error'), err.message);
      btn.disabled = false;
    }
  },
};

function initSaved() {
  $('save-toggle').addEventListener('click', () => saved.toggleSave());
  $('saved-toggle').addEventListener('click', () => saved.toggleList());
  $('save-panel').addEventListener('submit', (e) => {
    e.preventDefault();
    saved.save(false);
  });
  $('save-replace').addEventListener('click', () => saved.save(true));
  $('save-cancel').addEventListener('click', () => saved.toggleSave(false));
}

// ---------------------------------------------------------------------------
// Alerts (/api/alerts, rules kept in etcd): the rules with their state and
// last value, refreshed every few seconds while shown; a rule's detail
// with its active instances and firing history; the create/edit form,
// which shows the server's refusal next to the field it names; and
// "alert on this search", which opens the form with the query of Discover,
// Visualize or a saved search.

const ALERTS_EVERY_MS = 3000;
const ALERT_STATES = ['firing', 'pending', 'ok', 'error', 'unknown'];
const TARGET_KINDS = [['webhook', 'Webhook (Alertmanager JSON)'], ['alertmanager', 'Alertmanager'], ['slack', 'Slack incoming webhook']];

function alertPath(name) {
  return '/api/alerts/' + encodeURIComponent(name);
}

// alertStateBadge is a rule's or instance's state as a badge: firing red,
// pending amber, ok green, anything else (error, unknown, resolved) grey.
function alertStateBadge(state, disabled) {
  const s = disabled ? 'disabled' : (typeof state === 'string' && state ? state : 'unknown');
  const known = ALERT_STATES.includes(s) || s === 'resolved' || s === 'disabled';
  const b = el('span', `badge alert-state alert-${known ? s : 'other'}`, printable(s));
  b.title = {
    firing: 'the condition held for its "for" time: notifications are sent',
    pending: 'the condition holds, not yet for its "for" time',
    ok: 'the condition does not hold',
    unknown: 'not evaluated yet',
    error: 'the last evaluation failed',
    disabled: 'not evaluated: the rule is disabled',
    resolved: 'the condition stopped holding',
  }[s] || '';
  return b;
}

// goDuration reads a rule's duration (Go's 1h30m, 5m0s, and 7d) as ms;
// NaN when it cannot.
function goDuration(v) {
  const s = String(v ?? '').trim();
  if (!s) return NaN;
  const days = /^(\d+(?:\.\d+)?)d$/.exec(s);
  if (days) return Number(days[1]) * 86400e3;
  const units = { h: 3600e3, m: 60e3, s: 1e3, ms: 1, us: 1e-3, 'µs': 1e-3, ns: 1e-6 };
  let total = 0;
  let rest = s;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/.exec(rest);
    if (!m) return NaN;
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

// relativeFrom is "now minus d ms" as from= takes it (now-5m), in the
// largest unit that divides d; '' for no duration.
function relativeFrom(ms) {
  if (!(ms >= 1000)) return '';
  const s = Math.round(ms / 1000);
  for (const [u, k] of [['d', 86400], ['h', 3600], ['m', 60]]) if (s % k === 0) return `now-${s / k}${u}`;
  return `now-${s}s`;
}

// windowOfRange is the window a rule made from a search gets: the length
// of a relative range (now-15m → 15m), else '' (the default).
function windowOfRange(from, to) {
  const m = /^now-(\d+)([smhdw])$/.exec(from || '');
  if (!m || to) return '';
  const n = Number(m[1]);
  if (m[2] === 'w') return `${n * 7}d`;
  return `${n}${m[2]}`;
}

// conditionText says what a rule compares: "count > 0", "p99 >= 1.5",
// "new template".
function conditionText(r) {
  const c = r.condition && typeof r.condition === 'object' ? r.condition : {};
  const op = c.op || '>';
  const v = Number(c.value ?? 0);
  if (r.new_patterns) return op === '>' && v === 0 ? 'any new template' : `new template ${op} ${fmtStat(v)}`;
  const subject = r.column ? r.column : (statsPipe(String(r.query || '')) ? 'first column' : 'count');
  return `${subject} ${op} ${fmtStat(v)}`;
}

// labelText writes a label set as name="value", name="value".
function labelText(labels) {
  if (!labels || typeof labels !== 'object') return '';
  return Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}="${v}"`).join(', ');
}

// labelChips shows a label set as small name=value chips (alertname, the
// same on every instance, left out).
function labelChips(labels) {
  const box = el('span', 'label-chips');
  const entries = Object.entries(labels && typeof labels === 'object' ? labels : {})
    .filter(([k]) => k !== 'alertname').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (!entries.length) box.append(el('span', 'muted', '(the rule as a whole)'));
  for (const [k, v] of entries) {
    const chip = el('span', 'label-chip');
    chip.append(textEl('span', 'label-name', k), document.createTextNode('='), textEl('span', 'label-value', v));
    box.append(chip);
  }
  return box;
}

// discoverURL is the page's address for a query over the last window in
// a view (Discover: the query before its pipes).
function discoverURL(query, window, view) {
  const q = view === 'visualize' ? query : splitPipes(query).query.trim();
  return stateURL({ view, q: q === '*' ? '' : q, from: relativeFrom(goDuration(window)), to: '', live: false, chart: '', mode: 'docs' });
}

const alertsView = {
  timer: 0,
  controller: null,
  list: [],
  invalid: {},
  loaded: false,
  selected: null, // the name of the rule whose detail is shown
  editing: null,  // the rule the form edits; null while creating
  armed: '',      // the rule whose Delete waits for its second click
  armTimer: 0,
  historyController: null,

  start() {
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      if (!document.hidden) this.load();
    }, ALERTS_EVERY_MS);
    if (!this.loaded) $('alerts-status').textContent = 'Loading…';
    this.load();
  },

  stop() {
    clearInterval(this.timer);
    this.timer = 0;
  },

  // load fetches the rules; a newer call cancels one in flight (which
  // may predate a change just made).
  async load() {
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller;
    try {
      const data = await api('GET', '/api/alerts', { signal: controller.signal });
      const list = data && Array.isArray(data.alerts) ? data.alerts : (Array.isArray(data) ? data : []);
      this.list = list.filter((r) => r && typeof r === 'object' && typeof r.name === 'string')
        .sort((a, b) => a.name.localeCompare(b.name));
      this.invalid = data && data.invalid && typeof data.invalid === 'object' ? data.invalid : {};
      this.loaded = true;
      setText($('alerts-error'), '');
      this.render();
      $('alerts-updated').textContent = `updated ${clockTime(Date.now())} · every ${ALERTS_EVERY_MS / 1000}s`;
    } catch (err) {
      if (err.name === 'AbortError') return;
      setText($('alerts-error'), err.message);
    } finally {
      if (this.controller === controller) {
        this.controller = null;
        $('alerts-status').textContent = '';
      }
    }
  },

  // render shows the rules. A rule's row is made once and then updated in
  // place, so that a refresh neither takes the focus from its buttons nor
  // swallows a click.
  render() {
    const body = $('alerts-body');
    const old = new Map([...body.children].map((tr) => [tr.dataset.name, tr]));
    const rows = this.list.map((r) => {
      const tr = old.get(r.name) || this.makeRow(r.name);
      this.fillRow(tr, r);
      return tr;
    });
    if (rows.length !== body.children.length || rows.some((tr, i) => body.children[i] !== tr)) body.replaceChildren(...rows);
    show($('alerts-table'), rows.length > 0);
    show($('alerts-empty'), rows.length === 0 && !Object.keys(this.invalid).length);
    const inv = Object.entries(this.invalid);
    setText($('alerts-invalid'), inv.map(([k, v]) => `invalid rule ${k}: ${v}`).join('\n'));
    renderAlertsTab(this.list.filter((r) => !r.disabled).reduce((n, r) =>
      n + (Array.isArray(r.instances) ? r.instances.filter((i) => i && i.state === 'firing').length : 0), 0));
    if (this.selected) {
      const r = this.list.find((x) => x.name === this.selected);
      if (r) this.renderDetail(r);
      else if (this.loaded) {
        this.closeDetail(false);
        replaceState(currentState('alerts'));
      }
    }
  },

  // makeRow makes the row of the rule named name: its cells, and the
  // buttons that stay across refreshes.
  makeRow(name) {
    const tr = el('tr', 'alert-row');
    tr.dataset.name = name;
    const labels = ['state', 'rule', 'condition', 'last value', 'every / window', 'last evaluation', ''];
    const classes = ['alert-state-cell', 'alert-name', 'alert-condition', 'num alert-value', 'alert-every', 'alert-last', 'alert-actions'];
    for (let i = 0; i < classes.length; i++) {
      const td = el('td', classes[i]);
      td.dataset.label = labels[i];
      tr.append(td);
    }
    const open = textEl('button', 'link alert-open', name);
    open.type = 'button';
    open.title = printable(`Show rule ${name}`);
    open.addEventListener('click', () => this.select(name));
    tr.children[1].append(open, el('span', 'alert-extra'));
    const edit = el('button', 'edit', 'Edit');
    edit.type = 'button';
    edit.setAttribute('aria-label', printable(`Edit rule ${name}`));
    edit.addEventListener('click', () => {
      const r = this.list.find((x) => x.name === name);
      if (r) this.openForm(r);
    });
    const del = el('button', 'remove', 'Delete');
    del.type = 'button';
    del.setAttribute('aria-label', printable(`Delete rule ${name}`));
    del.addEventListener('click', () => this.remove(name, del));
    tr.children[6].append(edit, del);
    return tr;
  },

  // fillRow shows rule r in its row.
  fillRow(tr, r) {
    tr.dataset.state = r.disabled ? 'disabled' : String(r.state || 'unknown');
    tr.classList.toggle('selected', r.name === this.selected);
    const [st, name, cond, val, every, last, actions] = tr.children;
    const inst = Array.isArray(r.instances) ? r.instances : [];
    st.replaceChildren(alertStateBadge(r.state, r.disabled));
    if (inst.length > 1) st.append(el('span', 'alert-instances', `${fmtNum(inst.length)} groups`));

    const extra = name.querySelector('.alert-extra');
    extra.replaceChildren();
    if (r.description) extra.append(textEl('span', 'alert-description', r.description));
    if (r.error) extra.append(textEl('span', 'alert-error', r.error));

    cond.replaceChildren(textEl('code', 'alert-query', r.query), textEl('span', 'alert-cond', conditionText(r)));
    if (r.for && goDuration(r.for) > 0) cond.append(el('span', 'alert-for', `for ${shortDuration(r.for)}`));

    const known = r.value !== null && r.value !== undefined;
    val.textContent = known ? fmtStat(r.value) : '—';
    val.title = known ? printable(r.value) : '';
    every.textContent = `${shortDuration(r.every || '1m')} / ${shortDuration(r.window || '5m')}`;
    last.replaceChildren();
    if (r.last_eval) {
      last.append(el('span', 'alert-last-time', clockTime(r.last_eval)), el('span', 'alert-ago', ago(r.last_eval)));
      last.title = printable(`${r.last_eval}` + (Number.isFinite(r.last_eval_seconds) ? ` · took ${fmtStat(r.last_eval_seconds)} s` : ''));
    } else {
      last.append(el('span', 'muted', 'not yet'));
      last.title = '';
    }
    const del = actions.querySelector('button.remove');
    const armed = this.armed === r.name;
    del.classList.toggle('armed', armed);
    del.textContent = armed ? 'Confirm delete' : 'Delete';
  },

  // remove deletes a rule on the second click (the first arms the button
  // for a few seconds, across refreshes).
  async remove(name, btn) {
    if (this.armed !== name) {
      this.armed = name;
      btn.classList.add('armed');
      btn.textContent = 'Confirm delete';
      clearTimeout(this.armTimer);
      this.armTimer = setTimeout(() => {
        this.armed = '';
        for (const b of document.querySelectorAll('#alerts-body button.remove.armed')) {
          b.classList.remove('armed');
          b.textContent = 'Delete';
        }
      }, 4000);
      return;
    }
    this.armed = '';
    clearTimeout(this.armTimer);
    btn.disabled = true;
    try {
      await api('DELETE', alertPath(name));
      setText($('alerts-error'), '');
      if (this.selected === name) this.closeDetail(true);
      if (this.editing && this.editing.name === name) this.closeForm();
    } catch (err) {
      setText($('alerts-error'), `Delete ${printable(name)}: ${err.message}`);
      btn.disabled = false;
    }
    this.list = this.list.filter((r) => r.name !== name);
    this.render();
    this.load();
  },

  // select shows a rule's detail (and puts it in the address).
  select(name) {
    this.selected = name;
    pushState(currentState('alerts'));
    for (const tr of document.querySelectorAll('#alerts-body tr')) tr.classList.toggle('selected', tr.dataset.name === name);
    const r = this.list.find((x) => x.name === name);
    $('ad-history-body').replaceChildren();
    show($('ad-history'), false);
    if (r) this.renderDetail(r);
    $('alert-detail').scrollIntoView({ block: 'nearest' });
  },

  closeDetail(push) {
    this.selected = null;
    show($('alert-detail'), false);
    for (const tr of document.querySelectorAll('#alerts-body tr.selected')) tr.classList.remove('selected');
    if (push) pushState(currentState('alerts'));
  },

  renderDetail(r) {
    show($('alert-detail'), true);
    $('ad-name').textContent = printable(r.name);
    $('ad-state').replaceChildren(alertStateBadge(r.state, r.disabled));
    setText($('ad-description'), r.description || '');
    setText($('ad-error'), r.error ? 'Last evaluation failed: ' + r.error : '');
    const pipes = hasPipes(String(r.query || ''));
    $('ad-discover').setAttribute('href', discoverURL(String(r.query || ''), r.window || '5m', 'discover'));
    $('ad-discover').title = printable(`The lines of ${splitPipes(String(r.query || '')).query.trim() || '*'} over the last ${shortDuration(r.window || '5m')}`);
    $('ad-visualize').setAttribute('href', discoverURL(String(r.query || ''), r.window || '5m', 'visualize'));
    show($('ad-visualize'), pipes);

    const dl = $('ad-facts');
    const facts = [
      ['query', r.query, 'mono'],
      ['condition', conditionText(r) + (goDuration(r.for) > 0 ? `, held for ${shortDuration(r.for)}` : '')],
      ['every', `${shortDuration(r.every || '1m')} over the last ${shortDuration(r.window || '5m')}`],
    ];
    if (r.new_patterns) facts.push(['new since', `templates not seen in the ${shortDuration(r.compare || '24h')} before the window`]);
    if (r.labels && Object.keys(r.labels).length) facts.push(['labels', labelText(r.labels), 'mono']);
    const targets = Array.isArray(r.notify) ? r.notify : [];
    facts.push(['notify', targets.length ? targets.map((t) => {
      const k = TARGET_KINDS.find(([kind]) => t && t[kind]);
      return k ? `${k[0]} ${t[k[0]]}` : JSON.stringify(t);
    }).join('\n') : 'nobody (state only)', 'mono']);
    facts.push(['last evaluation', r.last_eval
      ? `${clockTime(r.last_eval)} (${ago(r.last_eval)})` + (Number.isFinite(r.last_eval_seconds) ? `, took ${fmtStat(r.last_eval_seconds)} s` : '') + `; value ${r.value === null || r.value === undefined ? '—' : fmtStat(r.value)}`
      : 'not yet']);
    if (r.updated) facts.push(['changed', clockTime(r.updated)]);
    const rows = facts.map(([k, v, cls]) => {
      const div = el('div', 'ad-fact');
      div.dataset.fact = k;
      div.append(el('dt', '', k), textEl('dd', cls || '', v));
      return div;
    });
    dl.replaceChildren(...rows);

    const inst = Array.isArray(r.instances) ? r.instances : [];
    const body = inst.map((i) => {
      const tr = el('tr', 'ad-instance');
      tr.dataset.state = String(i.state || '');
      const labels = el('td');
      labels.append(labelChips(i.labels));
      // The evaluator names the query that finds this instance's lines.
      if (typeof i.search === 'string' && i.search) {
        const a = el('a', 'ad-instance-lines', 'its lines');
        a.setAttribute('href', discoverURL(i.search, r.window || '5m', 'discover'));
        a.title = printable(`${i.search} over the last ${shortDuration(r.window || '5m')}`);
        a.addEventListener('click', (e) => inPageLink(e, a));
        labels.append(a);
      }
      const state = el('td');
      state.append(alertStateBadge(i.state));
      tr.append(labels, state, el('td', 'num ad-value', fmtStat(i.value)),
        el('td', 'ad-since', i.active_since ? `${clockTime(i.active_since)} (${ago(i.active_since)})` : '—'),
        el('td', 'ad-fired', i.fired_at ? clockTime(i.fired_at) : 'not yet'));
      tr.children[2].dataset.label = 'value';
      tr.children[3].dataset.label = 'since';
      tr.children[4].dataset.label = 'fired';
      return tr;
    });
    $('ad-instances-body').replaceChildren(...body);
    show($('ad-instances'), body.length > 0);
    show($('ad-instances-none'), body.length === 0);
    this.loadHistory(r.name);
  },

  async loadHistory(name) {
    if (this.historyController) this.historyController.abort();
    const controller = new AbortController();
    this.historyController = controller;
    try {
      const data = await api('GET', alertPath(name) + '/history', { signal: controller.signal });
      if (this.selected !== name) return;
      const list = data && Array.isArray(data.history) ? data.history : [];
      const rows = list.filter((e) => e && typeof e === 'object').map((e) => {
        const tr = el('tr', 'ad-event');
        tr.dataset.to = String(e.to || '');
        const change = el('td', 'ad-change');
        change.append(alertStateBadge(e.from), el('span', 'ad-arrow', ' → '), alertStateBadge(e.to));
        const labels = el('td');
        labels.append(labelChips(e.labels));
        const time = el('td', 'ad-time', clockTime(e.time));
        time.title = printable(e.time);
        const value = el('td', 'num ad-value', fmtStat(e.value));
        value.dataset.label = 'value';
        tr.append(time, labels, change, value);
        return tr;
      });
      $('ad-history-body').replaceChildren(...rows);
      show($('ad-history'), rows.length > 0);
      show($('ad-history-none'), rows.length === 0);
      setText($('ad-history-error'), '');
    } catch (err) {
      if (err.name === 'AbortError') return;
      setText($('ad-history-error'), 'History: ' + err.message);
    } finally {
      if (this.historyController === controller) this.historyController = null;
    }
  },

  // openForm opens the form on rule (edit) or empty (create), with
  // prefill's fields (query, window, name, description) filled in.
  openForm(rule, prefill) {
    const r = rule || {};
    const p = prefill || {};
    this.editing = rule ? { ...rule } : null;
    this.clearErrors();
    $('alert-form-title').textContent = rule ? printable(`Edit rule ${rule.name}`) : 'New alert rule';
    $('af-submit').textContent = rule ? 'Save changes' : 'Create rule';
    $('af-name').value = r.name ?? p.name ?? '';
    $('af-name').readOnly = Boolean(rule);
    $('af-description').value = r.description ?? p.description ?? '';
    $('af-query').value = r.query ?? p.query ?? '';
    $('af-every').value = rule ? shortDuration(r.every || '') : '';
    $('af-window').value = rule ? shortDuration(r.window || '') : (p.window || '');
    $('af-for').value = rule && goDuration(r.for) > 0 ? shortDuration(r.for) : '';
    const c = r.condition && typeof r.condition === 'object' ? r.condition : {};
    $('af-op').value = ['>', '>=', '<', '<=', '==', '!='].includes(c.op) ? c.op : '>';
    $('af-value').value = c.value !== undefined && c.value !== null ? String(c.value) : '';
    $('af-column').value = r.column || '';
    $('af-new-patterns').checked = Boolean(r.new_patterns ?? p.new_patterns);
    $('af-compare').value = r.new_patterns && r.compare ? shortDuration(r.compare) : '';
    $('af-labels').value = Object.entries(r.labels || {}).map(([k, v]) => `${k}=${v}`).join(', ');
    $('af-disabled').checked = Boolean(r.disabled);
    $('af-targets').replaceChildren();
    for (const t of (Array.isArray(r.notify) ? r.notify : [])) {
      const k = TARGET_KINDS.find(([kind]) => t && t[kind]);
      if (k) this.addTarget(k[0], t[k[0]]);
    }
    this.syncForm();
    show($('alert-form'), true);
    $('alert-form').classList.toggle('editing', Boolean(rule));
    $('alert-form').scrollIntoView({ block: 'nearest' });
    (rule || !$('af-name').value ? (rule ? $('af-query') : $('af-name')) : $('af-every')).focus();
  },

  closeForm() {
    this.editing = null;
    this.clearErrors();
    $('alert-form').reset();
    $('af-targets').replaceChildren();
    show($('alert-form'), false);
  },

  isFormOpen() {
    return !$('alert-form').hidden;
  },

  // syncForm shows the inputs that apply: the column for a stats pipe,
  // the compare range for new patterns, and what the condition compares.
  syncForm() {
    const stats = Boolean(statsPipe($('af-query').value.trim()));
    const np = $('af-new-patterns').checked;
    show($('af-column-label'), stats && !np);
    show($('af-compare-label'), np);
    $('af-cond-subject').textContent = np ? 'new templates (1 each)' : stats ? printable($('af-column').value.trim() || 'first column') : 'matching lines';
    show($('af-targets-none'), $('af-targets').children.length === 0);
  },

  addTarget(kind, url) {
    const li = el('li', 'af-target');
    const n = $('af-targets').children.length;
    const sel = el('select', 'af-target-kind');
    sel.setAttribute('aria-label', `Target ${n + 1}: kind`);
    for (const [k, label] of TARGET_KINDS) {
      const o = el('option', '', label);
      o.value = k;
      sel.append(o);
    }
    sel.value = kind || 'webhook';
    const input = el('input', 'af-target-url');
    input.autocomplete = 'off';
    input.spellcheck = false;
    input.placeholder = 'https://…';
    input.setAttribute('aria-label', `Target ${n + 1}: URL`);
    input.id = `af-target-${Date.now().toString(36)}-${n}`;
    input.value = url || '';
    const rm = el('button', 'af-target-remove', 'Remove');
    rm.type = 'button';
    rm.setAttribute('aria-label', `Remove target ${n + 1}`);
    rm.addEventListener('click', () => {
      li.remove();
      this.syncForm();
    });
    li.append(sel, input, rm);
    $('af-targets').append(li);
    this.syncForm();
    return input;
  },

  clearErrors() {
    setText($('af-error'), '');
    for (const e of $('alert-form').querySelectorAll('.field-error')) e.remove();
    for (const i of $('alert-form').querySelectorAll('[aria-invalid]')) {
      i.removeAttribute('aria-invalid');
      i.removeAttribute('aria-describedby');
    }
  },

  // fieldSpot finds where the form shows an error about field (the
  // API's name: query, condition.op, labels.team, notify[1].slack): the
  // input and the element the message is appended to; null when the form
  // has no input for it.
  fieldSpot(field, sentTargets) {
    const t = /^notify\[(\d+)\]/.exec(field);
    if (t) {
      const li = sentTargets[Number(t[1])];
      if (li) return { input: li.querySelector('.af-target-url'), box: li };
    }
    const key = field.startsWith('labels') ? 'labels' : field === 'condition' ? 'condition.value' : field;
    const box = $('alert-form').querySelector(`[data-field="${CSS.escape(key)}"]`);
    if (!box) return null;
    if (key === 'notify') return { input: box.querySelector('input, select') || $('af-add-target'), box };
    const input = box.querySelector('input, select');
    return { input, box: box.closest('.af-condition') || box };
  },

  // showError puts a refusal next to the field it names (the answer's
  // "field", or a "field: message" prefix), else under the form. A query
  // the server cannot read shows the place marked.
  showError(err, sentTargets) {
    let field = err.field || '';
    if (!field && err.position > 0) field = 'query';
    if (!field && err.status === 409) field = 'name';
    if (!field) {
      const m = /^([A-Za-z_]\w*(?:\[\d+\])?(?:\.[\w]+)?):\s/.exec(err.message || '');
      if (m) field = m[1];
    }
    const spot = field ? this.fieldSpot(field, sentTargets || []) : null;
    if (!spot || !spot.input) {
      setText($('af-error'), err.message);
      return;
    }
    const box = el('span', 'field-error');
    box.id = (spot.input.id || 'af-x') + '-error';
    box.setAttribute('role', 'alert');
    box.dataset.field = field;
    appendText(box, err.message);
    if (field === 'query' && err.position > 0) {
      const q = $('af-query').value.trim();
      const i = charIndex(q, err.position);
      const len = charLength(q, i);
      const where = el('code', 'af-query-where');
      appendText(where, q.slice(Math.max(0, i - QUERY_ERROR_CONTEXT), i));
      const at = el('mark', len ? 'query-error-at' : 'query-error-at at-end');
      appendText(at, len ? q.slice(i, i + len) : ' ');
      at.title = `position ${err.position}`;
      where.append(at);
      appendText(where, q.slice(i + len, i + len + QUERY_ERROR_CONTEXT));
      box.append(where);
    }
    spot.box.append(box);
    spot.input.setAttribute('aria-invalid', 'true');
    spot.input.setAttribute('aria-describedby', box.id);
    spot.input.focus();
  },

  // readForm builds the rule the form describes, over the one being
  // edited so that what the form does not show (annotations) is kept.
  // It returns the rule and the target rows in the order sent.
  readForm() {
    const r = this.editing ? { ...this.editing } : {};
    for (const k of ['state', 'value', 'last_eval', 'last_eval_seconds', 'error', 'instances', 'history', 'created', 'updated']) delete r[k];
    const text = (id) => $(id).value.trim();
    r.name = text('af-name');
    r.query = text('af-query');
    const opt = (k, v) => {
      if (v) r[k] = v;
      else delete r[k];
    };
    opt('description', text('af-description'));
    opt('every', text('af-every'));
    opt('window', text('af-window'));
    opt('for', text('af-for'));
    const vtext = text('af-value');
    const value = vtext === '' ? 0 : Number(vtext);
    if (!Number.isFinite(value)) throw new APIError(`condition.value: "${vtext}" is not a number`, 0, 0, 'condition.value');
    r.condition = { op: $('af-op').value, value };
    r.new_patterns = $('af-new-patterns').checked;
    if (!r.new_patterns) delete r.new_patterns;
    opt('compare', r.new_patterns ? text('af-compare') : '');
    opt('column', statsPipe(r.query) && !r.new_patterns ? text('af-column') : '');
    const labels = {};
    for (const kv of $('af-labels').value.split(',').map((x) => x.trim()).filter(Boolean)) {
      const i = kv.indexOf('=');
      if (i <= 0) throw new APIError(`labels: "${kv}" must be written name=value`, 0, 0, 'labels');
      labels[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
    }
    if (Object.keys(labels).length) r.labels = labels;
    else delete r.labels;
    const sent = [];
    r.notify = [];
    for (const li of $('af-targets').children) {
      const url = li.querySelector('.af-target-url').value.trim();
      if (!url) continue;
      r.notify.push({ [li.querySelector('.af-target-kind').value]: url });
      sent.push(li);
    }
    if (!r.notify.length) delete r.notify;
    r.disabled = $('af-disabled').checked;
    if (!r.disabled) delete r.disabled;
    return { rule: r, sent };
  },

  async submit(e) {
    e.preventDefault();
    this.clearErrors();
    const button = $('af-submit');
    button.disabled = true;
    let sent = [];
    try {
      const f = this.readForm();
      sent = f.sent;
      if (this.editing) await api('PUT', alertPath(this.editing.name), { body: f.rule });
      else await api('POST', '/api/alerts', { body: f.rule });
      const name = f.rule.name;
      this.closeForm();
      this.selected = name;
      pushState(currentState('alerts'));
      await this.load();
      this.select(name);
    } catch (err) {
      if (err.name === 'AbortError') return;
      this.showError(err, sent);
    } finally {
      button.disabled = false;
    }
  },
};

// alertOnSearch opens the alert form with a query (and the window its
// range suggests) from Discover, Visualize or a saved search.
function alertOnSearch(prefill) {
  if (activeView !== 'alerts') {
    alertsView.selected = null;
    pushState(currentState('alerts'));
    showView('alerts');
  }
  alertsView.closeDetail(false);
  alertsView.openForm(null, prefill);
}

// inPageLink opens a link to this page (its href a state URL) in the
// page; a modified click is left to the browser (a new tab).
function inPageLink(e, a) {
  if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  history.pushState(null, '', a.getAttribute('href'));
  viz.stash = null;
  applyState();
}

// renderAlertsTab shows on the Alerts tab how many alerts (instances of
// rules) fire.
function renderAlertsTab(firing) {
  const c = $('alerts-tab-count');
  const n = Number(firing) || 0;
  c.textContent = n ? String(n) : '';
  c.title = n ? `${plural(n, 'alert', 'alerts')} firing` : '';
  show(c, n > 0);
}

function initAlerts() {
  $('alert-new').addEventListener('click', () => {
    alertsView.closeDetail(true);
    alertsView.openForm(null);
  });
  $('alert-form').addEventListener('submit', (e) => alertsView.submit(e));
  $('af-cancel').addEventListener('click', () => alertsView.closeForm());
  $('af-add-target').addEventListener('click', () => alertsView.addTarget('webhook', '').focus());
  for (const id of ['af-query', 'af-column', 'af-new-patterns']) $(id).addEventListener('input', () => alertsView.syncForm());
  $('af-new-patterns').addEventListener('change', () => alertsView.syncForm());
  $('ad-close').addEventListener('click', () => alertsView.closeDetail(true));
  $('ad-edit').addEventListener('click', () => {
    const r = alertsView.list.find((x) => x.name === alertsView.selected);
    if (r) alertsView.openForm(r);
  });
  for (const id of ['ad-discover', 'ad-visualize']) $(id).addEventListener('click', (e) => inPageLink(e, $(id)));
  $('alert-this').addEventListener('click', () => {
    const r = rangeFromInputs();
    const q = $('q').value.trim();
    // From the Patterns tab with "new since" on: a rule on new templates.
    const np = activeView === 'discover' && discover.mode === 'patterns' && patterns.newOn;
    alertOnSearch({ query: q || '*', window: windowOfRange(r.from, r.to), new_patterns: np });
  });
}

// ---------------------------------------------------------------------------
// Sources

// Which input shows an error for a field the API names ("paths[0]" → paths).
function formFieldKey(field) {
  const f = field.replace(/\[\d+\]$/, '');
  if (f.startsWith('fields.')) return 'fields';
  if (f === 'multiline') return 'multiline.pattern';
  return f;
}

// The ledger's states (package ledger): a badge's class, words and
// title. A state this page does not know shows as text with a neutral
// class.
const LEDGER_STATES = {
  complete: { cls: 'ok', text: 'complete', title: 'every acked byte is in the index' },
  catching_up: { cls: 'busy', text: 'catching up', title: 'bytes still being read, acked or indexed; nothing missing' },
  gap: { cls: 'bad', text: 'gap', title: 'acked bytes are not in the index' },
  unknown: { cls: 'warn', text: 'unknown', title: 'the index holds lines without byte ranges (sent by an older agent)' },
  shipped: { cls: 'ok', text: 'shipped', title: 'acked by Kafka; the indexers hold the rest' },
};

// ledgerBadge is a file's or source's completeness as a badge; a gap
// says how many bytes are missing.
function ledgerBadge(state, gapBytes, extraClass) {
  const k = LEDGER_STATES[state];
  const text = state === 'gap' ? `gap: ${fmtBytes(gapBytes)} missing` : (k ? k.text : printable(state || '?'));
  const b = el('span', `badge ledger ledger-${k ? k.cls : 'other'}${extraClass ? ' ' + extraClass : ''}`, text);
  b.title = k ? k.title : '';
  return b;
}

// ledgerSentence says what the ledger knows of a source in words.
function ledgerSentence(s) {
  const files = Number(s.files) || 0;
  switch (s.state) {
    case 'complete':
      return `complete: every acked byte of its ${plural(files, 'file', 'files')} is in the index`;
    case 'catching_up':
      return `catching up: ${fmtNum(s.catching_up)} of ${plural(files, 'file', 'files')} still being read or indexed; nothing missing`;
    case 'gap':
      return `gap: ${fmtBytes(s.gap_bytes)} acked but not in the index, in ${plural(s.with_gaps, 'file', 'files')} of ${fmtNum(files)}`;
    case 'unknown':
      return `completeness unknown for ${plural(s.unknown, 'file', 'files')}: indexed without byte ranges (an older agent)`;
    case 'shipped':
      return `shipped: every acked byte of its ${plural(files, 'file', 'files')} is in Kafka; the indexers hold the rest`;
    default:
      return printable(s.state);
  }
}

// MAX_GAPS_LISTED is how many gap ranges the ledger lists per file (its
// gap_bytes counts them all); MAX_FILES_SHOWN bounds the rows per source.
const MAX_GAPS_LISTED = 16;
const MAX_FILES_SHOWN = 200;

// bytesCell is a right-aligned table cell with a byte count (the exact
// number in its title), or a dash when there is none.
function bytesCell(cls, v) {
  const known = v !== undefined && v !== null && Number.isFinite(Number(v));
  const td = el('td', 'num ' + cls, known ? fmtBytes(v) : '—');
  if (known) td.title = `${fmtNum(v)} bytes`;
  return td;
}

// fileConcern orders files by how much they need a look (a gap first).
function fileConcern(f) {
  const l = f.ledger;
  if (l && l.state === 'gap') return 5;
  if (f.tail && f.tail.last_error) return 4;
  if (l && l.state === 'unknown') return 3;
  if (!l) return 2;
  if (l.state === 'catching_up') return 1;
  return 0;
}

// mergeFiles puts a source's ledger lines and the tailer's files side by
// side, by file identity: a file the tailer follows has both; one rotated
// away and let go only the ledger's; a refused path only the tailer's.
function mergeFiles(ledgerFiles, tailFiles) {
  const byID = new Map();
  for (const t of tailFiles) if (t.file_id) byID.set(String(t.file_id), t);
  const out = [];
  const used = new Set();
  for (const l of ledgerFiles) {
    const t = byID.get(String(l.file_id ?? ''));
    if (t) used.add(t);
    out.push({ path: l.path || (t && t.path) || '', id: String(l.file_id ?? ''), ledger: l, tail: t || null });
  }
  for (const t of tailFiles) {
    if (!used.has(t)) out.push({ path: t.path || '', id: String(t.file_id ?? ''), ledger: null, tail: t });
  }
  return out.sort((a, b) => String(a.path).localeCompare(String(b.path)) || a.id.localeCompare(b.id));
}

const sources = {
  controller: null,
  list: [],
  editing: null, // the source being edited, or null when adding

  start() {
    statusPoll.follow(this);
    this.load();
  },

  stop() {
    statusPoll.unfollow(this);
  },

  async load() {
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller;
    $('sources-status').textContent = 'Loading…';
    try {
      const data = await api('GET', '/api/sources', { signal: controller.signal });
      const list = (data && Array.isArray(data.sources)) ? data.sources : [];
      setText($('sources-error'), '');
      this.list = list;
      this.render(list);
      statusPoll.fetch(); // fills the rows just made
    } catch (err) {
      if (err.name === 'AbortError') return;
      setText($('sources-error'), err.message);
    } finally {
      if (this.controller === controller) {
        this.controller = null;
        $('sources-status').textContent = '';
      }
    }
  },

  render(list) {
    const body = $('sources-body');
    const rows = [];
    for (const src of list) rows.push(this.renderRow(src), this.renderFilesRow(src));
    body.replaceChildren(...rows);
    show($('sources-table'), list.length > 0);
    show($('sources-empty'), list.length === 0);
  },

  renderRow(src) {
    const tr = el('tr', 'source-row');
    tr.dataset.name = String(src.name ?? '');

    const name = el('td', 'source-name');
    name.append(textEl('span', 'name', src.name));
    if (Array.isArray(src.hosts) && src.hosts.length) {
      name.append(el('span', 'hosts', 'on ' + src.hosts.map(printable).join(', ')));
    }
    if (src.fields && Object.keys(src.fields).length) {
      name.append(el('span', 'hosts', Object.entries(src.fields).map(([k, v]) => printable(`${k}=${v}`)).join(', ')));
    }
    tr.append(name);

    // Each glob, and once /api/status is in (showStatus) what it matches
    // on this box.
    const paths = el('td', 'source-paths');
    for (const p of (Array.isArray(src.paths) ? src.paths : [])) {
      const g = el('div', 'glob');
      g.dataset.glob = String(p);
      g.append(textEl('code', 'path', p), el('span', 'glob-info'));
      paths.append(g);
    }
    tr.append(paths);

    tr.append(src.topic ? textEl('td', 'source-topic', src.topic) : el('td', 'source-topic muted', 'default'));

    const state = el('td', 'source-state');
    state.append(el('span', src.paused ? 'badge paused' : 'badge active', src.paused ? 'paused' : 'active'));
    tr.append(state);

    const actions = el('td', 'source-actions');
    const edit = el('button', 'edit', 'Edit');
    edit.type = 'button';
    edit.setAttribute('aria-label', `Edit source ${printable(src.name)}`);
    edit.addEventListener('click', () => this.edit(src));
    const pause = el('button', 'pause', src.paused ? 'Resume' : 'Pause');
    pause.type = 'button';
    pause.setAttribute('aria-label', `${src.paused ? 'Resume' : 'Pause'} source ${printable(src.name)}`);
    pause.addEventListener('click', () => this.setPaused(src, !src.paused, pause));
    const remove = el('button', 'remove', 'Remove');
    remove.type = 'button';
    remove.setAttribute('aria-label', `Remove source ${printable(src.name)}`);
    remove.addEventListener('click', () => this.remove(src.name, remove));
    actions.append(edit, pause, remove);
    tr.append(actions);
    return tr;
  },

  renderFilesRow(src) {
    const tr = el('tr', 'source-files');
    tr.dataset.name = String(src.name ?? '');
    const td = el('td');
    td.colSpan = 5;
    td.append(el('span', 'status', 'files: …'));
    tr.append(td);
    return tr;
  },

  // showStatus fills, from /api/status, what each source does on this
  // box: what its globs match, its completeness (the ledger) and its
  // files, each with the ledger's columns and gaps. (When the status
  // cannot be had, the list itself is still right; the next poll retries.)
  showStatus(st) {
    const group = (list, key) => {
      const m = new Map();
      for (const x of (Array.isArray(list) ? list : [])) {
        const k = String(x[key] ?? '');
        if (!m.has(k)) m.set(k, []);
        m.get(k).push(x);
      }
      return m;
    };
    const ledger = st.ledger && typeof st.ledger === 'object' ? st.ledger : null;
    const tailBySource = group(st.files, 'source');
    const ledgerBySource = group(ledger && ledger.files, 'source');
    const running = new Map((Array.isArray(st.sources) ? st.sources : []).map((s) => [String(s.name ?? ''), s]));
    const summaries = new Map((ledger && Array.isArray(ledger.sources) ? ledger.sources : []).map((s) => [String(s.source ?? ''), s]));
    const invalid = st.invalid_sources || {};
    const indexes = Boolean(st.index);
    for (const tr of $('sources-body').querySelectorAll('tr.source-files')) {
      const name = tr.dataset.name;
      const run = running.get(name);
      const sum = summaries.get(name);
      const files = mergeFiles(ledgerBySource.get(name) || [], tailBySource.get(name) || []);
      tr.firstChild.replaceChildren(this.renderFiles(run, sum, files, indexes));
      const row = tr.previousElementSibling;
      if (!row) continue;
      this.renderGlobs(row, run);
      const state = row.querySelector('.source-state');
      if (!state) continue;
      for (const b of state.querySelectorAll('.box-state')) b.remove();
      if (run && run.no_match) state.append(el('span', 'badge box-state no-match', 'no file matches'));
      if (sum) state.append(ledgerBadge(sum.state, sum.gap_bytes, 'box-state'));
      if (Object.hasOwn(invalid, name)) state.append(textEl('span', 'badge box-state invalid', 'invalid: ' + invalid[name]));
    }
  },

  // renderGlobs notes next to each glob what it matches on this box, or
  // why it could not be expanded.
  renderGlobs(row, run) {
    const globs = run && Array.isArray(run.paths) ? run.paths : [];
    row.querySelectorAll('.source-paths .glob').forEach((g, i) => {
      const info = g.querySelector('.glob-info');
      const p = globs[i];
      g.classList.remove('nomatch', 'failed');
      if (!p || p.glob !== g.dataset.glob) {
        info.replaceChildren();
        return;
      }
      const n = Number(p.matches) || 0;
      if (p.error) {
        g.classList.add('failed');
        info.replaceChildren(textEl('span', 'glob-error', p.error));
      } else {
        if (!n) g.classList.add('nomatch');
        info.replaceChildren(el('span', n ? 'glob-count' : 'glob-count none', n ? plural(n, 'file', 'files') : 'no file'));
      }
    });
  },

  renderFiles(run, sum, files, indexes) {
    const box = el('div', 'source-box');
    if (run && (run.no_match || run.warning)) {
      const w = el('p', 'source-warning');
      w.setAttribute('role', 'status');
      if (run.no_match) w.append(el('strong', '', 'Nothing collected on this box. '));
      // The tailer's warning, as a sentence; what each glob matches or
      // why it could not be read is next to it under Paths.
      const warning = String(run.warning || '');
      if (warning) appendText(w, warning.charAt(0).toUpperCase() + warning.slice(1) + (/[.!?]$/.test(warning) ? '' : '.'));
      box.append(w);
    }
    if (sum || (run && run.files)) box.append(this.renderSummary(run, sum));
    if (!files.length) {
      if (!run || !run.no_match) box.append(el('span', 'status', 'no files followed on this box'));
      return box;
    }
    const table = el('table', 'files');
    const head = el('tr');
    const heads = [['file'], ['state'], ['size', 'bytes in the file'], ['read', 'bytes read'],
      ['acked', 'bytes acked downstream (the checkpoint)'], ['indexed', 'acked bytes the index holds'],
      ['in flight', 'read but not acked, or acked and on its way to the index'], ['gap', 'acked bytes the index lacks'],
      [indexes ? 'lines indexed' : 'lines acked'], ['lines/s'], ['last error']];
    for (const [h, title] of heads) {
      const th = el('th', ['file', 'state', 'last error'].includes(h) ? '' : 'num', h);
      if (title) th.title = title;
      head.append(th);
    }
    const thead = el('thead');
    thead.append(head);
    const tbody = el('tbody');
    // A glob over thousands of files: the ones that need a look first,
    // then a count of the rest.
    let shown = files;
    if (files.length > MAX_FILES_SHOWN) {
      shown = [...files].sort((a, b) => fileConcern(b) - fileConcern(a)).slice(0, MAX_FILES_SHOWN);
    }
    for (const f of shown) {
      tbody.append(this.renderFileRow(f, heads, indexes));
      const gapRow = this.renderGapRow(f, heads.length);
      if (gapRow) tbody.append(gapRow);
    }
    table.append(thead, tbody);
    box.append(table);
    if (shown.length < files.length) {
      const rest = files.length - shown.length;
      const states = new Map();
      const listed = new Set(shown);
      for (const f of files.filter((x) => !listed.has(x))) {
        const k = f.ledger ? (LEDGER_STATES[f.ledger.state] ? LEDGER_STATES[f.ledger.state].text : 'other') : 'not in the ledger';
        states.set(k, (states.get(k) || 0) + 1);
      }
      box.append(el('p', 'files-more', `and ${plural(rest, 'more file', 'more files')} not shown: ` +
        [...states].map(([k, n]) => `${fmtNum(n)} ${k}`).join(', ')));
    }
    return box;
  },

  // renderFileRow is a file's row: the ledger's columns where the ledger
  // has the file, else the tailer's offsets.
  renderFileRow(f, heads, indexes) {
    const l = f.ledger;
    const t = f.tail;
    const tr = el('tr', 'file-row');
    tr.dataset.path = String(f.path ?? '');
    if (l) tr.dataset.state = LEDGER_STATES[l.state] ? l.state : 'other';
    tr.append(textEl('td', 'file-path', f.path));
    const state = el('td', 'file-state');
    if (l) state.append(ledgerBadge(l.state, l.gap_bytes));
    const how = [];
    if (t && t.state) how.push(printable(t.state));
    if (l && !l.followed) how.push('not followed');
    if (how.length) state.append(el('span', 'file-tail-state', how.join(' · ')));
    tr.append(state);
    if (l) {
      tr.append(bytesCell('file-size', l.size_bytes), bytesCell('file-read', l.read_bytes), bytesCell('file-acked', l.acked_bytes),
        bytesCell('file-indexed', indexes ? l.indexed_bytes : null), bytesCell('file-inflight', l.in_flight_bytes),
        bytesCell('file-gap' + (l.gap_bytes > 0 ? ' bad' : ''), l.gap_bytes));
    } else {
      tr.append(bytesCell('file-size', t.size), bytesCell('file-read', t.read_offset), bytesCell('file-acked', t.offset),
        bytesCell('file-indexed', null), bytesCell('file-inflight', null), bytesCell('file-gap', null));
    }
    const lines = l ? (indexes ? l.lines_indexed : l.lines_acked) : t.lines_acked;
    const lt = el('td', 'num file-lines', fmtNum(lines));
    if (l) lt.title = `read ${fmtNum(l.lines_read)} · acked ${fmtNum(l.lines_acked)} (since this process started)` + (indexes ? ` · indexed ${fmtNum(l.lines_indexed)}` : '');
    tr.append(lt);
    tr.append(el('td', 'num file-rate', t ? fmtRate(t.lines_per_sec) : '—'));
    tr.append(t && t.last_error ? textEl('td', 'file-error', t.last_error) : el('td', 'file-error muted', '—'));
    // Labels for narrow windows, where the header row is hidden.
    [...tr.children].forEach((td, i) => { if (heads[i]) td.dataset.label = heads[i][0]; });
    return tr;
  },

  // renderGapRow is the row under a file's that lists its gaps, each
  // range with its reason, and the ledger's note on it; null when the
  // ledger has neither.
  renderGapRow(f, span) {
    const l = f.ledger;
    const gaps = l && Array.isArray(l.gaps) ? l.gaps : [];
    if (!gaps.length && !(l && l.note)) return null;
    const gr = el('tr', 'gap-row');
    gr.dataset.path = String(f.path ?? '');
    const td = el('td');
    td.colSpan = span;
    if (gaps.length) {
      const ul = el('ul', 'gaps');
      for (const g of gaps) {
        const li = el('li', 'gap');
        li.append(el('span', 'gap-range', `bytes ${fmtNum(g.from)} – ${fmtNum(g.to)} (${fmtBytes(g.bytes)})`),
          document.createTextNode(': '), textEl('span', 'gap-reason', g.reason));
        ul.append(li);
      }
      if (gaps.length >= MAX_GAPS_LISTED) ul.append(el('li', 'gap', `and more ranges: ${fmtBytes(l.gap_bytes)} missing in all`));
      // Ranges dropped by retention alone do not make a file incomplete.
      if (!(l.gap_bytes > 0)) ul.classList.add('deliberate');
      td.append(ul);
    }
    if (l.note) td.append(textEl('p', 'gap-note', l.note));
    gr.append(td);
    return gr;
  },

  // renderSummary is one line on the source: files followed, open and
  // queued, and what the ledger says of them.
  renderSummary(run, sum) {
    const p = el('p', 'source-summary');
    const parts = [];
    if (run) {
      parts.push(plural(run.files, 'file followed', 'files followed'));
      if (run.files) parts.push(`${fmtNum(run.open)} open`);
      if (run.queued) parts.push(`${fmtNum(run.queued)} queued for a descriptor`);
    }
    if (parts.length) p.append(el('span', 'source-counts', parts.join(' · ')));
    if (sum) {
      if (parts.length) p.append(document.createTextNode(' — '));
      p.append(el('span', 'source-ledger', ledgerSentence(sum)));
    }
    return p;
  },
  // remove asks for a second click before deleting, instead of a confirm()
  // dialog that would block the page.
  async remove(name, button) {
    if (!button.classList.contains('armed')) {
      button.classList.add('armed');
      button.textContent = 'Confirm remove';
      setTimeout(() => {
        if (button.isConnected && button.classList.contains('armed')) {
          button.classList.remove('armed');
          button.textContent = 'Remove';
        }
      }, 4000);
      return;
    }
    button.disabled = true;
    try {
      await api('DELETE', '/api/sources/' + encodeURIComponent(name));
      setText($('sources-error'), '');
      if (this.editing && this.editing.name === name) this.resetForm();
    } catch (err) {
      setText($('sources-error'), `Remove ${printable(name)}: ${err.message}`);
    }
    this.load();
  },

  async setPaused(src, paused, button) {
    button.disabled = true;
    try {
      await api('PUT', '/api/sources/' + encodeURIComponent(src.name), { body: { ...src, paused } });
      setText($('sources-error'), '');
    } catch (err) {
      setText($('sources-error'), `${paused ? 'Pause' : 'Resume'} ${printable(src.name)}: ${err.message}`);
    }
    this.load();
  },

  edit(src) {
    this.resetForm();
    this.editing = src;
    $('source-form-title').textContent = 'Edit source ' + printable(src.name);
    $('source-name').value = src.name ?? '';
    $('source-name').readOnly = true;
    $('source-paths').value = (src.paths || []).join(', ');
    $('source-topic').value = src.topic || '';
    $('source-fields').value = Object.entries(src.fields || {}).map(([k, v]) => `${k}=${v}`).join(', ');
    $('source-hosts').value = (src.hosts || []).join(', ');
    $('source-max-line').value = src.max_line_bytes ? String(src.max_line_bytes) : '';
    const ml = src.multiline || {};
    $('source-ml-pattern').value = ml.pattern || '';
    $('source-ml-match').value = ml.match === 'start' ? 'start' : '';
    $('source-ml-max-lines').value = ml.max_lines ? String(ml.max_lines) : '';
    $('source-ml-timeout').value = ml.timeout || '';
    $('source-paused').checked = Boolean(src.paused);
    $('source-more').open = Boolean(src.multiline || src.hosts?.length || src.max_line_bytes ||
      (src.fields && Object.keys(src.fields).length));
    $('source-add').textContent = 'Save changes';
    show($('source-cancel'), true);
    $('source-form').classList.add('editing');
    $('source-form').scrollIntoView({ block: 'nearest' });
    $('source-paths').focus();
  },

  resetForm() {
    this.editing = null;
    $('source-form').reset();
    $('source-more').open = false;
    $('source-form').classList.remove('editing');
    $('source-name').readOnly = false;
    $('source-form-title').textContent = 'Add a source';
    $('source-add').textContent = 'Add source';
    show($('source-cancel'), false);
    this.clearErrors();
  },

  clearErrors() {
    setText($('source-error'), '');
    for (const e of $('source-form').querySelectorAll('.field-error')) e.remove();
    for (const i of $('source-form').querySelectorAll('[aria-invalid]')) {
      i.removeAttribute('aria-invalid');
      i.removeAttribute('aria-describedby');
    }
  },

  // showError puts an API message next to the input of the field it names
  // ("paths[0]: ..." goes next to Paths), or above the form.
  showError(msg) {
    const m = /^([A-Za-z_][\w]*(?:\[\d+\])?(?:\.[\w]+)?):\s/.exec(msg);
    const label = m && $('source-form').querySelector(`label[data-field="${CSS.escape(formFieldKey(m[1]))}"]`);
    if (!label) {
      setText($('source-error'), msg);
      return;
    }
    const input = label.querySelector('input, select');
    const err = textEl('span', 'field-error', msg);
    err.id = input.id + '-error';
    err.setAttribute('role', 'alert');
    label.append(err);
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', err.id);
    const details = label.closest('details');
    if (details) details.open = true;
    input.focus();
  },

  // readForm builds the source the form describes, over the one being
  // edited so that settings the form does not show are kept.
  readForm() {
    const list = (id) => $(id).value.split(',').map((p) => p.trim()).filter(Boolean);
    const src = this.editing ? { ...this.editing } : {};
    src.name = $('source-name').value.trim();
    src.paths = list('source-paths');
    const topic = $('source-topic').value.trim();
    if (topic) src.topic = topic;
    else delete src.topic;
    const fields = {};
    for (const kv of list('source-fields')) {
      const i = kv.indexOf('=');
      if (i <= 0) throw new APIError(`fields: "${kv}" must be written NAME=value`);
      fields[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
    }
    if (Object.keys(fields).length) src.fields = fields;
    else delete src.fields;
    const hosts = list('source-hosts');
    if (hosts.length) src.hosts = hosts;
    else delete src.hosts;
    const num = (id, field) => {
      const v = $(id).value.trim();
      if (!v) return 0;
      if (!/^\d+$/.test(v)) throw new APIError(`${field}: must be a whole number`);
      return Number(v);
    };
    const maxLine = num('source-max-line', 'max_line_bytes');
    if (maxLine) src.max_line_bytes = maxLine;
    else delete src.max_line_bytes;
    const pattern = $('source-ml-pattern').value;
    const maxLines = num('source-ml-max-lines', 'multiline.max_lines');
    const timeout = $('source-ml-timeout').value.trim();
    const match = $('source-ml-match').value;
    if (pattern || maxLines || timeout || match) {
      src.multiline = { pattern };
      if (match) src.multiline.match = match;
      if (maxLines) src.multiline.max_lines = maxLines;
      if (timeout) src.multiline.timeout = timeout;
    } else {
      delete src.multiline;
    }
    src.paused = $('source-paused').checked;
    return src;
  },

  async submit(e) {
    e.preventDefault();
    this.clearErrors();
    const button = $('source-add');
    button.disabled = true;
    try {
      const src = this.readForm();
      if (this.editing) await api('PUT', '/api/sources/' + encodeURIComponent(this.editing.name), { body: src });
      else await api('POST', '/api/sources', { body: src });
      this.resetForm();
      this.load();
    } catch (err) {
      this.showError(err.message);
    } finally {
      button.disabled = false;
    }
  },
};

function initSources() {
  $('source-form').addEventListener('submit', (e) => sources.submit(e));
  $('source-cancel').addEventListener('click', () => sources.resetForm());
}

// ---------------------------------------------------------------------------
// Status: pipeline health, refreshed every few seconds while shown.

const STATUS_EVERY_MS = 3000;

const statusView = {
  settingsOpen: false,
  prev: null, // the previous sample, for rates

  start() {
    if (!this.prev) $('status-updated').textContent = 'Loading…';
    statusPoll.follow(this);
    statusPoll.fetch();
  },

  stop() {
    statusPoll.unfollow(this);
  },

  showStatus(st) {
    const now = Date.now();
    setText($('status-error'), '');
    this.render(st, this.prev, now);
    this.prev = { st, at: now };
    $('status-updated').textContent = `updated ${clockTime(now)} · every ${STATUS_EVERY_MS / 1000}s`;
  },

  statusFailed(err) {
    setText($('status-error'), err.message);
  },

  card(title, key, health) {
    const c = el('section', 'card');
    c.dataset.card = key;
    const h = el('h3', '', title);
    if (health) h.append(el('span', 'health ' + health, { ok: 'ok', bad: 'problem', warn: 'check', off: 'off' }[health]));
    c.append(h);
    return c;
  },

  metrics(card, rows) {
    const dl = el('dl', 'metrics');
    for (const [label, value, key, cls] of rows) {
      dl.append(el('dt', '', label));
      const dd = textEl('dd', cls || '', value);
      if (key) dd.dataset.metric = key;
      dl.append(dd);
    }
    card.append(dl);
    return dl;
  },

  table(card, heads, rows, key) {
    const t = el('table', 'mini');
    if (key) t.dataset.table = key;
    const tr = el('tr');
    for (const h of heads) tr.append(el('th', '', h));
    const thead = el('thead');
    thead.append(tr);
    const tbody = el('tbody');
    for (const r of rows) {
      const row = el('tr');
      for (const v of r) row.append(textEl('td', '', v));
      tbody.append(row);
    }
    t.append(thead, tbody);
    card.append(t);
  },

  render(st, prev, now) {
    const rate = (get) => {
      if (!prev) return '…';
      const a = get(prev.st);
      const b = get(st);
      const dt = (now - prev.at) / 1000;
      if (!Number.isFinite(a) || !Number.isFinite(b) || dt <= 0) return '—';
      return fmtRate(Math.max(0, b - a) / dt);
    };
    const cards = [];
    const direct = st.mode === 'direct';

    const files = Array.isArray(st.files) ? st.files : [];
    const sum = (k) => files.reduce((s, f) => s + (Number(f[k]) || 0), 0);
    const failing = files.filter((f) => f.last_error).length;
    const tl = st.tailing;
    const polling = Boolean(tl && /^polling/.test(String(tl.changes || '')));
    let tailHealth = st.role === 'indexer' && !tl ? 'off' : 'ok';
    if (tl && (tl.queued_files > 0 || tl.unwatched_dirs > 0 || polling)) tailHealth = 'warn';
    if (failing) tailHealth = 'bad';
    const tailCard = this.card('Tailing', 'tail', tailHealth);
    const tailRows = [
      ['lines/s', fmtRate(sum('lines_per_sec')), 'tail-rate', 'big'],
      ['files followed', fmtNum(tl ? tl.files : files.length), 'tail-files'],
    ];
    if (tl) {
      tailRows.push(
        ['open files', `${fmtNum(tl.open_files)} of ${tl.file_budget > 0 ? fmtNum(tl.file_budget) : 'no limit'}`, 'tail-open'],
        ['queued for a descriptor', fmtNum(tl.queued_files), 'tail-queued', tl.queued_files ? 'warn-text' : ''],
        ['unwatched directories', fmtNum(tl.unwatched_dirs), 'tail-unwatched', tl.unwatched_dirs ? 'warn-text' : ''],
        ['changes noticed by', tl.changes || '—', 'tail-changes', polling ? 'warn-text' : ''],
        ['closed after idle', tl.close_inactive ? shortDuration(tl.close_inactive) : '—', 'tail-close-inactive'],
      );
    }
    tailRows.push(
      ['lag', fmtBytes(sum('lag_bytes')), 'tail-lag'],
      ['lines read', fmtNum(sum('lines_read')), 'tail-read'],
      ['lines acked', fmtNum(sum('lines_acked')), 'tail-acked'],
      ['files with errors', fmtNum(failing), 'tail-errors', failing ? 'bad' : ''],
    );
    this.metrics(tailCard, tailRows);
    if (tl && tl.queued_files > 0) {
      tailCard.append(el('p', 'card-note', 'More files match than --max-open-files allows open at once: the queued ones are read in turn.'));
    }
    cards.push(tailCard);
    cards.push(this.ledgerCard(st.ledger));

    const p = st.kafka_producer;
    const prodCard = this.card('Kafka producer', 'producer', direct || !p ? 'off' : (p.Errors || p.Dropped ? 'bad' : 'ok'));
    if (direct) {
      prodCard.append(el('p', 'muted kafka-off', 'Not used: direct mode, lines go straight from the files to the index.'));
    } else if (!p) {
      prodCard.append(el('p', 'muted kafka-off', `Not running in role ${printable(st.role || '?')}.`));
    } else {
      this.metrics(prodCard, [
        ['acked/s', rate((s) => s.kafka_producer && s.kafka_producer.Acked), 'produce-rate', 'big'],
        ['sent', fmtNum(p.Sent), 'produce-sent'],
        ['acked', fmtNum(p.Acked), 'produce-acked'],
        ['errors', fmtNum(p.Errors), 'produce-errors', p.Errors ? 'bad' : ''],
        ['retries', fmtNum(p.Retries), 'produce-retries'],
        ['in flight', fmtNum(p.InFlight), 'produce-inflight'],
        ['truncated', fmtNum(p.Truncated), 'produce-truncated'],
        ['too large', fmtNum(p.TooLarge), 'produce-toolarge'],
        ['dropped', fmtNum(p.Dropped), 'produce-dropped', p.Dropped ? 'bad' : ''],
      ]);
    }
    cards.push(prodCard);

    const c = st.kafka_consumer;
    const lag = c && Array.isArray(c.Lag) ? c.Lag : []; // {topic, partition, lag}
    const consCard = this.card('Kafka consumer', 'consumer', direct || !c ? 'off' : (c.IndexErrors ? 'bad' : 'ok'));
    if (direct) {
      consCard.append(el('p', 'muted kafka-off', 'Not used: direct mode.'));
    } else if (!c) {
      consCard.append(el('p', 'muted kafka-off', `Not running in role ${printable(st.role || '?')}.`));
    } else {
      this.metrics(consCard, [
        ['consumed/s', rate((s) => s.kafka_consumer && s.kafka_consumer.Consumed), 'consume-rate', 'big'],
        ['total lag', fmtNum(lag.reduce((s, l) => s + (Number(l.lag) || 0), 0)), 'consume-lag'],
        ['consumed', fmtNum(c.Consumed), 'consume-consumed'],
        ['instance id', c.InstanceID || 'none (dynamic member)', 'consume-instance'],
        ['sessions', fmtNum(c.Sessions), 'consume-sessions'],
        ['indexed', fmtNum(c.Indexed), 'consume-indexed'],
        ['commits', fmtNum(c.Commits), 'consume-commits'],
        ['decode fallbacks', fmtNum(c.DecodeFallbacks), 'consume-fallbacks'],
        ['index errors', fmtNum(c.IndexErrors), 'consume-errors', c.IndexErrors ? 'bad' : ''],
      ]);
      if (lag.length) this.table(consCard, ['topic', 'partition', 'lag'], lag.map((l) => [l.topic, String(l.partition), fmtNum(l.lag)]), 'lag');
    }
    cards.push(consCard);

    const ix = st.index;
    const ixCard = this.card('Index', 'index', ix ? 'ok' : 'off');
    if (!ix) {
      ixCard.append(el('p', 'muted', `No index in role ${printable(st.role || '?')}.`));
    } else {
      this.metrics(ixCard, [
        ['documents', fmtNum(ix.docs), 'index-docs', 'big'],
        ['written/s', rate((s) => s.index && s.index.docs_written), 'index-rate'],
        ['docs written', fmtNum(ix.docs_written), 'index-written'],
        ['batches written', fmtNum(ix.batches_written), 'index-batches'],
        ['queued batches', fmtNum(ix.queued_batches), 'index-queued'],
        ['shards', fmtNum(ix.shards || 0), 'index-shards'],
        ['size on disk', fmtBytes(ix.bytes || 0), 'index-bytes'],
        ['oldest shard from', ix.oldest ? new Date(ix.oldest).toLocaleString() : '—', 'index-oldest'],
        ['shards dropped by retention', fmtNum(ix.shards_dropped || 0), 'index-dropped'],
        ['retention', st.retention ? `${st.retention.max_age}${st.retention.max_bytes > 0 ? ', ' + fmtBytes(st.retention.max_bytes) : ''} (shards of ${st.retention.shard_span})` : '—', 'index-retention'],
      ]);
    }
    cards.push(ixCard);
    // In a fleet the indexers come first: whether answers are whole.
    const fleetCard = this.fleetCard(st.fleet);
    if (fleetCard) cards.unshift(fleetCard);
    const alertsCard = this.alertsCard(st.alerts, st.invalid_alerts);
    if (alertsCard) cards.push(alertsCard);
    cards.push(this.diskCard(st.disk));

    const etcd = st.etcd || {};
    const etcdCard = this.card('Settings (etcd)', 'etcd', etcd.healthy ? 'ok' : 'bad');
    this.metrics(etcdCard, [
      ['health', etcd.healthy ? 'healthy' : 'unreachable', 'etcd-health', etcd.healthy ? 'good' : 'bad'],
      ['process', `${printable(st.role || '?')} on ${printable(st.host || '?')}, ${printable(st.mode || '?')} mode`, 'mode'],
    ]);
    if (etcd.error) etcdCard.append(textEl('p', 'bad', etcd.error));
    cards.push(etcdCard);

    const und = [];
    for (const [src, reasons] of Object.entries(st.undelivered || {}).sort()) {
      for (const [reason, n] of Object.entries(reasons || {}).sort()) if (n) und.push([src, reason, fmtNum(n)]);
    }
    const undCard = this.card('Lines not delivered as written', 'undelivered', und.length ? 'warn' : 'ok');
    if (und.length) this.table(undCard, ['source', 'reason', 'lines'], und, 'undelivered');
    else undCard.append(el('p', 'muted', 'None: every line was delivered as written.'));
    cards.push(undCard);

    const inv = Object.entries(st.invalid_sources || {}).sort();
    const invCard = this.card('Invalid sources', 'invalid', inv.length ? 'bad' : 'ok');
    if (inv.length) this.table(invCard, ['source', 'why'], inv, 'invalid');
    else invCard.append(el('p', 'muted', 'None.'));
    cards.push(invCard);
    cards.push(this.settingsCard(st.settings));

    $('status-cards').replaceChildren(...cards);
  },

  // fleetCard is the fleet of indexers (/api/status "fleet"): which
  // indexers are live, what each holds of which partition, and whether
  // the live ones together hold every partition in full; null when the
  // status has no fleet (direct mode, or a logbox without one).
  fleetCard(f) {
    if (!f || typeof f !== 'object') return null;
    const objects = (v) => (Array.isArray(v) ? v.filter((x) => x && typeof x === 'object') : []);
    const strings = (v) => (Array.isArray(v) ? v.filter((x) => typeof x === 'string') : []);
    const indexers = objects(f.indexers).sort((a, b) => (String(a.id) < String(b.id) ? -1 : String(a.id) > String(b.id) ? 1 : 0));
    const parts = objects(f.partitions).sort((a, b) => comparePart(a.partition, b.partition));
    const missing = missingRanges(f.missing);
    const complete = f.complete === true;
    const card = this.card('Indexers', 'fleet', complete ? 'ok' : 'bad');
    card.classList.add('full');

    const summary = el('p', complete ? 'fleet-summary complete' : 'fleet-summary partial');
    summary.dataset.fleet = complete ? 'complete' : 'partial';
    if (complete) {
      summary.append(el('strong', '', 'complete'), document.createTextNode(': the live indexers hold every partition in full, so answers are whole.'));
    } else {
      const n = missing.length;
      summary.append(el('strong', '', n ? `partial: ${plural(n, 'range', 'ranges')} missing` : 'partial'),
        document.createTextNode(': answers lack the lines of Kafka offsets no live indexer holds'));
      if (n) {
        summary.append(document.createTextNode(' ('));
        missing.slice(0, 8).forEach((m, i) => {
          if (i) summary.append(document.createTextNode(', '));
          summary.append(textEl('code', '', m.partition), document.createTextNode(' ' + offsetRange(m.from, m.to)));
        });
        if (n > 8) summary.append(document.createTextNode(`, and ${fmtNum(n - 8)} more`));
        summary.append(document.createTextNode(')'));
      }
      summary.append(document.createTextNode('.'));
    }
    card.append(summary);
    this.metrics(card, [
      ['live indexers', fmtNum(indexers.length), 'fleet-indexers'],
      ['partitions', fmtNum(parts.length), 'fleet-partitions'],
      ['ranges missing', fmtNum(missing.length), 'fleet-missing', missing.length ? 'bad' : ''],
    ]).classList.add('fleet-metrics');

    // head makes the header row and labels the body's cells with it
    // (a narrow window shows the labels beside the values).
    const head = (names, tbody) => {
      const thead = el('thead');
      const tr = el('tr');
      for (const [h, cls] of names) tr.append(el('th', cls || '', h));
      thead.append(tr);
      for (const row of tbody.rows) [...row.cells].forEach((td, i) => { if (names[i]) td.dataset.label = names[i][0]; });
      return thead;
    };

    const it = el('table', 'mini fleet-table');
    it.dataset.table = 'indexers';
    const itb = el('tbody');
    for (const ix of indexers) {
      const tr = el('tr');
      tr.dataset.indexer = String(ix.id ?? '');
      const id = textEl('td', 'fleet-id', ix.id);
      if (f.self !== undefined && ix.id === f.self) id.append(el('span', 'badge fleet-self', 'this process'));
      const lagMap = ix.lag && typeof ix.lag === 'object' ? ix.lag : {};
      const lagSum = Object.values(lagMap).reduce((s, v) => s + (Number(v) || 0), 0);
      const lag = el('td', 'num fleet-lag', fmtNum(lagSum));
      lag.title = Object.entries(lagMap).sort(([a], [b]) => comparePart(a, b)).map(([p, v]) => `${printable(p)}: ${fmtNum(v)}`).join('\n');
      const assigned = strings(ix.assigned).sort(comparePart);
      const filling = new Set(strings(ix.filling));
      const cov = ix.coverage && typeof ix.coverage === 'object' ? ix.coverage : {};
      const covTd = el('td', 'fleet-coverage');
      const covParts = [...new Set([...assigned, ...Object.keys(cov)])].sort(comparePart);
      for (const p of covParts) {
        const line = el('div', 'fleet-cov');
        line.dataset.partition = p;
        line.append(textEl('code', 'fleet-part', p), document.createTextNode(' '));
        const ranges = coverageRanges(cov[p]);
        line.append(el('span', 'fleet-ranges', ranges.length ? ranges.map(([a, b]) => offsetRange(a, b)).join(', ') : 'none yet'));
        if (filling.has(p)) {
          const b = el('span', 'badge fleet-filling', 'filling');
          b.title = 'Reading the older offsets of this partition from Kafka';
          line.append(document.createTextNode(' '), b);
          line.classList.add('filling');
        }
        if (!assigned.includes(p)) {
          line.classList.add('not-assigned');
          line.title = 'Held from before; not assigned to this indexer now';
        }
        covTd.append(line);
      }
      if (!covParts.length) covTd.append(el('span', 'muted', 'none'));
      const updated = el('td', 'fleet-updated', ix.updated ? ago(ix.updated) : '—');
      if (ix.updated) updated.title = printable(ix.updated) + (ix.started ? `\nstarted ${printable(ix.started)}` : '');
      tr.append(id, textEl('td', 'fleet-group', ix.group ?? ''), textEl('td', 'fleet-addr', ix.addr ?? ''), textEl('td', 'fleet-host', ix.host ?? ''),
        textEl('td', 'fleet-assigned', assigned.length ? assigned.join(', ') : '—'), lag, covTd, updated);
      itb.append(tr);
    }
    it.append(head([['indexer'], ['group'], ['address'], ['host'], ['assigned partitions'], ['lag', 'num'], ['holds (offsets)'], ['updated']], itb), itb);
    if (indexers.length) card.append(it);
    else card.append(el('p', 'muted', 'No live indexer is registered.'));

    if (parts.length) {
      const byPart = new Map();
      for (const m of missing) {
        if (!byPart.has(m.partition)) byPart.set(m.partition, []);
        byPart.get(m.partition).push(m);
      }
      const pt = el('table', 'mini fleet-table');
      pt.dataset.table = 'partitions';
      const ptb = el('tbody');
      for (const p of parts) {
        const tr = el('tr');
        tr.dataset.partition = String(p.partition ?? '');
        const holders = strings(p.holders);
        const full = strings(p.complete_holders);
        const miss = byPart.get(p.partition) || [];
        if (miss.length) tr.classList.add('fleet-gap');
        const start = Number(p.start);
        const end = Number(p.end);
        const span = Number.isFinite(start) && Number.isFinite(end) && end <= start ? `empty (at ${end})` : offsetRange(p.start, p.end);
        tr.append(textEl('td', 'fleet-part', p.partition), el('td', 'fleet-span', span),
          textEl('td', 'fleet-holders', holders.length ? holders.join(', ') : 'none'),
          textEl('td', full.length || !miss.length ? 'fleet-complete' : 'fleet-complete bad', full.length ? full.join(', ') : 'none'),
          el('td', miss.length ? 'fleet-missing bad' : 'fleet-missing', miss.length ? miss.map((m) => offsetRange(m.from, m.to)).join(', ') : '—'));
        ptb.append(tr);
      }
      pt.append(head([['partition'], ['offsets'], ['holders'], ['complete holders'], ['missing']], ptb), ptb);
      card.append(pt);
    }
    card.append(el('p', 'card-note', 'Each partition is answered by one live indexer that holds it; a partition moved to an indexer that lacks its older lines is read again from Kafka (“filling”) as far as the topic still keeps them.'));
    return card;
  },

  // ledgerCard sums the completeness ledger per source.
  ledgerCard(ledger) {
    const srcs = ledger && Array.isArray(ledger.sources) ? ledger.sources : [];
    const worst = srcs.some((s) => s.state === 'gap') ? 'bad'
      : srcs.some((s) => s.state !== 'complete' && s.state !== 'shipped') ? 'warn' : 'ok';
    const card = this.card('Completeness', 'ledger', ledger ? (srcs.length ? worst : 'ok') : 'off');
    if (!ledger) {
      card.append(el('p', 'muted', 'This process collects no files (the agents that do show theirs).'));
      return card;
    }
    const count = (k) => srcs.reduce((n, s) => n + (Number(s[k]) || 0), 0);
    const files = count('files');
    const gap = count('gap_bytes');
    const parts = [];
    for (const [k, w] of [['complete', 'complete'], ['shipped', 'shipped'], ['catching_up', 'catching up'], ['with_gaps', 'with gaps'], ['unknown', 'unknown']]) {
      if (count(k)) parts.push(`${fmtNum(count(k))} ${w}`);
    }
    this.metrics(card, [
      ['files', fmtNum(files) + (parts.length ? ': ' + parts.join(', ') : ''), 'ledger-files'],
      ['bytes missing', fmtBytes(gap), 'ledger-gap', gap ? 'big bad' : 'big'],
    ]);
    if (!srcs.length) {
      card.append(el('p', 'muted', 'No files collected yet.'));
      return card;
    }
    const t = el('table', 'mini ledger-table');
    t.dataset.table = 'ledger';
    const hr = el('tr');
    for (const h of ['source', 'state', 'files']) hr.append(el('th', '', h));
    const thead = el('thead');
    thead.append(hr);
    const tbody = el('tbody');
    for (const s of srcs) {
      const tr = el('tr');
      tr.dataset.source = String(s.source ?? '');
      tr.append(textEl('td', 'ledger-source', s.source));
      const st = el('td');
      const b = ledgerBadge(s.state, s.gap_bytes);
      b.title = ledgerSentence(s) + ` (${fmtBytes(s.acked_bytes)} acked, ${fmtBytes(s.indexed_bytes)} indexed)`;
      st.append(b);
      tr.append(st, el('td', 'num', fmtNum(s.files)));
      tbody.append(tr);
    }
    t.append(thead, tbody);
    card.append(t);
    return card;
  },

  // alertsCard is alerting as this process sees it (the evaluator's
  // stats): alerts firing and pending, the rules in trouble (their entry,
  // query or last write failed) and the notification targets whose
  // deliveries fail; null when the status has no alerts part (an older
  // logbox, or a role that does not evaluate). invalid are the rule
  // entries in etcd the store refused.
  alertsCard(a, invalid) {
    if (!a || typeof a !== 'object') return null;
    const listOf = (v) => (Array.isArray(v) ? v.filter((x) => x && typeof x === 'object') : []);
    const trouble = listOf(a.rules_in_trouble);
    for (const [name, why] of Object.entries(invalid && typeof invalid === 'object' ? invalid : {})) {
      if (!trouble.some((r) => r.rule === name)) trouble.push({ rule: name, error: 'invalid entry: ' + why });
    }
    const targets = listOf(a.targets_in_trouble);
    const leader = a.leader === true;
    const firing = Number(a.firing) || 0;
    const card = this.card('Alerts', 'alerts', trouble.length || targets.length ? 'bad' : leader && firing ? 'warn' : 'ok');
    const rows = [];
    if (leader) {
      rows.push(
        ['firing', fmtNum(firing), 'alerts-firing', firing ? 'big bad' : 'big'],
        ['pending', fmtNum(a.pending || 0), 'alerts-pending', a.pending ? 'warn-text' : ''],
        ['rules', fmtNum(a.rules || 0), 'alerts-rules'],
        ['evaluations', fmtNum(a.evaluations || 0) + (a.evaluation_failures ? ` (${fmtNum(a.evaluation_failures)} failed)` : ''), 'alerts-evaluations', a.evaluation_failures ? 'warn-text' : ''],
      );
      const sent = Object.values(a.notifications && typeof a.notifications === 'object' ? a.notifications : {});
      const sum = (k) => sent.reduce((n, c) => n + (Number(c && c[k]) || 0), 0);
      rows.push(['notifications', `${fmtNum(sum('sent'))} sent` + (sum('failed') ? `, ${fmtNum(sum('failed'))} failed` : '') +
        (sum('dropped') ? `, ${fmtNum(sum('dropped'))} dropped` : ''), 'alerts-sent', sum('dropped') ? 'bad' : '']);
      rows.push(['waiting to be sent', fmtNum(a.outbox || 0), 'alerts-outbox']);
    }
    rows.push(['evaluated by', leader ? 'this process' : 'another process (the elected evaluator)', 'alerts-leader']);
    this.metrics(card, rows);
    if (trouble.length) this.table(card, ['rule in trouble', 'why'], trouble.map((r) => [r.rule ?? '?', r.error ?? '']), 'alert-rules');
    if (targets.length) {
      this.table(card, ['failing target', 'failures', 'last error'], targets.map((x) =>
        [`${x.kind ?? '?'} ${x.url ?? ''}`, fmtNum(x.consecutive_failures) + (x.queued ? ` (${fmtNum(x.queued)} queued)` : ''), x.last_error ?? '']), 'alert-targets');
    }
    if (!trouble.length && !targets.length) card.append(el('p', 'muted', leader ? 'Every rule evaluates and every target answers.' : 'The evaluator reports its troubles in its own status.'));
    const link = el('a', 'card-link', 'the rules');
    link.setAttribute('href', stateURL({ view: 'alerts' }));
    link.addEventListener('click', (e) => {
      if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      switchView('alerts');
    });
    card.append(link);
    return card;
  },

  // diskCard is the data dir's disk against --min-free-disk.
  diskCard(d) {
    const card = this.card('Disk', 'disk', !d ? 'off' : d.low ? 'bad' : d.error ? 'warn' : 'ok');
    if (!d) {
      card.append(el('p', 'muted', 'Not reported.'));
      return card;
    }
    let state = 'above the floor';
    if (d.low) state = (d.paused ? 'low: indexing paused' : 'low') + (d.since ? ' since ' + clockTime(d.since) : '');
    else if (!(d.min_free_bytes > 0)) state = 'no floor';
    this.metrics(card, [
      ['free', fmtBytes(d.free_bytes), 'disk-free', d.low ? 'big bad' : 'big'],
      ['floor', d.min_free_bytes > 0 ? fmtBytes(d.min_free_bytes) : 'off', 'disk-floor'],
      ['state', state, 'disk-state', d.low ? 'bad' : ''],
      ['data dir', d.dir || '—', 'disk-dir'],
      ['checked', d.checked ? clockTime(d.checked) : '—', 'disk-checked'],
    ]);
    if (d.error) card.append(textEl('p', 'bad', 'cannot measure: ' + d.error));
    card.append(el('p', 'card-note', d.low
      ? 'Free space on that disk (or shorten --retention), or lower --min-free-disk and send SIGHUP; everything resumes by itself.'
      : 'Below the floor (--min-free-disk) indexing pauses until there is room; nothing is lost.'));
    return card;
  },

  // settingsCard lists the settings in force, flag by flag (defaults
  // filled in), folded by default; it stays open across refreshes.
  settingsCard(settings) {
    const entries = Object.entries(settings && typeof settings === 'object' ? settings : {})
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const card = this.card('Effective settings', 'settings');
    card.classList.add('full');
    if (!entries.length) {
      card.append(el('p', 'muted', 'Not reported.'));
      return card;
    }
    const det = el('details', 'settings');
    det.open = this.settingsOpen;
    det.addEventListener('toggle', () => { this.settingsOpen = det.open; });
    det.append(el('summary', '', `${plural(entries.length, 'flag', 'flags')} in force, defaults filled in and what SIGHUP applied`));
    const dl = el('dl', 'settings-list');
    for (const [k, v] of entries) {
      const row = el('div', 'setting');
      row.dataset.flag = k;
      row.append(textEl('dt', '', '--' + k));
      row.append(v === '' ? el('dd', 'muted', '—') : textEl('dd', '', v));
      dl.append(row);
    }
    det.append(dl);
    card.append(det);
    return card;
  },
};

// ---------------------------------------------------------------------------
// /api/status has one poller for the whole page: every few seconds while
// the page is visible, for the disk banner, and every STATUS_EVERY_MS
// while the Sources or Status view is shown, for that view too.

const HEALTH_EVERY_MS = 5000;

const statusPoll = {
  timer: 0,
  busy: false,
  again: false, // a fetch was asked for while one was in flight
  view: null,   // the view shown that reads each status (showStatus, statusFailed)

  start() {
    document.addEventListener('visibilitychange', () => this.fetch());
    this.schedule();
    this.fetch();
  },

  // follow hands each status from now on to view too; null: to none.
  follow(view) {
    if (this.view === view) return;
    this.view = view;
    this.schedule();
  },

  unfollow(view) {
    if (this.view === view) this.follow(null);
  },

  schedule() {
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      if (!this.busy) this.fetch();
    }, this.view ? STATUS_EVERY_MS : HEALTH_EVERY_MS);
  },

  // fetch gets the status now, or right after the one in flight (which
  // may predate what the caller just changed).
  async fetch() {
    if (document.hidden) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    let st = null;
    let failed = null;
    try {
      st = (await api('GET', '/api/status')) || {};
    } catch (err) {
      failed = err;
    }
    this.busy = false;
    if (this.again) {
      this.again = false;
      this.fetch();
    }
    if (failed) {
      // The banner keeps its last state.
      if (this.view && this.view.statusFailed) this.view.statusFailed(failed);
      return;
    }
    renderDiskBanner(st.disk);
    partialAnswers.fleetNow(st.fleet);
    // Only the elected evaluator counts alerts; the Alerts view counts
    // them from the rules while it is shown.
    if (st.alerts && st.alerts.leader === true && activeView !== 'alerts') renderAlertsTab(st.alerts.firing);
    if (this.view) this.view.showStatus(st);
  },
};

// renderDiskBanner shows a data disk below --min-free-disk on every view;
// the banner goes by itself once there is room.
function renderDiskBanner(d) {
  const b = $('disk-banner');
  if (!d || !d.low) {
    b.replaceChildren();
    show(b, false);
    return;
  }
  const title = el('strong', 'disk-title', d.paused ? 'Indexing is paused: the data disk is nearly full.' : 'The data disk is nearly full.');
  const what = el('span', 'disk-what');
  what.append(document.createTextNode(` ${fmtBytes(d.free_bytes)} free on `), textEl('code', 'disk-dir', d.dir),
    document.createTextNode(`, below the floor of ${fmtBytes(d.min_free_bytes)} (--min-free-disk)` +
      (d.since ? ` since ${clockTime(d.since)} (${ago(d.since)}).` : '.')));
  const effect = el('span', 'disk-effect', d.paused
    ? ' Nothing is lost: new lines wait in their files (or in Kafka), searching still works, and indexing resumes by itself once there is room.'
    : ' This agent keeps shipping, but its checkpoints and settings need room on that disk.');
  const fix = el('span', 'disk-fix', ' To fix: free space on that disk (or shorten --retention), or lower --min-free-disk and send SIGHUP.');
  b.replaceChildren(title, what, effect, fix);
  show(b, true);
}

// ---------------------------------------------------------------------------
// Start-up, tabs, keyboard

// applyState makes the page match the URL (on load and on back/forward).
function applyState() {
  const state = readState();
  $('q').value = state.q;
  setRange(state.from, state.to);
  if (state.live !== tail.on) {
    tail.on = state.live; // connect after the search below set the query
    tail.setOn(state.live);
  }
  viz.chart = state.chart;
  patterns.setNew(state.newp);
  setMode(state.mode);
  alertsView.selected = state.rule || null;
  if (!alertsView.selected) alertsView.closeDetail(false);
  showView(state.view);
  if (state.view === 'discover') ensureSearched();
  if (state.view === 'visualize') viz.ensure();
}

// ensureSearched runs a search unless the results shown already belong to
// the query and range in the inputs.
function ensureSearched() {
  const p = discover.params;
  const r = rangeFromInputs();
  const same = p && p.q === $('q').value.trim() && p.from === r.from && p.to === r.to;
  if (!same) search(false);
  else if (discover.mode === 'patterns') patterns.ensure(p);
}

function isEditable(target) {
  return target instanceof HTMLElement &&
    (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}

// closeDetail closes the innermost open detail; false when none was open.
function closeDetail() {
  if (contextPanel.isOpen()) {
    contextPanel.close();
    return true;
  }
  const open = document.querySelectorAll('#results .hit.expanded');
  if (open.length) {
    for (const li of open) {
      li.classList.remove('expanded');
      li.querySelector('.hit-details')?.remove();
      const b = li.querySelector('.expand');
      b.setAttribute('aria-expanded', 'false');
      b.textContent = '▸';
    }
    return true;
  }
  if (!$('save-panel').hidden) {
    saved.toggleSave(false);
    return true;
  }
  if (!$('saved-panel').hidden) {
    saved.toggleList(false);
    return true;
  }
  if (!$('syntax-help').hidden) {
    show($('syntax-help'), false);
    $('syntax-toggle').setAttribute('aria-expanded', 'false');
    return true;
  }
  if (activeView === 'alerts' && alertsView.isFormOpen()) {
    alertsView.closeForm();
    return true;
  }
  if (activeView === 'alerts' && alertsView.selected) {
    alertsView.closeDetail(true);
    return true;
  }
  if (sources.editing && activeView === 'sources') {
    sources.resetForm();
    return true;
  }
  return false;
}

function init() {
  statusPoll.start();
  initDiscover();
  initVisualize();
  initSaved();
  initPatterns();
  initAlerts();
  initSources();
  for (const v of views) $('tab-' + v).addEventListener('click', () => switchView(v));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      if (closeDetail()) {
        e.preventDefault();
        return;
      }
      if (e.target === $('q')) $('q').blur();
      return;
    }
    if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey || isEditable(e.target)) return;
    e.preventDefault();
    if (activeView !== 'discover' && activeView !== 'visualize') switchView('discover');
    $('q').focus();
    $('q').select();
  });
  window.addEventListener('popstate', applyState);
  applyState();
}

init();
