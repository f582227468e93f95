// Which of the inventory's statements SQLite compiles again on every run. A statement whose bound
// value the query planner may read (a LIMIT or OFFSET, or an `x = ?` the planner weighs beside an
// ORDER BY) is marked "re-prepare when the binding changes"; better-sqlite3 clears the bindings
// after every run, so such a statement is parsed and planned again each time (docs/performance.md).
// Nothing in SQLite's or better-sqlite3's API reports it, so this counts the calls to SQLite's
// sqlite3Reprepare with a perf uprobe on better-sqlite3's addon while the inventory runs a boot
// path (50 machines: first boot, assignment, scripts, config tokens and config, boot-step events,
// Talos events and kernel logs, the lookups by address, the node list and the event list), and
// prints each statement compiled again with its count. Only `PRAGMA synchronous` should appear (a
// PRAGMA expires itself when it runs: two per shared commit).
//
//   node bench/statement-recompiles.ts        (root; perf from linux-perf, objdump from binutils)
//
// Local only; bounded in count.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';

const { values } = parseArgs({ options: { drive: { type: 'boolean' } } });

if (values.drive) {
  await drive();
} else {
  measure();
}

/** The boot path the query-plan test drives (test/helpers/boot-path.ts), for 50 machines. */
async function drive(): Promise<void> {
  const { InventoryDatabase } = await import('../src/inventory/database.ts');
  const { Inventory } = await import('../src/inventory/store.ts');
  const { bootFleet, driveBootPath } = await import('../test/helpers/boot-path.ts');
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-recompiles-'));
  const inv = new Inventory(InventoryDatabase.open(path.join(dir, 'genesis.db')));
  bootFleet(inv, 200);
  for (let k = 0; k < 50; k++) {
    const mac = `52:54:00:02:00:${String(k).padStart(2, '0')}`;
    const ip = `192.0.2.${200 + k}`;
    // A boot request's shared commit (its two PRAGMAs), then the path; 40 noise events reach the ring's prune.
    await inv.atomicallyShared(() => inv.recordBoot(mac, { arch: 'amd64', firmware: 'uefi', ip }));
    driveBootPath(inv, { mac, ip, hostname: `w-${k}`, noise: 40 });
    inv.list({ role: 'controlplane' });
  }
  inv.close();
  rmSync(dir, { recursive: true, force: true });
}

function measure(): void {
  for (const tool of ['perf', 'objdump']) {
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0) fail(`${tool} is not installed`);
  }
  if (process.getuid?.() !== 0) fail('a uprobe needs root');
  // The addon this process loads is the one the driver will: found in this process's own mappings.
  new Database(':memory:').close();
  const addon = readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .map((l) => l.split(/\s+/).slice(5).join(' '))
    .find((f) => f.includes('better-sqlite3') && f.endsWith('.node'));
  if (!addon) fail("better-sqlite3's addon is not mapped in this process");
  // sqlite3_sql(stmt) returns the statement's text: its one load gives the field's offset in the statement.
  const asm = execFileSync('objdump', ['-d', '--no-show-raw-insn', `--disassemble=sqlite3_sql`, addon], { encoding: 'utf8' });
  const offset = /mov\s+(0x[0-9a-f]+)\(%rdi\),%rax/.exec(asm)?.[1];
  if (!offset) fail(`no sqlite3_sql in ${addon} to read the statement text's offset from (an x86-64 build with symbols is needed)`);
  const event = 'genesis:reprepare';
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-recompiles-perf-'));
  spawnSync('perf', ['probe', '-q', '-d', event], { stdio: 'ignore' });
  try {
    execFileSync('perf', ['probe', '-q', '-x', addon, `${event}=sqlite3Reprepare sql=+0(+${Number(offset)}(%di)):string`], { stdio: 'inherit' });
    const data = path.join(dir, 'perf.data');
    execFileSync('perf', ['record', '-q', '-e', event, '-o', data, '--', process.execPath, import.meta.filename, '--drive'], { stdio: 'inherit' });
    const trace = execFileSync('perf', ['script', '-i', data, '-F', 'trace'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'] });
    const counts = new Map<string, number>();
    // Each event prints `sql="<text>"`; the text may span lines.
    for (const m of trace.matchAll(/sql="([\s\S]*?)"\s*(?=\n|$)/g)) {
      const sql = m[1]!.replace(/\s+/g, ' ').trim();
      counts.set(sql, (counts.get(sql) ?? 0) + 1);
    }
    console.log('statements compiled again while they ran (count, statement):');
    for (const [sql, n] of [...counts].sort((a, b) => b[1] - a[1])) console.log(`${String(n).padStart(6)}  ${sql.slice(0, 200)}`);
    const others = [...counts.keys()].filter((s) => !/^PRAGMA synchronous = (NORMAL|FULL)$/.test(s) && !/^(BEGIN|COMMIT|SAVEPOINT|RELEASE)\b/.test(s));
    console.log(others.length ? `${others.length} statement(s) beyond PRAGMA synchronous: see the comment at the top of this file` : 'none beyond PRAGMA synchronous (and first runs after the schema was read)');
  } finally {
    spawnSync('perf', ['probe', '-q', '-d', event], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }
}

function fail(why: string): never {
  console.error(`bench/statement-recompiles.ts: ${why}`);
  process.exit(2);
}
