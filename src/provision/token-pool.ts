// Random bytes for config tokens, drawn from the OS in blocks. A boot storm issues a token per
// install script, hundreds a second, and one 32-byte draw each cost more than the rest of the
// request's bookkeeping but the commit. One draw here covers 128 tokens; each slice is handed out
// once and wiped from the block as it goes.

import { randomFillSync } from 'node:crypto';

export class TokenPool {
  private readonly block: Buffer;
  private readonly size: number;
  private used: number;

  constructor(size = 32, perBlock = 128) {
    this.size = size;
    this.block = Buffer.alloc(size * perBlock);
    this.used = this.block.length;
  }

  /** `size` fresh random bytes as lowercase hex. */
  nextHex(): string {
    if (this.used + this.size > this.block.length) {
      randomFillSync(this.block);
      this.used = 0;
    }
    const slice = this.block.subarray(this.used, this.used + this.size);
    this.used += this.size;
    const hex = slice.toString('hex');
    slice.fill(0);
    return hex;
  }
}
