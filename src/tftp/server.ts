// The TFTP server: the listening socket and every decision about a request (the caps, the path
// check, which file it gets, its slot and lifetime, its log line and event). Each admitted
// transfer of a file held in memory runs on the TFTP pump's thread where the native addon is built
// (native-pump.ts); otherwise, and for a large file streamed from disk, in a TransferEngine (its
// own socket, timer and reads, around the pure Transfer state machine): here, or in the transfer
// worker (transfer-worker-host.ts) once this thread carries MAIN_THREAD_TRANSFERS.

import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { LogThrottle, sample } from '../logging/throttle.ts';
import { decode, encodeError, ErrorCode, type Request } from './packet.ts';
import type { TftpLimits } from './options.ts';
import { BufferSource, FileUnavailable, normalizeTftpPath, type FileProvider, type OpenResult, type TftpClient } from './provider.ts';
import type { Outcome } from './transfer.ts';
import { sameRequest, TransferEngine, type EngineEnd, type EngineEvents, type EngineSettings } from './transfer-engine.ts';
import { TransferWorker, type WorkerJobEvents } from './transfer-worker-host.ts';
import { NativeTftpPump, type TftpPumpAddon } from './native-pump.ts';

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
  /**
   * Run transfers of files held in memory (iPXE binaries, generated scripts) in a worker thread
   * once this thread carries mainThreadTransfers; large files streamed from disk are sent from the
   * main thread.
   */
  transferWorker?: boolean;
  /**
   * With the worker: how many transfers this thread carries itself before a file in memory goes
   * to the worker (MAIN_THREAD_TRANSFERS by default; 0 sends every one there).
   */
  mainThreadTransfers?: number;
  /**
   * The TFTP pump's addon (native-pump.ts): with it, every transfer of a file held in memory is
   * sent from its thread, and the transfer worker is not used for them.
   */
  pump?: TftpPumpAddon;
  logger: Logger;
};

/** Where a transfer of a file in memory runs when not on this thread: the TFTP pump, or the transfer worker. */
type Runner = {
  readonly running: number;
  start(request: Request, client: TftpClient, data: Buffer, events: WorkerJobEvents, raw: Buffer): number | undefined;
  /** `notTaken`: it was not a repeat after all (the transfer heard from its client or ended meanwhile). */
  repeated(id: number, notTaken: () => void): void;
  abort(id: number, reason: string, tell: boolean): void;
  close(): Promise<void>;
};

/**
 * Transfers the main thread carries before the worker takes files in memory. A LAN of a dozen
 * machines booting at once stays under it, so the worker never starts and its isolate (15–18
 * MB, which a stopped worker does not give back) is never paid for; in a storm the main thread
 * keeps this many lock-step transfers beside its HTTP work and the worker takes the rest.
 */
export const MAIN_THREAD_TRANSFERS = 16;

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
  /** Each client address's transfers in the order they started, for the per-client cap. */
  private readonly perClient = new Map<string, Set<ActiveTransfer>>();
  /**
   * Transfers that have not heard from their client yet (no ACK, no ERROR), oldest first. At a
   * cap one of them gives way to the new request: a request's source address is not proven until
   * its client answers, so a burst spoofed with a machine's address must not lock that machine out.
   */
  private readonly awaitingClient = new Set<ActiveTransfer>();

  /** @internal what each transfer's engine needs, here or in the worker */
  readonly engineSettings: EngineSettings;
  /** @internal */
  readonly worker: TransferWorker | undefined;
  /** @internal */
  readonly pump: NativeTftpPump | undefined;

  constructor(opts: TftpServerOptions) {
    super();
    this.opts = opts;
    this.log = opts.logger;
    this.throttle = new LogThrottle(opts.logger);
    this.engineSettings = {
      host: opts.host,
      limits: opts.limits,
      defaultTimeoutMs: opts.defaultTimeoutMs,
      minRtoMs: opts.minRtoMs,
      initialRtoMs: opts.initialRtoMs,
      maxRetries: opts.maxRetries,
    };
    this.worker = opts.transferWorker ? new TransferWorker({ settings: this.engineSettings, logger: opts.logger }) : undefined;
    this.pump = opts.pump ? new NativeTftpPump({ addon: opts.pump, settings: this.engineSettings, logger: opts.logger }) : undefined;
  }

  get activeTransfers(): number {
    return this.active.size;
  }

  /**
   * @internal Where a transfer of a file in memory opened now goes: the pump, always, where it is;
   * else the worker once this thread carries more than its share (every transfer not in the
   * worker counts, opening or sending); else nowhere (undefined: here).
   */
  runnerForNextTransfer(): Runner | undefined {
    if (this.pump) return this.pump;
    const worker = this.worker;
    if (!worker) return undefined;
    const here = this.active.size - worker.running;
    return here > (this.opts.mainThreadTransfers ?? MAIN_THREAD_TRANSFERS) ? worker : undefined;
  }

  private get family(): 'udp4' | 'udp6' {
    return this.opts.host.includes(':') ? 'udp6' : 'udp4';
  }

  async start(): Promise<{ address: string; port: number }> {
    const socket = dgram.createSocket({ type: this.family, reuseAddr: false });
    socket.on('message', (msg, rinfo) => this.onRequest(msg, { address: rinfo.address, port: rinfo.port }));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.opts.port, this.opts.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    // Only once bound: a failed bind is the caller's to report (one line, `genesis: cannot
    // listen`), not an error to log with its trace as well.
    socket.on('error', (err: NodeJS.ErrnoException) => this.log.error({ err: err.message, code: err.code }, 'tftp socket error'));
    this.socket = socket;
    this.accepting = true;
    const addr = socket.address();
    this.log.info({ address: addr.address, port: addr.port }, 'tftp listening');
    return { address: addr.address, port: addr.port };
  }

  /**
   * Stop accepting requests, give running transfers up to graceMs to finish, then abort the rest.
   * A transfer whose client has not answered within one retransmission timeout of its request is
   * not waited for: its request may have been sent with another machine's address (a flood of
   * them would otherwise hold every shutdown for the whole grace, and `docker stop` kills at 10 s).
   */
  async close(graceMs = 5000): Promise<void> {
    this.accepting = false;
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
    const silent = this.abortWhenSilent();
    try {
      if (!(await this.drained(graceMs))) {
        for (const t of [...this.active.values()]) t.abort('server shutting down');
        // Transfers in the worker report their end a moment later; the worker's stop ends any left.
        await this.drained(1000);
      }
    } finally {
      for (const timer of silent) clearTimeout(timer);
    }
    await this.pump?.close();
    await this.worker?.close();
  }

  /** For close(): each transfer not yet heard from is aborted once one timeout has passed since its request, unless its client answers by then. */
  private abortWhenSilent(): NodeJS.Timeout[] {
    const now = performance.now();
    return [...this.active.values()]
      .filter((t) => !t.heardFromClient)
      .map((t) =>
        setTimeout(() => {
          if (!t.heardFromClient) t.abort('server shutting down');
        }, Math.max(0, t.startedAt + this.opts.defaultTimeoutMs - now)),
      );
  }

  /** Whether every transfer ended within `ms`. */
  private async drained(ms: number): Promise<boolean> {
    if (this.active.size === 0) return true;
    let check = () => {};
    const drained = new Promise<void>((resolve) => {
      check = () => {
        if (this.active.size === 0) resolve();
      };
      this.on('transfer-end', check);
      this.on('refused', check);
    });
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
    await Promise.race([drained, expired]);
    clearTimeout(timer);
    this.off('transfer-end', check);
    this.off('refused', check);
    return this.active.size === 0;
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
        this.startTransfer(packet, client, msg);
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

  private startTransfer(req: Request, client: TftpClient, raw: Buffer): void {
    const key = `${client.address}:${client.port}`;
    const existing = this.active.get(key);
    if (existing) {
      // A client that repeats its request has not heard our answer: answer it again, same transfer.
      // Where the transfer runs on another thread, that thread may have heard from the client or
      // ended the transfer before it gets this (its reports are on their way): then this is a new
      // request, started as one once those reports are in.
      if (existing.isRepeatOf(req)) {
        return existing.repeated(() => {
          if (this.accepting) this.startTransfer(req, client, raw);
        });
      }
      // The port now belongs to the new request (the client gave up, or a new process got the
      // same ephemeral port): an ERROR sent there would be taken as the answer to it. End silently.
      existing.abort('the client started a new request from the same port', { tell: false });
      this.forget(existing);
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
    const mine = this.perClient.get(client.address);
    let giveWay: { victim: ActiveTransfer; reason: string } | undefined;
    if ((mine?.size ?? 0) >= (this.opts.maxTransfersPerClient ?? 16)) {
      const victim = oldestAwaiting(mine!);
      if (!victim) {
        this.refuse(client, ErrorCode.NotDefined, 'too many transfers from this address, try again', 'busy-client', req.filename);
        return;
      }
      giveWay = { victim, reason: 'a newer request from this address took its slot (it never heard from its client)' };
    } else if (this.active.size >= this.opts.maxTransfers) {
      const victim = oldestAwaiting(this.awaitingClient);
      if (!victim) {
        this.refuse(client, ErrorCode.NotDefined, 'server busy, try again', 'busy', req.filename);
        return;
      }
      giveWay = { victim, reason: 'a newer request took its slot at the transfer cap (it never heard from its client)' };
    }
    if (giveWay) {
      giveWay.victim.gaveWay = true;
      giveWay.victim.abort(giveWay.reason);
      this.forget(giveWay.victim);
    }
    this.noteRequest(client.address, normalized.path);
    const transfer = new ActiveTransfer(this, req, raw, normalized.path, client);
    this.active.set(key, transfer);
    this.awaitingClient.add(transfer);
    if (mine) mine.add(transfer);
    else this.perClient.set(client.address, new Set([transfer]));
    transfer.begin();
  }

  /** Gives a transfer's slot back, once: when it ends, or when a new request from its port takes its place. */
  private forget(t: ActiveTransfer): void {
    if (t.released) return;
    t.released = true;
    if (this.active.get(t.key) === t) this.active.delete(t.key);
    this.awaitingClient.delete(t);
    const mine = this.perClient.get(t.client.address);
    mine?.delete(t);
    if (mine?.size === 0) this.perClient.delete(t.client.address);
  }

  /** @internal called by ActiveTransfer when its client first answers: it no longer gives way at a cap. */
  heardFrom(t: ActiveTransfer): void {
    this.awaitingClient.delete(t);
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

  /**
   * @internal called by ActiveTransfer when it has ended; `neverAcknowledged`: it never got past
   * the OACK (no ACK 0 came).
   */
  ended(t: ActiveTransfer, summary: TransferSummary, neverAcknowledged: boolean): void {
    this.forget(t);
    if (summary.outcome === 'timeout' && neverAcknowledged && (this.lastRequest.get(`${t.client.address}\0${t.path}`) ?? 0) > t.startedAt) {
      summary.outcome = 'aborted';
      summary.detail = 'superseded: no ACK to the OACK, and the client asked for the same file again meanwhile (its abort after a size probe was likely lost)';
    }
    if (t.gaveWay) {
      // One per request of a flood: summed up once a minute per address, like a refusal.
      this.throttle.note('tftp-gave-way', t.client.address, { port: t.client.port, file: sample(t.path) }, 'tftp transfer ended for a newer request at the cap: its client never answered');
    } else {
      const level = summary.outcome === 'ok' || summary.outcome === 'aborted' || summary.outcome === 'unconfirmed' ? 'info' : 'warn';
      this.log[level](summary, 'tftp transfer');
    }
    this.emit('transfer-end', summary);
  }

  /** @internal */
  refusedTransfer(t: ActiveTransfer, code: ErrorCode, message: string, reason: string): void {
    this.forget(t);
    this.refuse(t.client, code, message, reason, t.request.filename);
  }
}

/** The first (oldest) of `transfers` that has not heard from its client and still holds its slot. */
function oldestAwaiting(transfers: Iterable<ActiveTransfer>): ActiveTransfer | undefined {
  for (const t of transfers) if (!t.heardFromClient && !t.released) return t;
  return undefined;
}

class ActiveTransfer {
  readonly key: string;
  readonly client: TftpClient;
  readonly request: Request;
  /** The request as it came, for the pump: a client repeats its request byte for byte. */
  private readonly raw: Buffer;
  private readonly server: TftpServer;
  readonly path: string;
  /** Where the transfer runs: an engine here, or an id in the pump or the transfer worker. */
  private engine: TransferEngine | undefined;
  private runner: Runner | undefined;
  private runnerId: number | undefined;
  private size = 0;
  private lifetime: NodeJS.Timeout | undefined;
  readonly startedAt = performance.now();
  private heard = false;
  private ended = false;
  /** Its slot is given back (once, whether it ended or was superseded). */
  released = false;
  /** It was ended at a cap for a newer request, never having heard from its client. */
  gaveWay = false;

  constructor(server: TftpServer, request: Request, raw: Buffer, path: string, client: TftpClient) {
    this.server = server;
    this.request = request;
    this.raw = raw;
    this.path = path;
    this.client = client;
    this.key = `${client.address}:${client.port}`;
  }

  /** Its client has answered (an ACK or an ERROR on its port): the address is the client's own. */
  get heardFromClient(): boolean {
    return this.heard;
  }

  isRepeatOf(req: Request): boolean {
    return !this.heard && sameRequest(req, this.request);
  }

  /** `notTaken` runs when the transfer turns out to have heard from its client or ended first (another thread's). */
  repeated(notTaken: () => void): void {
    if (this.engine) this.engine.repeated();
    else if (this.runnerId !== undefined) this.runner?.repeated(this.runnerId, notTaken);
  }

  begin(): void {
    const limit = this.server.options.maxTransferMs ?? 600_000;
    this.lifetime = setTimeout(() => this.abort(`transfer took longer than ${Math.round(limit / 1000)} s`), limit);
    this.lifetime.unref();
    this.open().catch((err: unknown) => this.failedToStart(err));
  }

  private failedToStart(err: unknown): void {
    this.ended = true;
    clearTimeout(this.lifetime);
    if (err instanceof FileUnavailable) return this.server.refusedTransfer(this, ErrorCode.NotDefined, err.message, `unavailable: ${err.message}`);
    this.server.options.logger.error({ err, file: this.path }, 'tftp transfer failed to start');
    this.server.refusedTransfer(this, ErrorCode.NotDefined, 'server error', 'internal');
  }

  private async open(): Promise<void> {
    const opened = await this.server.openFile(this.path, this.client);
    if (this.ended) {
      if (opened.ok) await opened.source.close();
      return;
    }
    if (!opened.ok) {
      this.ended = true;
      clearTimeout(this.lifetime);
      const code = opened.error === 'not-found' ? ErrorCode.FileNotFound : ErrorCode.AccessViolation;
      this.server.refusedTransfer(this, code, opened.message, opened.error);
      return;
    }
    const source = opened.source;
    this.size = source.size;
    const events: EngineEvents = {
      heard: () => {
        this.heard = true;
        this.server.heardFrom(this);
      },
      ended: (end) => this.finish(end),
    };
    // A file already in memory goes to the pump, or to the transfer worker once this thread
    // carries enough; a large one streamed from disk stays here.
    const inMemory = source instanceof BufferSource ? source.bytes : undefined;
    const runner = inMemory && this.server.runnerForNextTransfer();
    if (inMemory && runner) {
      const id = runner.start(this.request, this.client, inMemory, { ...events, failed: (message) => this.failedToStart(new Error(message)) }, this.raw);
      if (id !== undefined) {
        this.runner = runner;
        this.runnerId = id;
        return;
      }
    }
    this.engine = new TransferEngine(this.server.engineSettings, this.request, this.client, source, events);
    await this.engine.start();
  }

  /**
   * Ends the transfer from outside (shutdown, the client restarted, the lifetime cap): the
   * server's decision, not a client error. Here at once; in the worker its end comes back shortly.
   */
  abort(reason: string, { tell = true }: { tell?: boolean } = {}): void {
    if (this.ended) return;
    if (this.engine) return this.engine.abort(reason, tell);
    if (this.runnerId !== undefined) return this.runner?.abort(this.runnerId, reason, tell);
    // Still opening its file: nothing has been sent, nothing is bound.
    this.finish({ outcome: { result: 'aborted', detail: `aborted by server: ${reason}` }, stats: undefined, neverAcknowledged: false });
  }

  private finish(end: EngineEnd): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.lifetime);
    const stats = end.stats;
    const summary: TransferSummary = {
      client: this.key,
      file: this.path,
      size: this.size,
      bytes: stats?.bytes ?? 0,
      blksize: stats?.blksize ?? 0,
      windowsize: stats?.windowsize ?? 0,
      durationMs: Math.round((performance.now() - this.startedAt) * 10) / 10,
      retransmits: stats?.retransmits ?? 0,
      outcome: end.outcome.result,
      ...('detail' in end.outcome ? { detail: end.outcome.detail } : {}),
    };
    this.server.ended(this, summary, end.neverAcknowledged);
  }
}
