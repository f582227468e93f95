// Every statement the boot path runs uses an index: a boot storm, or a fleet of 30,000 records,
// must not turn each request into a scan of the nodes or their events. The store is driven
// through one machine's whole boot (first request, assignment, script, config token, config,
// Talos events, kernel logs, an asset and a TFTP download attributed by address), each statement
// it ran is captured with its values, and SQLite's EXPLAIN QUERY PLAN must show no full scan of a
// table that grows with the fleet.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InventoryDatabase } from '../../src/inventory/database.ts';
import { Inventory } from '../../src/inventory/store.ts';
import { bootFleet, driveBootPath } from '../helpers/boot-path.ts';

/** Tables whose size follows the fleet or its traffic (small fixed tables may be scanned). */
const GROWING = ['nodes', 'node_events', 'config_tokens', 'talos_event_ids', 'kernel_logs', 'node_addresses'];

let dir: string;
let inv: Inventory;
let database: InventoryDatabase;
const statements = new Set<string>();

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'genesis-plans-'));
  let capture = false;
  database = InventoryDatabase.open(path.join(dir, 'genesis.db'), { trace: (sql) => capture && statements.add(sql) });
  inv = new Inventory(database);
  // A fleet to plan against: the planner's choice can depend on what it knows of the tables.
  bootFleet(inv, 200);
  database.connection.exec('ANALYZE');
  capture = true;
  driveBootPath(inv, { mac: '52:54:00:02:00:01', ip: '192.0.2.251', hostname: 'w-1' });
  capture = false;
});
afterAll(() => {
  inv.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the boot path uses indexes', () => {
  it('captured the boot path (a trace that saw nothing would pass everything)', () => {
    const text = [...statements].join('\n');
    for (const t of ['INSERT INTO nodes', 'SELECT mac FROM nodes WHERE last_ip =', 'config_tokens', 'talos_event_ids', 'kernel_logs', 'node_addresses', 'last_ip =', 'ORDER BY first_seen, mac LIMIT']) expect(text).toContain(t);
  });

  it('no statement scans a table that grows with the fleet', () => {
    const scans: string[] = [];
    for (const sql of statements) {
      if (!/^\s*(SELECT|UPDATE|DELETE|INSERT|WITH)/i.test(sql)) continue;
      const plan = database.connection.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as Array<{ detail: string }>;
      for (const { detail } of plan) {
        const m = /^SCAN (\w+)(?! USING (?:COVERING )?INDEX)/.exec(detail);
        if (m && GROWING.includes(m[1]!) && !/USING (COVERING )?INDEX|USING INTEGER PRIMARY KEY/.test(detail)) scans.push(`${detail}  ←  ${sql.replace(/\s+/g, ' ').slice(0, 160)}`);
      }
    }
    expect(scans).toEqual([]);
  });

  // database.ts's sql(): SQLite compiles a statement again on every run when its plan read a
  // bound value, as better-sqlite3 runs them (bench/statement-recompiles.ts shows it happening).
  it('no statement leaves a bound value where the query planner reads it (a LIMIT, an OFFSET, an equality beside an ORDER BY)', () => {
    const exposed: string[] = [];
    // As written, not as the trace shows them (with the values in).
    const written = database.preparedStatements();
    for (const t of ['LIMIT +?', 'last_ip = +?', 'OFFSET +@keep', 'kernel_logs']) expect(written.join('\n')).toContain(t);
    for (const sql of written) {
      const text = sql.replace(/\s+/g, ' ');
      if (/\b(LIMIT|OFFSET) [?@]/.test(text) || (/\bORDER BY\b/.test(text) && /= [?@]/.test(text))) exposed.push(text.slice(0, 160));
    }
    expect(exposed).toEqual([]);
  });

  it('bySource finds a node by an address Talos reported, and forgets it when Talos reports others', () => {
    expect(inv.bySource('192.0.2.252')?.mac).toBe('52:54:00:02:00:01');
    inv.applyTalosEvent('52:54:00:02:00:01', { id: 'e-3', detail: {}, addresses: ['192.0.2.253'] });
    expect(inv.bySource('192.0.2.252')).toBeUndefined();
    expect(inv.bySource('192.0.2.253')?.mac).toBe('52:54:00:02:00:01');
    inv.delete('52:54:00:02:00:01', 'api');
    expect(inv.bySource('192.0.2.253')).toBeUndefined();
  });
});
