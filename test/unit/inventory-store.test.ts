// The inventory against a real SQLite file in a temporary directory.

import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LATEST_SCHEMA, MIGRATIONS } from '../../src/inventory/migrations.ts';
import { InventoryDatabase } from '../../src/inventory/database.ts';
import { Inventory, InventoryError } from '../../src/inventory/store.ts';
import { conflictHoldText, WINDOW_CLOSED_HOLD } from '../../src/ipxe/plan.ts';

let dir: string;
let file: string;
const open: Inventory[] = [];
/** The file's connection beside each inventory opened here, for the assertions on the file itself. */
const connections = new WeakMap<Inventory, Database.Database>();
function openInv(opts: Parameters<typeof Inventory.open>[1] = {}): Inventory {
  const database = InventoryDatabase.open(file, opts);
  const inv = new Inventory(database, opts);
  connections.set(inv, database.connection);
  open.push(inv);
  return inv;
}
function sqlite(inv: Inventory): Database.Database {
  return connections.get(inv)!;
}

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'genesis-inv-'));
  file = path.join(dir, 'genesis.db');
});
afterEach(() => {
  for (const inv of open.splice(0)) if (sqlite(inv)?.open) inv.close();
  rmSync(dir, { recursive: true, force: true });
});

const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';

describe('schema', () => {
  it('creates the schema in WAL mode with a busy timeout', () => {
    const inv = openInv();
    expect(sqlite(inv).pragma('journal_mode', { simple: true })).toBe('wal');
    expect(sqlite(inv).pragma('busy_timeout', { simple: true })).toBe(5000);
    expect(sqlite(inv).pragma('user_version', { simple: true })).toBe(LATEST_SCHEMA);
  });

  it('refuses a database from a newer Genesis, and leaves it untouched', () => {
    openInv().close();
    const raw = new Database(file);
    raw.pragma(`user_version = ${LATEST_SCHEMA + 1}`);
    raw.close();
    expect(() => Inventory.open(file)).toThrow(new RegExp(`schema version ${LATEST_SCHEMA + 1}, newer than this Genesis knows \\(${LATEST_SCHEMA}\\)`));
    const again = new Database(file);
    expect(again.pragma('user_version', { simple: true })).toBe(LATEST_SCHEMA + 1);
    again.close();
  });

  it('reopening an up-to-date file runs no migration and keeps the data', () => {
    const inv = openInv();
    inv.recordBoot(A, { arch: 'amd64', firmware: 'bios', ip: '192.0.2.20' });
    inv.update(A, { role: 'worker', hostname: 'w-1', labels: { zone: 'a' } }, 'api', { create: false });
    inv.close();
    const again = openInv();
    expect(again.get(A)).toMatchObject({ role: 'worker', state: 'assigned', hostname: 'w-1', arch: 'amd64', firmware: 'bios', labels: { zone: 'a' }, lastIp: '192.0.2.20' });
    expect(again.events(A).map((e) => e.type)).toEqual(['state-changed', 'api-change', 'discovered']);
  });
});

describe('nodes', () => {
  it('recordBoot creates a node once, then refreshes what the machine reports', () => {
    const inv = openInv();
    const first = inv.recordBoot(A, { arch: 'amd64', firmware: 'uefi', uuid: 'u-1', ip: '192.0.2.20' });
    expect(first.created).toBe(true);
    expect(first.node).toMatchObject({ mac: A, role: 'unassigned', state: 'discovered', uuid: 'u-1' });
    const second = inv.recordBoot(A, { ip: '192.0.2.21', serial: 'S1' });
    expect(second.created).toBe(false);
    expect(second.node).toMatchObject({ uuid: 'u-1', serial: 'S1', lastIp: '192.0.2.21', arch: 'amd64' });
    expect(inv.list()).toHaveLength(1);
    expect(inv.events(A).filter((e) => e.type === 'discovered')).toHaveLength(1);
  });

  it('the node a boot request or a served config returns is the stored one (they are not read back)', () => {
    let now = new Date('2026-06-01T10:00:00Z');
    const inv = openInv({ now: () => now });
    const H = 'c'.repeat(64);
    const stored = () => inv.get(A)!;
    // New, then known and unassigned, then assigned: its window opens and the first address binds it.
    expect(inv.recordBoot(A, { arch: 'amd64', ip: '192.0.2.20' }).node).toEqual(stored());
    now = new Date('2026-06-01T10:00:01Z');
    expect(inv.recordBoot(A, { firmware: 'uefi', serial: 'S1', ip: '192.0.2.21' }).node).toEqual(stored());
    inv.update(A, { role: 'worker' }, 'api', { create: false });
    now = new Date('2026-06-01T10:00:02Z');
    const bound = inv.recordBoot(A, { uuid: 'u-1', ip: '192.0.2.22' });
    expect(bound.node).toEqual(stored());
    expect(bound.node.windowIp).toBe('192.0.2.22');
    // The config served moves it to installing (updatedAt with it), then a second fetch moves nothing.
    inv.issueConfigToken(A, H, 60_000, 2, '192.0.2.22');
    now = new Date('2026-06-01T10:00:03Z');
    const served = inv.consumeConfigToken(A, H, {}, '192.0.2.22');
    expect(served.ok && served.node).toEqual(stored());
    expect(stored()).toMatchObject({ state: 'installing', updatedAt: '2026-06-01T10:00:03.000Z' });
    now = new Date('2026-06-01T10:00:04Z');
    const again = inv.consumeConfigToken(A, H, {}, '192.0.2.22');
    expect(again.ok && again.node).toEqual(stored());
    // Installed: a boot request changes nothing, and says so with the node as it is.
    inv.setState(A, 'installed', 'api');
    now = new Date('2026-06-01T10:00:05Z');
    const frozen = inv.recordBoot(A, { serial: 'S2', ip: '192.0.2.23' });
    expect(frozen.node).toEqual(stored());
    expect(stored()).toMatchObject({ serial: 'S1', lastIp: '192.0.2.22' });
  });

  it('role changes move the boot state; unassigning sends it back to discovered', () => {
    const inv = openInv();
    inv.recordBoot(A, {});
    expect(inv.update(A, { role: 'controlplane' }, 'api', { create: false }).node.state).toBe('assigned');
    inv.setState(A, 'installed', 'api');
    expect(inv.update(A, { hostname: 'cp-1' }, 'api', { create: false }).node.state).toBe('installed');
    expect(inv.update(A, { role: 'unassigned' }, 'api', { create: false }).node.state).toBe('discovered');
  });

  it('PUT semantics create a machine before it boots; PATCH semantics refuse unknown MACs', () => {
    const inv = openInv();
    expect(() => inv.update(A, { role: 'worker' }, 'api', { create: false })).toThrow(InventoryError);
    const r = inv.update(A, { role: 'worker', installDisk: '/dev/sda' }, 'api', { create: true });
    expect(r.created).toBe(true);
    expect(r.node).toMatchObject({ role: 'worker', state: 'assigned', installDisk: '/dev/sda', arch: null });
    // Its first boot then only adds what it reports.
    expect(inv.recordBoot(A, { arch: 'arm64', ip: '192.0.2.20' })).toMatchObject({ created: false, node: { role: 'worker', arch: 'arm64' } });
  });

  it('absent fields stay, null clears, and a disk path and a selector replace each other', () => {
    const inv = openInv();
    inv.update(A, { role: 'worker', hostname: 'w-1', installDisk: '/dev/sda', talosVersion: 'v1.12.0' }, 'api', { create: true });
    let n = inv.update(A, { diskSelector: { type: 'nvme' } }, 'api', { create: false }).node;
    expect(n).toMatchObject({ hostname: 'w-1', installDisk: null, diskSelector: { type: 'nvme' }, talosVersion: 'v1.12.0' });
    n = inv.update(A, { hostname: null, talosVersion: null, installDisk: '/dev/nvme0n1' }, 'api', { create: false }).node;
    expect(n).toMatchObject({ hostname: null, installDisk: '/dev/nvme0n1', diskSelector: null, talosVersion: null });
  });

  it('hostnames are unique, and a clash changes nothing', () => {
    const inv = openInv();
    inv.update(A, { role: 'worker', hostname: 'w-1' }, 'api', { create: true });
    inv.update(B, { role: 'worker' }, 'api', { create: true });
    expect(() => inv.update(B, { role: 'controlplane', hostname: 'w-1' }, 'api', { create: false })).toThrow(/already used by 52:54:00:00:00:0a/);
    expect(inv.get(B)).toMatchObject({ role: 'worker', hostname: null });
  });

  it('reinstall and installed need a role', () => {
    const inv = openInv();
    inv.recordBoot(A, {});
    expect(() => inv.setState(A, 'reinstall-requested', 'api')).toThrow(/has no role/);
    expect(() => inv.setState(B, 'installed', 'api')).toThrow(/no node/);
    inv.update(A, { role: 'worker' }, 'api', { create: false });
    expect(inv.setState(A, 'installed', 'api').state).toBe('installed');
    expect(inv.setState(A, 'reinstall-requested', 'api').state).toBe('reinstall-requested');
    expect(inv.events(A, { limit: 1 })[0]).toMatchObject({ type: 'state-changed', detail: { from: 'installed', to: 'reinstall-requested' } });
  });

  it('filters by role and state; delete keeps the events', () => {
    const inv = openInv();
    inv.update(A, { role: 'worker' }, 'api', { create: true });
    inv.update(B, { role: 'controlplane' }, 'api', { create: true });
    inv.setState(B, 'installed', 'api');
    expect(inv.list({ role: 'worker' }).map((n) => n.mac)).toEqual([A]);
    expect(inv.list({ state: 'installed' }).map((n) => n.mac)).toEqual([B]);
    expect(inv.list({ role: 'worker', state: 'installed' })).toEqual([]);
    expect(inv.delete(A, 'api')).toBe(true);
    expect(inv.delete(A, 'api')).toBe(false);
    expect(inv.get(A)).toBeUndefined();
    expect(inv.events(A)[0]).toMatchObject({ type: 'deleted', actor: 'api' });
  });

  it('byIp finds the machine that last booted from an address', () => {
    const inv = openInv();
    inv.recordBoot(A, { ip: '192.0.2.30' });
    expect(inv.byIp('192.0.2.30')?.mac).toBe(A);
    expect(inv.byIp('192.0.2.31')).toBeUndefined();
  });
});

describe('events', () => {
  it('keep the newest N per machine and page backwards', () => {
    const inv = openInv({ eventRetention: 10 });
    inv.recordBoot(A, {});
    for (let i = 0; i < 25; i++) inv.record(A, 'script-served', 'boot', { i });
    inv.record(B, 'script-served', 'boot', {});
    const all = inv.events(A, { limit: 100 });
    expect(all).toHaveLength(10);
    expect(all.map((e) => e.detail.i)).toEqual([24, 23, 22, 21, 20, 19, 18, 17, 16, 15]);
    const page = inv.events(A, { limit: 3, before: all[2]!.id });
    expect(page.map((e) => e.detail.i)).toEqual([21, 20, 19]);
    expect(inv.events(B)).toHaveLength(1);
  });
});

describe('auto-assign', () => {
  it('the first N machines become control planes, the rest workers', () => {
    const inv = openInv({ autoAssign: { enabled: true, controlplanes: 2 } });
    const roles = ['01', '02', '03', '04'].map((x) => inv.recordBoot(`52:54:00:00:01:${x}`, {}).node.role);
    expect(roles).toEqual(['controlplane', 'controlplane', 'worker', 'worker']);
    expect(inv.list({ state: 'assigned' })).toHaveLength(4);
    expect(inv.events('52:54:00:00:01:01', { limit: 1 })[0]).toMatchObject({ type: 'state-changed', actor: 'policy' });
  });

  it('two connections to one file share the count (a second Genesis on the same data dir)', () => {
    const one = openInv({ autoAssign: { enabled: true, controlplanes: 3 } });
    const two = openInv({ autoAssign: { enabled: true, controlplanes: 3 } });
    const roles: string[] = [];
    for (let i = 0; i < 10; i++) roles.push((i % 2 ? one : two).recordBoot(`52:54:00:00:02:${String(i).padStart(2, '0')}`, {}).node.role);
    expect(roles.filter((r) => r === 'controlplane')).toHaveLength(3);
    expect(roles.slice(0, 3)).toEqual(['controlplane', 'controlplane', 'controlplane']);
  });
});

describe('config tokens', () => {
  const H1 = 'a'.repeat(64);
  const H2 = 'b'.repeat(64);

  it('expire: valid until the deadline, refused from it on', () => {
    let now = new Date('2026-06-01T10:00:00Z');
    const inv = openInv({ now: () => now });
    inv.update(A, { role: 'worker' }, 'test', { create: true });
    inv.issueConfigToken(A, H1, 30 * 60_000, 5);
    now = new Date('2026-06-01T10:29:59Z');
    expect(inv.checkConfigToken(A, H1)).toMatchObject({ ok: true, fetchesLeft: 5 });
    now = new Date('2026-06-01T10:30:00Z');
    expect(inv.checkConfigToken(A, H1)).toMatchObject({ ok: false, reason: 'expired' });
    expect(inv.consumeConfigToken(A, H1, {})).toMatchObject({ ok: false, reason: 'expired' });
    expect(inv.get(A)!.state).toBe('assigned');
  });

  it('are bound to one MAC, spent one fetch at a time, and replaced by the next issue', () => {
    const inv = openInv();
    inv.update(A, { role: 'worker' }, 'test', { create: true });
    inv.update(B, { role: 'worker' }, 'test', { create: true });
    inv.issueConfigToken(A, H1, 60_000, 2);
    expect(inv.checkConfigToken(B, H1)).toMatchObject({ ok: false, reason: 'no-token' });
    expect(inv.checkConfigToken(A, H2)).toMatchObject({ ok: false, reason: 'wrong-token' });
    expect(inv.checkConfigToken('52:54:00:00:00:99', H1)).toEqual({ ok: false, reason: 'unknown-node' });
    expect(inv.consumeConfigToken(A, H1, { sha256: 'x' })).toMatchObject({ ok: true, fetchesLeft: 1 });
    expect(inv.get(A)!.state).toBe('installing');
    expect(inv.consumeConfigToken(A, H1, {})).toMatchObject({ ok: true, fetchesLeft: 0 });
    expect(inv.consumeConfigToken(A, H1, {})).toMatchObject({ ok: false, reason: 'used-up' });
    inv.issueConfigToken(A, H2, 60_000, 2);
    expect(inv.checkConfigToken(A, H1)).toMatchObject({ ok: false, reason: 'wrong-token' });
    expect(inv.events(A).filter((e) => e.type === 'config-served')).toHaveLength(2);
  });

  it('the last fetch is spent once even when two Genesis processes race for it', () => {
    const one = openInv();
    const two = openInv();
    one.update(A, { role: 'worker' }, 'test', { create: true });
    one.issueConfigToken(A, H1, 60_000, 1);
    const results = [one.consumeConfigToken(A, H1, {}), two.consumeConfigToken(A, H1, {})];
    expect(results.map((r) => r.ok)).toEqual([true, false]);
  });

  it('are revoked when the node is installed, unassigned or deleted', () => {
    const inv = openInv();
    for (const [mac, revoke] of [
      [A, () => inv.setState(A, 'installed', 'test')],
      [B, () => inv.update(B, { role: 'unassigned' }, 'test', { create: false })],
    ] as const) {
      inv.update(mac, { role: 'worker' }, 'test', { create: true });
      inv.issueConfigToken(mac, H1, 60_000, 5);
      revoke();
      expect(inv.checkConfigToken(mac, H1)).toMatchObject({ ok: false, reason: 'no-token' });
    }
    inv.issueConfigToken(A, H1, 60_000, 5);
    inv.delete(A, 'test');
    expect(sqlite(inv).prepare('SELECT count(*) AS n FROM config_tokens WHERE mac = ?').get(A)).toEqual({ n: 0 });
  });

  it('a v1 database is upgraded in place: nodes keep their data and gain the new fields', () => {
    const raw = new Database(file);
    raw.exec(MIGRATIONS[0]!.sql);
    raw.pragma('user_version = 1');
    raw.prepare("INSERT INTO nodes (mac, role, state, hostname, first_seen, updated_at) VALUES (?, 'worker', 'assigned', 'w1', 'x', 'x')").run(A);
    raw.close();
    const inv = openInv();
    expect(inv.get(A)).toMatchObject({ role: 'worker', hostname: 'w1', network: null, configPatch: null });
  });

  it('a v6 database becomes v7 (firmware u-boot allowed) with every column of every node kept', () => {
    const raw = new Database(file);
    for (const m of MIGRATIONS.filter((m) => m.version <= 6)) raw.exec(m.sql);
    raw.pragma('user_version = 6');
    raw
      .prepare(
        `INSERT INTO nodes (mac, role, state, hostname, arch, firmware, serial, last_ip, labels, first_seen, last_seen, updated_at, bootstrap, talos_addresses, waiting, window_ip, conflict)
         VALUES (?, 'controlplane', 'installing', 'cp1', 'amd64', 'uefi', 'S1', '192.0.2.5', '{"rack":"a"}', 'f', 'l', 'u', 1, '["192.0.2.5"]', 'w', '192.0.2.5', 'c')`,
      )
      .run(A);
    raw.close();
    const inv = openInv();
    expect(sqlite(inv).pragma('user_version', { simple: true })).toBe(LATEST_SCHEMA);
    expect(inv.get(A)).toMatchObject({ role: 'controlplane', state: 'installing', hostname: 'cp1', arch: 'amd64', firmware: 'uefi', serial: 'S1', lastIp: '192.0.2.5', labels: { rack: 'a' }, bootstrap: true, waiting: 'w', windowIp: '192.0.2.5', conflict: 'c' });
    inv.recordBoot(B, { arch: 'arm64', firmware: 'u-boot', ip: '192.0.2.6' });
    expect(inv.get(B)).toMatchObject({ arch: 'arm64', firmware: 'u-boot' });
    // The rebuilt table keeps its index and its constraints.
    expect(sqlite(inv).prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND name = 'nodes_role'").get()).toBeTruthy();
    expect(() => sqlite(inv).prepare("UPDATE nodes SET firmware = 'coreboot' WHERE mac = ?").run(A)).toThrow(/CHECK/);
  });

  it('a v13 database becomes v14: an installed machine an older release left held is settled, with an audit event, and no other is touched', () => {
    const raw = new Database(file);
    for (const m of MIGRATIONS.filter((m) => m.version <= 13)) raw.exec(m.sql);
    raw.pragma('user_version = 13');
    const row = raw.prepare("INSERT INTO nodes (mac, role, state, first_seen, updated_at, waiting, conflict) VALUES (?, 'worker', ?, 'f', 'u', ?, ?)");
    const C = '52:54:00:00:00:0c';
    row.run(A, 'installed', 'held: c1', 'c1');
    row.run(B, 'installing', 'held: c2', 'c2');
    row.run(C, 'installed', 'its install window is closed', null);
    raw.close();
    const inv = openInv();
    expect(inv.get(A)).toMatchObject({ state: 'installed', conflict: null, waiting: null });
    expect(inv.get(B)).toMatchObject({ state: 'installing', conflict: 'c2', waiting: 'held: c2' });
    expect(inv.get(C)).toMatchObject({ state: 'installed', conflict: null, waiting: null });
    expect(inv.events(A).map((e) => [e.type, e.actor, e.detail]).sort()).toEqual([
      ['boot-waiting', 'system', { reason: null }],
      ['conflict-resolved', 'system', { was: 'c1', by: 'upgrade' }],
    ]);
    expect(inv.events(A)[0]!.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(inv.events(B)).toEqual([]);
    expect(inv.events(C).map((e) => e.type)).toEqual(['boot-waiting']);
    // Kept as audit: never pruned by boot noise.
    expect(sqlite(inv).prepare('SELECT COUNT(*) FROM node_events WHERE audit = 1').pluck().get()).toBe(3);
  });
});

describe('install windows in the store', () => {
  const M = '52:54:00:00:0e:01';
  /** M assigned, claimed from two addresses, and held as the boot service holds it. */
  function heldByConflict(): { inv: Inventory; conflict: string } {
    const inv = openInv();
    inv.update(M, { role: 'worker' }, 'api', { create: true });
    inv.recordBoot(M, { ip: '192.0.2.21' });
    inv.recordBoot(M, { ip: '192.0.2.66' });
    const conflict = inv.get(M)!.conflict!;
    inv.setWaiting(M, conflictHoldText(conflict));
    return { inv, conflict };
  }

  it('assignment opens a window; the first address binds it; a second is a conflict that revokes the token', () => {
    const inv = openInv();
    inv.update(M, { role: 'worker' }, 'api', { create: true });
    expect(inv.get(M)!.windowUntil).not.toBeNull();
    const first = inv.recordBoot(M, { ip: '192.0.2.21' });
    expect(first.access.kind).toBe('bind');
    expect(inv.get(M)).toMatchObject({ windowIp: '192.0.2.21', lastIp: '192.0.2.21', conflict: null });
    inv.issueConfigToken(M, 'a'.repeat(64), 60_000, 5, '192.0.2.21');
    const second = inv.recordBoot(M, { ip: '192.0.2.66', serial: 'EVIL' });
    expect(second.access).toEqual({ kind: 'conflict', addresses: ['192.0.2.21', '192.0.2.66'] });
    expect(inv.get(M)).toMatchObject({ lastIp: '192.0.2.21', serial: null, conflict: 'two machines claim this MAC inside its install window: 192.0.2.21 and 192.0.2.66' });
    expect(inv.checkConfigToken(M, 'a'.repeat(64), '192.0.2.21')).toMatchObject({ ok: false, reason: 'no-token' });
    // The operator's answer clears it and opens a new window bound to the real one.
    inv.confirmMachine(M, '192.0.2.21', 'api');
    expect(inv.get(M)).toMatchObject({ conflict: null, windowIp: '192.0.2.21' });
    expect(inv.events(M).map((e) => e.type)).toEqual(expect.arrayContaining(['conflict', 'conflict-resolved']));
  });

  it("confirming clears the conflict's hold from the node, and no other hold", () => {
    const { inv, conflict } = heldByConflict();
    expect(inv.confirmMachine(M, '192.0.2.21', 'api')).toMatchObject({ conflict: null, waiting: null });
    expect(inv.get(M)!.waiting).toBeNull();
    // Newest first: the hold lifted after, and because, the conflict was resolved.
    expect(inv.events(M).slice(0, 2).map((e) => [e.type, e.detail])).toEqual([
      ['boot-waiting', { reason: null }],
      ['conflict-resolved', { was: conflict, ip: '192.0.2.21' }],
    ]);

    // A hold of the machine's own (set before a conflict seen on the PXE port) is not the operator's to clear.
    const other = '52:54:00:00:0e:02';
    const assets = 'waiting for the Talos v1.14.0 arm64 kernel and initramfs (genesis assets fetch --talos v1.14.0 --arch arm64)';
    inv.update(other, { role: 'worker' }, 'api', { create: true });
    inv.recordBoot(other, { ip: '192.0.2.31' });
    inv.setWaiting(other, assets);
    inv.noteBootAddress(other, '192.0.2.32');
    expect(inv.get(other)!.conflict).not.toBeNull();
    expect(inv.confirmMachine(other, '192.0.2.31', 'api')).toMatchObject({ conflict: null, waiting: assets });
  });

  it("a reinstall lifts a closed window's hold at once, says so in the history, and leaves a hold of the machine's own", () => {
    let clock = new Date('2026-12-02T12:00:00.000Z');
    const inv = openInv({ now: () => clock, installWindowMs: 60_000 });
    inv.update(M, { role: 'worker' }, 'api', { create: true });
    inv.recordBoot(M, { ip: '192.0.2.21' });
    clock = new Date(clock.getTime() + 120_000);
    // What the boot service writes once the window has closed.
    inv.setWaiting(M, WINDOW_CLOSED_HOLD);
    expect(inv.setState(M, 'reinstall-requested', 'api')).toMatchObject({ state: 'reinstall-requested', waiting: null });
    expect(inv.get(M)!.waiting).toBeNull();
    expect(inv.events(M)[0]).toMatchObject({ type: 'boot-waiting', actor: 'api', detail: { reason: null } });

    const own = 'waiting: its machine config cannot be rendered: no cluster.endpoint';
    inv.setWaiting(M, own);
    expect(inv.setState(M, 'reinstall-requested', 'api').waiting).toBe(own);
    // Marked installed by hand: an installed machine's requests never rewrite it, so it goes now.
    expect(inv.setState(M, 'installed', 'api').waiting).toBeNull();
    expect(inv.get(M)!.waiting).toBeNull();
  });

  it('marking a held machine installed settles its conflict, and the history says so before the change', () => {
    const { inv, conflict } = heldByConflict();
    expect(inv.setState(M, 'installed', 'cli')).toMatchObject({ state: 'installed', conflict: null, waiting: null, windowUntil: null });
    expect(inv.get(M)).toMatchObject({ state: 'installed', conflict: null, waiting: null });
    // Newest first: the hold lifted, the state changed, because the conflict was settled by the operator.
    expect(inv.events(M).slice(0, 3).map((e) => [e.type, e.actor, e.detail])).toEqual([
      ['boot-waiting', 'cli', { reason: null }],
      ['state-changed', 'cli', { from: 'assigned', to: 'installed' }],
      ['conflict-resolved', 'cli', { was: conflict, by: 'state-requested' }],
    ]);
    // Frozen: a third address neither raises a conflict nor changes the record.
    expect(inv.recordBoot(M, { ip: '192.0.2.77' }).access.kind).toBe('frozen');
    expect(inv.get(M)!.conflict).toBeNull();
  });

  it('a token conflict recorded after the machine was installed raises nothing (the check and the record are two transactions)', () => {
    const inv = openInv();
    inv.update(M, { role: 'worker' }, 'api', { create: true });
    inv.recordBoot(M, { ip: '192.0.2.21' });
    inv.issueConfigToken(M, 'c'.repeat(64), 60_000, 5, '192.0.2.21');
    expect(inv.checkConfigToken(M, 'c'.repeat(64), '192.0.2.66')).toMatchObject({ ok: false, reason: 'other-address' });
    inv.setState(M, 'installed', 'api');
    inv.recordTokenConflict(M, ['192.0.2.21', '192.0.2.66']);
    expect(inv.get(M)!.conflict).toBeNull();
    expect(inv.events(M).map((e) => e.type)).not.toContain('conflict');
  });

  it('an address the proxyDHCP sees on the PXE port binds the window, and a different one is a conflict', () => {
    const inv = openInv();
    inv.update(M, { role: 'worker' }, 'api', { create: true });
    inv.noteBootAddress(M, '192.0.2.21');
    expect(inv.get(M)!.windowIp).toBe('192.0.2.21');
    inv.noteBootAddress(M, '192.0.2.21');
    expect(inv.get(M)!.conflict).toBeNull();
    expect(inv.recordBoot(M, { ip: '192.0.2.66' }).access.kind).toBe('conflict');
  });

  it('a token from another address than its script went to is refused as other-address', () => {
    const inv = openInv();
    inv.update(M, { role: 'worker' }, 'api', { create: true });
    inv.recordBoot(M, { ip: '192.0.2.21' });
    inv.issueConfigToken(M, 'b'.repeat(64), 60_000, 5, '192.0.2.21');
    expect(inv.checkConfigToken(M, 'b'.repeat(64), '192.0.2.66')).toMatchObject({ ok: false, reason: 'other-address', tokenIp: '192.0.2.21' });
    expect(inv.checkConfigToken(M, 'b'.repeat(64), '192.0.2.21')).toMatchObject({ ok: true });
  });

  it('installing closes the window; a reinstall opens a new, unbound one', () => {
    const inv = openInv();
    inv.update(M, { role: 'worker' }, 'api', { create: true });
    inv.recordBoot(M, { ip: '192.0.2.21' });
    inv.setState(M, 'installed', 'api');
    expect(inv.get(M)!.windowUntil).toBeNull();
    expect(inv.recordBoot(M, { ip: '192.0.2.66' }).access.kind).toBe('frozen');
    expect(inv.get(M)!.lastIp).toBe('192.0.2.21');
    inv.setState(M, 'reinstall-requested', 'api');
    expect(inv.get(M)).toMatchObject({ windowIp: null, conflict: null });
    expect(inv.get(M)!.windowUntil).not.toBeNull();
  });

  it('boot noise never prunes the audit trail', () => {
    const inv = openInv({ eventRetention: 10 });
    inv.update(M, { role: 'worker', hostname: 'w-1' }, 'api', { create: true });
    for (let i = 0; i < 100; i++) inv.record(M, 'config-denied', 'boot', { reason: 'wrong-token' });
    const events = inv.events(M, { limit: 1000 });
    expect(events.filter((e) => e.type === 'api-change')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'config-denied')).toHaveLength(10);
  });

  it('a config patch is kept in the audit trail as a digest', () => {
    const inv = openInv();
    inv.update(M, { role: 'worker', configPatch: 'machine:\n  env:\n    K: s3cret\n' }, 'api', { create: true });
    const change = inv.events(M).find((e) => e.type === 'api-change')!;
    expect(JSON.stringify(change.detail)).not.toContain('s3cret');
    expect((change.detail['changes'] as Record<string, unknown>)['configPatch']).toMatchObject({ bytes: 30 });
  });
});

describe('atomically', () => {
  it('runs several writes as one commit, and announces their changes only once it has committed', () => {
    const trace: string[] = [];
    const inv = openInv({ trace: (sql) => trace.push(sql) });
    const announced: string[] = [];
    inv.changes.on('change', ({ event }: { event: { mac: string; type: string } }) => announced.push(`${event.mac} ${event.type}`));
    trace.length = 0;
    inv.atomically(() => {
      inv.recordBoot(A, { arch: 'amd64', firmware: 'uefi', ip: '192.0.2.20' });
      inv.update(A, { role: 'worker' }, 'api', { create: false });
      expect(announced).toEqual([]);
    });
    expect(trace.filter((s) => /^COMMIT/i.test(s))).toHaveLength(1);
    expect(announced).toEqual([`${A} discovered`, `${A} api-change`, `${A} state-changed`]);
  });

  it('a part that fails is rolled back and not announced; the rest commits', () => {
    const inv = openInv();
    const announced: string[] = [];
    inv.changes.on('change', ({ event }: { event: { mac: string; type: string } }) => announced.push(`${event.mac} ${event.type}`));
    inv.atomically(() => {
      inv.recordBoot(A, { ip: '192.0.2.20' });
      expect(() =>
        inv.atomically(() => {
          inv.recordBoot(B, { ip: '192.0.2.21' });
          throw new Error('this part failed after writing');
        }),
      ).toThrow('this part failed after writing');
    });
    expect(inv.get(B)).toBeUndefined();
    expect(announced).toEqual([`${A} discovered`]);
  });

  it('when the whole fails, nothing is written and nothing announced', () => {
    const inv = openInv();
    const announced: unknown[] = [];
    inv.changes.on('change', (c) => announced.push(c));
    expect(() =>
      inv.atomically(() => {
        inv.recordBoot(A, { ip: '192.0.2.20' });
        throw new Error('render failed');
      }),
    ).toThrow('render failed');
    expect(inv.get(A)).toBeUndefined();
    expect(announced).toEqual([]);
  });
});

describe('countByStateAndRole', () => {
  it('counts machines per state and role without building their records', () => {
    const inv = openInv();
    inv.recordBoot(A, { ip: '192.0.2.20' });
    inv.update(B, { role: 'worker' }, 'api', { create: true });
    inv.update('52:54:00:00:00:0c', { role: 'worker' }, 'api', { create: true });
    const counts = inv.countByStateAndRole().sort((x, y) => x.role.localeCompare(y.role));
    expect(counts).toEqual([
      { state: 'discovered', role: 'unassigned', count: 1 },
      { state: 'assigned', role: 'worker', count: 2 },
    ]);
  });
});
