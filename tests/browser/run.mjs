// The dashboard in a real headless Chromium (Debian's), driven by
// playwright-core: holdfast sim and holdfast serve with the demo's
// configuration (on free ports, news refreshed every 2 s so a failing
// refresh shows within seconds).  Screenshots go to $HF_ARTIFACTS (default
// build/browser-artifacts).  Usage: node run.mjs path/to/holdfast
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const holdfast = resolve(process.argv[2] || join(root, 'build', 'holdfast'));
const artifacts = resolve(process.env.HF_ARTIFACTS || join(root, 'build', 'browser-artifacts'));
mkdirSync(artifacts, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), 'hf-browser-'));
const procs = [];
let browser = null;

function start(args, prefix) {
  const p = spawn(holdfast, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  let out = '';
  const waiters = [];
  const feed = (d) => {
    out += d;
    for (const w of waiters.slice()) {
      const m = out.match(w.re);
      if (m) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m); }
    }
  };
  p.stdout.on('data', feed);
  p.stderr.on('data', feed);
  p.wait = (re, ms = 10000) => new Promise((res, rej) => {
    const m = out.match(re);
    if (m) return res(m);
    const w = { re, resolve: res };
    waiters.push(w);
    setTimeout(() => rej(new Error(`${prefix}: no ${re} within ${ms} ms; output:\n${out}`)), ms);
  });
  return p;
}

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  for (const p of procs) p.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}

function check(cond, what) {
  if (!cond) throw new Error(`failed: ${what}`);
  console.log(`ok - ${what}`);
}

async function panelState(page, api) {
  return page.getAttribute(`[data-panel="${api}"]`, 'data-state');
}

async function waitState(page, api, want, ms = 15000) {
  await page.waitForFunction(([a, w]) =>
    document.querySelector(`[data-panel="${a}"]`)?.dataset.state === w, [api, want],
  { timeout: ms });
}

async function main() {
  const sim = start(['sim', '--listen', '127.0.0.1:0', '--quiet'], 'sim');
  const simAddr = (await sim.wait(/listening on (\S+)/))[1];
  let cfg = readFileSync(join(root, 'examples', 'dashboard', 'holdfast.yaml'), 'utf8');
  cfg = cfg.replaceAll('127.0.0.1:9090', simAddr)
    .replace(/^listen: .*$/m, 'listen: 127.0.0.1:0')
    .replace(/^admin: .*$/m, 'admin: 127.0.0.1:0')
    .replace(/^static: .*$/m, `static: ${join(root, 'examples', 'dashboard', 'www')}`)
    .replace(/^  path: .*$/m, `  path: ${join(dir, 'demo.db')}`)
    .replace(/every: 1m/, 'every: 2s')
    .replace(/format: text/, 'format: json')
    .replace(/level: warn/, 'level: info');
  writeFileSync(join(dir, 'hf.yaml'), cfg);
  const serve = start(['serve', '-c', join(dir, 'hf.yaml')], 'serve');
  const m = await serve.wait(/"event":"start","listen":"([^"]+)","admin":"([^"]+)"/);
  const base = `http://${m[1]}`;

  browser = await chromium.launch({
    executablePath: process.env.HF_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--no-proxy-server'],
  });
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const external = [];
  page.on('request', (r) => { if (!r.url().startsWith(base)) external.push(r.url()); });

  await page.goto(`${base}/`);
  for (const api of ['quotes', 'news', 'fx']) await waitState(page, api, 'fresh');
  check(true, 'every panel shows fresh data');
  check((await page.textContent('[data-panel="quotes"] [data-role="content"]')).includes('AAPL'),
    'the quotes panel lists AAPL');
  check(/as of \d/.test(await page.textContent('[data-panel="fx"] [data-role="asof"]')),
    'a panel says how old its data is');
  await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });

  // break news: its refresh fails, the copy ages past the schedule, the banner shows
  await page.click('.control[data-api="news"] button[data-mode="503"]');
  await waitState(page, 'news', 'stale', 20000);
  const banner = await page.textContent('[data-panel="news"] [data-role="banner"]');
  check(/Showing news from .* We're having trouble refreshing it/.test(banner),
    `the news panel shows the stale banner ("${banner}")`);
  check(await panelState(page, 'quotes') === 'fresh' && await panelState(page, 'fx') === 'fresh',
    'quotes and fx stay normal while news fails');
  await page.screenshot({ path: join(artifacts, 'dashboard-news-stale.png'), fullPage: true });

  // restore: the next refresh succeeds and the banner goes
  await page.click('.control[data-api="news"] button[data-mode="ok"]');
  await waitState(page, 'news', 'fresh', 45000); // the breaker's cooldown, then a run
  check(await page.isHidden('[data-panel="news"] [data-role="banner"]'),
    'restoring news clears the banner');
  check(external.length === 0, `the page loads nothing from outside holdfast (${external})`);
}

main().then(cleanup, async (e) => {
  console.error(e.stack || String(e));
  await cleanup();
  process.exit(1);
});
