import { describe, expect, it } from 'vitest';
import { TokenPool } from '../../src/provision/token-pool.ts';

describe('TokenPool', () => {
  it('hands out 32-byte hex tokens, never the same one, across many refills of its block', () => {
    const pool = new TokenPool(32, 4);
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const t = pool.nextHex();
      expect(t).toMatch(/^[0-9a-f]{64}$/);
      seen.add(t);
    }
    expect(seen.size).toBe(1000);
  });

  it('wipes each slice from its block once handed out', () => {
    const pool = new TokenPool(32, 2);
    pool.nextHex();
    pool.nextHex();
    const block = (pool as unknown as { block: Buffer }).block;
    expect(block.equals(Buffer.alloc(64))).toBe(true);
  });
});
