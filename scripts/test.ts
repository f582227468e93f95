// `npm test`: every test, in three runs of vitest.
//
// The firmware boots (test/e2e) spend most of their time in QEMU emulating firmware, one core
// each; the unit and integration tests spend theirs in Genesis and its real peers. Vitest alone
// runs one file at a time here (its default is one worker fewer than the cores, so one on a
// 2-core machine), and two firmware boots side by side would fight over the one core the other
// kind needs. So the boots run one file at a time in one vitest, beside the rest one file at a
// time in another: on this 2-core machine 1,029 s for all three runs against about 1,490 s for
// the same files one after another (README, Test it). Each
// vitest has its own XDG_STATE_HOME (vitest.config.ts keys it by its pid), so a serve in one
// never answers for a CLI in the other; the boots run in their own network namespaces.
//
// Then the fuzz stage, alone, once both have passed: its health verdict (no stall of 1 s or
// more) measures Genesis, not the other tests.
//
//   npm test                       everything, as CI runs it
//   npx vitest run <file>          one file

import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = path.resolve(import.meta.dirname, '..');
const VITEST = path.join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');

type Lane = { name: string; args: string[]; prefix?: string; nice?: number };

const SIDE_BY_SIDE: Lane[] = [
  // A little below the boots in CPU priority: a firmware's timers (U-Boot's 1 s TFTP timeout, its
  // ARP retries) run on the host's clock, so an emulated CPU kept waiting sees them all fire at
  // once; the tests here wait on real clients with seconds to spare. (With both at the same
  // priority and a third load beside them, a U-Boot boot once lost its network for good.)
  { name: 'unit and integration', args: ['run', '--exclude', 'test/e2e/**', '--exclude', 'test/fuzz/**'], nice: 5 },
  // Its lines are marked: the two runs print at the same time.
  { name: 'firmware boots (test/e2e)', args: ['run', 'test/e2e'], prefix: 'e2e │ ' },
];
const AFTER: Lane = { name: 'fuzz (test/fuzz)', args: ['run', 'test/fuzz'] };

const running = new Set<import('node:child_process').ChildProcess>();

/** One vitest run to its end: its exit code, and how long it took. */
function runLane(lane: Lane): Promise<{ lane: Lane; code: number; seconds: number }> {
  const started = performance.now();
  // nice(1) before vitest starts, so every process it starts inherits the priority.
  const [command, args]: [string, string[]] = lane.nice ? ['nice', ['-n', String(lane.nice), process.execPath, VITEST, ...lane.args]] : [process.execPath, [VITEST, ...lane.args]];
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', lane.prefix ? 'pipe' : 'inherit', lane.prefix ? 'pipe' : 'inherit'] });
  running.add(child);
  if (lane.prefix) {
    for (const [from, to] of [[child.stdout!, process.stdout], [child.stderr!, process.stderr]] as const) {
      createInterface({ input: from, crlfDelay: Infinity }).on('line', (line) => to.write(`${lane.prefix}${line}\n`));
    }
  }
  return new Promise((resolve) => {
    const end = (code: number) => {
      running.delete(child);
      resolve({ lane, code, seconds: (performance.now() - started) / 1000 });
    };
    child.on('error', (err) => {
      console.error(`npm test: could not start vitest for the ${lane.name}: ${err.message}`);
      end(1);
    });
    // A run killed by a signal has no exit code: a failure, never a pass.
    child.on('close', (code) => end(code ?? 1));
  });
}

// A stop asked of npm test (CI's timeout, a kill) reaches the runs, which stop their workers.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.on(signal, () => {
    for (const child of running) child.kill(signal);
  });
}

if (process.argv.length > 2) {
  console.error('npm test runs every test and takes no arguments; for some files: npx vitest run <file>…');
  process.exit(2);
}

const results = await Promise.all(SIDE_BY_SIDE.map(runLane));
if (results.every((r) => r.code === 0)) results.push(await runLane(AFTER));
console.log('');
for (const r of results) console.log(`npm test: ${r.lane.name}: ${r.code === 0 ? 'passed' : `FAILED (exit ${r.code})`} in ${r.seconds.toFixed(0)} s`);
const failed = results.filter((r) => r.code !== 0);
if (results.length === SIDE_BY_SIDE.length && failed.length > 0) console.log(`npm test: ${AFTER.name}: not run, because a run above failed`);
process.exit(failed.length === 0 ? 0 : 1);
