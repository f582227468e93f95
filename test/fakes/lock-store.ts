// The bootstrap lock's store in memory: the same pure rules (bootstrap/lock.ts) applied to a map,
// with a history, for unit tests of the orchestrator. The real store (lock-store.ts) adds what
// only a file can give: one transaction across processes, tested in bootstrap-lock.test.ts and
// the crash tests.

import type { LockStore } from '../../src/bootstrap/orchestrator.ts';
import { claim, unclaimedLock, type ClaimDecision, type Lock, type Outcome } from '../../src/bootstrap/lock.ts';
import type { LockHistoryEntry } from '../../src/bootstrap/lock-store.ts';

export class MemoryLocks implements LockStore {
  private readonly locks = new Map<string, Lock>();
  private readonly entries: Array<LockHistoryEntry & { cluster: string }> = [];
  private readonly now: () => number;

  constructor(now: () => number) {
    this.now = now;
  }

  get(cluster: string): Lock {
    return this.locks.get(cluster) ?? unclaimedLock(cluster, this.now());
  }

  apply(cluster: string, actor: string, rule: (lock: Lock, now: number) => Outcome): Outcome {
    const before = this.get(cluster);
    const outcome = rule(before, this.now());
    if (outcome.ok) {
      this.locks.set(cluster, outcome.lock);
      const l = outcome.lock;
      this.entries.push({ cluster, id: this.entries.length + 1, at: new Date(l.updatedAt).toISOString(), from: before.state, to: l.state, holder: l.holder, epoch: l.epoch, actor, note: outcome.note });
    }
    return outcome;
  }

  /** The generic claim (init or join), decided by the same rule the real store applies. */
  claim(cluster: string, mac: string, addr: string | null, actor: string): ClaimDecision & { changed: boolean } {
    let answer: ClaimDecision | undefined;
    const outcome = this.apply(cluster, actor, (lock, now) => {
      const r = claim(lock, { mac, addr, now });
      answer = r.answer;
      return r.outcome ?? { ok: false, why: 'settled' };
    });
    return { ...answer!, changed: outcome.ok };
  }

  history(cluster: string, limit = 100): LockHistoryEntry[] {
    return this.entries
      .filter((e) => e.cluster === cluster)
      .slice(-limit)
      .reverse()
      .map(({ cluster: _, ...e }) => e);
  }
}
