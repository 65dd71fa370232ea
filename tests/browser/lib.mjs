// What the node-driven tests share: holdfast processes started and stopped,
// their output awaited, checks printed TAP-style, free loopback ports.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';

export const procs = [];

// Start `holdfast ARGS`; p.wait(re, ms) resolves with the first match of re
// in its stdout+stderr, p.output() is all of it so far.
export function start(holdfast, args, prefix) {
  const p = spawn(holdfast, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  let out = '';
  const waiters = [];
  const feed = (d) => {
    out += d;
    for (const w of waiters.slice()) {
      const m = out.match(w.re);
      if (m) { waiters.splice(waiters.indexOf(w), 1); clearTimeout(w.timer); w.resolve(m); }
    }
  };
  p.stdout.on('data', feed);
  p.stderr.on('data', feed);
  p.exited = new Promise((res) => p.on('exit', (code, signal) => res({ code, signal })));
  p.output = () => out;
  p.wait = (re, ms = 10000) => new Promise((res, rej) => {
    const m = out.match(re);
    if (m) return res(m);
    const w = { re, resolve: res };
    w.timer = setTimeout(() => {
      waiters.splice(waiters.indexOf(w), 1);
      rej(new Error(`${prefix}: no ${re} within ${ms} ms; output:\n${out}`));
    }, ms);
    waiters.push(w);
  });
  return p;
}

export function stopAll() {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
}

export function check(cond, what) {
  if (!cond) throw new Error(`failed: ${what}`);
  console.log(`ok - ${what}`);
}

// A port free on 127.0.0.1 now (the kernel's choice; closed before use).
export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}
