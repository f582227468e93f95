// One transfer's I/O: its own socket (its TID), its timer and its reads, carrying out the effects
// of the pure Transfer state machine. The same engine runs on the main thread or in the transfer
// worker (transfer-worker.ts); the server decides where, and keeps the bookkeeping (slots, the
// lifetime cap, logs and events) on the main thread either way.

import dgram from 'node:dgram';
import { decode, encodeError, ErrorCode, type Packet, type Request } from './packet.ts';
import { negotiate, type TftpLimits } from './options.ts';
import type { TftpClient, TftpSource } from './provider.ts';
import { Transfer, type Effect, type Outcome, type TransferStats } from './transfer.ts';

/** What an engine needs of the server's options; plain data, so it can go to a worker as is. */
export type EngineSettings = {
  host: string;
  limits: TftpLimits;
  defaultTimeoutMs: number;
  minRtoMs: number;
  initialRtoMs: number;
  maxRetries: number;
};

export type EngineEnd = {
  outcome: Outcome;
  stats: TransferStats | undefined;
  /** It never got past the OACK: no ACK 0 came. */
  neverAcknowledged: boolean;
};

export type EngineEvents = {
  /** The first packet from the client's TID arrived: a repeat of the request is a new request from then on. */
  heard(): void;
  ended(end: EngineEnd): void;
};

/** The same request again: same file, mode and options. */
export function sameRequest(a: Request, b: Request): boolean {
  if (a.filename !== b.filename || a.mode !== b.mode || a.options.size !== b.options.size) return false;
  for (const [k, v] of a.options) if (b.options.get(k) !== v) return false;
  return true;
}

/**
 * Transfers only ever send to the IP literal a request came from. dgram's default lookup defers
 * every send by a tick through dns.lookup; answering at once keeps the per-block path short.
 */
function literalLookup(address: string, family: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}

export class TransferEngine {
  private readonly settings: EngineSettings;
  private readonly request: Request;
  private readonly client: TftpClient;
  private readonly events: EngineEvents;
  private source: TftpSource | undefined;
  private socket: dgram.Socket | undefined;
  private machine: Transfer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerMs = 0;
  private heardFromClient = false;
  private ended = false;

  constructor(settings: EngineSettings, request: Request, client: TftpClient, source: TftpSource, events: EngineEvents) {
    this.settings = settings;
    this.request = request;
    this.client = client;
    this.source = source;
    this.events = events;
  }

  /** Bind the transfer's socket and send the first answer. Rejects (with the source closed) when the socket cannot be bound. */
  async start(): Promise<void> {
    const s = this.settings;
    const size = this.source!.size;
    this.machine = new Transfer({
      size,
      negotiated: negotiate(this.request.options, s.limits, size),
      minRtoMs: s.minRtoMs,
      initialRtoMs: s.initialRtoMs,
      defaultMaxRtoMs: s.defaultTimeoutMs,
      maxRetries: s.maxRetries,
    });
    const socket = dgram.createSocket({ type: s.host.includes(':') ? 'udp6' : 'udp4', lookup: literalLookup });
    this.socket = socket;
    socket.on('message', (msg, rinfo) => this.onPacket(msg, rinfo));
    // A send to a vanished client may surface as ICMP errors here; the retry limit deals with it.
    socket.on('error', () => {});
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        const unspecified = s.host === '0.0.0.0' || s.host === '::';
        socket.bind(0, unspecified ? undefined : s.host, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.release();
      throw err;
    }
    if (this.ended) return this.release();
    this.apply(this.machine.start(performance.now()));
  }

  /** Whether the client has answered on this transfer's port (from then on the same request is a new one). */
  get heard(): boolean {
    return this.heardFromClient;
  }

  /** The client repeated its request on the listening port: it has not heard our first answer. */
  repeated(): void {
    if (this.machine && !this.ended) this.apply(this.machine.repeatedRequest(performance.now()));
  }

  /** Ends the transfer from outside (shutdown, the client restarted, the lifetime cap): the server's decision, not a client error. */
  abort(reason: string, tell: boolean): void {
    if (this.ended) return;
    if (tell) this.socket?.send(encodeError(ErrorCode.NotDefined, reason), this.client.port, this.client.address);
    this.finish({ result: 'aborted', detail: `aborted by server: ${reason}` });
  }

  private onPacket(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    // Ended (aborted, or done) while the socket lingers for its last packet: what still arrives
    // meets a state machine that may not know it ended (abort() ends only the engine) and a source
    // already closed. Once it read a block from the released source and threw: the process died.
    if (this.ended) return;
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
    if (packet.kind === 'rrq' && !this.heardFromClient && sameRequest(packet, this.request)) return this.repeated();
    if (!this.heardFromClient) {
      this.heardFromClient = true;
      this.events.heard();
    }
    if (this.machine) this.apply(this.machine.packet(packet, performance.now()));
  }

  private apply(effects: Effect[]): void {
    for (const e of effects) {
      // An effect after the end (a timer or a read that completed late, the effects after 'done')
      // would arm a timer or read from the closed source for a transfer nobody follows any more.
      if (this.ended) return;
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
    // apply() runs no effect once the transfer has ended, so the source is still open here.
    this.source!.read(offset, length).then(
      (data) => this.apply(machine.supply(first, data, performance.now())),
      (err: unknown) => this.apply(machine.readFailed(err instanceof Error ? err.message : String(err))),
    );
  }

  private finish(outcome: Outcome): void {
    if (this.ended) return;
    this.ended = true;
    const end: EngineEnd = { outcome, stats: this.machine?.stats, neverAcknowledged: this.machine?.oackUnanswered ?? false };
    this.release();
    this.events.ended(end);
  }

  private release(): void {
    this.ended = true;
    clearTimeout(this.timer);
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
