// Every figure issue 19 set a goal for, from one command: the benches run one after another (each
// with its peer in its own run, as when run by hand), then one table of figure against goal.
//
//   npm run bench                       (node bench/goals.ts)
//   node bench/goals.ts --only assets,tftp
//
// 8 to 25 minutes on the 2-core VM (7.7 at 9404ace on 2026-12-06, 24 at 44d6cff the evening
// before: its length moves with the VM's speed, as its figures do), five of them Genesis left
// idle to read its settled memory. Needs what the benches need (nginx, dnsmasq, tftpd-hpa,
// atftp, curl, iproute2's nstat, and root for dnsmasq's TFTP on 127.0.0.69:69), and says what is
// missing before it starts (exit status 2). Loopback only; every bench is bounded in count and
// stops by itself. Exit status 1 when a bench failed; goals not met are reported, not an error.
// Nothing else should run meanwhile: the figures are about CPU.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatTable, judge } from './goals-table.ts';
import type { BenchResult } from './results.ts';

/**
 * Each bench as the figures were taken for the README; `name` is what it records (results.ts);
 * `needs` the programs it runs beside Genesis, `root` when it binds 127.0.0.69:69 for dnsmasq.
 */
const STEPS: Array<{ name: string; args: string[]; needs: string[]; root?: boolean }> = [
  { name: 'storm-200', args: ['bench/storm.ts', '--n', '200', '--peer'], needs: ['nginx', 'dnsmasq', 'nstat'], root: true },
  { name: 'storm-1000', args: ['bench/storm.ts', '--n', '1000', '--peer'], needs: ['nginx', 'dnsmasq', 'nstat'], root: true },
  { name: 'assets', args: ['bench/assets.ts', '--rounds', '1'], needs: ['nginx', 'curl'] },
  { name: 'install-script-rate', args: ['bench/install-script-rate.ts'], needs: [] },
  { name: 'asset-lookup', args: ['bench/asset-lookup.ts'], needs: [] },
  { name: 'tftp', args: ['bench/tftp.ts', '--rounds', '5', '--lossy-rounds', '1'], needs: ['in.tftpd', 'atftp', 'dnsmasq'], root: true },
  // Two starts (the first fills the compile cache); the second is also read once settled.
  { name: 'idle-memory', args: ['bench/idle-memory.ts', '--starts', '2', '--settle', '300'], needs: [] },
];

const { values } = parseArgs({ options: { only: { type: 'string' } } });
const only = values.only?.split(',').map((s) => s.trim());
const unknown = only?.filter((n) => !STEPS.some((s) => s.name === n)) ?? [];
if (unknown.length > 0) {
  console.error(`goals: no bench named ${unknown.join(', ')}; the benches are ${STEPS.map((s) => s.name).join(', ')}`);
  process.exit(2);
}

/** The Debian package each program comes from. */
const PACKAGE: Record<string, string> = { nginx: 'nginx', dnsmasq: 'dnsmasq-base', 'in.tftpd': 'tftpd-hpa', atftp: 'atftp', curl: 'curl', nstat: 'iproute2' };
const selected = STEPS.filter((s) => !only || only.includes(s.name));
const onPath = (cmd: string) => (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir && existsSync(path.join(dir, cmd)));
const missing = [...new Set(selected.flatMap((s) => s.needs))].filter((cmd) => !onPath(cmd));
const needRoot = selected.some((s) => s.root) && process.getuid?.() !== 0;
if (missing.length > 0 || needRoot) {
  if (missing.length > 0) console.error(`goals: the benches need ${missing.join(', ')}: apt-get install ${[...new Set(missing.map((c) => PACKAGE[c]))].join(' ')}`);
  if (needRoot) console.error('goals: run as root: dnsmasq serves TFTP on 127.0.0.69:69, a privileged port');
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
for (const step of selected) {
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
