// The main thread's side of the TFTP pump (native/tftp-pump.c): a thread of Genesis's native addon
// that sends the blocks of files held in memory. It takes the place of the transfer worker
// (transfer-worker-host.ts) where the addon is built, for every transfer of such a file: a block
// costs its two system calls there, where JavaScript spent most of its time around them
// (docs/performance.md), and the thread carries no JavaScript isolate, so it costs no memory to
// start on the first transfer. The server keeps every decision (server.ts); this passes transfers
// in and their ends back, in the same terms as the worker.

import type { Logger } from 'pino';
import { addonPath, loadAddon, type AddonLoad } from '../native/load-addon.ts';
import { negotiate } from './options.ts';
import { encodeOack, type Request } from './packet.ts';
import type { TftpClient } from './provider.ts';
import type { EngineEnd, EngineSettings } from './transfer-engine.ts';
import type { Outcome } from './transfer.ts';
import type { WorkerJobEvents } from './transfer-worker-host.ts';

/** A pump made by the addon: its thread and its transfers. Opaque here. */
export type PumpHandle = { readonly __tftpPumpHandle: unique symbol };
/** The state machine alone, for its unit tests. Opaque here. */
export type MachineHandle = { readonly __tftpMachineHandle: unique symbol };

/** [oack 0|1, from, to, errorCode (-1: none), errorMessage, timerMs (-1: left as is), done, result, detail] */
export type NativeEffects = [number, number, number, number, string, number, boolean, Outcome['result'], string];

/**
 * What the thread reports, in the order it happened: 0, heard from the client; 1, the end (flag:
 * it never got past the OACK); 2, the answer to a repeated() (flag: taken as a repeat).
 */
export type ReportKind = 0 | 1 | 2;

/** What native/tftp-pump.c exports. */
export type TftpPumpAddon = {
  create(
    onReport: (id: number, kind: ReportKind, result: Outcome['result'], detail: string | undefined, blksize: number, windowsize: number, retransmits: number, bytes: number, flag: boolean) => void,
  ): PumpHandle;
  /** Binds the transfer's socket (throws when it cannot) and hands the transfer to the thread. */
  start(handle: PumpHandle, file: Uint8Array, oack: Uint8Array, request: Uint8Array, host: string, clientAddress: string, clientPort: number, numbers: Float64Array): number;
  repeated(handle: PumpHandle, id: number): void;
  abort(handle: PumpHandle, id: number, reason: string, tell: boolean): void;
  stop(handle: PumpHandle): void;
  machine(size: number, numbers: Float64Array): MachineHandle;
  machineStart(m: MachineHandle, now: number): NativeEffects;
  machinePacket(m: MachineHandle, bytes: Uint8Array, now: number): NativeEffects;
  machineTimeout(m: MachineHandle, now: number): NativeEffects;
  machineRepeated(m: MachineHandle, now: number): NativeEffects;
  /** [blksize, windowsize, retransmits, bytes, oackUnanswered 0|1, finished 0|1] */
  machineStats(m: MachineHandle): number[];
  /** Whether the C decoder takes these bytes (decode() in packet.ts would not call them malformed). */
  packetValid(bytes: Uint8Array): boolean;
};

export const PUMP_ADDON_PATH = addonPath('tftp-pump');

/** The addon, or why not. `path` lets tests point at a missing file. */
export function loadTftpPumpAddon(path = PUMP_ADDON_PATH): AddonLoad<TftpPumpAddon> {
  return loadAddon<TftpPumpAddon>(path, 'TFTP pump', ['create', 'start', 'repeated', 'abort', 'stop', 'machine']);
}

/** The numbers a transfer's state machine starts from, in the addon's order. */
export function machineNumbers(p: { blksize: number; windowsize: number; timeoutMs: number | undefined; minRtoMs: number; initialRtoMs: number; defaultMaxRtoMs: number; maxRetries: number; oack: boolean }): Float64Array {
  return Float64Array.of(p.blksize, p.windowsize, p.timeoutMs ?? 0, p.minRtoMs, p.initialRtoMs, p.defaultMaxRtoMs, p.maxRetries, p.oack ? 1 : 0);
}

export type NativePumpOptions = {
  addon: TftpPumpAddon;
  settings: EngineSettings;
  logger: Pick<Logger, 'warn'>;
};

export class NativeTftpPump {
  private readonly addon: TftpPumpAddon;
  private readonly settings: EngineSettings;
  private readonly logger: Pick<Logger, 'warn'>;
  private handle: PumpHandle | undefined;
  private readonly jobs = new Map<number, WorkerJobEvents>();
  /** For each transfer, what to do if a repeated request turns out not to be one, oldest first. */
  private readonly repeats = new Map<number, Array<() => void>>();
  private warned = false;
  private takenCount = 0;

  constructor(opts: NativePumpOptions) {
    this.addon = opts.addon;
    this.settings = opts.settings;
    this.logger = opts.logger;
  }

  /** Transfers running there now. */
  get running(): number {
    return this.jobs.size;
  }

  /** Transfers it has taken since it was made. */
  get taken(): number {
    return this.takenCount;
  }

  /** Whether its thread is running (started by a transfer, not yet stopped). */
  get threadRunning(): boolean {
    return this.handle !== undefined;
  }

  /**
   * Runs a transfer of `data` on the pump's thread; its id, or undefined when the pump cannot take
   * it (its socket would not bind there, or the thread cannot start): run it here instead, whose
   * own failure is then reported as usual.
   */
  start(request: Request, client: TftpClient, data: Buffer, events: WorkerJobEvents, raw: Buffer): number | undefined {
    const s = this.settings;
    const negotiated = negotiate(request.options, s.limits, data.length);
    const numbers = machineNumbers({ ...negotiated, minRtoMs: s.minRtoMs, initialRtoMs: s.initialRtoMs, defaultMaxRtoMs: s.defaultTimeoutMs, maxRetries: s.maxRetries, oack: negotiated.oack.size > 0 });
    const oack = negotiated.oack.size > 0 ? encodeOack(negotiated.oack) : Buffer.alloc(0);
    try {
      this.handle ??= this.addon.create((...report) => this.onReport(...report));
      const id = this.addon.start(this.handle, data, oack, raw, s.host, client.address, client.port, numbers);
      this.jobs.set(id, events);
      this.takenCount++;
      return id;
    } catch (err) {
      if (!this.warned) this.logger.warn({ err: (err as Error).message }, 'the TFTP pump could not take a transfer; it runs in JavaScript');
      this.warned = true;
      return undefined;
    }
  }

  /**
   * The client repeated its request: answered again on the thread, unless the thread heard from
   * the client or ended the transfer before this reached it (this thread had not been told yet);
   * then the request is a new one, and `notTaken` runs once those reports have been handled.
   */
  repeated(id: number, notTaken: () => void): void {
    if (!this.handle || !this.jobs.has(id)) return notTaken();
    const waiting = this.repeats.get(id);
    if (waiting) waiting.push(notTaken);
    else this.repeats.set(id, [notTaken]);
    this.addon.repeated(this.handle, id);
  }

  /** Asks the thread to end a transfer; its end is reported as usual, shortly after. */
  abort(id: number, reason: string, tell: boolean): void {
    if (this.handle && this.jobs.has(id)) this.addon.abort(this.handle, id, reason, tell);
  }

  /** Stops the thread; transfers still running there end as aborted. */
  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    if (handle) this.addon.stop(handle);
    const lost = [...this.jobs.values()];
    this.jobs.clear();
    this.repeats.clear();
    for (const events of lost) events.ended({ outcome: { result: 'aborted', detail: 'aborted by server: server shutting down' }, stats: undefined, neverAcknowledged: false });
  }

  private onReport(id: number, kind: ReportKind, result: Outcome['result'], detail: string | undefined, blksize: number, windowsize: number, retransmits: number, bytes: number, flag: boolean): void {
    if (kind === 2) {
      const waiting = this.repeats.get(id);
      const notTaken = waiting?.shift();
      if (waiting?.length === 0) this.repeats.delete(id);
      if (!flag) notTaken?.();
      return;
    }
    const events = this.jobs.get(id);
    if (!events) return;
    if (kind === 0) return events.heard();
    const neverAcknowledged = flag;
    this.jobs.delete(id);
    const outcome = (result === 'ok' ? { result } : { result, detail: detail ?? '' }) as Outcome;
    const end: EngineEnd = { outcome, stats: { blksize, windowsize, retransmits, bytes }, neverAcknowledged };
    events.ended(end);
  }
}
