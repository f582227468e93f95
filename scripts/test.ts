// `npm test`: every test, in four runs of vitest over three stages.
//
// The firmware boots (test/e2e) spend most of their time in QEMU emulating firmware, one core
// each; the unit and integration tests spend theirs in Genesis and its real peers. Vitest alone
// runs one file at a time here (its default is one worker fewer than the cores, so one on a
// 2-core machine). So the x86 boots (and the cloud-init one) run in one vitest beside the rest in
// another. Each vitest has its own XDG_STATE_HOME (vitest.config.ts keys it by its pid), so a
// serve in one never answers for a CLI in the other; the boots run in their own network
// namespaces. Then the U-Boot and AAVMF boots alone, then the fuzz stage alone (STAGES says why).
//
//   npm test                       everything, as CI runs it
//   npx vitest run <file>          one file

import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = path.resolve(import.meta.dirname, '..');
const VITEST = path.join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
const UBOOT = 'test/e2e/boot-uboot.test.ts';

type Lane = { name: string; args: string[]; prefix?: string; nice?: number };
type Result = { lane: Lane; code: number; seconds: number };

/** Run one after another; the runs of a stage side by side. A stage that fails stops the rest. */
const STAGES: Lane[][] = [
  [
    // A little below the boots in CPU priority: a firmware's timers run on the host's clock, so an
    // emulated CPU kept waiting sees them fire; the tests here wait on real clients with seconds
    // to spare.
    { name: 'unit and integration', args: ['run', '--exclude', 'test/e2e/**', '--exclude', 'test/fuzz/**'], nice: 5 },
    // Its lines are marked: the two runs print at the same time.
    { name: 'firmware boots but U-Boot (test/e2e)', args: ['run', 'test/e2e', '--exclude', UBOOT], prefix: 'e2e │ ' },
  ],
  // Alone: beside the other tests, even at nice 5, U-Boot's 33 MB kernel over TFTP (windowsize 8)
  // went from 1.3–3.3 s and 0–93 retransmissions to about 130 s and 3,450 retransmissions, and
  // then U-Boot's network stopped for good (ARP unanswered): twice in three runs.
  [{ name: 'U-Boot and AAVMF boots (test/e2e/boot-uboot)', args: ['run', UBOOT] }],
  // Alone: its health verdict (no stall of 1 s or more) measures Genesis, not the other tests.
  [{ name: 'fuzz (test/fuzz)', args: ['run', 'test/fuzz'] }],
];

const running = new Set<import('node:child_process').ChildProcess>();

/** One vitest run to its end: its exit code, and how long it took. */
function runLane(lane: Lane): Promise<Result> {
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

const results: Result[] = [];
const notRun: Lane[] = [];
for (const stage of STAGES) {
  if (results.some((r) => r.code !== 0)) notRun.push(...stage);
  else results.push(...(await Promise.all(stage.map(runLane))));
}
console.log('');
for (const r of results) console.log(`npm test: ${r.lane.name}: ${r.code === 0 ? 'passed' : `FAILED (exit ${r.code})`} in ${r.seconds.toFixed(0)} s`);
for (const lane of notRun) console.log(`npm test: ${lane.name}: not run, because a run above failed`);
// A failure is in the results: stages after it are not run.
process.exit(results.every((r) => r.code === 0) ? 0 : 1);
