// The bootstrap orchestrator: every poll it asks the control planes that got their config how
// etcd is doing, and moves the lock (bootstrap/lock.ts, stored by bootstrap/lock-store.ts)
// one step. Every decision is re-made from the lock on disk and what the nodes answer, never from
// memory, so a Genesis killed at any point and restarted continues where the facts say it is.

import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Logger } from 'pino';
import type { LockHistoryEntry } from './lock-store.ts';
import { nodeAddress, type Node } from '../domain/node.ts';
import type { HistoryWriter, NodeReader } from '../inventory/ports.ts';
import type { TalosApiError, TalosApiClient, TalosApiCredentials } from '../talos/api-client.ts';
import { TalosDialer } from '../talos/dialer.ts';
import type { Failpoints } from './failpoint.ts';
import { claimResend, classifyBootstrapError, deferResend, elect, markBootstrapped, markSent, requestRecovery, resetLock, type Lock, type Outcome } from './lock.ts';
import { nextStep, resendDelay, type ControlPlaneProbe } from './next-step.ts';

export type { ControlPlaneProbe } from './next-step.ts';

/** What the orchestrator asks of one control plane's Talos API. */
export type TalosNode = Pick<TalosApiClient, 'version' | 'etcdMembers' | 'services' | 'bootstrap' | 'etcdRecover'>;

/** Connections to the control planes: Talos's API in production (talos/dialer.ts), a fake in unit tests. */
export interface TalosNodes {
  dial(addr: string): Promise<TalosNode>;
  closeAll(): void;
}

/** What the orchestrator needs of the lock's storage (lock-store.ts; a fake in unit tests). */
export interface LockStore {
  get(cluster: string): Lock;
  apply(cluster: string, actor: string, rule: (lock: Lock, now: number) => Outcome): Outcome;
  history(cluster: string, limit?: number): LockHistoryEntry[];
}

export type BootstrapSettings = {
  enabled: boolean;
  /** Talos apid port on the nodes (50000). */
  apiPort: number;
  pollMs: number;
  /** After the first control plane answers, wait this long so nodes booting together are all probed. */
  settleMs: number;
  /** How long an election stands before another process may take over. */
  leaseMs: number;
  /** In bootstrap-sent without etcd members yet: re-send to the same holder after this long. */
  retryAfterMs: number;
  rpcTimeoutMs: number;
  /** How long uploading a snapshot for a recovery may take (backup.timeout). */
  uploadTimeoutMs?: number;
};

export type ClusterStatus = {
  cluster: string;
  state: Lock['state'];
  holder: { mac: string; ip: string | null; hostname: string | null } | null;
  epoch: number;
  leaseExpiresAt: string | null;
  sentAt: string | null;
  retryAt: string | null;
  attempts: number;
  updatedAt: string;
  orchestrator: { enabled: boolean; rounds: number; lastRoundAt: string | null; waiting: string | null };
  controlplanes: ControlPlaneProbe[];
  history: LockHistoryEntry[];
  /** The snapshot being restored, while a recovery is under way. */
  recovery: { snapshot: string; sha256: string; size: number; requestedAt: string; requestedBy: string } | null;
};

export class ResetRefused extends Error {}

/** A recovery that cannot start: 404 no such snapshot, 409 etcd still running or the lock busy, 422 a damaged snapshot. */
export class RecoveryRefused extends Error {
  readonly status: 404 | 409 | 422;
  readonly code: string;
  constructor(message: string, status: 404 | 409 | 422, code: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export type OrchestratorDeps = {
  inventory: Pick<NodeReader, 'get' | 'list'> & HistoryWriter;
  locks: LockStore;
  cluster: string;
  credentials: () => Promise<TalosApiCredentials>;
  /** How the control planes are reached; default: Talos's API with `credentials`. */
  nodes?: TalosNodes;
  /** The crash tests' kill points (failpoint.ts); none by default. */
  failpoints?: Failpoints;
  settings: BootstrapSettings;
  log: Logger;
  now?: () => number;
  /** Where `recover` finds snapshots (backup.dir): the backup module's store fits this. */
  snapshots?: RecoverySnapshots;
};

/** What a recovery needs of the stored snapshots. */
export type RecoverySnapshots = {
  get(name: string): Promise<{ cluster: string; sha256: string; size: number } | undefined>;
  verify(name: string): Promise<{ ok: boolean; problems: string[] }>;
  /** The database file to upload (throws for a name that is not a snapshot's). */
  databasePath(name: string): string;
};

const ACTOR = 'genesis';
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export class BootstrapOrchestrator {
  /** This process's identity as a lease owner: a restarted process is a new owner. */
  readonly owner = randomUUID();
  private readonly deps: OrchestratorDeps;
  private readonly now: () => number;
  private readonly dialer: TalosNodes;
  private readonly failpoint: Failpoints;
  private readonly reachableSince = new Map<string, number>();
  private probes: ControlPlaneProbe[] = [];
  private rounds = 0;
  private lastRoundAt: number | null = null;
  private waiting: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** An operator action (recover, reset) is probing: no round runs meanwhile (a round may close the channels it uses). */
  private operatorAction: Promise<unknown> | undefined;
  private stopped = true;

  constructor(deps: OrchestratorDeps) {
    this.deps = deps;
    this.now = deps.now ?? Date.now;
    this.failpoint = deps.failpoints ?? (() => {});
    this.dialer = deps.nodes ?? new TalosDialer(deps.credentials, { port: deps.settings.apiPort, timeoutMs: deps.settings.rpcTimeoutMs });
  }

  start(): void {
    if (!this.deps.settings.enabled || !this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    this.closeClients();
  }

  private closeClients(): void {
    this.dialer.closeAll();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      // One round at a time: a running round schedules the next one when it ends.
      if (this.running) return;
      if (this.operatorAction) {
        void this.operatorAction.finally(() => this.schedule(0));
        return;
      }
      this.running = this.round()
        .catch((err: unknown) => this.deps.log.error({ err }, 'bootstrap round failed'))
        .finally(() => {
          this.running = undefined;
          this.schedule(this.deps.settings.pollMs);
        });
    }, ms);
    this.timer.unref();
  }

  status(): ClusterStatus {
    const lock = this.deps.locks.get(this.deps.cluster);
    const holderNode = lock.holder ? this.deps.inventory.get(lock.holder) : undefined;
    return {
      cluster: lock.cluster,
      state: lock.state,
      holder: lock.holder ? { mac: lock.holder, ip: lock.holderAddr, hostname: holderNode?.hostname ?? null } : null,
      epoch: lock.epoch,
      leaseExpiresAt: iso(lock.leaseExpiresAt),
      sentAt: iso(lock.sentAt),
      retryAt: iso(lock.retryAt),
      attempts: lock.attempts,
      updatedAt: new Date(lock.updatedAt).toISOString(),
      orchestrator: { enabled: this.deps.settings.enabled, rounds: this.rounds, lastRoundAt: iso(this.lastRoundAt), waiting: this.waiting },
      controlplanes: this.probes,
      history: this.deps.locks.history(this.deps.cluster, 50),
      recovery: lock.recovery && { ...lock.recovery, requestedAt: new Date(lock.recovery.requestedAt).toISOString() },
    };
  }

  /** One round: read the lock, ask the nodes, take at most one step. */
  async round(): Promise<void> {
    try {
      await this.step();
    } finally {
      this.rounds++;
      this.lastRoundAt = this.now();
    }
  }

  private async step(): Promise<void> {
    const lock = this.deps.locks.get(this.deps.cluster);
    if (lock.state === 'bootstrapped') {
      // Nothing more to ask the nodes: drop the channels (grpc keeps reconnecting otherwise).
      this.waiting = null;
      this.closeClients();
      return;
    }
    const probes = await this.probeControlPlanes();
    const step = nextStep(lock, probes, {
      now: this.now(),
      owner: this.owner,
      settleMs: this.deps.settings.settleMs,
      reachableSince: this.reachableSince,
      // The operator's choice counts from the moment it is made, before that node ever booted.
      preferredKnown: this.deps.inventory.list({ role: 'controlplane' }).some((n) => n.bootstrap),
    });
    switch (step.kind) {
      case 'wait':
        this.waiting = step.waiting;
        return;
      case 'record-evidence':
        return this.recordEvidence(step.witness, step.evidence);
      case 'follow-up':
        return this.followUp(lock, step.holder);
      case 'elect':
        return this.electAndSend(step.candidate);
    }
  }

  /** The cluster exists: record it, call nothing. */
  private recordEvidence(witness: ControlPlaneProbe, evidence: string): void {
    const r = this.deps.locks.apply(this.deps.cluster, ACTOR, (l, now) => markBootstrapped(l, { now, evidence, by: witness.mac, addr: witness.addr }));
    if (r.ok) {
      this.waiting = null;
      this.deps.inventory.record(r.lock.holder ?? witness.mac, 'bootstrapped', ACTOR, { epoch: r.lock.epoch, evidence });
      this.deps.log.info({ holder: r.lock.holder, epoch: r.lock.epoch, evidence }, r.note);
    }
  }

  private async electAndSend(choice: { mac: string; addr: string }): Promise<void> {
    const elected = this.deps.locks.apply(this.deps.cluster, ACTOR, (l, at) => elect(l, { candidate: choice.mac, addr: choice.addr, owner: this.owner, now: at, leaseMs: this.deps.settings.leaseMs }));
    if (!elected.ok) {
      this.waiting = elected.why;
      return;
    }
    const { epoch } = elected.lock;
    this.deps.inventory.record(choice.mac, 'bootstrap-elected', ACTOR, { epoch });
    this.deps.log.info({ holder: choice.mac, addr: choice.addr, epoch }, elected.note);
    this.failpoint('after-elect');

    // Last look before the point of no return. If the node stopped answering, nothing was sent:
    // the next round elects again (a new epoch), possibly another node.
    const client = await this.client(choice.addr);
    try {
      await client.version();
    } catch (err) {
      this.waiting = `${choice.mac} stopped answering before Bootstrap was sent; electing again`;
      this.deps.log.warn({ holder: choice.mac, epoch, err: (err as Error).message }, 'elected control plane stopped answering; Bootstrap not sent');
      return;
    }
    if (elected.lock.recovery) {
      // Uploading changes nothing by itself (Talos only keeps the file), so a failure here, or a
      // crash, lets the next round elect again and upload again; the point of no return is below.
      const plan = elected.lock.recovery;
      try {
        await client.etcdRecover(snapshotChunks(this.deps.snapshots!.databasePath(plan.snapshot), plan.sha256), this.deps.settings.uploadTimeoutMs ?? 1_800_000);
      } catch (err) {
        this.waiting = `uploading ${plan.snapshot} to ${choice.mac} failed (${(err as Error).message}); trying again`;
        this.deps.inventory.record(choice.mac, 'bootstrap-deferred', ACTOR, { epoch, reason: `EtcdRecover: ${(err as Error).message}` });
        this.deps.log.warn({ holder: choice.mac, epoch, err: (err as Error).message }, 'snapshot upload for the recovery failed');
        return;
      }
      this.deps.inventory.record(choice.mac, 'etcd-recover-uploaded', ACTOR, { epoch, snapshot: plan.snapshot, size: plan.size });
      this.deps.log.info({ holder: choice.mac, epoch, snapshot: plan.snapshot }, 'snapshot uploaded for the recovery');
      this.failpoint('after-recover-upload');
    }
    const sent = this.deps.locks.apply(this.deps.cluster, ACTOR, (l, at) => markSent(l, { epoch, owner: this.owner, now: at, retryAfterMs: this.deps.settings.retryAfterMs }));
    if (!sent.ok) {
      this.waiting = sent.why;
      return;
    }
    this.deps.inventory.record(choice.mac, 'bootstrap-sent', ACTOR, { epoch, attempt: 1, ...(sent.lock.recovery ? { recoverFrom: sent.lock.recovery.snapshot } : {}) });
    this.failpoint('after-mark-sent');
    await this.send(sent.lock, client);
  }

  /**
   * bootstrap-sent and no etcd members anywhere yet. Never another node: only the holder, and only
   * when it answers and the retry time has come (the first call may still be taking effect).
   */
  private async followUp(lock: Lock, holder: ControlPlaneProbe): Promise<void> {
    const again = this.deps.locks.apply(this.deps.cluster, ACTOR, (l, now) => claimResend(l, { now, retryAfterMs: this.deps.settings.retryAfterMs }));
    if (!again.ok) {
      this.waiting = `Bootstrap went to ${lock.holder}; waiting for etcd members (${again.why})`;
      return;
    }
    this.deps.inventory.record(holder.mac, 'bootstrap-sent', ACTOR, { epoch: again.lock.epoch, attempt: again.lock.attempts });
    this.deps.log.warn({ holder: holder.mac, epoch: again.lock.epoch, attempt: again.lock.attempts }, again.note);
    await this.send(again.lock, await this.client(holder.addr));
  }

  private async send(lock: Lock, client: TalosNode): Promise<void> {
    const mac = lock.holder!;
    try {
      await client.bootstrap({ recoverEtcd: lock.recovery !== null });
      this.failpoint('after-bootstrap-rpc');
      // Accepted is not done: Talos keeps the request in memory until etcd starts. The lock
      // becomes bootstrapped when a member list proves it, in a later round.
      this.waiting = `Bootstrap${lock.recovery ? ` (recovering from ${lock.recovery.snapshot})` : ''} accepted by ${mac}; waiting for etcd to report members`;
      this.deps.log.info({ holder: mac, epoch: lock.epoch }, 'Bootstrap accepted');
    } catch (err) {
      const e = err as TalosApiError;
      const kind = classifyBootstrapError(e.code, e.message);
      this.deps.log.warn({ holder: mac, epoch: lock.epoch, code: e.code, kind, err: e.message }, 'Bootstrap call failed');
      const now = this.now();
      if (kind === 'already-bootstrapped') {
        const r = this.deps.locks.apply(this.deps.cluster, ACTOR, (l, at) => markBootstrapped(l, { now: at, evidence: `${mac} answered: ${e.message}`, by: mac, addr: lock.holderAddr }));
        if (r.ok) this.deps.inventory.record(mac, 'bootstrapped', ACTOR, { epoch: r.lock.epoch, evidence: e.message });
        return;
      }
      if (kind === 'not-yet' || kind === 'not-sent') {
        // Refused before anything ran: retry soon, backing off with each attempt.
        const delay = resendDelay(lock.attempts, this.deps.settings.pollMs, this.deps.settings.retryAfterMs);
        const r = this.deps.locks.apply(this.deps.cluster, ACTOR, (l, at) => deferResend(l, { epoch: lock.epoch, now: at, retryAt: now + delay, why: e.message }));
        if (r.ok) this.deps.inventory.record(mac, 'bootstrap-deferred', ACTOR, { epoch: lock.epoch, reason: e.message, retryAt: iso(now + delay) });
      }
      // 'unknown': the call may have arrived. The retry time set when it was sent stands.
      this.waiting = `Bootstrap to ${mac} failed (${e.message}); ${kind === 'unknown' ? 'checking for etcd members before any retry' : 'will retry'}`;
    }
  }

  /**
   * Ask every control plane with an address: Version (reachable with our CA), EtcdMemberList and
   * ServiceList. Failures are facts (unreachable, etcd not running), not errors.
   */
  async probeControlPlanes(): Promise<ControlPlaneProbe[]> {
    const nodes = this.deps.inventory.list({ role: 'controlplane' }).filter((n) => nodeAddress(n) !== null);
    // One timestamp per round: nodes first heard in the same round tie, and the MAC decides.
    const roundAt = this.now();
    const probes = await Promise.all(nodes.map((n) => this.probe(n, roundAt)));
    this.probes = probes;
    return probes;
  }

  private async probe(n: Node, roundAt: number): Promise<ControlPlaneProbe> {
    const addr = nodeAddress(n)!;
    const p: ControlPlaneProbe = {
      mac: n.mac,
      hostname: n.hostname,
      addr,
      configured: n.state === 'installing' || n.state === 'installed',
      preferred: n.bootstrap,
      reachable: false,
      members: null,
      etcd: null,
      at: new Date(roundAt).toISOString(),
    };
    const client = await this.client(addr);
    try {
      p.talosVersion = (await client.version()).tag;
      p.reachable = true;
      if (!this.reachableSince.has(n.mac)) this.reachableSince.set(n.mac, roundAt);
    } catch (err) {
      p.error = (err as Error).message;
      this.reachableSince.delete(n.mac);
      return p;
    }
    const [members, services] = await Promise.allSettled([client.etcdMembers(), client.services()]);
    if (members.status === 'fulfilled') p.members = members.value.length;
    else p.error = (members.reason as Error).message;
    if (services.status === 'fulfilled') p.etcd = services.value.find((s) => s.id === 'etcd')?.state ?? null;
    return p;
  }

  private client(addr: string): Promise<TalosNode> {
    return this.dialer.dial(addr);
  }

  /**
   * Restore etcd from a stored snapshot, for when every control plane lost it (or new machines
   * replace them). Refused while any control plane reports etcd members or runs etcd: a recovery
   * then would start a second cluster. From here the rounds take it as the first bootstrap: elect
   * one control plane, upload the snapshot (EtcdRecover), write bootstrap-sent, then Bootstrap
   * with recover_etcd, once.
   */
  async recover(snapshot: string, actor: string): Promise<Lock> {
    return this.exclusively(() => this.recoverNow(snapshot, actor));
  }

  /** Run an operator action with no round running before or during it. */
  private async exclusively<T>(fn: () => Promise<T>): Promise<T> {
    while (this.operatorAction || this.running) await (this.operatorAction ?? this.running)!.catch(() => {});
    const action = fn();
    // Rounds only wait for it to end; its failure is the caller's (an unhandled rejection here
    // would end the process).
    this.operatorAction = action.catch(() => {});
    try {
      return await action;
    } finally {
      this.operatorAction = undefined;
    }
  }

  private async recoverNow(snapshot: string, actor: string): Promise<Lock> {
    if (!this.deps.settings.enabled) throw new RecoveryRefused('the bootstrap orchestrator is off (bootstrap.enabled: false); it is what carries out a recovery', 409, 'recover_refused');
    const store = this.deps.snapshots;
    const record = store ? await store.get(snapshot) : undefined;
    if (!store || !record) throw new RecoveryRefused(`no snapshot named ${JSON.stringify(snapshot)} (genesis backup list shows them)`, 404, 'not_found');
    const check = await store.verify(snapshot);
    if (!check.ok) throw new RecoveryRefused(`${snapshot} is damaged: ${check.problems.join('; ')}`, 422, 'snapshot_damaged');
    if (record.cluster !== this.deps.cluster) throw new RecoveryRefused(`${snapshot} is a snapshot of cluster ${record.cluster}, not ${this.deps.cluster}`, 409, 'recover_refused');
    const probes = await this.probeControlPlanes();
    if (!probes.length) throw new RecoveryRefused('no control plane with a known address to recover onto: assign one (it installs over PXE), then ask again', 409, 'recover_refused');
    // Silence is not evidence: a control plane that does not answer may still hold etcd.
    const silent = probes.filter((p) => !p.reachable);
    if (silent.length) {
      throw new RecoveryRefused(
        `control plane(s) ${silent.map((p) => `${p.mac} (${p.addr}): ${p.error ?? 'no answer'}`).join(', ')} did not answer, so Genesis cannot tell they have no etcd; power them on, or delete the ones that are gone (genesis nodes delete)`,
        409,
        'recover_refused',
      );
    }
    const alive = probes.filter(runsEtcd);
    if (alive.length) {
      throw new RecoveryRefused(
        `control plane(s) ${alive.map((p) => `${p.mac} (${p.addr})`).join(', ')} still report etcd members; recovery is for when no control plane has etcd (reset them first: talosctl reset --system-labels-to-wipe EPHEMERAL)`,
        409,
        'recover_refused',
      );
    }
    const plan = { snapshot, sha256: record.sha256, size: record.size, requestedAt: this.now(), requestedBy: actor };
    const r = this.deps.locks.apply(this.deps.cluster, actor, (l, now) => requestRecovery(l, { plan: { ...plan, requestedAt: now }, now }));
    if (!r.ok) throw new RecoveryRefused(r.why, 409, 'recover_refused');
    this.reachableSince.clear();
    this.deps.log.warn({ actor, epoch: r.lock.epoch, snapshot }, r.note);
    this.schedule(0);
    return r.lock;
  }

  /**
   * Operator reset, for deliberately rebuilding the cluster. Refused while any control plane
   * reports etcd members: resetting then would let a second etcd cluster be born.
   */
  async reset(actor: string): Promise<Lock> {
    return this.exclusively(() => this.resetNow(actor));
  }

  private async resetNow(actor: string): Promise<Lock> {
    const probes = await this.probeControlPlanes();
    const alive = probes.filter(runsEtcd);
    if (alive.length) {
      throw new ResetRefused(`control plane(s) ${alive.map((p) => `${p.mac} (${p.addr})`).join(', ')} still report etcd members; reset (wipe) them first`);
    }
    const r = this.deps.locks.apply(this.deps.cluster, actor, (l, now) => resetLock(l, { now }));
    if (!r.ok) throw new ResetRefused(r.why);
    this.reachableSince.clear();
    this.deps.log.warn({ actor, epoch: r.lock.epoch }, r.note);
    this.schedule(0);
    return r.lock;
  }
}

/**
 * The snapshot file in 1 MiB chunks, hashed on the way: if it does not match the sha256 the
 * recovery was planned with, the last chunk is never handed over and the upload is cancelled.
 */
async function* snapshotChunks(file: string, sha256: string): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  let pending: Buffer | undefined;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    if (pending) yield pending;
    hash.update(chunk as Buffer);
    pending = chunk as Buffer;
  }
  const got = hash.digest('hex');
  if (got !== sha256) throw new Error(`the snapshot file changed since the recovery was asked for (sha256 ${got}, expected ${sha256})`);
  if (pending) yield pending;
}

/** The probe shows etcd there: members listed, or the service running. */
function runsEtcd(p: ControlPlaneProbe): boolean {
  return (p.members ?? 0) > 0 || p.etcd === 'Running';
}
