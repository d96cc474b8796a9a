// logbox search page.
//
// Security rule for this file: everything that comes from the API (log lines,
// hosts, sources, field names, error messages) is untrusted. It is put into
// the page only as text (textContent, createTextNode, attribute values via
// setAttribute on non-URL attributes) and never parsed as HTML. Control
// characters are made visible (ESC shows as ␛) so terminal escapes are inert.
//
// Layout of this file: small helpers, the API client, URL state, then one
// section per view (Discover, Sources), then start-up. New views (histogram,
// facets, live tail) get their own section and hook into showView/applyState.
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

class APIError extends Error {}

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
  let data = null;
  if (resp.status !== 204) {
    const text = await resp.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
        if (resp.ok) throw new APIError(`Unexpected response from ${path} (not JSON)`);
      }
    }
  }
  if (!resp.ok) {
    const msg = data && typeof data.error === 'string' && data.error ? data.error : `${resp.status} ${resp.statusText}`;
    throw new APIError(msg);
  }
  return data;
}

// ---------------------------------------------------------------------------
// URL state: the view, the query and the time range live in the address so
// that a link is shareable and back/forward work.

function readState() {
  const p = new URLSearchParams(location.search);
  return {
    view: p.get('tab') === 'sources' ? 'sources' : 'discover',
    q: p.get('q') || '',
    from: p.get('from') || '',
    to: p.get('to') || '',
  };
}

function stateURL(state) {
  const p = new URLSearchParams();
  if (state.view === 'sources') p.set('tab', 'sources');
  if (state.q) p.set('q', state.q);
  if (state.from) p.set('from', state.from);
  if (state.to) p.set('to', state.to);
  const s = p.toString();
  return location.pathname + (s ? '?' + s : '');
}

function pushState(state) {
  const url = stateURL(state);
  if (url !== location.pathname + location.search) history.pushState(null, '', url);
}

function currentState(view) {
  return { view, q: $('q').value.trim(), from: $('range').value, to: discover.to };
}

// ---------------------------------------------------------------------------
// Views

const views = ['discover', 'sources'];
let activeView = '';

function showView(view) {
  activeView = view;
  for (const v of views) {
    show($('view-' + v), v === view);
    const tab = $('tab-' + v);
    tab.setAttribute('aria-selected', String(v === view));
    tab.classList.toggle('active', v === view);
  }
  document.title = view === 'sources' ? 'Sources · logbox' : 'logbox';
  if (view === 'sources') sources.load();
}

// ---------------------------------------------------------------------------
// Discover

const PAGE_SIZE = 50;

const discover = {
  controller: null, // AbortController of the request in flight
  params: null,     // parameters of the search shown, reused by Load more
  cursor: '',
  shown: 0,
  total: 0,
  to: '',
};

// setRange selects a time range, adding an option for a value that came from
// a shared link and is not one of the presets (e.g. now-2h or a timestamp).
function setRange(from, to) {
  const select = $('range');
  if (![...select.options].some((o) => o.value === from)) {
    const opt = el('option', 'custom', printable(to ? `${from} → ${to}` : `Since ${from}`));
    opt.value = from;
    select.insertBefore(opt, select.firstChild);
  }
  select.value = from;
}

function renderHit(hit) {
  const li = el('li', 'hit');
  const meta = el('div', 'meta');

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
  li.append(meta);

  li.append(textEl('pre', 'line', hit.line));

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
  $('hit-count').textContent = plural(discover.total, 'hit', 'hits');
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

// search runs a new search (append false) or fetches the next page of the
// current one (append true). A newer call cancels an older one in flight.
async function search(append) {
  if (discover.controller) discover.controller.abort();
  const controller = new AbortController();
  discover.controller = controller;

  let params;
  if (append) {
    params = { ...discover.params, cursor: discover.cursor };
  } else {
    params = { q: $('q').value.trim(), from: $('range').value, to: discover.to, limit: PAGE_SIZE };
    discover.params = params;
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
    const hits = (data && Array.isArray(data.hits)) ? data.hits : [];
    const frag = document.createDocumentFragment();
    for (const hit of hits) frag.append(renderHit(hit));
    if (append) {
      results.append(frag);
      discover.shown += hits.length;
    } else {
      results.replaceChildren(frag);
      discover.shown = hits.length;
    }
    discover.total = Number.isFinite(data && data.total) ? data.total : discover.shown;
    discover.cursor = (data && typeof data.cursor === 'string') ? data.cursor : '';
    renderSummary();
    if (!append && hits.length === 0) showEmptyState(params);
  } catch (err) {
    if (err.name === 'AbortError') return;
    if (!append) {
      results.replaceChildren();
      discover.cursor = '';
      discover.shown = 0;
      $('hit-count').textContent = '';
      show($('load-more'), false);
    }
    $('search-status').textContent = '';
    setText($('search-error'), err.message);
  } finally {
    if (discover.controller === controller) {
      discover.controller = null;
      results.removeAttribute('aria-busy');
      results.classList.remove('loading');
      $('load-more').disabled = false;
    }
  }
}

function initDiscover() {
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    pushState(currentState('discover'));
    search(false);
  });
  $('range').addEventListener('change', () => {
    discover.to = ''; // a preset range ends now
    pushState(currentState('discover'));
    search(false);
  });
  $('load-more').addEventListener('click', () => search(true));
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
  $('q').addEventListener('keydown', (e) => {
    if (e.key === 'Escape') $('q').blur();
  });
}

// ---------------------------------------------------------------------------
// Sources

const sources = {
  controller: null,

  async load() {
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller;
    $('sources-status').textContent = 'Loading…';
    try {
      const data = await api('GET', '/api/sources', { signal: controller.signal });
      const list = (data && Array.isArray(data.sources)) ? data.sources : [];
      setText($('sources-error'), '');
      this.render(list);
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
    const rows = list.map((src) => this.renderRow(src));
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
    tr.append(name);

    const paths = el('td', 'source-paths');
    for (const p of (Array.isArray(src.paths) ? src.paths : [])) paths.append(textEl('code', 'path', p));
    tr.append(paths);

    tr.append(src.topic ? textEl('td', 'source-topic', src.topic) : el('td', 'source-topic muted', 'default'));

    const state = el('td', 'source-state');
    state.append(el('span', src.paused ? 'badge paused' : 'badge active', src.paused ? 'paused' : 'active'));
    tr.append(state);

    const actions = el('td', 'source-actions');
    const remove = el('button', 'remove', 'Remove');
    remove.type = 'button';
    remove.setAttribute('aria-label', `Remove source ${printable(src.name)}`);
    remove.addEventListener('click', () => this.remove(src.name, remove));
    actions.append(remove);
    tr.append(actions);
    return tr;
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
    } catch (err) {
      setText($('sources-error'), `Remove ${printable(name)}: ${err.message}`);
    }
    this.load();
  },

  async add(e) {
    e.preventDefault();
    const errorBox = $('source-error');
    setText(errorBox, '');
    const src = {
      name: $('source-name').value.trim(),
      paths: $('source-paths').value.split(',').map((p) => p.trim()).filter(Boolean),
    };
    const topic = $('source-topic').value.trim();
    if (topic) src.topic = topic;
    const button = $('source-add');
    button.disabled = true;
    try {
      await api('POST', '/api/sources', { body: src });
      $('source-form').reset();
      this.load();
    } catch (err) {
      setText(errorBox, err.message);
    } finally {
      button.disabled = false;
    }
  },
};

function initSources() {
  $('source-form').addEventListener('submit', (e) => sources.add(e));
}

// ---------------------------------------------------------------------------
// Start-up, tabs, keyboard

// applyState makes the page match the URL (on load and on back/forward).
function applyState() {
  const state = readState();
  discover.to = state.to;
  $('q').value = state.q;
  setRange(state.from, state.to);
  showView(state.view);
  if (state.view === 'discover') ensureSearched();
}

// ensureSearched runs a search unless the results shown already belong to
// the query and range in the inputs.
function ensureSearched() {
  const p = discover.params;
  const same = p && p.q === $('q').value.trim() && p.from === $('range').value && p.to === discover.to;
  if (!same) search(false);
}

function isEditable(target) {
  return target instanceof HTMLElement &&
    (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}

function init() {
  initDiscover();
  initSources();
  for (const v of views) {
    $('tab-' + v).addEventListener('click', () => {
      if (v === activeView) return;
      pushState(currentState(v));
      showView(v);
      if (v === 'discover') ensureSearched();
    });
  }
  document.addEventListener('keydown', (e) => {
    if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey || isEditable(e.target)) return;
    e.preventDefault();
    if (activeView !== 'discover') {
      pushState(currentState('discover'));
      showView('discover');
      ensureSearched();
    }
    $('q').focus();
    $('q').select();
  });
  window.addEventListener('popstate', applyState);
  applyState();
}

init();
