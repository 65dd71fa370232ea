// The dashboard: presentation only.  It reads holdfast's routes and the
// Age / Cache-Status headers of their answers; it knows nothing of the APIs
// behind them, of retries or of caches.  Each panel stands alone: one
// failing never blanks the others.
'use strict';

const REFRESH_MS = 5000;
const TICKERS = ['AAPL', 'MSFT', 'GOOG', 'AMZN'];
const CURRENCIES = ['EUR', 'GBP', 'JPY', 'CHF', 'CAD', 'AUD'];

const served = { quotes: 0, news: 0, fx: 0 };

// --- talking to holdfast ----------------------------------------------------

// One GET through holdfast: the body (JSON or null), whether it is a stale
// copy, and when the data was fetched from the API (ms since the epoch).
async function get(api, path) {
  const res = await fetch(path, { cache: 'no-store' });
  served[api]++;
  const status = res.headers.get('Cache-Status') || '';
  const age = parseInt(res.headers.get('Age') || '0', 10) || 0;
  const date = Date.parse(res.headers.get('Date') || '') || Date.now();
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    body = null;
  }
  return {
    ok: res.ok && body !== null,
    status: res.status,
    body,
    // a stale copy: holdfast says so in Cache-Status (RFC 9211)
    stale: /fwd=stale/.test(status) || /detail="background"/.test(status),
    fetchedAt: date - age * 1000,
  };
}

// --- words a person reads ---------------------------------------------------

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 45) return 'a few seconds ago';
  const m = Math.round(s / 60);
  if (m < 60) return m === 1 ? '1 minute ago' : `${m} minutes ago`;
  const h = Math.round(m / 60);
  if (h < 48) return h === 1 ? '1 hour ago' : `${h} hours ago`;
  const d = Math.round(h / 24);
  return `${d} days ago`;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

const WHAT = { quotes: 'prices', news: 'news', fx: 'exchange rates' };

function staleText(api, at) {
  const it = api === 'news' ? 'it' : 'them';
  return `Showing ${WHAT[api]} from ${ago(at)}. We're having trouble refreshing ${it} — ` +
    'please check back in a few minutes.';
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

// --- panels -----------------------------------------------------------------

function panel(api) {
  const root = document.querySelector(`[data-panel="${api}"]`);
  return {
    root,
    asof: root.querySelector('[data-role="asof"]'),
    banner: root.querySelector('[data-role="banner"]'),
    content: root.querySelector('[data-role="content"]'),
    hasData: false,
  };
}

const panels = { quotes: panel('quotes'), news: panel('news'), fx: panel('fx') };

// Show what came back: the data with its age, a banner when it is an old
// copy, a friendly empty state when there is nothing at all.
function show(api, results, render) {
  const p = panels[api];
  const good = results.filter((r) => r.ok);
  if (good.length === 0) {
    if (!p.hasData) {
      p.content.replaceChildren(el('p', { class: 'empty' },
        `The ${WHAT[api]} are unavailable right now. We'll keep trying — ` +
        'this page updates by itself.'));
      p.asof.textContent = '';
      p.banner.hidden = true;
      p.root.dataset.state = 'empty';
    } else {
      // keep what is on screen, and say it is getting old
      p.banner.textContent = staleText(api, p.lastAt);
      p.asof.textContent = `as of ${clock(p.lastAt)} — ${ago(p.lastAt)}`;
      p.banner.hidden = false;
      p.root.dataset.state = 'stale';
    }
    return;
  }
  render(p.content, good);
  p.hasData = true;
  const oldest = Math.min(...good.map((r) => r.fetchedAt));
  p.asof.textContent = `as of ${clock(oldest)} — ${ago(oldest)}`;
  p.lastAt = oldest;
  const stale = good.some((r) => r.stale) || good.length < results.length;
  if (stale)
    p.banner.textContent = staleText(api, oldest);
  p.banner.hidden = !stale;
  p.root.dataset.state = stale ? 'stale' : 'fresh';
}

function sparkline(history) {
  const closes = (history || []).map((h) => Number(h.close)).filter((v) => isFinite(v));
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 100 28');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('aria-hidden', 'true');
  if (closes.length < 2) return svg;
  const lo = Math.min(...closes), hi = Math.max(...closes), span = hi - lo || 1;
  const pts = closes.map((v, i) =>
    `${(i * 100 / (closes.length - 1)).toFixed(1)},${(26 - (v - lo) * 24 / span).toFixed(1)}`);
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', pts.join(' '));
  line.setAttribute('fill', 'none');
  line.setAttribute('stroke', closes[closes.length - 1] >= closes[0] ? '#0a7a3e' : '#b3261e');
  line.setAttribute('stroke-width', '1.5');
  line.setAttribute('vector-effect', 'non-scaling-stroke');
  svg.append(line);
  return svg;
}

function renderQuotes(content, results) {
  const rows = results.map((r) => {
    const q = r.body;
    const ch = Number(q.change_percent ?? q.change ?? 0);
    const cls = ch >= 0 ? 'up' : 'down';
    const price = Number(q.price);
    return el('div', { class: 'quote', 'data-symbol': q.symbol },
      el('span', { class: 'sym' }, String(q.symbol)),
      sparkline(q.history),
      el('span', { class: 'price' },
        isFinite(price) ? price.toFixed(2) : '–', ' ',
        el('span', { class: cls }, `${ch >= 0 ? '▲' : '▼'} ${Math.abs(ch).toFixed(2)}%`)));
  });
  content.replaceChildren(...rows);
}

function renderNews(content, results) {
  const body = results[0].body;
  const articles = Array.isArray(body) ? body : (body.articles || []);
  const items = articles.slice(0, 8).map((a) => {
    const when = Date.parse(a.published_at || '');
    const link = el('a', { href: a.url || '#', rel: 'noopener noreferrer' }, String(a.title || ''));
    return el('li', {}, link,
      el('span', { class: 'meta' }, `${a.source || ''}${isFinite(when) ? ' · ' + ago(when) : ''}`));
  });
  content.replaceChildren(items.length ? el('ul', { class: 'news' }, ...items)
    : el('p', { class: 'empty' }, 'No headlines yet.'));
}

function renderFx(content, results) {
  const body = results[0].body;
  const rates = body.rates || {};
  const rows = CURRENCIES.filter((c) => c in rates).map((c) =>
    el('tr', { 'data-currency': c }, el('td', {}, `${body.base || 'USD'} → ${c}`),
      el('td', { class: 'num' }, Number(rates[c]).toFixed(4))));
  content.replaceChildren(el('table', {},
    el('thead', {}, el('tr', {}, el('th', {}, 'pair'), el('th', { class: 'num' }, 'rate'))),
    el('tbody', {}, ...rows)));
}

async function settle(promises) {
  const out = await Promise.allSettled(promises);
  return out.map((o) => (o.status === 'fulfilled' ? o.value : { ok: false, status: 0 }));
}

async function refreshQuotes() {
  show('quotes', await settle(TICKERS.map((t) => get('quotes', `/api/quotes/${t}`))),
    renderQuotes);
}

async function refreshNews() {
  show('news', await settle([get('news', '/api/news/latest?country=us')]), renderNews);
}

async function refreshFx() {
  show('fx', await settle([get('fx', '/api/fx/latest?base=USD')]), renderFx);
}

// --- the simulator's controls and counts ------------------------------------

function sumCounts(v) {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object') return Object.values(v).reduce((a, x) => a + sumCounts(x), 0);
  return 0;
}

async function refreshUsage() {
  for (const api of Object.keys(served)) {
    document.querySelector(`.usage tr[data-api="${api}"] [data-role="served"]`).textContent =
      String(served[api]);
  }
  try {
    const res = await fetch('/_sim/stats', { cache: 'no-store' });
    if (!res.ok) return;
    const stats = await res.json();
    const per = stats.apis || stats;
    for (const api of Object.keys(served)) {
      const cell = document.querySelector(`.usage tr[data-api="${api}"] [data-role="calls"]`);
      const v = per[api];
      cell.textContent = v === undefined ? '–' : String(sumCounts(v.requests ?? v));
    }
  } catch (e) {
    // the simulator's counts are a nicety: the dashboard works without them
  }
}

async function refreshFaults() {
  try {
    const res = await fetch('/_sim/faults', { cache: 'no-store' });
    if (!res.ok) return;
    const table = await res.json();
    const faults = table.faults || table;
    for (const row of document.querySelectorAll('.control')) {
      const f = faults[row.dataset.api];
      const mode = f ? (typeof f === 'string' ? f : f.mode) : 'ok';
      const label = row.querySelector('[data-role="fault"]');
      label.textContent = mode && mode !== 'ok' ? `broken: ${mode}` : 'ok';
      label.classList.toggle('broken', Boolean(mode && mode !== 'ok'));
    }
  } catch (e) {
    // as above
  }
}

async function setFault(api, mode) {
  await fetch('/_sim/faults', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ api, mode }),
  }).catch(() => {});
  await refreshFaults();
  refreshAll();
}

function refreshAll() {
  refreshQuotes();
  refreshNews();
  refreshFx();
  refreshUsage();
}

async function burst() {
  await settle(Array.from({ length: 100 }, () => get('quotes', '/api/quotes/AAPL')));
  refreshUsage();
}

// A control row and a usage row per API.
function buildRows() {
  const modes = [['503', '503 errors'], ['timeout', 'hang'], ['429', 'rate limit'], ['ok', 'restore']];
  for (const api of Object.keys(served)) {
    document.getElementById('control-rows').append(el('div', { class: 'control', 'data-api': api },
      el('span', { class: 'name' }, api),
      ...modes.map(([mode, label]) => el('button',
        { type: 'button', 'data-mode': mode, ...(mode === 'ok' ? { class: 'restore' } : {}) }, label)),
      el('span', { class: 'fault', 'data-role': 'fault' }, 'ok')));
    document.getElementById('usage-rows').append(el('tr', { 'data-api': api },
      el('td', {}, api), el('td', { 'data-role': 'served' }, '0'),
      el('td', { 'data-role': 'calls' }, '–')));
  }
}

document.addEventListener('DOMContentLoaded', () => {
  buildRows();
  for (const b of document.querySelectorAll('.control button'))
    b.addEventListener('click', () => setFault(b.closest('.control').dataset.api, b.dataset.mode));
  document.getElementById('burst').addEventListener('click', burst);
  refreshAll();
  refreshFaults();
  setInterval(refreshAll, REFRESH_MS);
  setInterval(refreshFaults, REFRESH_MS);
});
