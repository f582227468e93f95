// A transfer state machine's read effects carried out at once from the file in memory, as the
// engine does from disk: what the tests driving the machine without sockets need.

import type { Effect } from '../../src/tftp/transfer.ts';
import type { TransferLike } from './native-transfer.ts';

/** Carry out read effects at once from `file` (and those their supplies ask for); return everything else. */
export function resolveReads(t: TransferLike, file: Buffer, effects: Effect[], now: number): Effect[] {
  const out: Effect[] = [];
  const queue = [...effects];
  while (queue.length) {
    const e = queue.shift()!;
    if (e.type === 'read') {
      const { offset, length } = t.range(e.first, e.count);
      queue.push(...t.supply(e.first, file.subarray(offset, offset + length), now));
    } else out.push(e);
  }
  return out;
}
