// What the orchestrator does next, decided from the lock on disk and this round's probes alone:
// pure, so the settle time, the evidence rule, the operator's choice and the backoff are tested
// without sockets or a database (test/unit/bootstrap-next-step.test.ts). The orchestrator
// (orchestrator.ts) carries the step out: it dials, calls and writes the lock.

import { chooseCandidate, electable, type Lock } from './lock.ts';

/** What one control plane answered in the latest round. */
export type ControlPlaneProbe = {
  mac: string;
  hostname: string | null;
  addr: string;
  /** It fetched its config (installing/installed): only these can be elected. */
  configured: boolean;
  preferred: boolean;
  reachable: boolean;
  talosVersion?: string;
  /** etcd member count, or null when the node could not list them (etcd not running). */
  members: number | null;
  /** The etcd service state (Talos ServiceList), when known. */
  etcd: string | null;
  error?: string;
  at: string;
};

export type StepContext = {
  now: number;
  /** This process's identity as a lease owner. */
  owner: string;
  settleMs: number;
  /** When this process first saw each control plane answer (ms), by MAC. */
  reachableSince: ReadonlyMap<string, number>;
  /** The operator marked some control plane `bootstrap: true` (it may not have booted yet). */
  preferredKnown: boolean;
};

export type NextStep =
  /** Nothing to do this round; `waiting` says why (shown in the status). */
  | { kind: 'wait'; waiting: string }
  /** A control plane shows etcd: the cluster exists. Record it; call nothing. */
  | { kind: 'record-evidence'; witness: ControlPlaneProbe; evidence: string }
  /** Bootstrap went out and no member is seen yet: the holder may get it again, if its time has come. */
  | { kind: 'follow-up'; holder: ControlPlaneProbe }
  /** Elect this control plane (then look at it once more and send Bootstrap). */
  | { kind: 'elect'; candidate: { mac: string; addr: string } };

/** Any control plane with etcd members, or with etcd running, proves the cluster exists. */
export function etcdWitness(probes: ControlPlaneProbe[]): { witness: ControlPlaneProbe; evidence: string } | undefined {
  const witness = probes.find((p) => (p.members ?? 0) > 0) ?? probes.find((p) => p.etcd === 'Running');
  if (!witness) return undefined;
  const evidence = witness.members ? `${witness.mac} (${witness.addr}) lists ${witness.members} etcd member(s)` : `${witness.mac} (${witness.addr}) runs etcd`;
  return { witness, evidence };
}

/** The step for a lock that is not bootstrapped (a bootstrapped lock needs no probes at all). */
export function nextStep(lock: Lock, probes: ControlPlaneProbe[], ctx: StepContext): NextStep {
  if (!probes.length) return { kind: 'wait', waiting: 'no control plane has fetched its machine config yet' };
  const seen = etcdWitness(probes);
  if (seen) return { kind: 'record-evidence', ...seen };
  if (lock.state === 'bootstrap-sent') {
    // Never another node: only the holder, and only when it answers.
    const holder = probes.find((p) => p.mac === lock.holder);
    if (!holder?.reachable) return { kind: 'wait', waiting: `Bootstrap went to ${lock.holder}; waiting for it (or any control plane) to report etcd members` };
    return { kind: 'follow-up', holder };
  }
  if (!electable(lock, ctx.owner, ctx.now)) {
    return { kind: 'wait', waiting: `another Genesis process holds the election for ${lock.holder} until ${new Date(lock.leaseExpiresAt ?? 0).toISOString()}` };
  }
  const eligible = probes.filter((p) => p.reachable && p.configured);
  if (!eligible.length) return { kind: 'wait', waiting: 'waiting for a control plane to answer on the Talos API' };
  // Nodes that cold-boot together answer within moments of each other: wait so all are seen.
  const since = Math.min(...eligible.map((p) => ctx.reachableSince.get(p.mac) ?? ctx.now));
  if (ctx.now - since < ctx.settleMs) return { kind: 'wait', waiting: `control planes answering; electing at ${new Date(since + ctx.settleMs).toISOString()} (settle time)` };
  const choice = chooseCandidate(
    eligible.map((p) => ({ mac: p.mac, addr: p.addr, preferred: p.preferred, reachableSince: ctx.reachableSince.get(p.mac) ?? ctx.now })),
    ctx.preferredKnown,
  );
  if (!choice) return { kind: 'wait', waiting: 'waiting for a control plane to answer on the Talos API' };
  if ('waitingFor' in choice) return { kind: 'wait', waiting: 'waiting for the control plane marked bootstrap: true to answer' };
  return { kind: 'elect', candidate: { mac: choice.mac, addr: choice.addr } };
}

/**
 * How long after a refusal that ran nothing ("not yet", "permission denied") the holder is asked
 * again: the poll interval, doubling with each attempt, never beyond the retry interval.
 */
export function resendDelay(attempts: number, pollMs: number, retryAfterMs: number): number {
  return Math.min(retryAfterMs, pollMs * 2 ** Math.min(attempts, 8));
}
