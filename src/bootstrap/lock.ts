// The bootstrap lock's rules, as pure functions: a lock and a request in, a new lock (or a
// refusal) out. The store runs each one inside a BEGIN IMMEDIATE transaction, so whatever these
// allow happens at most once however many requests and processes race.
//
//   unclaimed ──elect──▶ elected ──mark-sent──▶ bootstrap-sent ──confirmed──▶ bootstrapped
//       ▲                  │  ▲                      │  (re-send only to the same holder)
//       │                  └──┘ re-elect: lease      │
//       │                       expired or own lease │
//       └──────────── operator reset (refused while etcd has members) ◀──────┘
//
// Recovery from an etcd snapshot, when every control plane lost etcd, takes the same path:
//
//   bootstrapped ──request-recovery──▶ recovering ──elect, upload──▶ bootstrap-sent ──▶ bootstrapped
//   (or unclaimed)   (refused while       │  ▲                     (recover_etcd: true;
//                     etcd has members)   └──┘ re-elect: lease      re-send only to the holder)
//
// `recovering` is `elected` with the snapshot to upload: the holder may change until
// bootstrap-sent is written (an uploaded snapshot does nothing by itself), never after.
//
// The one thing that must never happen is a Bootstrap call to a second node. So the holder may
// change only while nothing has been sent (`elected`); once `bootstrap-sent` is written, only
// evidence from the cluster (an etcd member list) or an operator moves the lock on.

export const LOCK_STATES = ['unclaimed', 'elected', 'recovering', 'bootstrap-sent', 'bootstrapped'] as const;
export type LockState = (typeof LOCK_STATES)[number];

/** The snapshot a recovery restores: which one, and what it must hash to when it is uploaded. */
export type RecoveryPlan = { snapshot: string; sha256: string; size: number; requestedAt: number; requestedBy: string };

export type Lock = {
  cluster: string;
  state: LockState;
  /** The control plane that is (or was) to be bootstrapped; for claims, the node told to init. */
  holder: string | null;
  holderAddr: string | null;
  /** Fencing epoch: grows with every new election, so a stale actor's write is refused. */
  epoch: number;
  /** The Genesis process instance that holds the election lease. */
  owner: string | null;
  /** While `elected`: after this (ms since epoch) another process may take over. */
  leaseExpiresAt: number | null;
  /** When Bootstrap was (last) allowed to be sent. */
  sentAt: number | null;
  /** While `bootstrap-sent`: the earliest a re-send to the same holder is allowed. */
  retryAt: number | null;
  attempts: number;
  updatedAt: number;
  /** While recovering, and in the bootstrap-sent that follows: the snapshot being restored. */
  recovery: RecoveryPlan | null;
};

export type Refusal = { ok: false; why: string };
export type Applied = { ok: true; lock: Lock; note: string };
export type Outcome = Applied | Refusal;

export function unclaimedLock(cluster: string, now: number): Lock {
  return {
    cluster,
    state: 'unclaimed',
    holder: null,
    holderAddr: null,
    epoch: 0,
    owner: null,
    leaseExpiresAt: null,
    sentAt: null,
    retryAt: null,
    attempts: 0,
    updatedAt: now,
    recovery: null,
  };
}

/** Claims never own an election lease, so they cannot take over one a process holds. */
const CLAIMANT = '';

const refuse = (why: string): Refusal => ({ ok: false, why });
const apply = (lock: Lock, changes: Partial<Lock>, now: number, note: string): Applied => ({
  ok: true,
  lock: { ...lock, ...changes, updatedAt: now },
  note,
});

/** Is the lock open to a new election by `owner` at `now`? */
export function electable(lock: Lock, owner: string, now: number): boolean {
  if (lock.state === 'unclaimed') return true;
  // Claims (owner '') never take part in a recovery: it belongs to the Talos orchestrator.
  if (lock.state === 'recovering') return owner !== CLAIMANT && (lock.holder === null || lock.owner === owner || (lock.leaseExpiresAt ?? 0) <= now);
  if (lock.state !== 'elected') return false;
  return lock.owner === owner || (lock.leaseExpiresAt ?? 0) <= now;
}

/**
 * Choose `candidate` as the node to bootstrap. Allowed when the lock is unclaimed, when the
 * current lease has expired (its owner died before sending), or when the caller owns the lease
 * (it found its own choice unreachable before sending). Every election takes a new epoch.
 */
export function elect(lock: Lock, r: { candidate: string; addr: string | null; owner: string; now: number; leaseMs: number }): Outcome {
  if (!electable(lock, r.owner, r.now)) {
    if (lock.state === 'elected' || lock.state === 'recovering') {
      return refuse(`${lock.holder} is elected (epoch ${lock.epoch}) under a lease held by another process until ${new Date(lock.leaseExpiresAt ?? 0).toISOString()}`);
    }
    return refuse(`the lock is ${lock.state}; no new election`);
  }
  const replaced = lock.holder && lock.state !== 'unclaimed' ? ` (replacing ${lock.holder}, epoch ${lock.epoch})` : '';
  const recovering = lock.state === 'recovering';
  return apply(
    lock,
    { state: recovering ? 'recovering' : 'elected', holder: r.candidate, holderAddr: r.addr, epoch: lock.epoch + 1, owner: r.owner, leaseExpiresAt: r.now + r.leaseMs, sentAt: null, retryAt: null, attempts: 0 },
    r.now,
    `elected ${r.candidate}${recovering ? ` to restore ${lock.recovery?.snapshot}` : ''}${replaced}`,
  );
}

/**
 * The operator asks to restore etcd from a snapshot. Allowed once the cluster was bootstrapped
 * (or on a lock that never was: a fresh Genesis for a cluster that only lives in a snapshot); the
 * caller checks that no control plane reports etcd members. Refused while a bootstrap or another
 * recovery is under way: there is never more than one.
 */
export function requestRecovery(lock: Lock, r: { plan: RecoveryPlan; now: number }): Outcome {
  if (lock.state === 'recovering' || (lock.state === 'bootstrap-sent' && lock.recovery)) {
    return refuse(`a recovery from ${lock.recovery?.snapshot} is already under way (epoch ${lock.epoch})`);
  }
  if (lock.state === 'elected' || lock.state === 'bootstrap-sent') return refuse(`a bootstrap is under way (${lock.state}, epoch ${lock.epoch}); wait for it, or reset the lock`);
  return apply(
    lock,
    { state: 'recovering', holder: null, holderAddr: null, epoch: lock.epoch + 1, owner: null, leaseExpiresAt: null, sentAt: null, retryAt: null, attempts: 0, recovery: r.plan },
    r.now,
    `recovery from ${r.plan.snapshot} requested by ${r.plan.requestedBy}`,
  );
}

/**
 * Record that Bootstrap is about to be sent. Written before the call, so a crash after it can
 * never lead to a call on another node. Only the owner of the current epoch may do it.
 */
export function markSent(lock: Lock, r: { epoch: number; owner: string; now: number; retryAfterMs: number }): Outcome {
  if (lock.state !== 'elected' && !(lock.state === 'recovering' && lock.holder)) return refuse(`the lock is ${lock.state}, not elected`);
  if (lock.epoch !== r.epoch || lock.owner !== r.owner) return refuse(`epoch ${r.epoch} is stale: the lock is at epoch ${lock.epoch}`);
  const what = lock.recovery ? `Bootstrap (recover_etcd from ${lock.recovery.snapshot})` : 'Bootstrap';
  return apply(lock, { state: 'bootstrap-sent', leaseExpiresAt: null, sentAt: r.now, retryAt: r.now + r.retryAfterMs, attempts: 1 }, r.now, `sending ${what} to ${lock.holder}`);
}

/**
 * Take the right to send Bootstrap to the holder again. Re-sending to the same node cannot create
 * a second cluster: Talos answers AlreadyExists once that node's etcd has data. The time gate
 * keeps any number of processes to one attempt per interval.
 */
export function claimResend(lock: Lock, r: { now: number; retryAfterMs: number }): Outcome {
  if (lock.state !== 'bootstrap-sent') return refuse(`the lock is ${lock.state}, not bootstrap-sent`);
  if ((lock.retryAt ?? 0) > r.now) return refuse(`the next attempt is due at ${new Date(lock.retryAt ?? 0).toISOString()}`);
  return apply(lock, { sentAt: r.now, retryAt: r.now + r.retryAfterMs, attempts: lock.attempts + 1 }, r.now, `sending Bootstrap to ${lock.holder} again (attempt ${lock.attempts + 1})`);
}

/** The holder said "not yet" (or we could not reach it): the next attempt may come sooner. */
export function deferResend(lock: Lock, r: { epoch: number; now: number; retryAt: number; why: string }): Outcome {
  if (lock.state !== 'bootstrap-sent' || lock.epoch !== r.epoch) return refuse(`the lock moved on (${lock.state}, epoch ${lock.epoch})`);
  return apply(lock, { retryAt: r.retryAt }, r.now, `${lock.holder}: ${r.why}; next attempt at ${new Date(r.retryAt).toISOString()}`);
}

/**
 * The cluster exists: a control plane reported etcd members (or the holder answered
 * AlreadyExists). Final from any state. Without a holder (Genesis lost its data while the
 * cluster lived on) the node that reported the members is recorded.
 */
export function markBootstrapped(lock: Lock, r: { now: number; evidence: string; by: string; addr: string | null }): Outcome {
  if (lock.state === 'bootstrapped') return refuse('already bootstrapped');
  const found = lock.state === 'unclaimed' || lock.state === 'elected' || lock.state === 'recovering';
  const note =
    lock.state === 'recovering'
      ? `recovery from ${lock.recovery?.snapshot} abandoned before anything was sent: etcd is there: ${r.evidence}`
      : found
        ? `found an existing cluster: ${r.evidence}`
        : lock.recovery
          ? `recovered from ${lock.recovery.snapshot}: ${r.evidence}`
          : `bootstrapped: ${r.evidence}`;
  return apply(
    lock,
    {
      state: 'bootstrapped',
      holder: lock.state === 'bootstrap-sent' ? lock.holder : r.by,
      holderAddr: lock.state === 'bootstrap-sent' ? lock.holderAddr : r.addr,
      owner: null,
      leaseExpiresAt: null,
      retryAt: null,
      recovery: null,
    },
    r.now,
    note,
  );
}

/** Operator reset for a deliberate rebuild. The caller checks that no control plane reports members. */
export function resetLock(lock: Lock, r: { now: number }): Outcome {
  if (lock.state === 'unclaimed') return refuse('the lock is already unclaimed');
  // The epoch is kept (and grows on the next election): fencing must never go backwards.
  return apply(lock, { state: 'unclaimed', holder: null, holderAddr: null, owner: null, leaseExpiresAt: null, sentAt: null, retryAt: null, attempts: 0, recovery: null }, r.now, `reset (was ${lock.state}, holder ${lock.holder ?? 'none'})`);
}


/** A claim that cannot be answered now (a recovery holds the lock). */
export class ClaimRefused extends Error {}

export type ClaimDecision = { decision: 'init' | 'join'; leader: { mac: string; ip: string | null }; epoch: number };

/**
 * The generic claim (nodes that bootstrap themselves, like k3s `--cluster-init`): the first
 * claimant is told to init and the lock goes straight to `bootstrap-sent`, because handing out
 * "init" is the point of no return. The holder asking again gets the same answer; everyone else
 * joins it. While a Talos election is in flight (`elected`, lease live) claimants join its holder.
 */
export function claim(lock: Lock, r: { mac: string; addr: string | null; now: number }): { outcome: Outcome | null; answer: ClaimDecision } {
  if (lock.state === 'recovering') throw new ClaimRefused(`a recovery from ${lock.recovery?.snapshot} is under way (epoch ${lock.epoch}); claims wait for it`);
  if (lock.holder === r.mac && lock.state !== 'unclaimed') {
    return { outcome: null, answer: { decision: 'init', leader: { mac: r.mac, ip: lock.holderAddr }, epoch: lock.epoch } };
  }
  if (lock.holder && !electable(lock, CLAIMANT, r.now)) {
    return { outcome: null, answer: { decision: 'join', leader: { mac: lock.holder, ip: lock.holderAddr }, epoch: lock.epoch } };
  }
  if (lock.state === 'bootstrapped' || lock.state === 'bootstrap-sent') {
    // Settled without a holder cannot happen (markBootstrapped always names one); refuse to guess.
    throw new Error(`lock is ${lock.state} without a holder`);
  }
  const epoch = lock.epoch + 1;
  const outcome = apply(
    lock,
    { state: 'bootstrap-sent', holder: r.mac, holderAddr: r.addr, epoch, owner: null, leaseExpiresAt: null, sentAt: r.now, retryAt: null, attempts: 1 },
    r.now,
    `claimed by ${r.mac}: told to init`,
  );
  return { outcome, answer: { decision: 'init', leader: { mac: r.mac, ip: r.addr }, epoch } };
}

/** Would a claim by `mac` need a write? (Read-only answers skip the write lock.) */
export function claimIsSettled(lock: Lock, mac: string, now: number): boolean {
  return lock.state !== 'unclaimed' && lock.state !== 'recovering' && (lock.holder === mac || (lock.holder !== null && !electable(lock, CLAIMANT, now)));
}

export type Candidate = {
  mac: string;
  addr: string;
  /** The operator marked this node `bootstrap: true`. */
  preferred: boolean;
  /** When this process first saw it answer (ms). */
  reachableSince: number;
};

/**
 * Which reachable control plane to bootstrap: an operator-chosen node first (and if one is chosen
 * but not reachable, nobody: the operator's choice is waited for), else the one reachable longest,
 * ties broken by MAC so every process picks the same node from the same facts.
 */
export function chooseCandidate(reachable: Candidate[], preferredKnown: boolean): Candidate | { waitingFor: 'preferred' } | null {
  const preferred = reachable.filter((c) => c.preferred);
  const pool = preferred.length ? preferred : preferredKnown ? [] : reachable;
  if (!pool.length) return preferredKnown ? { waitingFor: 'preferred' } : null;
  return [...pool].sort((a, b) => a.reachableSince - b.reachableSince || (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0))[0]!;
}

/** What a Bootstrap RPC error means for the lock. gRPC codes as numbers (no grpc import here). */
export type BootstrapErrorKind = 'already-bootstrapped' | 'not-yet' | 'not-sent' | 'unknown';

export function classifyBootstrapError(code: number | undefined, message: string): BootstrapErrorKind {
  // Talos: AlreadyExists "etcd data directory is not empty". Some versions used FailedPrecondition
  // with the same text, so the text decides too.
  if (code === 6 || /data directory is not empty/i.test(message)) return 'already-bootstrapped';
  // FailedPrecondition: "not available yet", "time is not in sync yet": Talos refused before acting.
  if (code === 9) return 'not-yet';
  // Unauthenticated, PermissionDenied, Unimplemented: refused at the door, nothing ran.
  if (code === 16 || code === 7 || code === 12) return 'not-sent';
  // Unavailable / DeadlineExceeded / Cancelled / anything else: it may have arrived.
  return 'unknown';
}
