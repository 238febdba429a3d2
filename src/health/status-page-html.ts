import { createHash } from 'node:crypto'

// The page is one static document: its script fetches status.json and builds every cell with textContent, so
// nothing a broker id, a region or an error says is ever parsed as HTML. Written here rather than with a template
// library: a page of a few tables needs none, and the package would load it for every app.

const STYLE = `
:root { color-scheme: light; --up: #1f883d; --down: #cf222e; --unknown: #9a6700; --line: #d0d7de; --head: #24292f; }
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1f2328; background: #f6f8fa; }
header { display: flex; align-items: center; gap: 16px; padding: 10px 18px; background: var(--head); color: #fff; }
header h1 { margin: 0; font-size: 16px; font-weight: 600; }
header .meta { margin-left: auto; font-size: 12px; opacity: .85; }
main { padding: 12px 18px 24px; display: grid; gap: 14px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; overflow: hidden; }
section > h2 { margin: 0; padding: 6px 10px; font-size: 13px; background: #eaeef2; border-bottom: 1px solid var(--line); }
section > h2 small { font-weight: 400; color: #59636e; margin-left: 8px; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 4px 10px; border-bottom: 1px solid #eaeef2; text-align: left; white-space: nowrap; }
th { font-weight: 600; color: #59636e; font-size: 12px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:last-child td { border-bottom: 0; }
tr.down td { background: #ffebe9; }
td.state { width: 84px; text-align: center; color: #fff; font-weight: 600; text-transform: uppercase; font-size: 11px; letter-spacing: .04em; }
td.state.up, .badge.up { background: var(--up); }
td.state.down, .badge.down { background: var(--down); }
td.state.unknown, .badge.unknown { background: var(--unknown); }
.badge { display: inline-block; padding: 2px 10px; border-radius: 10px; color: #fff; font-weight: 600; font-size: 12px; text-transform: uppercase; }
td.error { white-space: normal; color: #82071e; max-width: 520px; }
.empty { padding: 8px 10px; color: #59636e; }
#stale { display: none; padding: 6px 18px; background: #fff8c5; border-bottom: 1px solid #d4a72c; }
#stale.shown { display: block; }
.counters { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); }
.counters div { display: flex; justify-content: space-between; padding: 4px 10px; border-bottom: 1px solid #eaeef2; }
.counters span:last-child { font-variant-numeric: tabular-nums; font-weight: 600; }
`

const SCRIPT = `
'use strict';
const refreshMs = Number(document.body.dataset.refreshMs) || 2000;
const main = document.getElementById('main');
const stale = document.getElementById('stale');
const badge = document.getElementById('overall');
const updated = document.getElementById('updated');
function el(tag, props, children) {
  const node = document.createElement(tag);
  if (props) for (const [key, value] of Object.entries(props)) if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  for (const child of children || []) node.append(child instanceof Node ? child : document.createTextNode(child === null || child === undefined ? '–' : String(child)));
  return node;
}
function cell(value, cls) { return el('td', cls ? { class: cls } : null, [value]); }
function num(value, unit) { return cell(value === null || value === undefined ? null : unit ? value + ' ' + unit : value, 'num'); }
function state(value) { return el('td', { class: 'state ' + value, 'data-state': value }, [value]); }
function yes(value) { return value === null || value === undefined ? null : value ? 'yes' : 'no'; }
function section(title, note, body) {
  return el('section', { id: title.toLowerCase() }, [el('h2', null, [title, el('small', null, [note])]), body]);
}
function table(headers, rows) {
  if (rows.length === 0) return el('div', { class: 'empty' }, ['none']);
  return el('table', null, [
    el('thead', null, [el('tr', null, headers.map((h) => el('th', h.startsWith('#') ? { class: 'num' } : null, [h.replace(/^#/, '')])))]),
    el('tbody', null, rows),
  ]);
}
function row(id, st, cells) { return el('tr', { 'data-id': id, class: st === 'down' ? 'down' : null }, cells); }
function render(r) {
  const parts = [];
  if (r.brokers) {
    const b = r.brokers;
    parts.push(section('Brokers', 'mode ' + (b.mode || '–') + ' · failovers ' + b.failovers + ' · published ' + b.published + ' · acknowledged ' + b.acknowledged + ' · buffered ' + b.buffered,
      table(['Broker', 'State', 'Connected', 'Active', 'Region', '#Latency', '#Outstanding', '#Publishes', '#Failed', '#Dropped'],
        b.rows.map((x) => row(x.id, x.state, [cell(x.id), state(x.state), cell(yes(x.connected)), cell(yes(x.active)), cell(x.region),
          num(x.latencyMs, 'ms'), num(x.outstanding), num(x.published), num(x.publishFailures), num(x.dropped)])))));
  }
  if (r.database) {
    const d = r.database;
    const p = d.primary;
    parts.push(section('Primary', 'reads ' + d.reads + ' · writes ' + d.writes + ' · read retries ' + d.readRetries + ' · fallbacks to primary ' + d.fallbacksToPrimary,
      table(['Server', 'State', '#Queries', '#Errors', '#p50', '#p99', 'Connections'],
        [row(p.id || 'primary', p.state, [cell(p.id), state(p.state), num(p.queries), num(p.errors), num(p.p50Ms, 'ms'), num(p.p99Ms, 'ms'), cell(p.connections)])])));
    parts.push(section('Replicas', d.replicas.length + ' configured',
      table(['Replica', 'State', 'In recovery', 'Region', '#Lag', '#Lag bytes', '#p50', '#p99', '#Outstanding', '#Queries', '#Errors', 'Connections'],
        d.replicas.map((x) => row(x.id, x.state, [cell(x.id), state(x.state), cell(yes(x.inRecovery)), cell(x.region), num(x.lagMs, 'ms'), num(x.lagBytes),
          num(x.p50Ms, 'ms'), num(x.p99Ms, 'ms'), num(x.outstanding), num(x.queries), num(x.errors), cell(x.connections)])))));
  }
  parts.push(section('Gates', 'healthGate middleware on routes',
    table(['Dependencies', 'State', 'Mode', '#Held', '#Held total', '#Released', '#Rejected', '#Spooled'],
      r.gates.map((g) => row(g.dependencies, g.state === 'open' ? 'up' : 'down', [cell(g.dependencies), state(g.state === 'open' ? 'up' : 'down'), cell(g.mode + (g.state === 'open' ? '' : ' · ' + g.state)),
        num(g.held), num(g.heldTotal), num(g.released), num(g.rejected), num(g.spooled)])))));
  parts.push(section('Regions', 'brokers and replicas by region tag',
    table(['Region', '#Brokers up', '#Replicas up'],
      r.regions.map((g) => row(g.region, null, [cell(g.region), num(g.brokersUp + ' / ' + g.brokers), num(g.replicasUp + ' / ' + g.replicas)])))));
  parts.push(section('Checks', 'health checks behind /health and /ready',
    table(['Check', 'State', 'Critical', '#Duration', 'Observed', 'Changed', 'Last error'],
      r.checks.map((c) => row(c.name, c.state, [cell(c.name), state(c.state), cell(yes(c.critical)), num(c.latencyMs, 'ms'), cell(c.observed),
        cell(c.changedAt === null ? null : new Date(c.changedAt).toLocaleTimeString()), cell(c.error, 'error')])))));
  parts.push(section('Counters', 'since start',
    el('div', { class: 'counters' }, Object.entries(r.counters).map(([k, v]) => el('div', { 'data-counter': k, 'data-value': v }, [el('span', null, [k]), el('span', null, [v])])))));
  patchChildren(main, parts);
  const overall = r.status === 'healthy' ? 'up' : r.status === 'degraded' ? 'unknown' : 'down';
  badge.className = 'badge ' + overall;
  badge.textContent = r.status;
  updated.textContent = 'app ' + (r.app.state || '–') + ' · transport ' + (r.app.transportConnected === null ? '–' : r.app.transportConnected ? 'connected' : 'disconnected') +
    ' · up ' + r.app.uptimeSeconds + ' s · updated ' + new Date(r.generatedAt).toLocaleTimeString() + ' · every ' + refreshMs / 1000 + ' s';
}
// Only what changed is replaced, so a selection, a hover or an element a reader is looking at survives a refresh.
function patch(old, next) {
  if (old.isEqualNode(next)) return;
  if (old.nodeType === Node.TEXT_NODE && next.nodeType === Node.TEXT_NODE) { old.data = next.data; return; }
  if (old.nodeType !== Node.ELEMENT_NODE || old.tagName !== next.tagName || old.childNodes.length !== next.childNodes.length) { old.replaceWith(next); return; }
  for (const name of old.getAttributeNames()) if (!next.hasAttribute(name)) old.removeAttribute(name);
  for (const name of next.getAttributeNames()) if (old.getAttribute(name) !== next.getAttribute(name)) old.setAttribute(name, next.getAttribute(name));
  patchChildren(old, [...next.childNodes]);
}
function patchChildren(parent, nodes) {
  const current = [...parent.childNodes];
  if (current.length !== nodes.length) { parent.replaceChildren(...nodes); return; }
  nodes.forEach((node, i) => patch(current[i], node));
}
async function refresh() {
  try {
    const response = await fetch('status.json', { cache: 'no-store', headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error('HTTP ' + response.status);
    render(await response.json());
    stale.classList.remove('shown');
  } catch (error) {
    stale.textContent = 'The app is not answering (' + error.message + '); showing what it said last.';
    stale.classList.add('shown');
  } finally {
    setTimeout(refresh, refreshMs);
  }
}
refresh();
`

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`
}

/**
 * The Content-Security-Policy of `/status`: nothing loads but this document's own
 * script and style (by hash) and `status.json` from the same origin; no frames, forms or plugins.
 */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

/**
 * The status page's HTML: a shell whose script fills it from `status.json`
 * and refreshes it every `refreshMs` without reloading.
 *
 * @example
 * response.writeHead(200, { 'content-security-policy': STATUS_PAGE_CSP }).end(statusPageHtml(2000))
 */
export function statusPageHtml(refreshMs: number): string {
  // A whole number, so the attribute cannot carry anything but digits.
  const refresh = String(Math.max(1, Math.round(refreshMs)))
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>RouteMQ status</title>
<style>${STYLE}</style>
</head>
<body data-refresh-ms="${refresh}">
<header><h1>RouteMQ status</h1><span id="overall" class="badge unknown">loading</span><span id="updated" class="meta"></span></header>
<div id="stale" role="status"></div>
<main id="main"><noscript>This page needs JavaScript; the same data is at status.json.</noscript></main>
<script>${SCRIPT}</script>
</body>
</html>
`
}
