// The inventory's file: one SQLite database (better-sqlite3) in the data dir, shared by the stores
// beside this file (nodes, config tokens, the event log, the kernel-log ring) and by the bootstrap
// lock. Every write is one transaction started with BEGIN IMMEDIATE, so concurrent writers (requests
// in this process, or a second Genesis sharing the data dir) queue on the write lock instead of
// interleaving, and readers never see half a change. Storage errors leave here as InventoryError.
//
// Boot requests come in bursts, and each used to cost its own commit (an fsync). writeShared() lets
// the requests of one turn of the event loop share a commit: each runs at once as a savepoint of an
// open transaction, and its caller's promise settles only after that transaction has committed, so
// nothing is answered before it is on disk. Any other access (write, read, the lock store's write)
// commits the shared transaction first, so the rest of the code never sees it open.

import Database from 'better-sqlite3';
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
};

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

  private constructor(connection: Database.Database, opts: DatabaseOptions = {}) {
    this.connection = connection;
    // One transaction function for every call: better-sqlite3 builds a wrapper per transaction(),
    // which cost more than a boot request's statements.
    this.inTx = connection.transaction((fn: () => unknown) => fn());
    this.groupCommitMs = opts.groupCommitMs ?? 0;
    this.onDeferredError = opts.onDeferredError;
    this.onCommitError = opts.onCommitError;
  }

  /** Open (or create) the file and bring its schema up to date: `genesis serve` only. */
  static open<A = unknown>(file: string, opts: DatabaseOptions = {}): InventoryDatabase<A> {
    const db = connect(file, opts.trace ? { verbose: (sql) => opts.trace!(String(sql)) } : {});
    try {
      db.pragma(`busy_timeout = ${Math.trunc(opts.busyTimeoutMs ?? 5000)}`);
      db.pragma('journal_mode = WAL');
      // WAL with synchronous=NORMAL can lose the last commits on power loss but never corrupts;
      // the inventory must not lose an assignment, so keep FULL.
      db.pragma('synchronous = FULL');
      migrate(db);
    } catch (err) {
      db.close();
      throw translateStorageError(err);
    }
    return new InventoryDatabase<A>(db, opts);
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
    if (this.connection.open && !this.connection.readonly) {
      this.commitShared();
      this.flush();
    }
    clearTimeout(this.deferTimer);
    this.connection.close();
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

  sql(text: string): Database.Statement {
    let st = this.statements.get(text);
    if (!st) {
      st = this.connection.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  /** A read, with storage errors translated. */
  read<T>(fn: () => T): T {
    // What leaves this process is on disk: a read outside a write first commits a shared transaction.
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
    if (done.length) this.onCommit?.(done);
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
      this.sql('BEGIN IMMEDIATE').run();
    } catch (err) {
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
    // After the poll phase has handed every request that arrived with this one to its handler.
    setImmediate(() => this.commitShared());
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
      this.pending = [];
      this.requeue(shared.deferred);
      const failure = translateStorageError(err);
      for (const settle of shared.settle) settle(failure);
      return;
    }
    const done = this.pending;
    this.pending = [];
    // Committed: every member is answered, whatever a change listener does (this may run from a
    // timer, where a throw would end the process).
    for (const settle of shared.settle) settle();
    try {
      if (done.length) this.onCommit?.(done);
    } catch (err) {
      this.onCommitError?.(err);
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
      `DELETE FROM ${table} WHERE mac = @mac AND ${where} AND ${order} <= (SELECT ${order} FROM ${table} WHERE mac = @mac AND ${where} ORDER BY ${order} DESC LIMIT 1 OFFSET @keep)`,
    ).run({ mac, keep });
  }
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
