// The inventory's file: one SQLite database (better-sqlite3) in the data dir, shared by the stores
// beside this file (nodes, config tokens, the event log, the kernel-log ring) and by the bootstrap
// lock. Every write is one transaction started with BEGIN IMMEDIATE, so concurrent writers (requests
// in this process, or a second Genesis sharing the data dir) queue on the write lock instead of
// interleaving, and readers never see half a change. Storage errors leave here as InventoryError.
//
// Boot requests come in bursts, and each used to cost its own commit (an fsync). writeShared() lets
// the requests of one turn of the event loop share a commit: each runs at once as a savepoint of an
// open transaction, and its caller's promise settles only after that transaction is on disk. Any
// other access (write, read, the lock store's write) commits the shared transaction first, so the
// rest of the code never sees it open.
//
// The shared transaction's fsync is not made on the main thread. It commits with synchronous =
// NORMAL (its frames are appended to the WAL, in the OS's cache, which a killed process does not
// lose), and the WAL file is then fdatasync'ed on libuv's thread pool; its members are answered and
// its changes announced only when that returns, one fsync covering every commit before it. Until
// then the commit is visible to this connection but not acknowledged to anyone: read() first makes
// it durable (an fdatasync on the spot, as the commit it replaced did), and only peek(), for
// attributing observations that are never an answer, reads past it. write() keeps synchronous =
// FULL (SQLite fsyncs the WAL at its COMMIT), so a decision such as the bootstrap lock is on disk
// when write() returns, and with it every shared commit before it. A power cut can lose shared
// commits nobody was answered for; never one that was.

import Database from 'better-sqlite3';
import { closeSync, fdatasync, fdatasyncSync, openSync } from 'node:fs';
import { InventoryError, translateStorageError } from './errors.ts';
import { LATEST_SCHEMA, MIGRATIONS } from './migrations.ts';

/** The inventory's file name inside the data dir. */
export const DB_FILE = 'genesis.db';

export type DatabaseOptions = {
  busyTimeoutMs?: number;
  /**
   * How long a deferred write (defer()) may wait for company, in ms: deferred writes commit with
   * the next transaction or when this runs out, whichever is first. 0 (the default): at once.
   */
  groupCommitMs?: number;
  /** Told when a deferred write failed on its own (it is dropped; the rest of its batch commits). */
  onDeferredError?: (err: unknown) => void;
  /** Told when onCommit threw after a shared transaction committed (its requests are answered all the same). */
  onCommitError?: (err: unknown) => void;
  /** Called with every statement run, values filled in (better-sqlite3's `verbose`); for tests and debugging. Never log it: it carries token hashes. */
  trace?: (sql: string) => void;
  /** How the WAL file is made durable after shared commits; the fdatasync below unless a test holds it. */
  walSync?: WalSync;
};

/** Makes what has been appended to the WAL file durable. */
export type WalSync = {
  /** Off the main thread (libuv's pool): settles once the file's data is on disk. */
  sync(walFile: string): Promise<void>;
  /** On the spot, for a read or a close that cannot wait. */
  syncNow(walFile: string): void;
  /** With the database: lets go of what it holds. */
  close?(): void;
};

/**
 * fdatasync(2) of the WAL file by a descriptor of its own (Linux flushes a file's data whichever
 * descriptor asks), opened at the first sync and kept: SQLite resets and truncates the WAL in place
 * and removes it only when its last connection closes, so it stays the same file while the
 * database is open. A WAL that cannot be opened is an error, never taken for "nothing to flush".
 */
export function fdatasyncWal(): WalSync {
  let fd: number | undefined;
  const opened = (walFile: string): number => (fd ??= openSync(walFile, 'r'));
  return {
    sync: (walFile) =>
      new Promise<void>((resolve, reject) => {
        fdatasync(opened(walFile), (err) => (err ? reject(err) : resolve()));
      }),
    syncNow(walFile) {
      fdatasyncSync(opened(walFile));
    },
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

/** Shared commits made but not yet durable: whom to answer, and what to announce, once they are. */
type Unsynced<A> = { seq: number; settle: Array<(err?: unknown) => void>; done: A[] };

/** Deferred writes waiting at most; more commit at once (and a failing queue keeps the newest). */
const MAX_DEFERRED = 512;

/** The tables that keep only the newest rows per MAC. */
export type RingTable = 'node_events' | 'talos_event_ids' | 'kernel_logs';

export class InventoryDatabase<Announcement = unknown> {
  /** The open connection; for the stores and the bootstrap lock's store, which share the file. */
  readonly connection: Database.Database;
  /** Prepared once per SQL text: boot requests hit the same few statements over and over. */
  private readonly statements = new Map<string, Database.Statement>();
  /** What the running transaction wrote, announced only once it has committed. */
  private pending: Announcement[] = [];
  /** Told what a transaction wrote, after it committed (the stores' change feed). */
  onCommit: ((done: Announcement[]) => void) | undefined;
  /** Writes waiting for the next commit (defer()), oldest first. */
  private deferred: Array<() => void> = [];
  private deferTimer: NodeJS.Timeout | undefined;
  private readonly groupCommitMs: number;
  private readonly onDeferredError: ((err: unknown) => void) | undefined;
  private readonly onCommitError: ((err: unknown) => void) | undefined;
  /** How deep we are inside write()/writeShared() functions: above 0, a write is a savepoint of the caller's. */
  private depth = 0;
  /** The shared transaction, while open: what its members wait on, settled when it commits or fails. */
  private shared: { settle: Array<(err?: unknown) => void>; deferred: Array<() => void> } | undefined;
  /** Ring rows appended per table and MAC since the last prune (see keepNewest). */
  private readonly sincePrune = new Map<string, number>();
  /** Runs its argument as a transaction, or as a savepoint inside one. */
  private readonly inTx: Database.Transaction<(fn: () => unknown) => unknown>;
  private readonly walSync: WalSync;
  /** The WAL file, when the database is in WAL mode: shared commits are then synced off the main thread. */
  private readonly walFile: string | undefined;
  /** Shared commits made, counted: each one's `seq` in `unsynced`, oldest first, until it is on disk. */
  private committed = 0;
  private unsynced: Array<Unsynced<Announcement>> = [];
  /** An fdatasync is on the thread pool. */
  private syncing = false;

  private constructor(connection: Database.Database, opts: DatabaseOptions = {}, walMode = false) {
    this.connection = connection;
    // One transaction function for every call: better-sqlite3 builds a wrapper per transaction(),
    // which cost more than a boot request's statements.
    this.inTx = connection.transaction((fn: () => unknown) => fn());
    this.groupCommitMs = opts.groupCommitMs ?? 0;
    this.onDeferredError = opts.onDeferredError;
    this.onCommitError = opts.onCommitError;
    this.walSync = opts.walSync ?? fdatasyncWal();
    this.walFile = walMode ? walFileOf(connection) : undefined;
  }

  /** Open (or create) the file and bring its schema up to date: `genesis serve` only. */
  static open<A = unknown>(file: string, opts: DatabaseOptions = {}): InventoryDatabase<A> {
    const db = connect(file, opts.trace ? { verbose: (sql) => opts.trace!(String(sql)) } : {});
    let walMode: boolean;
    try {
      db.pragma(`busy_timeout = ${Math.trunc(opts.busyTimeoutMs ?? 5000)}`);
      // A file system without shared memory keeps a rollback journal; shared commits then sync at COMMIT.
      walMode = db.pragma('journal_mode = WAL', { simple: true }) === 'wal';
      // FULL: a commit is on disk when COMMIT returns. Only shared commits go NORMAL, each then
      // answered after its own fdatasync of the WAL (see above).
      db.pragma('synchronous = FULL');
      migrate(db);
    } catch (err) {
      db.close();
      throw translateStorageError(err);
    }
    return new InventoryDatabase<A>(db, opts, walMode);
  }

  /**
   * For diagnostics and local commands: read what is there, never migrate or write. A file at an
   * older schema than this Genesis knows is reported rather than upgraded (serve upgrades it).
   */
  static openReadOnly<A = unknown>(file: string, opts: DatabaseOptions = {}): InventoryDatabase<A> {
    const db = connect(file, { readonly: true, fileMustExist: true });
    try {
      db.pragma(`busy_timeout = ${Math.trunc(opts.busyTimeoutMs ?? 5000)}`);
      const current = db.pragma('user_version', { simple: true }) as number;
      if (current > LATEST_SCHEMA) throw tooNew(file, current);
      if (current < LATEST_SCHEMA) {
        throw new InventoryError('schema_too_old', `inventory ${file} has schema version ${current}; genesis serve upgrades it to ${LATEST_SCHEMA} at its next start`);
      }
    } catch (err) {
      db.close();
      throw translateStorageError(err);
    }
    return new InventoryDatabase<A>(db);
  }

  /** Commits what is deferred or shared, then closes the file. */
  close(): void {
    try {
      if (this.connection.open && !this.connection.readonly) {
        this.commitShared();
        this.flush();
        this.syncNowIfBehind();
      }
    } finally {
      clearTimeout(this.deferTimer);
      this.walSync.close?.();
      this.connection.close();
    }
  }

  /**
   * A write that may wait up to groupCommitMs to share a commit (one fsync) with others: for
   * observations (boot steps) that are not a decision anyone acts on. A crash can lose what waits
   * (at most groupCommitMs of them); what is committed was observed, never the reverse. Reads of
   * what may be waiting call flush() first.
   */
  defer(fn: () => void): void {
    if (this.groupCommitMs <= 0) return this.write(fn);
    this.deferred.push(fn);
    if (this.deferred.length >= MAX_DEFERRED) return this.flush();
    this.armFlush();
  }

  /** The timer that commits deferred writes nobody else carried along. */
  private armFlush(): void {
    this.deferTimer ??= setTimeout(() => {
      this.deferTimer = undefined;
      this.flushQuietly();
    }, this.groupCommitMs).unref();
  }

  /** Commits every deferred write now. */
  flush(): void {
    if (this.deferred.length) this.write(() => undefined);
  }

  /** Inside the outermost transaction: each deferred write as a savepoint, so one failing costs only itself. */
  private runDeferred(work: Array<() => void>): void {
    for (const w of work) {
      try {
        this.inTx(w);
      } catch (err) {
        this.onDeferredError?.(translateStorageError(err));
      }
    }
  }

  /**
   * The statement for `text`, prepared once. A bound value the query planner may read is written
   * `+?` (`+@name`): a LIMIT or OFFSET, and `x = ?` in a statement with an ORDER BY (the planner
   * weighs other loops for the order, and reads the value as it does). SQLite marks a statement
   * whose planning read a bound value to be compiled again when that binding changes, and
   * better-sqlite3 clears the bindings after every run, so such a statement was parsed and planned
   * on every call, at up to 8 times its cost (bench/inventory-lookups.ts). The unary plus keeps the value
   * out of the planner's reach and changes neither the value, its affinity nor the index used
   * (test/unit/inventory-query-plans.test.ts); bench/statement-recompiles.ts lists any statement
   * still compiled again.
   */
  sql(text: string): Database.Statement {
    let st = this.statements.get(text);
    if (!st) {
      st = this.connection.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  /** The text of every statement sql() has prepared, as written (for tests). */
  preparedStatements(): string[] {
    return [...this.statements.keys()];
  }

  /** A read, with storage errors translated. */
  read<T>(fn: () => T): T {
    // What leaves this process is on disk: a read outside a write first commits a shared
    // transaction and makes the shared commits durable.
    if (this.depth === 0) {
      this.commitShared();
      this.syncNowIfBehind();
    }
    return this.peek(fn);
  }

  /**
   * A read that may see shared commits not yet on disk (never an open transaction): for
   * attributing an observation to a machine, never for an answer or a decision.
   */
  peek<T>(fn: () => T): T {
    if (this.depth === 0) this.commitShared();
    try {
      return fn();
    } catch (err) {
      throw translateStorageError(err);
    }
  }

  /**
   * `fn` as one transaction: one commit (one fsync). Nested calls are savepoints, so a caller can
   * group the stores' writes into one commit; what a rolled-back part announced is forgotten.
   */
  write<T>(fn: () => T): T {
    if (this.depth > 0) return this.savepoint(fn);
    this.commitShared();
    let result: T;
    const work = this.takeDeferred();
    this.depth++;
    try {
      result = this.inTx.immediate(() => {
        if (work.length) this.runDeferred(work);
        return fn();
      }) as T;
    } catch (err) {
      this.pending = [];
      this.requeue(work);
      throw translateStorageError(err);
    } finally {
      this.depth--;
    }
    const done = this.pending;
    this.pending = [];
    if (done.length) {
      // It wrote rows, so its COMMIT (synchronous = FULL) fsynced the WAL, and every shared commit
      // before it is on disk too: those are answered and announced first, in commit order.
      this.madeDurable(this.committed);
      this.onCommit?.(done);
    }
    return result;
  }

  /**
   * `fn` now, as its own savepoint of a transaction shared with the other writeShared() calls of
   * this turn of the event loop; the promise settles once that transaction has committed (its
   * value) or failed (the error, for every member: none of them is on disk). A failing `fn` is
   * rolled back alone and rejects alone. For requests whose answer may wait for the commit.
   */
  writeShared<T>(fn: () => T): Promise<T> {
    let value: T;
    if (this.depth > 0) {
      // Inside another write: a part of that one, committed with it.
      try {
        value = this.savepoint(fn);
      } catch (err) {
        return Promise.reject(err);
      }
      return Promise.resolve(value);
    }
    try {
      this.openShared();
    } catch (err) {
      return Promise.reject(translateStorageError(err));
    }
    try {
      value = this.savepoint(fn);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<T>((resolve, reject) => this.shared!.settle.push((err) => (err === undefined ? resolve(value) : reject(err))));
  }

  /** BEGIN IMMEDIATE for a shared transaction (with the deferred writes), committed on the next check phase. */
  private openShared(): void {
    if (this.shared) return;
    const deferred = this.takeDeferred();
    try {
      // Outside any transaction (SQLite refuses the change inside one); commitShared() sets FULL back.
      if (this.walFile) this.sql('PRAGMA synchronous = NORMAL').run();
      this.sql('BEGIN IMMEDIATE').run();
    } catch (err) {
      this.fullSync();
      this.requeue(deferred);
      throw err;
    }
    this.shared = { settle: [], deferred };
    this.depth++;
    try {
      if (deferred.length) this.runDeferred(deferred);
    } finally {
      this.depth--;
    }
    // After the poll phase has handed every request that arrived with this one to its handler; or,
    // while an fdatasync runs, once it is done: the requests that arrive meanwhile could not be
    // answered before the next fdatasync anyway, so they join this commit instead of each turn
    // committing its own (group commit: fewer commits, fewer WAL frames, the same waits).
    // (No sync starts while a shared transaction is open, so one open when a sync ends was opened during it.)
    if (!this.syncing) setImmediate(() => this.commitShared());
  }

  /** Commits the shared transaction, if one is open, and settles its members (all, either way). */
  private commitShared(): void {
    const shared = this.shared;
    if (!shared) return;
    this.shared = undefined;
    try {
      this.sql('COMMIT').run();
    } catch (err) {
      try {
        if (this.connection.inTransaction) this.sql('ROLLBACK').run();
      } catch {
        // SQLite rolls back by itself when COMMIT fails for I/O; nothing more to undo.
      }
      this.fullSync();
      this.pending = [];
      this.requeue(shared.deferred);
      const failure = translateStorageError(err);
      for (const settle of shared.settle) settle(failure);
      return;
    }
    this.fullSync();
    const done = this.pending;
    this.pending = [];
    // Committed, in the WAL: answered and announced once an fdatasync has made it durable.
    this.unsynced.push({ seq: ++this.committed, settle: shared.settle, done });
    if (this.walFile) this.syncSoon();
    else this.madeDurable(this.committed); // a rollback journal: FULL, synced by its COMMIT
  }

  /** Back to synchronous = FULL after a shared transaction, for every other write. */
  private fullSync(): void {
    if (!this.walFile) return;
    try {
      this.sql('PRAGMA synchronous = FULL').run();
    } catch {
      // Outside a transaction this cannot fail short of a closed connection, which the next statement reports.
    }
  }

  /** Starts an fdatasync of the WAL on the thread pool unless one runs or nothing waits; one at a time. */
  private syncSoon(): void {
    if (this.syncing || !this.unsynced.length || !this.walFile || !this.connection.open) return;
    this.syncing = true;
    const upTo = this.committed;
    this.walSync.sync(this.walFile).then(
      () => {
        this.syncing = false;
        this.madeDurable(upTo);
        this.afterSync();
      },
      (err: unknown) => {
        this.syncing = false;
        this.syncFailed(upTo, err);
        this.afterSync();
      },
    );
  }

  /** An fdatasync is done: commit what gathered meanwhile (which starts the next sync), else sync what is left. */
  private afterSync(): void {
    if (this.shared) return this.commitShared();
    this.syncSoon();
  }

  /** For a read or a close: every shared commit made durable now, on this thread. */
  private syncNowIfBehind(): void {
    if (!this.unsynced.length || !this.walFile) return;
    const upTo = this.committed;
    try {
      this.walSync.syncNow(this.walFile);
    } catch (err) {
      this.syncFailed(upTo, err);
      throw walSyncError(err);
    }
    this.madeDurable(upTo);
  }

  /**
   * Shared commits up to `upTo` are on disk: their members are answered and their changes
   * announced, oldest first, whatever a change listener does (this runs from a callback, where a
   * throw would end the process).
   */
  private madeDurable(upTo: number): void {
    while (this.unsynced.length && this.unsynced[0]!.seq <= upTo) {
      const { settle, done } = this.unsynced.shift()!;
      for (const s of settle) s();
      try {
        if (done.length) this.onCommit?.(done);
      } catch (err) {
        this.onCommitError?.(err);
      }
    }
  }

  /**
   * The fdatasync failed: the commits up to `upTo` are in the file but not known to be on disk, so
   * none of their members is told it succeeded (each gets the storage error) and nothing is
   * announced. The next shared commit tries again with its own fdatasync.
   */
  private syncFailed(upTo: number, err: unknown): void {
    const failure = walSyncError(err);
    while (this.unsynced.length && this.unsynced[0]!.seq <= upTo) {
      for (const s of this.unsynced.shift()!.settle) s(failure);
    }
  }

  /** Inside a transaction: `fn` as a savepoint; what a rolled-back part announced is forgotten. */
  private savepoint<T>(fn: () => T): T {
    const mark = this.pending.length;
    this.depth++;
    try {
      return this.inTx(fn) as T;
    } catch (err) {
      this.pending.length = mark;
      throw translateStorageError(err);
    } finally {
      this.depth--;
    }
  }

  /** The deferred writes, for the transaction about to start; their timer is no longer needed. */
  private takeDeferred(): Array<() => void> {
    const work = this.deferred;
    this.deferred = [];
    clearTimeout(this.deferTimer);
    this.deferTimer = undefined;
    return work;
  }

  /**
   * Deferred writes whose transaction rolled back (for its own reasons: a refusal, a full disk):
   * queued again, newest kept if the queue is full.
   */
  private requeue(work: Array<() => void>): void {
    if (!work.length) return;
    this.deferred = [...work, ...this.deferred].slice(-MAX_DEFERRED);
    if (this.groupCommitMs > 0) this.armFlush();
  }

  /** For the timer: a failed flush leaves the batch queued (write() puts it back) for the next commit. */
  private flushQuietly(): void {
    try {
      this.flush();
    } catch (err) {
      this.onDeferredError?.(translateStorageError(err));
    }
  }

  /** Inside a write: announce this once the outermost transaction commits. */
  announce(item: Announcement): void {
    this.pending.push(item);
  }

  /**
   * Inside a write: drop all but the newest `keep` rows of `mac` in a ring table (of those `where`
   * selects). The prune walks `keep` index entries; with `pruneEvery` above 1 it runs on a MAC's
   * first append after start and then every `pruneEvery` appends, so the ring holds at most
   * keep + pruneEvery - 1 rows (for rings appended to on every boot request).
   */
  keepNewest(table: RingTable, order: 'id' | 'seq', mac: string, keep: number, where = '1', pruneEvery = 1): void {
    if (pruneEvery > 1) {
      const key = `${table} ${mac}`;
      const since = this.sincePrune.get(key);
      if (since !== undefined && since + 1 < pruneEvery) {
        this.sincePrune.set(key, since + 1);
        return;
      }
      // Bounded: a flood of made-up MACs must not grow it; forgetting only brings a prune forward.
      if (this.sincePrune.size >= 100_000) this.sincePrune.clear();
      this.sincePrune.set(key, 0);
    }
    this.sql(
      `DELETE FROM ${table} WHERE mac = +@mac AND ${where} AND ${order} <= (SELECT ${order} FROM ${table} WHERE mac = +@mac AND ${where} ORDER BY ${order} DESC LIMIT 1 OFFSET +@keep)`,
    ).run({ mac, keep });
  }
}

/** An fdatasync (or open) of the WAL that failed, as a storage failure in the inventory's terms. */
function walSyncError(err: unknown): InventoryError {
  if (err instanceof InventoryError) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const kind = code === 'ENOSPC' || code === 'EDQUOT' ? 'storage_full' : code === 'EROFS' ? 'storage_read_only' : 'storage_unavailable';
  return new InventoryError(kind, `the inventory's write-ahead log could not be synced to disk: ${(err as Error)?.message ?? String(err)}`, code, { unconfirmed: true });
}

/**
 * The WAL file SQLite writes beside the database, by the path SQLite itself resolved (symbolic
 * links followed): `PRAGMA database_list`'s file with `-wal` after it.
 */
function walFileOf(connection: Database.Database): string {
  const main = (connection.pragma('database_list') as Array<{ name: string; file: string }>).find((d) => d.name === 'main');
  return `${main?.file || connection.name}-wal`;
}

function connect(file: string, options: Database.Options): Database.Database {
  try {
    return new Database(file, options);
  } catch (err) {
    throw translateStorageError(err);
  }
}

function tooNew(file: string, version: number): InventoryError {
  return new InventoryError('schema_too_new', `inventory ${file} has schema version ${version}, newer than this Genesis knows (${LATEST_SCHEMA}); run a newer Genesis or restore a backup`);
}

function migrate(db: Database.Database): void {
  // The version is read inside the write transaction: two processes opening a fresh file at once
  // must not both run step 1.
  db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > LATEST_SCHEMA) throw tooNew(db.name, current);
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }
  }).immediate();
}
