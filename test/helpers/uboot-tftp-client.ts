// U-Boot's TFTP client as Debian's u-boot-qemu 2023.01 behaves (its net/tftp.c), for driving the
// transfer state machine through a lossy link in virtual time. The real U-Boot runs in
// test/e2e/boot-uboot.sh, where one 30 MB kernel at 10% loss takes minutes; this runs one in a
// fraction of a second and says how often U-Boot's own timer had to fire.
//
// What U-Boot does, and so this model:
// - it takes a block only in order (the one after `cur`), and restarts its timer on each it takes;
// - it acknowledges when `cur` reaches `nextAck` (a window after its last acknowledgement point),
//   and at the last (short) block;
// - a block out of order draws one ACK of `cur` (a NACK) and moves `nextAck` to cur + windowsize;
//   further blocks out of order draw nothing until `cur` moves on;
// - when its timer fires it ACKs `cur` again and counts the timeout; past its budget
//   (`tftptimeoutcountmax`) it gives the file up. The count is reset only when block numbers
//   wrap, so a file of fewer than 65536 blocks has one budget for all its losses.
// The link drops each packet, either way, with the given probability (seeded, reproducible) and
// delivers the rest after a fixed delay.

import { decode, encodeAck } from '../../src/tftp/packet.ts';
import type { Effect } from '../../src/tftp/transfer.ts';
import type { TransferLike } from './native-transfer.ts';
import { resolveReads } from './transfer-reads.ts';

export type UbootRun = {
  /** The whole file arrived, byte for byte, and the server ended the transfer as ok. */
  ok: boolean;
  /** Times U-Boot's own timer fired. */
  clientTimeouts: number;
  /** U-Boot gave the file up: its timeouts went past the budget. */
  gaveUp: boolean;
  /** Virtual time the transfer took, ms. */
  ms: number;
};

export type UbootLink = { loss: number; seed: number; oneWayMs: number; windowsize: number; blksize: number; timeoutMs: number; budget: number };

type Event = { at: number; order: number; kind: 'toClient' | 'toServer' | 'serverTimer' | 'clientTimer'; packet?: Buffer; generation?: number };

/** `t` was made for the options U-Boot asks for (blksize, timeout, windowsize) and serves `file`. */
export function ubootThroughLoss(t: TransferLike, file: Buffer, link: UbootLink): UbootRun {
  let seed = link.seed >>> 0;
  const dropped = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return (seed >>> 8) / (1 << 24) < link.loss;
  };
  const queue: Event[] = [];
  let order = 0;
  const at = (e: Omit<Event, 'order'>) => void queue.push({ ...e, order: order++ });
  const next = () => {
    let best = 0;
    for (let i = 1; i < queue.length; i++) {
      const a = queue[i]!;
      const b = queue[best]!;
      if (a.at < b.at || (a.at === b.at && a.order < b.order)) best = i;
    }
    return queue.splice(best, 1)[0]!;
  };

  // The server: its effects carried out, its one timer re-armed by each timer effect.
  let serverTimer = 0;
  let serverDone: Extract<Effect, { type: 'done' }> | undefined;
  const apply = (effects: Effect[], now: number) => {
    for (const e of resolveReads(t, file, effects, now)) {
      if (e.type === 'send') {
        if (!dropped()) at({ at: now + link.oneWayMs, kind: 'toClient', packet: e.packet });
      } else if (e.type === 'timer') {
        at({ at: now + e.ms, kind: 'serverTimer', generation: ++serverTimer });
      } else if (e.type === 'done') {
        serverDone = e;
        serverTimer++;
      }
    }
  };

  // U-Boot.
  const received = Buffer.alloc(file.length);
  let cur = 0;
  let nextAck = 0;
  let lastNack = 0;
  let clientTimeouts = 0;
  let clientTimer = 0;
  let complete = false;
  let gaveUp = false;
  const ack = (block: number, now: number) => {
    if (!dropped()) at({ at: now + link.oneWayMs, kind: 'toServer', packet: encodeAck(block & 0xffff) });
  };
  const armClient = (now: number) => at({ at: now + link.timeoutMs, kind: 'clientTimer', generation: ++clientTimer });

  let now = 0;
  apply(t.start(now), now); // the request reached the server
  armClient(now);
  while (queue.length && !complete && !gaveUp) {
    const e = next();
    now = e.at;
    if (e.kind === 'serverTimer') {
      if (e.generation === serverTimer && !serverDone) apply(t.timeout(now), now);
    } else if (e.kind === 'toServer') {
      if (!serverDone) apply(t.packet(decode(e.packet!), now), now);
    } else if (e.kind === 'clientTimer') {
      if (e.generation !== clientTimer) continue;
      if (++clientTimeouts > link.budget) gaveUp = true;
      else {
        armClient(now);
        ack(cur, now);
      }
    } else {
      const p = decode(e.packet!);
      if (p.kind === 'oack') {
        nextAck = link.windowsize;
        ack(0, now);
      } else if (p.kind === 'data') {
        if (p.block !== ((cur + 1) & 0xffff)) {
          if (lastNack !== cur) {
            ack(cur, now);
            lastNack = cur;
            nextAck = cur + link.windowsize;
          }
          continue;
        }
        p.data.copy(received, cur * link.blksize);
        cur++;
        armClient(now);
        if (p.data.length < link.blksize) {
          ack(cur, now);
          complete = true;
        } else if (cur === nextAck) {
          ack(cur, now);
          nextAck += link.windowsize;
        }
      }
    }
  }
  // The last ACK may be lost: the server then ends the transfer as unconfirmed on its own timers.
  while (queue.length && !serverDone && complete) {
    const e = next();
    now = e.at;
    if (e.kind === 'serverTimer' && e.generation === serverTimer) apply(t.timeout(now), now);
    else if (e.kind === 'toServer') apply(t.packet(decode(e.packet!), now), now);
  }
  const result = serverDone?.outcome.result;
  return {
    ok: complete && received.equals(file) && (result === 'ok' || result === 'unconfirmed'),
    clientTimeouts,
    gaveUp,
    ms: Math.round(now),
  };
}
