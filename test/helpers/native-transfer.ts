// The native TFTP pump's state machine (native/tftp-pump.c) behind the TypeScript Transfer's
// interface, so that the state machine's unit tests drive both: the two must decide alike.

import { loadTftpPumpAddon, machineNumbers, type MachineHandle, type NativeEffects, type TftpPumpAddon } from '../../src/tftp/native-pump.ts';
import type { Negotiated } from '../../src/tftp/options.ts';
import { encodeAck, encodeData, encodeError, encodeOack, encodeRequest, type Packet } from '../../src/tftp/packet.ts';
import type { Effect, Outcome, Transfer, TransferParams, TransferStats } from '../../src/tftp/transfer.ts';

export type TransferLike = Pick<Transfer, 'start' | 'packet' | 'timeout' | 'repeatedRequest' | 'stats' | 'finished' | 'oackUnanswered' | 'range' | 'supply' | 'readFailed'>;

/** The addon, or a thrown error saying why not (CI builds it: a test must not pass without it). */
export function pumpAddon(): TftpPumpAddon {
  const loaded = loadTftpPumpAddon();
  if (!loaded.addon) throw new Error(loaded.reason);
  return loaded.addon;
}

function wire(p: Packet): Buffer {
  switch (p.kind) {
    case 'ack':
      return encodeAck(p.block);
    case 'error':
      return encodeError(p.code as 0, p.message);
    case 'data':
      return encodeData(p.block, p.data);
    case 'oack':
      return encodeOack(p.options);
    case 'rrq':
    case 'wrq':
      return encodeRequest(p.kind, p.filename, p.mode, p.options);
    case 'malformed':
      return Buffer.alloc(1);
  }
}

export class NativeTransfer implements TransferLike {
  private readonly m: MachineHandle;
  private readonly addon: TftpPumpAddon;
  private readonly file: Buffer;
  private readonly negotiated: Negotiated;

  /** `file`: the bytes the machine's DATA packets carry (it holds the file in memory). */
  constructor(params: TransferParams, file: Buffer, addon = pumpAddon()) {
    if (params.assumedClientTimeoutMs !== undefined) throw new Error('the native machine assumes the usual 5 s client timer');
    this.addon = addon;
    this.file = file;
    this.negotiated = params.negotiated;
    const n = params.negotiated;
    this.m = addon.machine(params.size, machineNumbers({ ...n, minRtoMs: params.minRtoMs, initialRtoMs: params.initialRtoMs, defaultMaxRtoMs: params.defaultMaxRtoMs, maxRetries: params.maxRetries, oack: n.oack.size > 0 }));
  }

  get stats(): TransferStats {
    const [blksize, windowsize, retransmits, bytes] = this.addon.machineStats(this.m) as [number, number, number, number];
    return { blksize, windowsize, retransmits, bytes };
  }

  get finished(): boolean {
    return this.addon.machineStats(this.m)[5] === 1;
  }

  get oackUnanswered(): boolean {
    return this.addon.machineStats(this.m)[4] === 1;
  }

  start(now: number): Effect[] {
    return this.effects(this.addon.machineStart(this.m, now));
  }

  packet(p: Packet, now: number): Effect[] {
    return this.effects(this.addon.machinePacket(this.m, wire(p), now));
  }

  timeout(now: number): Effect[] {
    return this.effects(this.addon.machineTimeout(this.m, now));
  }

  repeatedRequest(now: number): Effect[] {
    return this.effects(this.addon.machineRepeated(this.m, now));
  }

  range(): { offset: number; length: number } {
    throw new Error('the native machine holds its file: it never asks for a read');
  }

  supply(): Effect[] {
    throw new Error('the native machine holds its file: it never asks for a read');
  }

  readFailed(): Effect[] {
    throw new Error('the native machine holds its file: it never asks for a read');
  }

  private effects([oack, from, to, errorCode, errorMessage, timerMs, done, result, detail]: NativeEffects): Effect[] {
    const out: Effect[] = [];
    if (oack) out.push({ type: 'send', packet: encodeOack(this.negotiated.oack) });
    const blksize = this.negotiated.blksize;
    for (let n = from; n <= to; n++) out.push({ type: 'send', packet: encodeData(n, this.file.subarray((n - 1) * blksize, Math.min(n * blksize, this.file.length))) });
    if (errorCode >= 0) out.push({ type: 'send', packet: encodeError(errorCode as 0, errorMessage) });
    if (timerMs >= 0) out.push({ type: 'timer', ms: timerMs });
    if (done) out.push({ type: 'done', outcome: (result === 'ok' ? { result } : { result, detail }) as Outcome });
    return out;
  }
}
