// The bootstrap lock on disk: one row per cluster plus its history, in the inventory's SQLite
// file. Each change reads the row, runs one of the pure rules in bootstrap/lock.ts and writes the
// result inside a single BEGIN IMMEDIATE transaction: SQLite's write lock serialises every
// request of every Genesis process sharing the file, so a rule that allows one winner gets one.

import type Database from 'better-sqlite3';
import { claim, claimIsSettled, unclaimedLock, type ClaimDecision, type Lock, type LockState, type Outcome, type RecoveryPlan } from './lock.ts';

type LockRow = {
  cluster: string;
  state: string;
  holder: string | null;
  holder_addr: string | null;
  epoch: number;
  owner: string | null;
  lease_expires_at: number | null;
  sent_at: number | null;
  retry_at: number | null;
  attempts: number;
  updated_at: number;
  recovery: string | null;
};

export type LockHistoryEntry = { id: number; at: string; from: LockState; to: LockState; holder: string | null; epoch: number; actor: string; note: string };

function toLock(r: LockRow): Lock {
  return {
    cluster: r.cluster,
    state: r.state as LockState,
    holder: r.holder,
    holderAddr: r.holder_addr,
    epoch: r.epoch,
    owner: r.owner,
    leaseExpiresAt: r.lease_expires_at,
    sentAt: r.sent_at,
    retryAt: r.retry_at,
    attempts: r.attempts,
    updatedAt: r.updated_at,
    recovery: r.recovery ? (JSON.parse(r.recovery) as RecoveryPlan) : null,
  };
}

/** Runs `fn` as one committed BEGIN IMMEDIATE transaction. */
export type LockWriter = <T>(fn: () => T) => T;

export class BootstrapLocks {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly write: LockWriter;
  private readonly select: Database.Statement;
  private readonly upsert: Database.Statement;
  private readonly appendHistory: Database.Statement;

  /**
   * `write` is how a change commits: by default its own BEGIN IMMEDIATE transaction. Genesis
   * passes the inventory's write(), which first commits a shared transaction that may be open on
   * the same connection; a lock change must be on disk when apply() or claim() returns.
   */
  constructor(db: Database.Database, now: () => number = Date.now, write?: LockWriter) {
    this.db = db;
    this.now = now;
    this.write = write ?? (<T>(fn: () => T): T => db.transaction(fn).immediate());
    this.select = db.prepare('SELECT * FROM bootstrap_lock WHERE cluster = ?');
    this.upsert = db.prepare(
      `INSERT INTO bootstrap_lock (cluster, state, holder, holder_addr, epoch, owner, lease_expires_at, sent_at, retry_at, attempts, updated_at, recovery)
       VALUES (@cluster, @state, @holder, @holderAddr, @epoch, @owner, @leaseExpiresAt, @sentAt, @retryAt, @attempts, @updatedAt, @recovery)
       ON CONFLICT (cluster) DO UPDATE SET state = excluded.state, holder = excluded.holder, holder_addr = excluded.holder_addr,
         epoch = excluded.epoch, owner = excluded.owner, lease_expires_at = excluded.lease_expires_at, sent_at = excluded.sent_at,
         retry_at = excluded.retry_at, attempts = excluded.attempts, updated_at = excluded.updated_at, recovery = excluded.recovery`,
    );
    this.appendHistory = db.prepare(
      'INSERT INTO bootstrap_history (cluster, at, from_state, to_state, holder, epoch, actor, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
  }

  /** The lock as committed now (an unclaimed one if the cluster has none yet). */
  get(cluster: string): Lock {
    const row = this.select.get(cluster) as LockRow | undefined;
    return row ? toLock(row) : unclaimedLock(cluster, this.now());
  }

  /**
   * Run `rule` on the current lock inside BEGIN IMMEDIATE and store what it returns, with a
   * history entry. `rule` must be pure: it may run again if SQLite reports the database busy.
   */
  apply(cluster: string, actor: string, rule: (lock: Lock, now: number) => Outcome): Outcome {
    return this.write(() => {
      const before = this.get(cluster);
      const outcome = rule(before, this.now());
      if (outcome.ok) this.store(before, outcome.lock, actor, outcome.note);
      return outcome;
    });
  }

  /**
   * The generic claim. Answers that need no change (the lock already names a holder that cannot
   * change) come from a plain read; only a claim that may win takes the write lock, and it
   * decides again on what it reads inside the transaction.
   */
  claim(cluster: string, mac: string, addr: string | null, actor: string): ClaimDecision & { changed: boolean } {
    const seen = this.get(cluster);
    const now = this.now();
    if (claimIsSettled(seen, mac, now)) return { ...claim(seen, { mac, addr, now }).answer, changed: false };
    return this.write(() => {
      const before = this.get(cluster);
      const { outcome, answer } = claim(before, { mac, addr, now: this.now() });
      if (outcome?.ok) this.store(before, outcome.lock, actor, outcome.note);
      return { ...answer, changed: Boolean(outcome?.ok) };
    });
  }

  history(cluster: string, limit = 100): LockHistoryEntry[] {
    const rows = this.db
      .prepare('SELECT * FROM bootstrap_history WHERE cluster = ? ORDER BY id DESC LIMIT ?')
      .all(cluster, limit) as Array<{ id: number; at: number; from_state: string; to_state: string; holder: string | null; epoch: number; actor: string; note: string }>;
    return rows.map((r) => ({
      id: r.id,
      at: new Date(r.at).toISOString(),
      from: r.from_state as LockState,
      to: r.to_state as LockState,
      holder: r.holder,
      epoch: r.epoch,
      actor: r.actor,
      note: r.note,
    }));
  }

  private store(before: Lock, after: Lock, actor: string, note: string): void {
    this.upsert.run({ ...after, recovery: after.recovery ? JSON.stringify(after.recovery) : null });
    this.appendHistory.run(after.cluster, after.updatedAt, before.state, after.state, after.holder, after.epoch, actor, note);
  }
}
