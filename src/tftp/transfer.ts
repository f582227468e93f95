// The read-transfer state machine, with no sockets, files or clocks of its own.
// The I/O layer feeds it events (start, packet, timer, data read) with the current time and
// carries out the effects it returns (send, arm timer, read blocks, finish). That keeps every
// protocol decision testable by driving it with plain function calls.
//
// Block numbers inside are unbounded integers; only the wire carries them modulo 65536, which is
// how files beyond 65535 blocks roll over (block 65536 goes out as 0, as iPXE, curl and tftp-hpa expect).

import { encodeData, encodeError, encodeOack, ErrorCode, type Packet } from './packet.ts';
import type { Negotiated } from './options.ts';
import { RtoEstimator } from './rto.ts';

export type Outcome =
  | { result: 'ok' }
  | { result: 'aborted'; detail: string } // the client said no after our OACK (UEFI's tsize probe does this), or the server ended it (shutdown, lifetime cap)
  | { result: 'client-error'; detail: string }
  | { result: 'timeout'; detail: string }
  // Every block went out, the last one repeatedly, and its ACK never came: the client most likely
  // has the whole file and its final ACK was lost (clients do not repeat a final ACK). Not a failure
  // we can prove, so it is counted apart from timeouts.
  | { result: 'unconfirmed'; detail: string }
  | { result: 'read-error'; detail: string };

export type Effect =
  | { type: 'send'; packet: Buffer }
  | { type: 'timer'; ms: number } // (re)arm the one retransmission timer
  | { type: 'read'; first: number; count: number } // load blocks first..first+count-1, then call supply()
  | { type: 'done'; outcome: Outcome };

export type TransferParams = {
  size: number;
  negotiated: Negotiated;
  /** Retransmission timer bounds in ms; maxMs is replaced by the client's `timeout` option when given. */
  minRtoMs: number;
  initialRtoMs: number;
  defaultMaxRtoMs: number;
  /** Consecutive timeouts without progress before the transfer is abandoned. */
  maxRetries: number;
  /**
   * The client's own retransmission timer when it names no `timeout` option (5 s is what atftp,
   * tftp-hpa and U-Boot use). See quietTimer().
   */
  assumedClientTimeoutMs?: number;
};

/** How far past the last ACK a windowed transfer's timeouts may probe, in windows (see resendWindow). */
const MAX_PROBE_WINDOWS = 4;
/** Retransmissions at the adaptive timer's pace before the server goes quiet for the client. */
export const FAST_RETRANSMITS = 3;
/**
 * After an ACK that advances the transfer, the timer is at most this share of the client's own
 * (rto.ts, progress()): a loss is then ours to repair, well before the client's timer fires. U-Boot
 * allows itself a fixed number of those per file (100 with Genesis's boot script, 10 by default).
 */
const PROGRESS_TIMER_SHARE = 8;
const DEFAULT_CLIENT_TIMEOUT_MS = 5000;
/**
 * Client timer periods an unanswered OACK waits in silence before it goes again (see timeout()).
 * An atftp whose ACK 0 is lost repeats it each period and aborts on a second OACK: with two
 * periods it failed when three ACK 0s in a row were lost (once in CI, at 10% loss each way); with
 * three it takes four. A client that repeats nothing (curl) waits one period longer for a lost OACK.
 */
const OACK_SILENT_PERIODS = 3;

export type TransferStats = {
  blksize: number;
  windowsize: number;
  retransmits: number;
  /** Bytes of file data acknowledged by the client. */
  bytes: number;
};

export class Transfer {
  private phase: 'oack' | 'data' | 'done' = 'data';
  private oackAnswered = false;
  private acked = 0; // highest block the client acknowledged
  private sent = 0; // highest block sent in the current pass
  private everSent = 0; // highest block ever sent; blocks at or below it are retransmissions
  private loaded = 0; // blocks acked+1..loaded are in `blocks` (reads are contiguous, deletes only <= acked)
  private readonly lastBlock: number;
  private readonly blocks = new Map<number, Buffer>();
  private readPending = false;
  private retries = 0;
  private retransmits = 0;
  /** When data last went out (first sends and retransmissions). */
  private lastSendAt = 0;
  /** Block whose ACK yields a round-trip sample (sent once only), and when it was sent. */
  private sampleBlock: number | undefined;
  private sampleAt = 0;
  private readonly rto: RtoEstimator;
  private readonly blksize: number;
  private readonly windowsize: number;
  private readonly params: TransferParams;

  constructor(params: TransferParams) {
    this.params = params;
    this.blksize = params.negotiated.blksize;
    this.windowsize = params.negotiated.windowsize;
    // The last block is the first one shorter than blksize, possibly empty.
    this.lastBlock = Math.floor(params.size / this.blksize) + 1;
    const maxMs = params.negotiated.timeoutMs ?? params.defaultMaxRtoMs;
    this.rto = new RtoEstimator({
      minMs: Math.min(params.minRtoMs, maxMs),
      initialMs: Math.min(params.initialRtoMs, maxMs),
      maxMs,
      backoffCapMs: 4 * maxMs,
    });
  }

  get stats(): TransferStats {
    const bytes = Math.min(this.params.size, this.acked * this.blksize);
    return { blksize: this.blksize, windowsize: this.windowsize, retransmits: this.retransmits, bytes };
  }

  get finished(): boolean {
    return this.phase === 'done';
  }

  /** An OACK went out and its ACK 0 never came (true also once the transfer has ended that way). */
  get oackUnanswered(): boolean {
    return this.params.negotiated.oack.size > 0 && !this.oackAnswered;
  }

  /** Byte range for a read effect, so the I/O layer needs no knowledge of block arithmetic. */
  range(first: number, count: number): { offset: number; length: number } {
    const offset = (first - 1) * this.blksize;
    const length = Math.max(0, Math.min(count * this.blksize, this.params.size - offset));
    return { offset, length };
  }

  start(now: number): Effect[] {
    if (this.params.negotiated.oack.size > 0) {
      this.phase = 'oack';
      this.sampleBlock = 0;
      this.sampleAt = now;
      return this.sendOack();
    }
    return this.pump(now);
  }

  /** Blocks first..first+n-1 read from the source, cut from one contiguous buffer. */
  supply(first: number, data: Buffer, now: number): Effect[] {
    this.readPending = false;
    if (this.phase === 'done') return [];
    for (let i = 0, n = first; i < data.length || n === this.lastBlock; i += this.blksize, n++) {
      this.blocks.set(n, data.subarray(i, Math.min(i + this.blksize, data.length)));
      this.loaded = Math.max(this.loaded, n);
      if (n === this.lastBlock) break;
    }
    return this.pump(now);
  }

  readFailed(detail: string): Effect[] {
    this.readPending = false;
    if (this.phase === 'done') return [];
    return this.finish({ result: 'read-error', detail }, encodeError(ErrorCode.NotDefined, 'read error on server'));
  }

  packet(p: Packet, now: number): Effect[] {
    if (this.phase === 'done') return [];
    if (p.kind === 'ack') return this.ack(p.block, now);
    if (p.kind === 'error') {
      const detail = `client error ${p.code}: ${p.message}`;
      return this.finish(this.phase === 'oack' ? { result: 'aborted', detail } : { result: 'client-error', detail });
    }
    // Anything else from the client's TID (DATA, a repeated request, garbage) is not part of a read: drop it.
    return [];
  }

  /**
   * The client sent its request again: it has not heard our first answer (OACK, or block 1 of a
   * plain transfer). Answer again now rather than wait for our timer.
   */
  repeatedRequest(_now: number): Effect[] {
    if (this.phase === 'oack') {
      this.retransmits++;
      this.sampleBlock = undefined;
      return this.sendOack();
    }
    if (this.phase === 'data' && this.acked === 0 && this.sent >= 1) {
      this.retransmits++;
      this.sampleBlock = undefined;
      return [{ type: 'send', packet: encodeData(1, this.blocks.get(1)!) }, this.timer()];
    }
    return [];
  }

  timeout(now: number): Effect[] {
    if (this.phase === 'done') return [];
    if (this.phase === 'data' && this.sent === this.acked) {
      // Nothing in flight: we are waiting on our own disk read, not on the client.
      return this.readPending ? [this.timer()] : this.pump(now);
    }
    this.retries++;
    if (this.retries > this.params.maxRetries) {
      const detail = `no answer after ${this.params.maxRetries} retransmissions`;
      if (this.phase === 'data' && this.sent === this.lastBlock) {
        return this.finish({ result: 'unconfirmed', detail: `the last block went out and was never acknowledged (${detail}); the client most likely has the file and its final ACK was lost` });
      }
      return this.finish({ result: 'timeout', detail }, encodeError(ErrorCode.NotDefined, 'transfer timed out'));
    }
    this.rto.expired();
    this.sampleBlock = undefined; // Karn: an ACK after a retransmission says nothing about the round trip
    if (this.phase === 'oack') {
      // Most clients repeat their request when the OACK is lost (answered at once,
      // repeatedRequest()) and their ACK 0 when that is lost; but an OACK they did not expect
      // makes atftp abort, while curl repeats nothing and waits for the server. So the OACK is
      // repeated only after OACK_SILENT_PERIODS of the client's timer periods have passed in
      // silence: by then an atftp whose ACK 0 was lost has repeated it three times, and a curl
      // whose OACK was lost gets it.
      if (this.retries < OACK_SILENT_PERIODS) return [this.oackTimer()];
      this.retransmits++;
      return this.sendOack();
    }
    return this.resendWindow(now, true);
  }

  /**
   * Resend the whole outstanding window: a windowed receiver expects blocks in order from acked+1.
   *
   * `probe`: with RFC 7440 windows, also send the next window when the whole current one is out.
   * The usual reason a full window draws no ACK is that the ACK was lost: the receiver has every
   * block already, and U-Boot ignores (and does not re-ACK) blocks below the one it expects, then
   * waits out its own 5 s timer, and gives a whole file up after 10 such timeouts. The next window
   * is what such a receiver expects; a receiver that did miss a block takes the resent one, then
   * the next window in order, or ACKs where its gap is (RFC 7440), and the server resumes there.
   */
  private resendWindow(now: number, probe = false): Effect[] {
    this.lastSendAt = now;
    const out: Effect[] = [];
    for (let n = this.acked + 1; n <= this.sent; n++) {
      out.push({ type: 'send', packet: encodeData(n, this.blocks.get(n)!) });
      this.retransmits++;
    }
    // Each unanswered timeout probes one window further, up to four (the probe's own ACK can be lost too).
    if (probe && this.windowsize > 1 && this.sent < this.lastBlock && this.sent - this.acked < MAX_PROBE_WINDOWS * this.windowsize) {
      const end = Math.min(this.sent + this.windowsize, this.lastBlock);
      while (this.sent < end && this.blocks.has(this.sent + 1)) {
        this.sent++;
        out.push({ type: 'send', packet: encodeData(this.sent, this.blocks.get(this.sent)!) });
      }
      this.everSent = Math.max(this.everSent, this.sent);
    }
    out.push(this.timer());
    return out;
  }

  private ack(wire: number, now: number): Effect[] {
    if (this.phase === 'oack') {
      if (wire !== 0) return [];
      this.oackAnswered = true;
      this.takeSample(0, now);
      this.phase = 'data';
      this.retries = 0;
      return this.pump(now);
    }
    // Map the 16-bit wire number onto the one block in (acked, sent] that has it.
    const n = this.acked + ((wire - (this.acked & 0xffff)) & 0xffff);
    // An ACK for a block already acknowledged is a duplicate: answering it would double every
    // later block (Sorcerer's Apprentice). Only the retransmission timer resends, with one
    // exception: once the fast retransmissions went unanswered and the server has gone quiet, a
    // repeat of the last ACK is the client's own timer firing while it waits for the next block,
    // so that block goes out at once (at most once per repeated ACK, never in normal flow).
    // The same holds before the quiet phase once a whole client timer period has passed since we
    // last sent: an echo of our own retransmission comes within a round trip, a repeat that late
    // is the client's timer. (CI caught atftp with a 1 s timer giving the last block up while a
    // loaded server's backed-off fast retransmissions took 7 s to reach the quiet phase.)
    if (n === this.acked && this.sent > this.acked && (this.retries >= FAST_RETRANSMITS || now - this.lastSendAt >= this.clientTimerMs())) return this.resendWindow(now);
    if (n <= this.acked || n > this.sent) return [];
    this.takeSample(n, now);
    for (let b = this.acked + 1; b <= n; b++) this.blocks.delete(b);
    this.acked = n;
    this.retries = 0;
    this.rto.progress(this.clientTimerMs() / PROGRESS_TIMER_SHARE);
    if (n === this.lastBlock) return this.finish({ result: 'ok' });
    if (n < this.sent) {
      // RFC 7440: a partial window ACK means the receiver lost block n+1; go on from there.
      this.retransmits += this.sent - n;
      this.sent = n;
      this.sampleBlock = undefined;
    }
    return this.pump(now);
  }

  /** The client's own retransmission period: the timeout it named, else the usual 5 s. */
  private clientTimerMs(): number {
    return this.params.negotiated.timeoutMs ?? this.params.assumedClientTimeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS;
  }

  private takeSample(block: number, now: number): void {
    if (this.sampleBlock === block) this.rto.sample(now - this.sampleAt);
    this.sampleBlock = undefined;
  }

  /** Send what the window allows; ask for reads of blocks not yet loaded. */
  private pump(now: number): Effect[] {
    const out: Effect[] = [];
    const windowEnd = Math.min(this.acked + this.windowsize, this.lastBlock);
    while (this.sent < windowEnd) {
      const block = this.blocks.get(this.sent + 1);
      if (!block) break;
      this.sent++;
      out.push({ type: 'send', packet: encodeData(this.sent, block) });
    }
    if (out.length > 0) {
      this.lastSendAt = now;
      if (this.sent > this.everSent) {
        this.sampleBlock = this.sent;
        this.sampleAt = now;
        this.everSent = this.sent;
      }
      out.push(this.timer());
    }
    if (!this.readPending) {
      // Keep the next window loaded too, so an ACK finds its blocks ready; read in chunks of at
      // least 64 KiB so lock-step transfers do not pay one disk round trip per block.
      const first = Math.max(this.sent, this.loaded) + 1;
      const chunk = Math.max(2 * this.windowsize, Math.ceil(65536 / this.blksize));
      // Read the next chunk while half of the current one is still unsent.
      const horizon = Math.min(windowEnd + Math.max(this.windowsize, chunk >> 1), this.lastBlock);
      if (first <= horizon) {
        this.readPending = true;
        out.push({ type: 'read', first, count: Math.min(chunk, this.lastBlock - first + 1) });
      }
    }
    return out;
  }

  /**
   * The adaptive timer for the first FAST_RETRANSMITS retransmissions: a lost block on a LAN costs
   * tens of milliseconds, not seconds. After that the server goes quiet for longer than the
   * client's own timer. Some clients (atftp; U-Boot, which ignores a repeated block) answer a
   * duplicate block at most once and otherwise only when their own timer fires, and they restart
   * that timer on every packet they receive: if their one re-ACK is lost, a server that keeps
   * retransmitting faster than the client's timer starves it until the transfer is abandoned.
   */
  private timer(): Effect {
    if (this.retries >= FAST_RETRANSMITS) return this.quietTimer();
    return { type: 'timer', ms: this.rto.timeoutMs };
  }

  /**
   * Longer than the client's own timer: the client's turn to repeat itself. The timer a client
   * names is where the quiet phase starts, doubling each time up to the usual 5 s: a client may ask
   * the server for `timeout 1` and still wait 5 s itself (atftp does unless told --tftp-timeout).
   */
  private quietTimer(): Effect {
    const assumed = this.params.assumedClientTimeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS;
    const named = this.params.negotiated.timeoutMs ?? assumed;
    const quietRounds = Math.max(0, this.retries - FAST_RETRANSMITS);
    const client = Math.min(Math.max(named, assumed), named * 2 ** Math.min(quietRounds, 16));
    return { type: 'timer', ms: Math.max(this.rto.timeoutMs, client + Math.max(250, Math.round(client / 4))) };
  }

  /**
   * The OACK, and the time to wait for its ACK 0: longer than the client's own timer, taken at its
   * longest, so that the client repeats itself first (see timeout()). Before the first round trip
   * there is no estimate to go on anyway.
   */
  private sendOack(): Effect[] {
    return [{ type: 'send', packet: encodeOack(this.params.negotiated.oack) }, this.oackTimer()];
  }

  private oackTimer(): Effect {
    const assumed = this.params.assumedClientTimeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS;
    const client = Math.max(this.params.negotiated.timeoutMs ?? 0, assumed);
    return { type: 'timer', ms: client + Math.round(client / 4) };
  }

  private finish(outcome: Outcome, packet?: Buffer): Effect[] {
    this.phase = 'done';
    this.blocks.clear();
    const out: Effect[] = [];
    if (packet) out.push({ type: 'send', packet });
    out.push({ type: 'done', outcome });
    return out;
  }
}
