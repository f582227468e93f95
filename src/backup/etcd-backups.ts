// Scheduled etcd snapshots: every `intervalMs` (daily by default), once the cluster is
// bootstrapped, ask one control plane whose etcd is running and healthy for a snapshot over the
// Talos API, store it (snapshot-store.ts), then prune by the retention rules. One run at a time;
// `genesis backup now` joins a run already under way instead of starting a second.

import type { Logger } from 'pino';
import { nodeAddress } from '../domain/node.ts';
import type { HistoryWriter, NodeReader } from '../inventory/ports.ts';
import type { TalosDialer } from '../talos/dialer.ts';
import { snapshotsToPrune, type RetentionPolicy } from './retention.ts';
import { encryptForOpenssl } from './secrets-envelope.ts';
import { SnapshotError, type SnapshotRecord, type SnapshotSource, type SnapshotStore } from './snapshot-store.ts';

export type BackupSettings = {
  enabled: boolean;
  intervalMs: number;
  /** Deadline of one whole snapshot stream. */
  streamTimeoutMs: number;
  /** After a failed scheduled run, try again this much later (not a whole interval). */
  retryMs: number;
  /** While the cluster is not bootstrapped, look again this often (it only reads the lock). */
  waitMs: number;
  retention: RetentionPolicy;
  /**
   * The secrets bundle to encrypt beside each snapshot, with the operator's passphrase (read at
   * each run, so a rotated passphrase file takes effect); null: no copy, and the status says so.
   */
  secrets: { bundle: () => string; passphrase: () => string } | null;
};

export type BackupStatus = {
  enabled: boolean;
  dir: string;
  intervalSeconds: number;
  running: boolean;
  lastSuccess: SnapshotRecord | null;
  lastFailure: { at: string; error: string } | null;
  /** Failed runs since this process started. */
  failures: number;
  nextAt: string | null;
  /** Why the schedule is not taking snapshots yet, if it is not. */
  waiting: string | null;
  count: number;
  /** Where the secrets bundle is kept safe, in a sentence: beside each snapshot, or the operator's job. */
  secrets: string;
};

export type BackupDeps = {
  inventory: Pick<NodeReader, 'list'> & HistoryWriter;
  store: SnapshotStore;
  dialer: TalosDialer;
  cluster: string;
  /** True once etcd was bootstrapped: before that there is nothing to back up. */
  bootstrapped: () => boolean;
  settings: BackupSettings;
  log: Logger;
  now?: () => Date;
};

export type BackupSummary = { ok: number; failed: number; lastSuccessAt: number | null; lastSizeBytes: number | null };

export class BackupUnavailable extends Error {}

export class EtcdBackups {
  private readonly deps: BackupDeps;
  readonly store: SnapshotStore;
  private readonly now: () => Date;
  private running: Promise<SnapshotRecord> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private nextAt: Date | null = null;
  private waiting: string | null = null;
  private lastFailure: { at: string; error: string } | null = null;
  private failures = 0;
  private runs = { ok: 0, failed: 0 };
  /** The newest snapshot on disk, kept in memory for /metrics (a scrape reads no directory). */
  private newest: SnapshotRecord | null = null;

  constructor(deps: BackupDeps) {
    this.deps = deps;
    this.store = deps.store;
    this.now = deps.now ?? (() => new Date());
  }

  /** Start the schedule: the first snapshot is due one interval after the newest on disk (at once if that is past). */
  async start(): Promise<void> {
    const newest = (await this.deps.store.list().catch(() => []))[0];
    this.newest = newest ?? null;
    if (!this.deps.settings.enabled) return;
    const due = newest ? Date.parse(newest.takenAt) + this.deps.settings.intervalMs : this.now().getTime();
    this.schedule(Math.max(0, due - this.now().getTime()));
  }

  /** Stop the schedule (the app closes the node connections: a snapshot under way then fails and is discarded). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.nextAt = null;
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    // setTimeout takes at most 2^31-1 ms (24.8 days); a longer wait is taken in steps.
    const step = Math.min(delayMs, 2 ** 31 - 1);
    this.nextAt = new Date(this.now().getTime() + delayMs);
    this.timer = setTimeout(() => void this.scheduled(delayMs - step), step);
    this.timer.unref();
  }

  private async scheduled(remainingMs: number): Promise<void> {
    if (remainingMs > 0) return this.schedule(remainingMs);
    if (!this.deps.bootstrapped()) {
      this.waiting = 'the cluster is not bootstrapped yet: nothing to back up';
      return this.schedule(this.deps.settings.waitMs);
    }
    this.waiting = null;
    try {
      await this.runNow('schedule');
      this.schedule(this.deps.settings.intervalMs);
    } catch {
      this.schedule(Math.min(this.deps.settings.retryMs, this.deps.settings.intervalMs));
    }
  }

  /** Take a snapshot now (or join the one being taken). */
  runNow(actor: string): Promise<SnapshotRecord> {
    if (!this.running) {
      this.running = this.take(actor).finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  private async take(actor: string): Promise<SnapshotRecord> {
    const takenAt = this.now();
    let source: (SnapshotSource & { client: Awaited<ReturnType<TalosDialer['dial']>> }) | undefined;
    try {
      source = await this.pickSource();
      // Encrypted before the stream starts: a passphrase file that cannot be read fails the run
      // before any node is asked for anything.
      const s = this.deps.settings.secrets;
      const secrets = s ? await encryptForOpenssl(Buffer.from(s.bundle(), 'utf8'), s.passphrase()) : undefined;
      const record = await this.deps.store.write({
        cluster: this.deps.cluster,
        takenAt,
        secrets,
        source: { mac: source.mac, hostname: source.hostname, address: source.address, talosVersion: source.talosVersion },
        chunks: source.client.etcdSnapshot(this.deps.settings.streamTimeoutMs),
      });
      this.runs.ok++;
      this.newest = record;
      this.deps.inventory.record(source.mac, 'etcd-snapshot', actor, { name: record.name, size: record.size, sha256: record.sha256, etcdIntegrity: record.etcdIntegrity });
      this.deps.log.info({ name: record.name, size: record.size, node: source.mac, actor }, 'etcd snapshot stored');
      await this.prune();
      return record;
    } catch (err) {
      const message = (err as Error).message;
      this.failures++;
      this.runs.failed++;
      this.lastFailure = { at: takenAt.toISOString(), error: message };
      if (source) this.deps.inventory.record(source.mac, 'etcd-snapshot-failed', actor, { error: message });
      this.deps.log.warn({ error: message, node: source?.mac, actor }, 'etcd snapshot failed; earlier snapshots are untouched');
      throw err instanceof SnapshotError || err instanceof BackupUnavailable ? err : new SnapshotError(message);
    }
  }

  /** The first control plane (by MAC) that answers and reports etcd running and healthy. */
  private async pickSource(): Promise<SnapshotSource & { client: Awaited<ReturnType<TalosDialer['dial']>> }> {
    const nodes = this.deps.inventory.list({ role: 'controlplane' }).filter((n) => nodeAddress(n) !== null);
    if (!nodes.length) throw new BackupUnavailable('no control plane with a known address in the inventory');
    const reasons: string[] = [];
    for (const n of [...nodes].sort((a, b) => (a.mac < b.mac ? -1 : 1))) {
      const address = nodeAddress(n)!;
      try {
        const client = await this.deps.dialer.dial(address);
        const etcd = (await client.services()).find((s) => s.id === 'etcd');
        if (etcd?.state === 'Running' && etcd.healthy) {
          const talosVersion = await client.version().then(
            (v) => v.tag || null,
            () => null,
          );
          return { mac: n.mac, hostname: n.hostname, address, talosVersion, client };
        }
        reasons.push(`${n.mac} (${address}): etcd ${etcd ? `${etcd.state}${etcd.healthy ? '' : ', not healthy'}` : 'not listed'}`);
      } catch (err) {
        reasons.push(`${n.mac} (${address}): ${(err as Error).message}`);
      }
    }
    throw new BackupUnavailable(`no control plane has a healthy etcd to snapshot: ${reasons.join('; ')}`);
  }

  private async prune(): Promise<void> {
    const all = await this.deps.store.list();
    const doomed = snapshotsToPrune(
      all.map((r) => ({ name: r.name, takenAt: new Date(r.takenAt) })),
      this.deps.settings.retention,
      this.now(),
    );
    for (const name of doomed) await this.deps.store.remove(name);
    if (doomed.length) this.deps.log.info({ pruned: doomed }, 'pruned etcd snapshots past retention');
  }

  async status(): Promise<BackupStatus> {
    const all = await this.deps.store.list().catch(() => []);
    return {
      enabled: this.deps.settings.enabled,
      dir: this.deps.store.dir,
      intervalSeconds: Math.round(this.deps.settings.intervalMs / 1000),
      running: this.running !== undefined,
      lastSuccess: all[0] ?? null,
      lastFailure: this.lastFailure,
      failures: this.failures,
      nextAt: this.nextAt?.toISOString() ?? null,
      waiting: this.waiting,
      count: all.length,
      secrets: this.deps.settings.secrets
        ? 'encrypted beside each snapshot (<name>.secrets.enc; openssl enc -d -aes-256-cbc -pbkdf2 -iter 600000 -md sha256 opens it)'
        : 'not backed up by Genesis: set backup.secrets_passphrase_file, or keep `genesis secrets export` safe yourself (a snapshot cannot be restored without the bundle)',
    };
  }

  /** For /metrics: runs by result since start, and the newest snapshot's time and size. */
  summary(): BackupSummary {
    return { ok: this.runs.ok, failed: this.runs.failed, lastSuccessAt: this.newest ? Date.parse(this.newest.takenAt) : null, lastSizeBytes: this.newest?.size ?? null };
  }
}
