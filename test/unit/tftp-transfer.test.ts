import { describe, expect, it } from 'vitest';
import { negotiate } from '../../src/tftp/options.ts';
import { decode } from '../../src/tftp/packet.ts';
import { Transfer, type Effect, type TransferParams } from '../../src/tftp/transfer.ts';
import { NativeTransfer, type TransferLike } from '../helpers/native-transfer.ts';
import { resolveReads } from '../helpers/transfer-reads.ts';
import { ubootThroughLoss } from '../helpers/uboot-tftp-client.ts';

const limits = { maxBlksize: 1468, maxWindowsize: 64 };

function pattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b;
}

function params(size: number, options: Record<string, string>, maxRetries: number): TransferParams {
  return { size, negotiated: negotiate(new Map(Object.entries(options)), limits, size), minRtoMs: 20, initialRtoMs: 250, defaultMaxRtoMs: 2000, maxRetries };
}

/**
 * The two implementations of the rules: the TypeScript machine (the fallback engine's, reading its
 * file in chunks) and the native pump's (native/tftp-pump.c, which holds its file: every file here
 * is pattern(size)). Every test below runs against both.
 */
const machines: Array<[string, { reads: boolean; make: (size: number, options?: Record<string, string>, maxRetries?: number) => TransferLike }]> = [
  ['TypeScript', { reads: true, make: (size, options = {}, maxRetries = 3) => new Transfer(params(size, options, maxRetries)) }],
  ['native', { reads: false, make: (size, options = {}, maxRetries = 3) => new NativeTransfer(params(size, options, maxRetries), pattern(size)) }],
];


const sends = (effects: Effect[]) => effects.filter((e) => e.type === 'send').map((e) => decode((e as { packet: Buffer }).packet));
const dataBlocks = (effects: Effect[]) => sends(effects).flatMap((p) => (p.kind === 'data' ? [p] : []));
const done = (effects: Effect[]) => effects.find((e) => e.type === 'done');
const timer = (effects: Effect[]) => effects.filter((e) => e.type === 'timer').at(-1) as { ms: number } | undefined;

/** A perfect client: acknowledges every window, reassembles the file. Returns the file and the packet count. */
function runLossless(machine: (size: number, options: Record<string, string>) => TransferLike, size: number, options: Record<string, string>) {
  const file = pattern(size);
  const t = machine(size, options);
  let now = 0;
  let effects = resolveReads(t, file, t.start(now), now);
  const received: Buffer[] = [];
  let expected = 1;
  let sent = 0;
  for (let guard = 0; guard < 10_000_000; guard++) {
    const out = sends(effects);
    sent += out.length;
    const fin = done(effects);
    if (fin) return { fin, data: Buffer.concat(received), sent, stats: t.stats };
    let ack: number | undefined;
    for (const p of out) {
      if (p.kind === 'oack') ack = 0;
      if (p.kind === 'data' && p.block === (expected & 0xffff)) {
        received.push(Buffer.from(p.data));
        ack = p.block;
        expected++;
      }
    }
    now += 1;
    effects = resolveReads(t, file, t.packet({ kind: 'ack', block: ack! }, now), now);
  }
  throw new Error('did not finish');
}

describe.each(machines)('TFTP transfer state machine (%s)', (_name, { reads, make: machine }) => {
  it('lock-step transfer without options delivers the file in 512-byte blocks', () => {
    const r = runLossless(machine, 5000, {});
    expect(r.fin).toEqual({ type: 'done', outcome: { result: 'ok' } });
    expect(r.data.equals(pattern(5000))).toBe(true);
    expect(r.sent).toBe(10); // 9 full blocks + 1 short
    expect(r.stats).toMatchObject({ bytes: 5000, blksize: 512, windowsize: 1, retransmits: 0 });
  });

  it('sends a final empty block when the size is a multiple of blksize, and one empty block for an empty file', () => {
    const r = runLossless(machine, 1024, {});
    expect(r.data.length).toBe(1024);
    expect(r.sent).toBe(3);
    const empty = runLossless(machine, 0, {});
    expect(empty.fin).toEqual({ type: 'done', outcome: { result: 'ok' } });
    expect(empty.sent).toBe(1);
  });

  it('negotiates with an OACK and waits for ACK 0 before data', () => {
    const t = machine(3000, { blksize: '1468', tsize: '0' });
    const first = sends(t.start(0));
    expect(first).toEqual([{ kind: 'oack', options: new Map([['blksize', '1468'], ['tsize', '3000']]) }]);
    const r = runLossless(machine, 3000, { blksize: '1468', tsize: '0' });
    expect(r.data.equals(pattern(3000))).toBe(true);
    expect(r.sent).toBe(1 + 3);
  });

  it('rolls block numbers over past 65535 blocks', () => {
    // 70000 blocks of 8 bytes: the wire counter wraps to 0 once.
    const size = 70_000 * 8 + 3;
    const r = runLossless(machine, size, { blksize: '8' });
    expect(r.fin).toEqual({ type: 'done', outcome: { result: 'ok' } });
    expect(r.data.equals(pattern(size))).toBe(true);
  });

  it('sends a whole window per ACK with windowsize', () => {
    const size = 1468 * 10 + 5;
    const t = machine(size, { blksize: '1468', windowsize: '4' });
    const file = pattern(size);
    resolveReads(t, file, t.start(0), 0);
    const w1 = dataBlocks(resolveReads(t, file, t.packet({ kind: 'ack', block: 0 }, 1), 1));
    expect(w1.map((p) => p.block)).toEqual([1, 2, 3, 4]);
    const w2 = dataBlocks(resolveReads(t, file, t.packet({ kind: 'ack', block: 4 }, 2), 2));
    expect(w2.map((p) => p.block)).toEqual([5, 6, 7, 8]);
    const r = runLossless(machine, size, { blksize: '1468', windowsize: '4' });
    expect(r.data.equals(file)).toBe(true);
  });

  it('after a partial-window ACK resumes from the block after it (RFC 7440)', () => {
    const size = 1468 * 10;
    const t = machine(size, { blksize: '1468', windowsize: '4' });
    const file = pattern(size);
    resolveReads(t, file, t.start(0), 0);
    resolveReads(t, file, t.packet({ kind: 'ack', block: 0 }, 1), 1); // blocks 1-4 out
    const again = dataBlocks(resolveReads(t, file, t.packet({ kind: 'ack', block: 2 }, 2), 2));
    expect(again.map((p) => p.block)).toEqual([3, 4, 5, 6]);
    expect(t.stats.retransmits).toBe(2);
  });

  it('ignores duplicate ACKs (no Sorcerer\'s Apprentice)', () => {
    const t = machine(5000);
    const file = pattern(5000);
    resolveReads(t, file, t.start(0), 0);
    expect(dataBlocks(resolveReads(t, file, t.packet({ kind: 'ack', block: 1 }, 1), 1)).map((p) => p.block)).toEqual([2]);
    expect(resolveReads(t, file, t.packet({ kind: 'ack', block: 1 }, 2), 2)).toEqual([]);
    expect(resolveReads(t, file, t.packet({ kind: 'ack', block: 1 }, 3), 3)).toEqual([]);
    // An ACK for a block never sent is ignored too.
    expect(resolveReads(t, file, t.packet({ kind: 'ack', block: 9 }, 4), 4)).toEqual([]);
  });

  it('retransmits on timeout with a backed-off timer, then gives up with an error', () => {
    const t = machine(5000, {}, 3);
    const file = pattern(5000);
    const start = resolveReads(t, file, t.start(0), 0);
    expect(timer(start)?.ms).toBe(250);
    const r1 = t.timeout(250);
    expect(dataBlocks(r1).map((p) => p.block)).toEqual([1]);
    expect(timer(r1)?.ms).toBe(500);
    t.timeout(750);
    t.timeout(1750);
    const last = t.timeout(8000);
    expect(sends(last)).toEqual([{ kind: 'error', code: 0, message: 'transfer timed out' }]);
    expect(done(last)).toMatchObject({ outcome: { result: 'timeout' } });
    expect(t.stats.retransmits).toBe(3);
  });

  it('adapts the timer to the measured round trip, then goes quiet for longer than the client\'s timer', () => {
    const t = machine(1468 * 100, { blksize: '1468', timeout: '1' }, 10);
    const file = pattern(1468 * 100);
    resolveReads(t, file, t.start(0), 0);
    let now = 0;
    let effects: Effect[] = [];
    for (let b = 0; b < 20; b++) {
      now += 0.5; // half a millisecond per round trip, as on a LAN
      effects = resolveReads(t, file, t.packet({ kind: 'ack', block: b }, now), now);
    }
    expect(timer(effects)?.ms).toBe(20); // floor: the measured RTT is far below it
    // Two fast retransmissions at the backed-off adaptive timer; from the third on, the server
    // waits longer than the client's own 1 s timer (1 s + 250 ms), so a client that re-ACKs only
    // when its timer fires (atftp, U-Boot) gets the silence it needs; the quiet grows to past the
    // usual 5 s, for a client that asked for 1 s and waits 5 s itself.
    const ms: number[] = [];
    for (let i = 0; i < 9; i++) ms.push(timer(t.timeout((now += 10_000)))!.ms);
    expect(ms).toEqual([40, 80, 1250, 2500, 5000, 6250, 6250, 6250, 6250]);
    // Progress ends the quiet phase; the first fresh round trip (Karn: not the retransmitted
    // block's) brings the timer back to the floor.
    resolveReads(t, file, t.packet({ kind: 'ack', block: 20 }, (now += 1)), now);
    const fresh = resolveReads(t, file, t.packet({ kind: 'ack', block: 21 }, (now += 0.5)), now);
    expect(timer(fresh)?.ms).toBe(20);
  });

  it('progress keeps a stall\'s backoff only up to an eighth of the client\'s timer; a fresh round trip ends it', () => {
    const t = machine(1468 * 100, { blksize: '1468', timeout: '1', windowsize: '4' }, 10);
    const file = pattern(1468 * 100);
    resolveReads(t, file, t.start(0), 0);
    let now = 0.5;
    let effects = resolveReads(t, file, t.packet({ kind: 'ack', block: 0 }, now), now);
    expect(timer(effects)?.ms).toBe(20);
    // The window's ACK is lost three times over: 40, 80, then the quiet phase (the backoff is 8 by then).
    for (let i = 0; i < 3; i++) t.timeout((now += 2000));
    // The ACK comes: the next window goes out with a timer of 80 ms (backoff 4), not 160: at most
    // 1000 / 8 = 125 ms, so a loss in it is repaired long before U-Boot's 1 s timer fires.
    effects = resolveReads(t, file, t.packet({ kind: 'ack', block: 8 }, (now += 0.5)), now);
    expect(dataBlocks(effects).map((p) => p.block)).toEqual([9, 10, 11, 12]);
    expect(timer(effects)?.ms).toBe(80);
    // The timeouts had probed up to block 16, so 9-16 are retransmissions (Karn: no round trip
    // from them); 17-20 are sent once, and their ACK brings the timer back to the floor.
    effects = resolveReads(t, file, t.packet({ kind: 'ack', block: 12 }, (now += 0.5)), now);
    expect(timer(effects)?.ms).toBe(80);
    effects = resolveReads(t, file, t.packet({ kind: 'ack', block: 16 }, (now += 0.5)), now);
    expect(dataBlocks(effects).map((p) => p.block)).toEqual([17, 18, 19, 20]);
    effects = resolveReads(t, file, t.packet({ kind: 'ack', block: 20 }, (now += 0.5)), now);
    expect(timer(effects)?.ms).toBe(20);
  });

  it('U-Boot (windowsize 8, its 1 s timer, 100 timeouts a file) gets a 30 MB kernel through 10% loss each way, its timer firing a few times', () => {
    // Before progress capped the backoff, the timer grew over the transfer until it outlasted
    // U-Boot's: U-Boot gave the file up (its 101st timeout) with two of these three seeds, and
    // needed 25 timeouts with the third.
    const size = 22_500 * 1468 - 100;
    const file = pattern(size);
    const runs = [7919, 15838, 23757].map((seed) =>
      ubootThroughLoss(machine(size, { blksize: '1468', timeout: '1', windowsize: '8' }, 8), file, { loss: 0.1, seed, oneWayMs: 0.5, windowsize: 8, blksize: 1468, timeoutMs: 1000, budget: 100 }),
    );
    for (const run of runs) {
      expect(run).toMatchObject({ ok: true, gaveUp: false });
      expect(run.clientTimeouts).toBeLessThanOrEqual(10);
    }
  });

  it('without a client timeout, goes quiet for longer than the 5 s most clients use', () => {
    const t = machine(5000, {}, 10);
    resolveReads(t, pattern(5000), t.start(0), 0);
    const ms = [1, 2, 3, 4].map((i) => timer(t.timeout(i * 10_000))!.ms);
    expect(ms).toEqual([500, 1000, 6250, 6250]);
  });

  it('a client that re-ACKs only on its own timer is not starved: the deadlock the quiet phase breaks', () => {
    // Client model (atftp): it answers the first duplicate of a block, ignores later ones, and
    // repeats its last ACK when no packet has arrived for 1 s. Its one re-ACK for block 3 is lost.
    const t = machine(1468 * 6, { blksize: '1468', timeout: '1' }, 8);
    const file = pattern(1468 * 6);
    let now = 0;
    resolveReads(t, file, t.start(0), now);
    resolveReads(t, file, t.packet({ kind: 'ack', block: 0 }, (now += 1)), now);
    resolveReads(t, file, t.packet({ kind: 'ack', block: 1 }, (now += 1)), now);
    let out = resolveReads(t, file, t.packet({ kind: 'ack', block: 2 }, (now += 1)), now);
    // Block 3 arrives, its ACK is lost; the retransmissions of 3 arrive; the first re-ACK is lost too.
    let lastPacketAt = now;
    let clientTimerFired = false;
    for (let i = 0; i < 8 && !clientTimerFired; i++) {
      const wait = timer(out)!.ms;
      if (wait > 1000) clientTimerFired = true; // 1 s of silence: the client repeats ACK 3
      now = lastPacketAt + wait;
      out = t.timeout(now);
      lastPacketAt = now;
    }
    expect(clientTimerFired).toBe(true);
    const resumed = resolveReads(t, file, t.packet({ kind: 'ack', block: 3 }, now - 1), now);
    expect(dataBlocks(resumed).map((p) => p.block)).toEqual([4]);
    expect(t.finished).toBe(false);
  });

  it('with windows, a timeout resends the window and sends the next one too (a lost window ACK costs no client timeout)', () => {
    const t = machine(1468 * 40, { blksize: '1468', windowsize: '4' }, 8);
    const file = pattern(1468 * 40);
    resolveReads(t, file, t.start(0), 0);
    const first = resolveReads(t, file, t.packet({ kind: 'ack', block: 0 }, 1), 1);
    expect(dataBlocks(first).map((p) => p.block)).toEqual([1, 2, 3, 4]);
    // The ACK of 4 is lost. The receiver (U-Boot) ignores 1-4 again and takes 5-8.
    const again = t.timeout(100);
    expect(dataBlocks(again).map((p) => p.block)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // It ACKs 8: the server goes on from 9.
    const next = resolveReads(t, file, t.packet({ kind: 'ack', block: 8 }, 110), 110);
    expect(dataBlocks(next).map((p) => p.block)).toEqual([9, 10, 11, 12]);
    // A receiver that had lost block 4 ACKs 3 (RFC 7440): the server resumes at 4.
    t.timeout(300);
    const partial = resolveReads(t, file, t.packet({ kind: 'ack', block: 11 }, 310), 310);
    expect(dataBlocks(partial).map((p) => p.block)).toEqual([12, 13, 14, 15]);
    // Lock-step transfers never send ahead.
    const lock = machine(1468 * 10, { blksize: '1468' }, 8);
    resolveReads(lock, pattern(1468 * 10), lock.start(0), 0);
    resolveReads(lock, pattern(1468 * 10), lock.packet({ kind: 'ack', block: 0 }, 1), 1);
    expect(dataBlocks(lock.timeout(100)).map((p) => p.block)).toEqual([1]);
  });

  it('once quiet, answers a repeated last ACK at once (the client\'s timer fired); never before', () => {
    const t = machine(1468 * 6, { blksize: '1468', timeout: '1' }, 8);
    const file = pattern(1468 * 6);
    resolveReads(t, file, t.start(0), 0);
    resolveReads(t, file, t.packet({ kind: 'ack', block: 0 }, 1), 1);
    resolveReads(t, file, t.packet({ kind: 'ack', block: 1 }, 2), 2); // block 2 is out
    // In normal flow a duplicate ACK 1 is ignored (Sorcerer's Apprentice).
    expect(t.packet({ kind: 'ack', block: 1 }, 3)).toEqual([]);
    t.timeout(100);
    t.timeout(200);
    expect(t.packet({ kind: 'ack', block: 1 }, 250)).toEqual([]);
    const quiet = t.timeout(400); // the third retransmission: now the server waits for the client
    expect(timer(quiet)!.ms).toBeGreaterThan(1000);
    const answer = t.packet({ kind: 'ack', block: 1 }, 1400);
    expect(dataBlocks(answer).map((p) => p.block)).toEqual([2]);
  });

  it('before the quiet phase, answers a repeated last ACK that comes a whole client timer after our last send', () => {
    // A loaded server's backed-off fast retransmissions (1, 2, 4 s) outlast atftp's patience with
    // a 1 s timer; its timer-driven repeats must not be ignored meanwhile.
    const t = machine(1468 * 6, { blksize: '1468', timeout: '1' }, 8);
    const file = pattern(1468 * 6);
    resolveReads(t, file, t.start(0), 0);
    resolveReads(t, file, t.packet({ kind: 'ack', block: 0 }, 1), 1);
    resolveReads(t, file, t.packet({ kind: 'ack', block: 1 }, 2), 2); // block 2 is out at 2 ms
    // An echo within the client's timer: ignored (Sorcerer's Apprentice).
    expect(t.packet({ kind: 'ack', block: 1 }, 900)).toEqual([]);
    // A repeat a whole second (the client's timeout) after our last send: block 2 again, at once.
    expect(dataBlocks(t.packet({ kind: 'ack', block: 1 }, 1002)).map((p) => p.block)).toEqual([2]);
    // And not again for the next echo right after that resend.
    expect(t.packet({ kind: 'ack', block: 1 }, 1010)).toEqual([]);
  });

  it('a last block never acknowledged ends as unconfirmed, not as a timeout, and sends no error', () => {
    const t = machine(1000, { blksize: '512' }, 2);
    const file = pattern(1000);
    resolveReads(t, file, t.start(0), 0);
    resolveReads(t, file, t.packet({ kind: 'ack', block: 0 }, 1), 1);
    resolveReads(t, file, t.packet({ kind: 'ack', block: 1 }, 2), 2); // block 2 (the last) goes out
    t.timeout(1000);
    t.timeout(2000);
    const last = t.timeout(30_000);
    expect(sends(last)).toEqual([]);
    expect(done(last)).toMatchObject({ outcome: { result: 'unconfirmed' } });
  });

  it('repeats an OACK at once when the client repeats its request, and on its timer only after three client timer periods', () => {
    const t = machine(5000, { tsize: '0', timeout: '1' }, 8);
    // Even a client that names 1 s may wait the usual 5 s itself (atftp without --tftp-timeout).
    expect(timer(t.start(0))?.ms).toBe(6250);
    // The first two timer periods pass in silence (atftp aborts on an OACK it did not expect, and
    // it repeats a lost ACK 0 itself); after the third the OACK goes again (curl repeats nothing).
    for (const at of [6250, 12_500]) {
      const quiet = t.timeout(at);
      expect(sends(quiet)).toEqual([]);
      expect(timer(quiet)?.ms).toBe(6250);
    }
    const again = t.timeout(18_750);
    expect(sends(again)[0]?.kind).toBe('oack');
    expect(timer(again)?.ms).toBe(6250);
    expect(timer(machine(5000, { tsize: '0', timeout: '8' }).start(0))?.ms).toBe(10_000);
    // A repeated request means the OACK was lost: answer at once.
    expect(sends(t.repeatedRequest(1600))[0]?.kind).toBe('oack');
    // Without a client timeout there is no round trip to go on either: wait past the usual 5 s,
    // not the adaptive initial value (a second OACK 250 ms later makes atftp abort).
    expect(timer(machine(5000, { tsize: '0' }).start(0))?.ms).toBe(6250);
  });

  it('an ERROR after the OACK is an abort, not a failure (UEFI tsize probe)', () => {
    const t = machine(5000, { tsize: '0', blksize: '1468' });
    t.start(0);
    const r = t.packet({ kind: 'error', code: 8, message: 'User aborted the transfer' }, 1);
    expect(done(r)).toMatchObject({ outcome: { result: 'aborted' } });
    expect(t.finished).toBe(true);
    expect(t.packet({ kind: 'ack', block: 0 }, 2)).toEqual([]);
    expect(t.timeout(3)).toEqual([]);
  });

  // Only the TypeScript machine reads its file; the native one holds it in memory.
  it.runIf(reads)('a failing disk read ends the transfer with an error to the client', () => {
    const t = machine(5000);
    const start = t.start(0);
    expect(start.some((e) => e.type === 'read')).toBe(true);
    const r = t.readFailed('EIO');
    expect(sends(r)).toEqual([{ kind: 'error', code: 0, message: 'read error on server' }]);
    expect(done(r)).toMatchObject({ outcome: { result: 'read-error', detail: 'EIO' } });
  });
});
