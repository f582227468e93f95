// Idle memory: `genesis serve` started in a fresh directory, VmRSS read from /proc 5 s after it
// says it is ready (its start-up render check done), three starts per checkout; with --old
// <checkout>, another checkout in the same run, alternated. The first start of a checkout fills
// Node's compile cache, so read the later ones as what a restarted Genesis uses.
//
// With --settle <seconds>, the last start of each checkout is left idle that long and read again:
// what Genesis holds once settled. V8 collects a heap that nothing allocates in only on its own
// schedule (its memory reducer, whose first collection comes about 100 s after start when nothing
// else triggers one, and the next ones minutes apart), so the 5 s reading still holds the start-up's
// garbage (docs/performance.md).
//
//   node bench/idle-memory.ts [--old <checkout>] [--starts 3] [--settle 300]
//
// Loopback only; bounded in count.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { startGenesis } from './peers.ts';
import { rssKiB } from './proc.ts';
import { recordFigures } from './results.ts';

const { values } = parseArgs({ options: { old: { type: 'string' }, starts: { type: 'string' }, settle: { type: 'string' } } });
const STARTS = Number(values.starts ?? 3);
const SETTLE_S = Number(values.settle ?? 0);

/** VmRSS in MB 5 s after ready and, with `settleS`, that many seconds after ready. */
async function idle(repo: string, settleS = 0): Promise<{ start: number; settled?: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-idle-'));
  const assets = path.join(dir, 'assets', 'talos', 'v1.14.0', 'amd64');
  mkdirSync(assets, { recursive: true });
  for (const f of ['vmlinuz', 'initramfs.xz']) writeFileSync(path.join(assets, f), 'x');
  const genesis = await startGenesis(repo, dir);
  await sleep(5000);
  const start = rssKiB(genesis.pid) / 1024;
  let settled: number | undefined;
  if (settleS > 5) {
    await sleep((settleS - 5) * 1000);
    settled = rssKiB(genesis.pid) / 1024;
  }
  await genesis.stop();
  rmSync(dir, { recursive: true, force: true });
  return { start, settled };
}

const here = path.join(import.meta.dirname, '..');
const figures: { here: number[]; old: number[] } = { here: [], old: [] };
const settled: { here?: number; old?: number } = {};
for (let i = 0; i < STARTS; i++) {
  const settleS = i === STARTS - 1 ? SETTLE_S : 0;
  if (values.old) {
    const r = await idle(path.resolve(values.old), settleS);
    figures.old.push(r.start);
    settled.old = r.settled;
  }
  const r = await idle(here, settleS);
  figures.here.push(r.start);
  settled.here = r.settled;
}
const mb = (a: number[]) => a.map((x) => x.toFixed(0)).join(', ');
const after = (x: number | undefined) => (x === undefined ? '' : `; ${x.toFixed(0)} MB ${SETTLE_S} s after ready (the last start)`);
console.log(`idle VmRSS: ${mb(figures.here)} MB here, 5 s after ready${after(settled.here)}`);
if (values.old) console.log(`idle VmRSS: ${mb(figures.old)} MB at ${values.old}, 5 s after ready${after(settled.old)}`);
// The first start of a session fills the compile cache: the later ones are what a restart uses.
const restarts = figures.here.length > 1 ? figures.here.slice(1) : figures.here;
recordFigures('idle-memory', { idle_mb: Math.max(...restarts), settled_mb: settled.here, settle_s: settled.here === undefined ? undefined : SETTLE_S });
process.exit(0);
