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

/** The boot path, as the query-plan test drives it, 50 times over. */
async function drive(): Promise<void> {
  const { InventoryDatabase } = await import('../src/inventory/database.ts');
  const { Inventory } = await import('../src/inventory/store.ts');
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-recompiles-'));
  const inv = new Inventory(InventoryDatabase.open(path.join(dir, 'genesis.db')));
  for (let i = 0; i < 200; i++) inv.recordBoot(`52:54:00:01:${String(Math.floor(i / 100)).padStart(2, '0')}:${String(i % 100).padStart(2, '0')}`, { arch: 'amd64', firmware: 'uefi', ip: `192.0.2.${i % 250}` });
  const H = 'c'.repeat(64);
  for (let k = 0; k < 50; k++) {
    const mac = `52:54:00:02:00:${String(k).padStart(2, '0')}`;
    const ip = `192.0.2.${200 + k}`;
    await inv.atomicallyShared(() => inv.recordBoot(mac, { arch: 'amd64', firmware: 'uefi', ip }));
    inv.update(mac, { role: 'worker', hostname: `w-${k}` }, 'api', { create: false });
    inv.recordBoot(mac, { ip });
    inv.setWaiting(mac, 'no Talos assets');
    inv.setWaiting(mac, null);
    inv.noteBootAddress(mac, ip);
    inv.issueConfigToken(mac, H, 60_000, 3, ip);
    inv.checkConfigToken(mac, H, ip);
    inv.consumeConfigToken(mac, H, { via: 'http' }, ip);
    for (let j = 0; j < 40; j++) inv.record(mac, 'asset-fetched', 'boot', { path: '/assets/talos/v1.14.0/amd64/vmlinuz' });
    inv.byIp(ip);
    inv.observedMac({ ip });
    inv.observedMac({ mac });
    inv.bySource(ip);
    inv.bySource('192.0.2.252');
    inv.byHostname(`w-${k}`);
    inv.applyTalosEvent(mac, { id: 'e-1', detail: { stage: 'installing' }, stage: 'installing', addresses: ['192.0.2.252'] });
    inv.applyTalosEvent(mac, { id: 'e-1', detail: {} });
    inv.applyTalosEvent(mac, { id: 'e-2', detail: {}, installed: 'sequence install finished' });
    inv.appendKernelLog(mac, [{ talosTime: null, level: 'info', facility: 'kern', msg: 'hello', fields: {} }], 100);
    inv.kernelLog(mac, { limit: 50 });
    inv.kernelLog(mac, { after: 0, limit: 50 });
    inv.events(mac, { limit: 20 });
    const first = inv.list({}, { limit: 50 });
    inv.list({}, { limit: 50, after: { firstSeen: first.at(-1)!.firstSeen, mac: first.at(-1)!.mac } });
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
