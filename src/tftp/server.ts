// The TFTP server's I/O: the listening socket, one socket per transfer (its TID), timers and file
// reads. Every protocol decision is made by the pure Transfer state machine; this file only
// carries out its effects.

import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { LogThrottle, sample } from '../logging/throttle.ts';
import { decode, encodeError, ErrorCode, type Packet, type Request } from './packet.ts';
import { negotiate, type TftpLimits } from './options.ts';
import { normalizeTftpPath, type FileProvider, type OpenResult, type TftpClient, type TftpSource } from './provider.ts';
import { Transfer, type Effect, type Outcome } from './transfer.ts';

export type TftpServerOptions = {
  host: string;
  port: number;
  provider: FileProvider;
  limits: TftpLimits;
  maxTransfers: number;
  /** Concurrent transfers one client address may hold (one host cannot take every slot). */
  maxTransfersPerClient?: number;
  /** A transfer still running after this long is ended, whatever the client does (ms). */
  maxTransferMs?: number;
  /** Upper bound for the retransmission timer when the client sends no `timeout` option, in ms. */
  defaultTimeoutMs: number;
  minRtoMs: number;
  initialRtoMs: number;
  maxRetries: number;
  logger: Logger;
};

export type TransferSummary = {
  client: string;
  file: string;
  size: number;
  bytes: number;
  blksize: number;
  windowsize: number;
  durationMs: number;
  retransmits: number;
  outcome: Outcome['result'];
  detail?: string;
};


/** Emits 'transfer-end' (TransferSummary) for each finished transfer and 'refused' for each refused request. */
export class TftpServer extends EventEmitter {
  private socket: dgram.Socket | undefined;
  private readonly active = new Map<string, ActiveTransfer>();
  private readonly opts: TftpServerOptions;
  private readonly log: Logger;
  private accepting = false;
  private readonly throttle: LogThrottle;
  /** Active transfers per client address, for the per-client cap. */
  private readonly perClient = new Map<string, number>();

  constructor(opts: TftpServerOptions) {
    super();
    this.opts = opts;
    this.log = opts.logger;
    this.throttle = new LogThrottle(opts.logger);
  }

  get activeTransfers(): number {
    return this.active.size;
  }

  private get family(): 'udp4' | 'udp6' {
    return this.opts.host.includes(':') ? 'udp6' : 'udp4';
  }

  async start(): Promise<{ address: string; port: number }> {
    const socket = dgram.createSocket({ type: this.family, reuseAddr: false });
    socket.on('message', (msg, rinfo) => this.onRequest(msg, { address: rinfo.address, port: rinfo.port }));
    socket.on('error', (err) => this.log.error({ err }, 'tftp socket error'));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.opts.port, this.opts.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    this.socket = socket;
    this.accepting = true;
    const addr = socket.address();
    this.log.info({ address: addr.address, port: addr.port }, 'tftp listening');
    return { address: addr.address, port: addr.port };
  }

  /** Stop accepting requests, give running transfers up to graceMs to finish, then abort the rest. */
  async close(graceMs = 5000): Promise<void> {
    this.accepting = false;
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
    if (this.active.size > 0) {
      const drained = new Promise<void>((resolve) => {
        const check = () => {
          if (this.active.size === 0) {
            this.off('transfer-end', check);
            resolve();
          }
        };
        this.on('transfer-end', check);
      });
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([drained, expired]);
      clearTimeout(timer);
      for (const t of [...this.active.values()]) t.abort('server shutting down');
    }
  }

  private refuse(client: TftpClient, code: ErrorCode, message: string, reason: string, file?: string): void {
    // Counted by the fixed part of the reason (`bad-path: ...` details stay out of the label).
    const kind = reason.split(':')[0]!;
    this.socket?.send(encodeError(code, message), client.port, client.address);
    this.throttle.note(`tftp-${kind}`, client.address, { port: client.port, ...(file === undefined ? {} : { file: sample(file) }), reason: sample(reason, 80) }, 'tftp request refused');
    this.emit('refused', { client, file, reason });
  }

  private onRequest(msg: Buffer, client: TftpClient): void {
    if (!this.accepting) return;
    const packet = decode(msg);
    switch (packet.kind) {
      case 'rrq':
        this.startTransfer(packet, client);
        return;
      case 'wrq':
        this.refuse(client, ErrorCode.AccessViolation, 'Genesis TFTP is read-only', 'write-request', packet.filename);
        return;
      case 'error':
        // Never answer an error with an error: two servers could ping-pong forever.
        return;
      case 'malformed':
        this.refuse(client, ErrorCode.IllegalOperation, `malformed request: ${packet.reason}`, 'malformed');
        return;
      default:
        this.refuse(client, ErrorCode.IllegalOperation, 'expected a read request on this port', 'unexpected-opcode');
    }
  }

  private startTransfer(req: Request, client: TftpClient): void {
    const key = `${client.address}:${client.port}`;
    const existing = this.active.get(key);
    if (existing) {
      // A client that repeats its request has not heard our answer: answer it again, same transfer.
      if (existing.isRepeatOf(req)) return existing.repeated();
      // The port now belongs to the new request (the client gave up, or a new process got the
      // same ephemeral port): an ERROR sent there would be taken as the answer to it. End silently.
      existing.abort('the client started a new request from the same port', { tell: false });
    }
    if (req.mode !== 'octet') {
      // netascii would need CR/LF translation and changes sizes; nothing that boots asks for it.
      this.refuse(client, ErrorCode.IllegalOperation, `mode ${req.mode} not supported, use octet`, 'mode', req.filename);
      return;
    }
    const normalized = normalizeTftpPath(req.filename);
    if (!normalized.ok) {
      this.refuse(client, ErrorCode.AccessViolation, 'access violation', `bad-path: ${normalized.reason}`, req.filename);
      return;
    }
    if (this.active.size >= this.opts.maxTransfers) {
      this.refuse(client, ErrorCode.NotDefined, 'server busy, try again', 'busy', req.filename);
      return;
    }
    if ((this.perClient.get(client.address) ?? 0) >= (this.opts.maxTransfersPerClient ?? 16)) {
      this.refuse(client, ErrorCode.NotDefined, 'too many transfers from this address, try again', 'busy-client', req.filename);
      return;
    }
    this.noteRequest(client.address, normalized.path);
    const transfer = new ActiveTransfer(this, req, normalized.path, client);
    this.active.set(key, transfer);
    this.perClient.set(client.address, (this.perClient.get(client.address) ?? 0) + 1);
    transfer.begin();
  }

  private forget(t: ActiveTransfer): void {
    if (this.active.get(t.key) !== t) return;
    this.active.delete(t.key);
    const n = (this.perClient.get(t.client.address) ?? 1) - 1;
    if (n > 0) this.perClient.set(t.client.address, n);
    else this.perClient.delete(t.client.address);
  }

  /** @internal */
  async openFile(name: string, client: TftpClient): Promise<OpenResult> {
    return (await this.opts.provider.open(name, client)) ?? { ok: false, error: 'not-found', message: 'file not found' };
  }

  /** @internal */
  get options(): TftpServerOptions {
    return this.opts;
  }

  /**
   * When each address last asked for each file (bounded), to tell a size probe whose abort was
   * lost from a failed transfer: UEFI firmware probes the size (RRQ tsize, our OACK, its ERROR),
   * then asks again from a new port; if the ERROR is lost, the probe retransmits its OACK into
   * nothing and times out a minute later. It is not cut short when the new request comes (other
   * machines may share the address behind a NAT), only named for what it was when it ends.
   */
  private readonly lastRequest = new Map<string, number>();

  private noteRequest(address: string, file: string): void {
    const key = `${address}\0${file}`;
    this.lastRequest.delete(key);
    this.lastRequest.set(key, performance.now());
    if (this.lastRequest.size > 4096) this.lastRequest.delete(this.lastRequest.keys().next().value!);
  }

  /** @internal called by ActiveTransfer when it has ended and released its resources */
  ended(t: ActiveTransfer, summary: TransferSummary | undefined): void {
    this.forget(t);
    if (!summary) return;
    if (summary.outcome === 'timeout' && t.neverAcknowledged && (this.lastRequest.get(`${t.client.address}\0${t.path}`) ?? 0) > t.startedAt) {
      summary.outcome = 'aborted';
      summary.detail = 'superseded: no ACK to the OACK, and the client asked for the same file again meanwhile (its abort after a size probe was likely lost)';
    }
    const level = summary.outcome === 'ok' || summary.outcome === 'aborted' || summary.outcome === 'unconfirmed' ? 'info' : 'warn';
    this.log[level](summary, 'tftp transfer');
    this.emit('transfer-end', summary);
  }

  /** @internal */
  refusedTransfer(t: ActiveTransfer, code: ErrorCode, message: string, reason: string): void {
    this.forget(t);
    this.refuse(t.client, code, message, reason, t.request.filename);
  }
}

/**
 * Transfers only ever send to the IP literal a request came from. dgram's default lookup defers
 * every send by a tick through dns.lookup; answering at once keeps the per-block path short.
 */
function literalLookup(address: string, family: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}

class ActiveTransfer {
  readonly key: string;
  readonly client: TftpClient;
  readonly request: Request;
  private readonly server: TftpServer;
  readonly path: string;
  private socket: dgram.Socket | undefined;
  private source: TftpSource | undefined;
  private machine: Transfer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerMs = 0;
  private lifetime: NodeJS.Timeout | undefined;
  readonly startedAt = performance.now();
  private heardFromClient = false;
  private ended = false;

  constructor(server: TftpServer, request: Request, path: string, client: TftpClient) {
    this.server = server;
    this.request = request;
    this.path = path;
    this.client = client;
    this.key = `${client.address}:${client.port}`;
  }

  isRepeatOf(req: Request): boolean {
    if (this.heardFromClient || req.filename !== this.request.filename || req.mode !== this.request.mode) return false;
    if (req.options.size !== this.request.options.size) return false;
    for (const [k, v] of req.options) if (this.request.options.get(k) !== v) return false;
    return true;
  }

  repeated(): void {
    if (this.machine) this.apply(this.machine.repeatedRequest(performance.now()));
  }

  begin(): void {
    const limit = this.server.options.maxTransferMs ?? 600_000;
    this.lifetime = setTimeout(() => this.abort(`transfer took longer than ${Math.round(limit / 1000)} s`), limit);
    this.lifetime.unref();
    this.open().catch((err: unknown) => {
      this.server.options.logger.error({ err, file: this.path }, 'tftp transfer failed to start');
      this.release();
      this.server.refusedTransfer(this, ErrorCode.NotDefined, 'server error', 'internal');
    });
  }

  private async open(): Promise<void> {
    const opened = await this.server.openFile(this.path, this.client);
    if (this.ended) {
      if (opened.ok) await opened.source.close();
      return;
    }
    if (!opened.ok) {
      this.ended = true;
      const code = opened.error === 'not-found' ? ErrorCode.FileNotFound : ErrorCode.AccessViolation;
      this.server.refusedTransfer(this, code, opened.message, opened.error);
      return;
    }
    this.source = opened.source;
    const o = this.server.options;
    const negotiated = negotiate(this.request.options, o.limits, this.source.size);
    this.machine = new Transfer({
      size: this.source.size,
      negotiated,
      minRtoMs: o.minRtoMs,
      initialRtoMs: o.initialRtoMs,
      defaultMaxRtoMs: o.defaultTimeoutMs,
      maxRetries: o.maxRetries,
    });
    const socket = dgram.createSocket({ type: o.host.includes(':') ? 'udp6' : 'udp4', lookup: literalLookup });
    this.socket = socket;
    socket.on('message', (msg, rinfo) => this.onPacket(msg, rinfo));
    // A send to a vanished client may surface as ICMP errors here; the retry limit deals with it.
    socket.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      const unspecified = o.host === '0.0.0.0' || o.host === '::';
      socket.bind(0, unspecified ? undefined : o.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    if (this.ended) return this.release();
    this.apply(this.machine.start(performance.now()));
  }

  private onPacket(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (rinfo.address !== this.client.address || rinfo.port !== this.client.port) {
      // RFC 1350: a packet from a foreign TID gets error 5 and must not disturb this transfer.
      this.socket?.send(encodeError(ErrorCode.UnknownTid, 'unknown transfer ID'), rinfo.port, rinfo.address);
      return;
    }
    const packet: Packet = decode(msg);
    if (packet.kind === 'malformed') return;
    // The same request again, sent to this transfer's port: a NAT or relay that maps the client
    // to the port the server last answered from delivers a repeated RRQ here rather than to the
    // listening port. It means the same thing: our first answer was lost.
    if (packet.kind === 'rrq' && this.isRepeatOf(packet)) return this.repeated();
    this.heardFromClient = true;
    if (this.machine) this.apply(this.machine.packet(packet, performance.now()));
  }

  private apply(effects: Effect[]): void {
    for (const e of effects) {
      switch (e.type) {
        case 'send':
          this.socket?.send(e.packet, this.client.port, this.client.address);
          break;
        case 'timer':
          // Re-arming happens on every ACK: reuse the timer object rather than allocate one per block.
          if (this.timer && this.timerMs === e.ms) this.timer.refresh();
          else {
            clearTimeout(this.timer);
            this.timer = setTimeout(() => this.onTimer(), e.ms);
            this.timerMs = e.ms;
          }
          break;
        case 'read':
          this.read(e.first, e.count);
          break;
        case 'done':
          this.finish(e.outcome);
          break;
      }
    }
  }

  private onTimer(): void {
    if (this.machine) this.apply(this.machine.timeout(performance.now()));
  }

  private read(first: number, count: number): void {
    const machine = this.machine!;
    const { offset, length } = machine.range(first, count);
    this.source!.read(offset, length).then(
      (data) => this.apply(machine.supply(first, data, performance.now())),
      (err: unknown) => this.apply(machine.readFailed(err instanceof Error ? err.message : String(err))),
    );
  }

  /** It never got past the OACK: no ACK 0 came. */
  get neverAcknowledged(): boolean {
    return this.machine?.oackUnanswered ?? false;
  }

  /** Ends the transfer from outside (shutdown, the client restarted, the lifetime cap): the server's decision, not a client error. */
  abort(reason: string, { tell = true }: { tell?: boolean } = {}): void {
    if (this.ended) return;
    if (tell) this.socket?.send(encodeError(ErrorCode.NotDefined, reason), this.client.port, this.client.address);
    this.finish({ result: 'aborted', detail: `aborted by server: ${reason}` });
  }

  private finish(outcome: Outcome): void {
    if (this.ended) return;
    this.ended = true;
    const stats = this.machine?.stats;
    const summary: TransferSummary = {
      client: this.key,
      file: this.path,
      size: this.source?.size ?? 0,
      bytes: stats?.bytes ?? 0,
      blksize: stats?.blksize ?? 0,
      windowsize: stats?.windowsize ?? 0,
      durationMs: Math.round((performance.now() - this.startedAt) * 10) / 10,
      retransmits: stats?.retransmits ?? 0,
      outcome: outcome.result,
      ...('detail' in outcome ? { detail: outcome.detail } : {}),
    };
    this.release();
    this.server.ended(this, summary);
  }

  private release(): void {
    this.ended = true;
    clearTimeout(this.timer);
    clearTimeout(this.lifetime);
    this.timer = undefined;
    const socket = this.socket;
    this.socket = undefined;
    // The last packet (ERROR, or the final DATA) must leave before the socket goes.
    if (socket) setImmediate(() => socket.close());
    const source = this.source;
    this.source = undefined;
    source?.close().catch(() => {});
  }
}
