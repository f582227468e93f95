// Idle memory: `genesis serve` started in a fresh directory, VmRSS read from /proc 5 s after it
// says it is ready (its start-up render check done), three starts per checkout; with --old
// <checkout>, another checkout in the same run, alternated. The first start of a checkout fills
// Node's compile cache, so read the later ones as what a restarted Genesis uses.
//
//   node bench/idle-memory.ts [--old <checkout>] [--starts 3]
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

const { values } = parseArgs({ options: { old: { type: 'string' }, starts: { type: 'string' } } });
const STARTS = Number(values.starts ?? 3);

async function idle(repo: string): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-idle-'));
  const assets = path.join(dir, 'assets', 'talos', 'v1.14.0', 'amd64');
  mkdirSync(assets, { recursive: true });
  for (const f of ['vmlinuz', 'initramfs.xz']) writeFileSync(path.join(assets, f), 'x');
  const genesis = await startGenesis(repo, dir);
  await sleep(5000);
  const rss = rssKiB(genesis.pid) / 1024;
  await genesis.stop();
  rmSync(dir, { recursive: true, force: true });
  return rss;
}

const here = path.join(import.meta.dirname, '..');
const figures: { here: number[]; old: number[] } = { here: [], old: [] };
for (let i = 0; i < STARTS; i++) {
  if (values.old) figures.old.push(await idle(path.resolve(values.old)));
  figures.here.push(await idle(here));
}
const mb = (a: number[]) => a.map((x) => x.toFixed(0)).join(', ');
console.log(`idle VmRSS: ${mb(figures.here)} MB here`);
if (values.old) console.log(`idle VmRSS: ${mb(figures.old)} MB at ${values.old}`);
// The first start of a session fills the compile cache: the later ones are what a restart uses.
const restarts = figures.here.length > 1 ? figures.here.slice(1) : figures.here;
recordFigures('idle-memory', { idle_mb: Math.max(...restarts) });
process.exit(0);
