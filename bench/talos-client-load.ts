// The longest the main thread is held while Genesis first loads its Talos API client (grpc-js,
// proto-loader with protobufjs, Talos's protos), which the first control plane's probe does in
// the middle of a boot storm: every request that arrives meanwhile waits for that turn. Each
// sample is a fresh Node process (a module loads once per process) that dials through the
// checkout's TalosDialer while a setImmediate chain times the gaps between the loop's turns.
// With --old <checkout>, both checkouts take turns, so a slow moment of the VM falls on both; the
// ratio is what to read:
//
//   git worktree add /tmp/genesis-old <commit> && ln -s "$PWD/node_modules" /tmp/genesis-old/
//   node bench/talos-client-load.ts --old /tmp/genesis-old
//
// No sockets: the dial's credentials are not PEM, so the client is never built once its module
// has loaded. Bounded in count.

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { SERVE_NODE_FLAGS } from './peers.ts';
import { median } from './results.ts';

const { values } = parseArgs({ options: { old: { type: 'string' }, samples: { type: 'string' }, child: { type: 'string' } } });

type Sample = { longestMs: number; totalMs: number };

if (values.child) {
  const { TalosDialer } = (await import(pathToFileURL(path.join(values.child, 'src/talos/dialer.ts')).href)) as typeof import('../src/talos/dialer.ts');
  let last = performance.now();
  let longest = 0;
  let running = true;
  const tick = () => {
    const t = performance.now();
    longest = Math.max(longest, t - last);
    last = t;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const dialer = new TalosDialer(async () => ({ ca: 'not a certificate', crt: 'not a certificate', key: 'not a key' }), { port: 50000, timeoutMs: 1000 });
  const t0 = performance.now();
  await dialer.dial('192.0.2.10').catch(() => undefined);
  const totalMs = performance.now() - t0;
  running = false;
  // The turn the dial ended in, measured up to here.
  longest = Math.max(longest, performance.now() - last);
  console.log(JSON.stringify({ longestMs: longest, totalMs } satisfies Sample));
  process.exit(0);
}

const SAMPLES = Number(values.samples ?? 7);
const here = path.join(import.meta.dirname, '..');

function sample(repo: string): Sample {
  const r = spawnSync(process.execPath, [...SERVE_NODE_FLAGS, import.meta.filename, '--child', repo], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`the sample at ${repo} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Sample;
}

const runs: { here: Sample[]; old: Sample[] } = { here: [], old: [] };
for (let i = 0; i < SAMPLES; i++) {
  if (values.old) runs.old.push(sample(path.resolve(values.old)));
  runs.here.push(sample(here));
}
const show = (label: string, s: Sample[]) =>
  console.log(`${label}: longest turn ${s.map((x) => x.longestMs.toFixed(1)).join(', ')} ms (median ${median(s.map((x) => x.longestMs)).toFixed(1)}); whole load median ${median(s.map((x) => x.totalMs)).toFixed(0)} ms`);
show('here', runs.here);
if (values.old) {
  show(values.old, runs.old);
  console.log(`longest turn, here ÷ old (medians): ${(median(runs.here.map((x) => x.longestMs)) / median(runs.old.map((x) => x.longestMs))).toFixed(2)}`);
  console.log(`whole load, here ÷ old (medians): ${(median(runs.here.map((x) => x.totalMs)) / median(runs.old.map((x) => x.totalMs))).toFixed(2)}`);
}
