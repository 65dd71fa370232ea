// `holdfast demo` itself, the command `make run` runs: on free ports (its
// --sim option and a copy of the demo's configuration), it prints where the
// dashboard and the status page are, serves the dashboard, answers the APIs
// through holdfast from the simulator, and Ctrl-C stops all of it (exit 0,
// listeners closed).  Usage: node demo.mjs path/to/holdfast
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { start, stopAll, check, freePort } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const holdfast = resolve(process.argv[2] || join(root, 'build', 'holdfast'));
const dir = mkdtempSync(join(tmpdir(), 'hf-demo-'));

function refused(port) {
  return new Promise((res) => {
    const s = connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); res(false); });
    s.on('error', () => res(true));
  });
}

async function getOk(url, ms = 10000) {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok) return r;
    } catch (e) { /* not listening yet */ }
    if (Date.now() > until) throw new Error(`no 200 from ${url} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main() {
  const [web, admin, sim] = [await freePort(), await freePort(), await freePort()];
  const cfg = readFileSync(join(root, 'examples', 'dashboard', 'holdfast.yaml'), 'utf8')
    .replaceAll('127.0.0.1:9090', `127.0.0.1:${sim}`)
    .replace(/^listen: .*$/m, `listen: 127.0.0.1:${web}`)
    .replace(/^admin: .*$/m, `admin: 127.0.0.1:${admin}`)
    .replace(/^static: .*$/m, `static: ${join(root, 'examples', 'dashboard', 'www')}`)
    .replace(/^  path: .*$/m, `  path: ${join(dir, 'demo.db')}`);
  writeFileSync(join(dir, 'demo.yaml'), cfg);

  const demo = start(holdfast, ['demo', '--sim', `127.0.0.1:${sim}`, '-c', join(dir, 'demo.yaml')],
    'demo');
  const said = await demo.wait(/dashboard +(\S+)\n[^]*status page +(\S+)\n[^]*Ctrl-C to stop/);
  check(said[1] === `http://127.0.0.1:${web}/` && said[2] === `http://127.0.0.1:${admin}/status`,
    `it prints the dashboard's and the status page's URLs (${said[1]}, ${said[2]})`);

  const page = await getOk(said[1]);
  check((page.headers.get('content-type') || '').startsWith('text/html') &&
    (await page.text()).includes('data-panel="news"'), 'the dashboard page is served');
  const quotes = await getOk(`http://127.0.0.1:${web}/api/quotes/AAPL`);
  const body = await quotes.json();
  check(body.symbol === 'AAPL' && typeof body.price === 'number' && body.history.length > 20,
    'a quote comes from the simulator through holdfast');
  check(/holdfast/.test(quotes.headers.get('cache-status') || ''),
    `with a Cache-Status (${quotes.headers.get('cache-status')})`);
  const stats = await (await getOk(`http://127.0.0.1:${web}/_sim/stats`)).json();
  check(JSON.stringify(stats).includes('quotes'), 'the simulator\'s stats pass through');
  const status = await (await getOk(said[2])).text();
  check(status.includes('data-route="quotes"'), 'the status page lists the routes');

  demo.kill('SIGINT');
  const timer = setTimeout(() => demo.kill('SIGKILL'), 5000);
  const end = await demo.exited;
  clearTimeout(timer);
  check(end.code === 0, `Ctrl-C stops it with exit 0 (${JSON.stringify(end)})`);
  check(await refused(web) && await refused(admin) && await refused(sim),
    'no listener is left open');
}

main().then(() => { stopAll(); rmSync(dir, { recursive: true, force: true }); }, (e) => {
  console.error(e.stack || String(e));
  stopAll();
  rmSync(dir, { recursive: true, force: true });
  process.exit(1);
});
