// Every figure issue 19 set a goal for, from one command: the benches run one after another (each
// with its peer in its own run, as when run by hand), then one table of figure against goal.
//
//   npm run bench                       (node bench/goals.ts)
//   node bench/goals.ts --only assets,tftp
//
// About 3 minutes on the 2-core VM. Needs what the benches need: nginx, dnsmasq, tftpd-hpa,
// atftp, curl and root (dnsmasq's TFTP on 127.0.0.69:69). Loopback only; every bench is
// bounded in count and stops by itself. Exit status 1 when a bench failed; goals not met are
// reported, not an error. Nothing else should run meanwhile: the figures are about CPU.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatTable, judge } from './goals-table.ts';
import type { BenchResult } from './results.ts';

/** Each bench as the figures were taken for the README; `name` is what it records (results.ts). */
const STEPS: Array<{ name: string; args: string[] }> = [
  { name: 'storm-200', args: ['bench/storm.ts', '--n', '200', '--peer'] },
  { name: 'storm-1000', args: ['bench/storm.ts', '--n', '1000', '--peer'] },
  { name: 'assets', args: ['bench/assets.ts', '--rounds', '1'] },
  { name: 'install-script-rate', args: ['bench/install-script-rate.ts'] },
  { name: 'asset-lookup', args: ['bench/asset-lookup.ts'] },
  { name: 'tftp', args: ['bench/tftp.ts', '--rounds', '5', '--lossy-rounds', '1'] },
  { name: 'idle-memory', args: ['bench/idle-memory.ts'] },
];

const { values } = parseArgs({ options: { only: { type: 'string' } } });
const only = values.only?.split(',').map((s) => s.trim());
const unknown = only?.filter((n) => !STEPS.some((s) => s.name === n)) ?? [];
if (unknown.length > 0) {
  console.error(`goals: no bench named ${unknown.join(', ')}; the benches are ${STEPS.map((s) => s.name).join(', ')}`);
  process.exit(2);
}

const root = path.join(import.meta.dirname, '..');
const work = mkdtempSync(path.join(os.tmpdir(), 'genesis-goals-'));
const resultsFile = path.join(work, 'results.jsonl');

function runStep(args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...process.env, GENESIS_BENCH_RESULTS: resultsFile } });
    child.on('error', () => resolve(null));
    child.on('exit', (code, signal) => resolve(signal ? null : code));
  });
}

const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout?.trim() || 'unknown';
const header = `${new Date().toISOString()}, commit ${commit}, Node ${process.version}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}`;
console.log(`# issue 19's goals: ${header}\n`);

const failed = new Map<string, string>();
for (const step of STEPS) {
  if (only && !only.includes(step.name)) continue;
  console.log(`\n## ${step.name}: node ${step.args.join(' ')}`);
  const code = await runStep(step.args);
  if (code !== 0) failed.set(step.name, code === null ? 'the bench was killed' : `the bench exited ${code}`);
}

let results: BenchResult[] = [];
try {
  results = readFileSync(resultsFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as BenchResult);
} catch {
  // No bench recorded anything: every row says so.
}
rmSync(work, { recursive: true, force: true });

const rows = judge(results, failed);
console.log(`\n# issue 19's goals: ${header}\n`);
console.log(formatTable(rows));
const met = rows.filter((r) => r.met === true).length;
const judged = rows.filter((r) => r.met !== undefined).length;
console.log(`\n${met} of ${judged} goals met${failed.size > 0 ? `; failed: ${[...failed].map(([n, why]) => `${n} (${why})`).join(', ')}` : ''}`);
process.exit(failed.size > 0 ? 1 : 0);
