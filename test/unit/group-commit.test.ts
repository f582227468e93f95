// Boot steps share commits (InventoryDatabase.defer, Inventory.recordSoon), against a real SQLite
// file, read from a second connection as another process would: what waits is not on disk yet,
// goes with the next commit or the timer, is seen by event reads at once, survives a refused
// write it rode on, and is committed by close.

import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InventoryDatabase } from '../../src/inventory/database.ts';
import { Inventory, InventoryError } from '../../src/inventory/store.ts';
import { until } from '../helpers/wait.ts';

const MAC = '52:54:00:00:0c:01';
let dir: string;
let file: string;
const cleanup: Array<() => void> = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'genesis-group-commit-'));
  file = path.join(dir, 'genesis.db');
});
afterEach(() => {
  for (const c of cleanup.splice(0).reverse()) c();
  rmSync(dir, { recursive: true, force: true });
});

function open(groupCommitMs: number, errors: unknown[] = []): { inv: Inventory; database: InventoryDatabase } {
  const database = InventoryDatabase.open(file, { groupCommitMs, onDeferredError: (e) => errors.push(e) });
  const inv = new Inventory(database);
  cleanup.push(() => database.connection.open && inv.close());
  inv.update(MAC, { role: 'worker' }, 'test', { create: true });
  return { inv, database };
}

/** Steps on disk, as another process reading the file sees them. */
function onDisk(): string[] {
  const other = new Database(file, { readonly: true });
  try {
    return (other.prepare("SELECT type FROM node_events WHERE mac = ? AND actor = 'boot' ORDER BY id").all(MAC) as Array<{ type: string }>).map((r) => r.type);
  } finally {
    other.close();
  }
}

describe('group commit of boot steps', () => {
  it('steps wait for the next commit and go with it, in order, stamped when they were seen', () => {
    const { inv } = open(60_000);
    inv.recordSoon(MAC, 'dhcp-offered', 'boot', { n: 1 });
    inv.recordSoon(MAC, 'tftp-served', 'boot', { n: 2 });
    expect(onDisk()).toEqual([]);
    inv.update(MAC, { hostname: 'w-1' }, 'test', { create: false });
    expect(onDisk()).toEqual(['dhcp-offered', 'tftp-served']);
  });

  it('the timer commits steps nothing else carried', async () => {
    const { inv } = open(10);
    inv.recordSoon(MAC, 'asset-fetched', 'boot', { path: '/assets/x' });
    await until(() => onDisk().length === 1, 'the step committed by the timer');
    expect(onDisk()).toEqual(['asset-fetched']);
  });

  it('an event read sees every step queued before it', () => {
    const { inv } = open(60_000);
    inv.recordSoon(MAC, 'tftp-served', 'boot', { file: 'undionly.kpxe' });
    expect(inv.events(MAC, { limit: 1 })[0]).toMatchObject({ type: 'tftp-served', detail: { file: 'undionly.kpxe' } });
    expect(onDisk()).toEqual(['tftp-served']);
  });

  it('a write refused for its own reasons does not take the waiting steps with it', () => {
    const { inv } = open(60_000);
    inv.update('52:54:00:00:0c:02', { hostname: 'taken' }, 'test', { create: true });
    inv.recordSoon(MAC, 'dhcp-offered', 'boot', {});
    // A hostname another machine has: refused inside its transaction, which rolls back.
    expect(() => inv.update(MAC, { hostname: 'taken' }, 'test', { create: false })).toThrow(InventoryError);
    expect(onDisk()).toEqual([]);
    inv.update(MAC, { hostname: 'w-2' }, 'test', { create: false });
    expect(onDisk()).toEqual(['dhcp-offered']);
  });

  it('one step that cannot be written costs only itself', () => {
    const errors: unknown[] = [];
    const { inv, database } = open(60_000, errors);
    inv.recordSoon(MAC, 'dhcp-offered', 'boot', {});
    database.defer(() => {
      throw new Error('this one fails');
    });
    inv.recordSoon(MAC, 'tftp-served', 'boot', {});
    database.flush();
    expect(onDisk()).toEqual(['dhcp-offered', 'tftp-served']);
    expect(errors).toHaveLength(1);
  });

  it('close commits what waits', () => {
    const { inv } = open(60_000);
    inv.recordSoon(MAC, 'asset-fetched', 'boot', {});
    inv.close();
    expect(onDisk()).toEqual(['asset-fetched']);
  });

  it('with no group commit (0), a step is written at once', () => {
    const { inv } = open(0);
    inv.recordSoon(MAC, 'dhcp-offered', 'boot', {});
    expect(onDisk()).toEqual(['dhcp-offered']);
  });
});
