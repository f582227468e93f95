// Boot steps share commits (InventoryDatabase.defer, Inventory.recordSoon), against a real SQLite
// file, read from a second connection as another process would: what waits is not on disk yet,
// goes with the next commit or the timer, is seen by event reads at once, survives a refused
// write it rode on, and is committed by close. Requests share commits too (writeShared), and
// those are synced to disk off the main thread: with the WAL's sync held by the test, nobody is
// answered and nothing announced before it returns, and every way around it (a read, a write, a
// close) makes the commits durable first.

import Database from 'better-sqlite3';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BootstrapLocks } from '../../src/bootstrap/lock-store.ts';
import { InventoryDatabase, type DatabaseOptions, type WalSync } from '../../src/inventory/database.ts';
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

/** The inventory on the test's file, closed after the test, with MAC recorded as a worker. */
function openWith(opts: DatabaseOptions): { inv: Inventory; database: InventoryDatabase } {
  const database = InventoryDatabase.open(file, opts);
  const inv = new Inventory(database);
  cleanup.push(() => database.connection.open && inv.close());
  inv.update(MAC, { role: 'worker' }, 'test', { create: true });
  return { inv, database };
}

function open(groupCommitMs: number, errors: unknown[] = []): { inv: Inventory; database: InventoryDatabase } {
  return openWith({ groupCommitMs, onDeferredError: (e) => errors.push(e) });
}

/** Event types on disk, oldest first, as another process reading the file sees them (`actor`: only its events). */
function typesOnDisk(actor?: string): string[] {
  const other = new Database(file, { readonly: true });
  try {
    return (other.prepare('SELECT type FROM node_events WHERE mac = ? AND actor = coalesce(?, actor) ORDER BY id').all(MAC, actor ?? null) as Array<{ type: string }>).map((r) => r.type);
  } finally {
    other.close();
  }
}

/** Boot steps on disk. */
const onDisk = (): string[] => typesOnDisk('boot');

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

describe('shared commits of decisions (writeShared)', () => {
  it('the requests of one turn share one commit, and none is answered before it is on disk', async () => {
    const trace: string[] = [];
    const { inv } = openWith({ trace: (sql) => trace.push(sql) });
    const before = typesOnDisk();
    trace.length = 0;
    const answered: string[] = [];
    const answers = ['script-served', 'config-served', 'config-denied'].map((type) =>
      inv.atomicallyShared(() => (inv.record(MAC, type as 'script-served', 'boot', {}), type)).then((t) => {
        // Whoever is told has what it was told on disk.
        expect(typesOnDisk()).toContain(t);
        answered.push(t);
      }),
    );
    // Run, not yet committed, not yet answered.
    expect(typesOnDisk()).toEqual(before);
    expect(answered).toEqual([]);
    await Promise.all(answers);
    expect(answered).toEqual(['script-served', 'config-served', 'config-denied']);
    expect(trace.filter((s) => s === 'COMMIT')).toHaveLength(1);
  });

  it('a part that fails is rolled back and rejected alone; the others commit', async () => {
    const { inv } = open(0);
    const before = typesOnDisk();
    const ok = inv.atomicallyShared(() => inv.record(MAC, 'script-served', 'boot', {}));
    const bad = inv.atomicallyShared(() => {
      inv.record(MAC, 'config-served', 'boot', {});
      throw new Error('refused');
    });
    await expect(bad).rejects.toThrow('refused');
    await ok;
    expect(typesOnDisk()).toEqual([...before, 'script-served']);
  });

  it('a commit that fails rejects every part, and nothing of them is on disk or announced', async () => {
    const { inv, database } = open(0);
    const before = typesOnDisk();
    // A deferred foreign key is checked at COMMIT: the one way to make a commit itself fail here.
    database.connection.exec('PRAGMA foreign_keys = ON; CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)');
    const announced: string[] = [];
    inv.changes.on('change', ({ event }: { event: { type: string } }) => announced.push(event.type));
    const one = inv.atomicallyShared(() => inv.record(MAC, 'script-served', 'boot', {}));
    const two = inv.atomicallyShared(() => database.connection.prepare('INSERT INTO child (p) VALUES (42)').run());
    await expect(one).rejects.toThrow('FOREIGN KEY constraint failed');
    await expect(two).rejects.toThrow('FOREIGN KEY constraint failed');
    expect(typesOnDisk()).toEqual(before);
    expect(announced).toEqual([]);
    // The next request starts clean.
    await inv.atomicallyShared(() => inv.record(MAC, 'config-served', 'boot', {}));
    expect(typesOnDisk()).toEqual([...before, 'config-served']);
  });

  it('any other write or read first commits what is shared, so it never sees it open', async () => {
    const { inv } = open(0);
    const before = typesOnDisk();
    const shared = inv.atomicallyShared(() => inv.record(MAC, 'script-served', 'boot', {}));
    // A synchronous write is committed when it returns, and the shared part with it.
    inv.update(MAC, { hostname: 'w-2' }, 'test', { create: false });
    expect(typesOnDisk()).toEqual([...before, 'script-served', 'api-change']);
    await shared;
    const again = inv.atomicallyShared(() => inv.record(MAC, 'config-served', 'boot', {}));
    expect(inv.get(MAC)?.hostname).toBe('w-2');
    expect(typesOnDisk()).toContain('config-served');
    await again;
  });

  it('a bootstrap lock change made while a shared transaction is open is on disk when it returns', async () => {
    const { inv, database } = open(0);
    const locks = new BootstrapLocks(database.connection, Date.now, (fn) => database.write(fn));
    const shared = inv.atomicallyShared(() => inv.record(MAC, 'script-served', 'boot', {}));
    const won = locks.claim('lab', MAC, '192.0.2.10', 'test');
    expect(won).toMatchObject({ changed: true });
    const other = new Database(file, { readonly: true });
    try {
      expect(new BootstrapLocks(other).get('lab').holder).toBe(MAC);
    } finally {
      other.close();
    }
    await shared;
  });

  it('a change listener that throws after the commit neither leaves a request unanswered nor escapes', async () => {
    const failures: unknown[] = [];
    const { inv } = openWith({ onCommitError: (e) => failures.push(e) });
    inv.changes.on('change', () => {
      throw new Error('listener broke');
    });
    await inv.atomicallyShared(() => inv.record(MAC, 'script-served', 'boot', {}));
    expect(typesOnDisk()).toContain('script-served');
    expect(failures.map((e) => (e as Error).message)).toEqual(['listener broke']);
  });

  it('close commits what is shared', async () => {
    const { inv } = open(0);
    const before = typesOnDisk();
    const shared = inv.atomicallyShared(() => inv.record(MAC, 'script-served', 'boot', {}));
    inv.close();
    await shared;
    expect(typesOnDisk()).toEqual([...before, 'script-served']);
  });
});

/** A WAL sync the test lets finish by hand: which file it was asked to sync, and when. */
class HeldWalSync implements WalSync {
  readonly files: string[] = [];
  /** Syncs made on the spot (a read, a close). */
  syncedNow = 0;
  private readonly waiting: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  sync(walFile: string): Promise<void> {
    this.files.push(walFile);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }
  syncNow(walFile: string): void {
    this.files.push(walFile);
    this.syncedNow++;
  }
  get pending(): number {
    return this.waiting.length;
  }
  /** The oldest sync returns (or fails with `err`). */
  finish(err?: Error): void {
    const w = this.waiting.shift()!;
    if (err) w.reject(err);
    else w.resolve();
  }
}

/** One event-loop turn: what could settle without the disk has settled. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('shared commits are synced off the main thread', () => {
  function held(): { inv: Inventory; database: InventoryDatabase; wal: HeldWalSync; announced: string[]; answered: string[] } {
    const wal = new HeldWalSync();
    const { inv, database } = openWith({ walSync: wal });
    const announced: string[] = [];
    inv.changes.on('change', ({ event }: { event: { type: string } }) => announced.push(event.type));
    return { inv, database, wal, announced, answered: [] };
  }
  /** A boot request's decision, shared: `type` recorded, and noted in `answered` when its promise settles. */
  const ask = (h: ReturnType<typeof held>, type: 'script-served' | 'config-served' | 'config-denied') =>
    h.inv.atomicallyShared(() => h.inv.record(MAC, type, 'boot', {})).then(() => void h.answered.push(type));

  it('a request is answered, and its change announced, only once the WAL sync returns', async () => {
    const h = held();
    const answer = ask(h, 'script-served');
    await until(() => h.wal.pending === 1, 'the sync of the shared commit');
    // Committed into the WAL (another connection reads it), synced with the FULL setting back for other writes...
    expect(onDisk()).toContain('script-served');
    expect(h.database.connection.pragma('synchronous', { simple: true })).toBe(2);
    expect(h.wal.files).toEqual([`${file}-wal`]);
    // ...but nobody is told until the disk has it.
    await turn();
    expect(h.answered).toEqual([]);
    expect(h.announced).toEqual([]);
    h.wal.finish();
    await answer;
    expect(h.answered).toEqual(['script-served']);
    expect(h.announced).toEqual(['script-served']);
  });

  it('requests that come while a sync runs share one commit, made when it returns, and the next sync covers them', async () => {
    const h = held();
    const first = ask(h, 'script-served');
    await until(() => h.wal.pending === 1, 'the first sync');
    const second = ask(h, 'config-served');
    await turn();
    const third = ask(h, 'config-denied');
    await turn();
    // They could not be answered before the next sync anyway: they wait in one open transaction,
    // not a commit each (and no sync of their own starts: one at a time).
    expect(onDisk()).not.toContain('config-served');
    expect(onDisk()).not.toContain('config-denied');
    expect(h.wal.files).toHaveLength(1);
    h.wal.finish();
    await first;
    await until(() => h.wal.pending === 1, 'the sync after the first');
    // Committed together when the first sync returned, with the FULL setting back for other writes.
    expect(onDisk()).toEqual(expect.arrayContaining(['script-served', 'config-served', 'config-denied']));
    expect(h.database.connection.pragma('synchronous', { simple: true })).toBe(2);
    await turn();
    expect(h.answered).toEqual(['script-served']);
    h.wal.finish();
    await Promise.all([second, third]);
    expect(h.wal.files).toHaveLength(2);
    expect(h.answered).toEqual(['script-served', 'config-served', 'config-denied']);
    expect(h.announced).toEqual(['script-served', 'config-served', 'config-denied']);
  });

  it('a write or a read while a sync runs commits the waiting requests first; the sync after covers them', async () => {
    const h = held();
    const first = ask(h, 'script-served');
    await until(() => h.wal.pending === 1, 'the first sync');
    const second = ask(h, 'config-served');
    await turn();
    expect(onDisk()).not.toContain('config-served');
    // An operator's change: committed (and synced, FULL) on the spot, the shared one before it.
    h.inv.record(MAC, 'config-denied', 'boot', {});
    expect(onDisk()).toEqual(expect.arrayContaining(['config-served', 'config-denied']));
    await second;
    h.wal.finish();
    await first;
    // Nothing was left open for the returning sync to commit, and no sync is left waiting.
    await turn();
    expect(h.wal.pending).toBe(0);
    expect(h.answered).toEqual(['script-served', 'config-served']);
  });

  it('a read makes the shared commits durable on the spot; attributing an observation does not wait', async () => {
    const h = held();
    const answer = ask(h, 'script-served');
    await until(() => h.wal.pending === 1, 'the sync');
    expect(h.inv.observedMac({ mac: MAC })).toBe(MAC);
    expect(h.wal.syncedNow).toBe(0);
    await turn();
    expect(h.answered).toEqual([]);
    // What a read returns may leave the process, so what it sees is on disk first.
    expect(h.inv.get(MAC)?.mac).toBe(MAC);
    expect(h.wal.syncedNow).toBe(1);
    await answer;
    expect(h.announced).toEqual(['script-served']);
    // The sync on the pool returning later changes nothing.
    h.wal.finish();
    await turn();
    expect(h.answered).toEqual(['script-served']);
  });

  it('a write is on disk when it returns, and so is every shared commit before it: those are answered and announced first', async () => {
    const h = held();
    const answer = ask(h, 'script-served');
    await until(() => h.wal.pending === 1, 'the sync');
    h.inv.record(MAC, 'config-served', 'api', {});
    expect(h.announced).toEqual(['script-served', 'config-served']);
    await answer;
    expect(h.wal.syncedNow).toBe(0);
  });

  it('a sync that fails answers each request with a storage error and announces nothing; the next commit is answered', async () => {
    const h = held();
    const answer = ask(h, 'script-served');
    await until(() => h.wal.pending === 1, 'the sync');
    h.wal.finish(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    const err = await answer.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InventoryError);
    expect(err).toMatchObject({ code: 'storage_unavailable', storageCode: 'EIO', isStorageFailure: true, unconfirmed: true });
    expect((err as Error).message).toContain('could not be synced to disk');
    expect(h.answered).toEqual([]);
    expect(h.announced).toEqual([]);
    const next = ask(h, 'config-served');
    await until(() => h.wal.pending === 1, 'the next sync');
    h.wal.finish();
    await next;
    expect(h.announced).toEqual(['config-served']);
  });

  it('close syncs what waits and answers it', async () => {
    const h = held();
    const answer = ask(h, 'script-served');
    await until(() => h.wal.pending === 1, 'the sync');
    h.inv.close();
    expect(h.wal.syncedNow).toBe(1);
    await answer;
    expect(h.announced).toEqual(['script-served']);
  });

  it('without a WAL, a shared commit is answered at its COMMIT, which synced it', async () => {
    const wal = new HeldWalSync();
    const database = InventoryDatabase.open(':memory:', { walSync: wal });
    const inv = new Inventory(database);
    cleanup.push(() => database.connection.open && inv.close());
    inv.update(MAC, { role: 'worker' }, 'test', { create: true });
    await inv.atomicallyShared(() => inv.record(MAC, 'script-served', 'boot', {}));
    expect(wal.files).toEqual([]);
  });

  it('with the database behind a symbolic link, the WAL synced is the one SQLite writes', async () => {
    const real = path.join(dir, 'real');
    mkdirSync(real);
    const link = path.join(dir, 'link.db');
    symlinkSync(path.join(real, 'genesis.db'), link);
    const database = InventoryDatabase.open(link);
    const inv = new Inventory(database);
    cleanup.push(() => database.connection.open && inv.close());
    inv.update(MAC, { role: 'worker' }, 'test', { create: true });
    // The real fdatasync: a WAL it could not open would reject this request.
    await inv.atomicallyShared(() => inv.record(MAC, 'script-served', 'boot', {}));
    // Beside the file, not beside the link: the path a naive `<name>-wal` would have tried is not there.
    expect(existsSync(path.join(real, 'genesis.db-wal'))).toBe(true);
    expect(existsSync(`${link}-wal`)).toBe(false);
  });
});
