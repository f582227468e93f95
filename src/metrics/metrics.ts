// Prometheus metrics (prom-client), one registry per Genesis. Counters are moved by the servers
// as things happen; gauges for the inventory and the bootstrap lock are read at scrape time, so
// they are never stale and cost nothing between scrapes. No MAC or other identifier is a label:
// label sets stay small and the endpoint reveals nothing about individual machines.

import client from 'prom-client';
import { LOCK_STATES } from '../bootstrap/lock.ts';
import type { BackupSummary } from '../backup/etcd-backups.ts';
import type { ProxyAnswer } from '../dhcp/proxy.ts';
import { BOOT_STATES, ROLES, type BootState, type Role } from '../domain/node.ts';
import type { TransferSummary } from '../tftp/server.ts';

export type MetricsSources = {
  /** Machines per state and role (a COUNT … GROUP BY: a scrape never builds every record). */
  nodeCounts: () => Array<{ state: BootState; role: Role; count: number }>;
  lockState: () => { state: string; epoch: number };
  /** Open connections from nodes to the Talos event sink and to the kernel-log receiver. */
  connections?: () => { eventSink: number; kernelLog: number };
  /** etcd snapshots: runs by result since start, the newest snapshot's time (ms) and size. */
  backups?: () => BackupSummary;
  /** The cluster name, the one label of the backup series. */
  cluster?: string;
  /** TFTP transfers running now, on the main thread and in the transfer worker. */
  tftpTransfers?: () => number;
};

/** Who sends a download's bytes: the bulk sender process, or Genesis's main process itself. */
export type DownloadSender = 'sender' | 'genesis';

/**
 * Upper bounds of the request-duration buckets, in seconds. The boot path's small requests
 * (scripts, configs) answer in milliseconds and a storm pushes them toward 0.1–1 s; downloads of a
 * kernel or initramfs take seconds on a gigabit LAN and minutes on a slow link.
 */
export const HTTP_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** What became of one event a node published to the sink. */
export type TalosEventResult = 'recorded' | 'duplicate' | 'unknown-source' | 'malformed' | 'failed';
/** What became of one kernel-log line. */
export type KernelLogResult = 'stored' | 'unknown-source' | 'malformed' | 'too-long' | 'failed';

export class Metrics {
  readonly registry = new client.Registry();
  private readonly dhcp: client.Counter<'result' | 'client'>;
  private readonly tftpTransfers: client.Counter<'outcome'>;
  private readonly tftpBytes: client.Counter;
  private readonly tftpRetransmits: client.Counter;
  private readonly httpRequests: client.Counter<'route' | 'method' | 'status'>;
  private readonly httpDuration: client.Histogram<'route' | 'method'>;
  private readonly downloadsInFlight: client.Gauge<'sent_by'>;
  private readonly assetBytes: client.Counter<'kind'>;
  private readonly configs: client.Counter<'result'>;
  private readonly talosEvents: client.Counter<'result' | 'kind'>;
  private readonly kernelLogLines: client.Counter<'result'>;
  private readonly connectionsTotal: client.Counter<'server'>;
  private readonly refusedTotal: client.Counter<'protocol' | 'reason'>;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry, prefix: 'genesis_process_' });
    this.dhcp = new client.Counter({
      name: 'genesis_dhcp_requests_total',
      help: 'proxyDHCP requests by result (offered: answered; ignored: not a PXE client or nothing to offer; malformed) and client kind',
      labelNames: ['result', 'client'],
      registers,
    });
    this.tftpTransfers = new client.Counter({ name: 'genesis_tftp_transfers_total', help: 'TFTP transfers by outcome', labelNames: ['outcome'], registers });
    this.tftpBytes = new client.Counter({ name: 'genesis_tftp_bytes_total', help: 'Bytes of file data sent over TFTP', registers });
    this.tftpRetransmits = new client.Counter({ name: 'genesis_tftp_retransmits_total', help: 'TFTP packets sent again after a timeout', registers });
    this.httpRequests = new client.Counter({
      name: 'genesis_http_requests_total',
      help: 'HTTP requests by route pattern, method and status',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    this.httpDuration = new client.Histogram({
      name: 'genesis_http_request_duration_seconds',
      help: 'HTTP requests by route pattern and method: seconds from routing to the last byte written (for a download handed to the bulk sender, until it reports)',
      labelNames: ['route', 'method'],
      buckets: HTTP_DURATION_BUCKETS,
      registers,
    });
    this.downloadsInFlight = new client.Gauge({
      name: 'genesis_http_downloads_in_flight',
      help: 'Asset downloads being sent now, by who sends the bytes: the bulk sender process (sender) or Genesis itself (genesis)',
      labelNames: ['sent_by'],
      registers,
    });
    new client.Gauge({
      name: 'genesis_tftp_transfers_in_flight',
      help: 'TFTP transfers running now (from the request to the last ACK or the give-up)',
      registers,
      collect() {
        this.set(sources.tftpTransfers?.() ?? 0);
      },
    });
    this.assetBytes = new client.Counter({ name: 'genesis_http_asset_bytes_total', help: 'Bytes of boot assets sent over HTTP', labelNames: ['kind'], registers });
    this.configs = new client.Counter({ name: 'genesis_machine_configs_total', help: 'Machine config requests: served, refused (403) or failed (503)', labelNames: ['result'], registers });
    this.talosEvents = new client.Counter({
      name: 'genesis_talos_events_total',
      help: 'Events nodes published to the Talos event sink, by result and kind (sequence, phase, task, machine-status, ...)',
      labelNames: ['result', 'kind'],
      registers,
    });
    this.kernelLogLines = new client.Counter({ name: 'genesis_kernel_log_lines_total', help: 'Kernel-log lines received from nodes, by result', labelNames: ['result'], registers });
    this.connectionsTotal = new client.Counter({
      name: 'genesis_node_connections_total',
      help: 'Connections nodes opened to the Talos event sink (event-sink) and the kernel-log receiver (kernel-log)',
      labelNames: ['server'],
      registers,
    });
    this.refusedTotal = new client.Counter({
      name: 'genesis_refused_total',
      help: 'Unauthenticated input Genesis refused or dropped, by protocol and reason (caps, timeouts, discovery limits, conflicts, bad tokens)',
      labelNames: ['protocol', 'reason'],
      registers,
    });
    new client.Gauge({
      name: 'genesis_node_connections',
      help: 'Open connections from nodes to the Talos event sink (event-sink) and the kernel-log receiver (kernel-log)',
      labelNames: ['server'],
      registers,
      collect() {
        const c = sources.connections?.() ?? { eventSink: 0, kernelLog: 0 };
        this.set({ server: 'event-sink' }, c.eventSink);
        this.set({ server: 'kernel-log' }, c.kernelLog);
      },
    });
    new client.Gauge({
      name: 'genesis_nodes',
      help: 'Machines in the inventory by state and role',
      labelNames: ['state', 'role'],
      registers,
      collect() {
        this.reset();
        for (const s of BOOT_STATES) for (const r of ROLES) this.set({ state: s, role: r }, 0);
        for (const c of sources.nodeCounts()) this.set({ state: c.state, role: c.role }, c.count);
      },
    });
    new client.Gauge({
      name: 'genesis_bootstrap_state',
      help: 'The bootstrap lock: 1 for its current state',
      labelNames: ['state'],
      registers,
      collect() {
        const { state } = sources.lockState();
        for (const s of LOCK_STATES) this.set({ state: s }, s === state ? 1 : 0);
      },
    });
    new client.Gauge({
      name: 'genesis_bootstrap_epoch',
      help: 'The bootstrap lock fencing epoch',
      registers,
      collect() {
        this.set(sources.lockState().epoch);
      },
    });
    // etcd snapshots. Age is a gauge of its own so an alert needs no time() arithmetic. With no
    // snapshot yet these series are absent rather than 0 (a 0 age would read as fresh): the
    // `cluster` label is what lets prom-client leave them out.
    const newest = (pick: (s: BackupSummary) => number | null) =>
      function (this: client.Gauge<'cluster'>) {
        this.reset();
        const s = sources.backups?.();
        const v = s ? pick(s) : null;
        if (v !== null) this.set({ cluster: sources.cluster ?? '' }, v);
      };
    new client.Gauge({
      name: 'genesis_etcd_backup_last_success_timestamp_seconds',
      help: 'When the newest stored etcd snapshot was taken (Unix seconds); absent before the first',
      labelNames: ['cluster'],
      registers,
      collect: newest((s) => (s.lastSuccessAt === null ? null : s.lastSuccessAt / 1000)),
    });
    new client.Gauge({
      name: 'genesis_etcd_backup_age_seconds',
      help: 'Seconds since the newest stored etcd snapshot was taken; absent before the first',
      labelNames: ['cluster'],
      registers,
      collect: newest((s) => (s.lastSuccessAt === null ? null : Math.max(0, (Date.now() - s.lastSuccessAt) / 1000))),
    });
    new client.Gauge({
      name: 'genesis_etcd_backup_last_size_bytes',
      help: 'Size of the newest stored etcd snapshot; absent before the first',
      labelNames: ['cluster'],
      registers,
      collect: newest((s) => s.lastSizeBytes),
    });
    new client.Counter({
      name: 'genesis_etcd_backup_runs_total',
      help: 'etcd snapshot runs since start, by result (ok, failed)',
      labelNames: ['result'],
      registers,
      collect() {
        const s = sources.backups?.() ?? { ok: 0, failed: 0 };
        this.reset();
        this.inc({ result: 'ok' }, s.ok);
        this.inc({ result: 'failed' }, s.failed);
      },
    });
    // Zero series exist from the start, so rate() and absent() work before the first event.
    for (const o of ['ok', 'aborted', 'client-error', 'timeout', 'unconfirmed', 'read-error']) this.tftpTransfers.inc({ outcome: o }, 0);
    for (const r of ['served', 'refused', 'failed']) this.configs.inc({ result: r }, 0);
    for (const r of ['stored', 'unknown-source', 'malformed', 'too-long', 'failed']) this.kernelLogLines.inc({ result: r }, 0);
    for (const sv of ['event-sink', 'kernel-log']) this.connectionsTotal.inc({ server: sv }, 0);
    for (const by of ['sender', 'genesis'] satisfies DownloadSender[]) this.downloadsInFlight.set({ sent_by: by }, 0);
    // The refusals an alert counts with increase() (deploy/prometheus/genesis-alerts.yaml): a
    // series that first appears at 1 shows Prometheus no increase, so the first conflict after a
    // start would never alert.
    for (const [protocol, reason] of [['boot', 'conflict'], ['config', 'conflict'], ['config', 'other-address']] as const) this.refusedTotal.inc({ protocol, reason }, 0);
  }

  talosEvent(result: TalosEventResult, kind: string): void {
    this.talosEvents.inc({ result, kind });
  }

  kernelLog(result: KernelLogResult, lines = 1): void {
    this.kernelLogLines.inc({ result }, lines);
  }

  nodeConnection(server: 'event-sink' | 'kernel-log'): void {
    this.connectionsTotal.inc({ server });
  }

  /** One refusal of unauthenticated input; `reason` is one of a few fixed words, never input. */
  refused(protocol: string, reason: string): void {
    this.refusedTotal.inc({ protocol, reason });
  }

  dhcpAnswer(a: ProxyAnswer | 'malformed'): void {
    if (a === 'malformed') this.dhcp.inc({ result: 'malformed', client: 'unknown' });
    else if (a.kind === 'reply') this.dhcp.inc({ result: 'offered', client: a.client });
    else this.dhcp.inc({ result: 'ignored', client: 'unknown' });
  }

  tftpTransfer(t: TransferSummary): void {
    this.tftpTransfers.inc({ outcome: t.outcome });
    this.tftpBytes.inc(t.bytes);
    this.tftpRetransmits.inc(t.retransmits);
  }

  /**
   * One finished HTTP request; `route` is the route pattern (never the raw URL: no MACs, no
   * tokens). `seconds`: from routing to the last byte.
   */
  httpResponse(route: string, method: string, status: number, bytes: number, seconds: number): void {
    this.httpRequests.inc({ route, method, status: String(status) });
    this.httpDuration.observe({ route, method }, seconds);
    if (route.startsWith('/assets/') && (status === 200 || status === 206) && method === 'GET') this.assetBytes.inc({ kind: 'assets' }, bytes);
  }

  /** An asset download began sending its body; every one is followed by its downloadEnded(). */
  downloadStarted(by: DownloadSender): void {
    this.downloadsInFlight.inc({ sent_by: by });
  }

  /** That download's connection closed: every byte written, or cut off. */
  downloadEnded(by: DownloadSender): void {
    this.downloadsInFlight.dec({ sent_by: by });
  }

  /** One machine-config request, as the provisioning decided it. */
  configOutcome(result: 'served' | 'refused' | 'failed'): void {
    this.configs.inc({ result });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
