// The dashboard in a real headless Chromium (Debian's), driven by
// playwright-core: holdfast sim and holdfast serve with the demo's
// configuration (on free ports, news refreshed every 2 s so a failing
// refresh shows within seconds).  Screenshots go to $HF_ARTIFACTS (default
// build/browser-artifacts).  Usage: node run.mjs path/to/holdfast
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { start as startProc, stopAll, check } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const holdfast = resolve(process.argv[2] || join(root, 'build', 'holdfast'));
const artifacts = resolve(process.env.HF_ARTIFACTS || join(root, 'build', 'browser-artifacts'));
mkdirSync(artifacts, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), 'hf-browser-'));
let browser = null;
const start = (args, prefix) => startProc(holdfast, args, prefix);

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  stopAll();
  rmSync(dir, { recursive: true, force: true });
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

  // the status page on the admin listener says which route is in trouble
  const status = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const routeState = (r) => status.getAttribute(`section.route[data-route="${r}"]`, 'data-state');
  const until = Date.now() + 20000;
  for (;;) {
    await status.goto(`http://${m[2]}/status`);
    // degraded while its retries fail, down once its breaker opens
    if (['degraded', 'down'].includes(await routeState('news'))) break;
    if (Date.now() > until) throw new Error(`news is ${await routeState('news')} on /status`);
    await status.waitForTimeout(250);
  }
  check(true, `/status shows the news route in trouble (${await routeState('news')})`);
  check(await routeState('quotes') === 'ok' && await routeState('fx') === 'ok',
    '/status shows quotes and fx ok');
  check(await status.getAttribute('#overall', 'data-state') === 'degraded',
    '/status says holdfast as a whole is degraded');
  check(await status.locator('section.route[data-route="news"] figure[data-chart] svg').count() > 0,
    '/status draws the news route\'s charts');
  await status.screenshot({ path: join(artifacts, 'status-news-degraded.png'), fullPage: true });
  await status.close();

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
