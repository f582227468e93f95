import { describe, expect, it } from 'vitest';
import { negotiate } from '../../src/tftp/options.ts';

const limits = { maxBlksize: 1468, maxWindowsize: 64 };
const opts = (o: Record<string, string>) => new Map(Object.entries(o));

describe('TFTP option negotiation', () => {
  it('no options: RFC 1350 defaults and no OACK', () => {
    const n = negotiate(new Map(), limits, 1000);
    expect(n).toEqual({ blksize: 512, windowsize: 1, timeoutMs: undefined, oack: new Map() });
  });

  it('grants what the client asks within limits and reports tsize', () => {
    const n = negotiate(opts({ blksize: '1428', tsize: '0', timeout: '3', windowsize: '8' }), limits, 123456);
    expect(n.blksize).toBe(1428);
    expect(n.windowsize).toBe(8);
    expect(n.timeoutMs).toBe(3000);
    expect(Object.fromEntries(n.oack)).toEqual({ blksize: '1428', tsize: '123456', timeout: '3', windowsize: '8' });
  });

  it('clamps blksize and windowsize to the server maximum', () => {
    const n = negotiate(opts({ blksize: '65464', windowsize: '65535' }), limits, 1);
    expect(n.blksize).toBe(1468);
    expect(n.windowsize).toBe(64);
    expect(n.oack.get('blksize')).toBe('1468');
    expect(n.oack.get('windowsize')).toBe('64');
  });

  it('ignores invalid values and unknown options instead of failing', () => {
    const n = negotiate(opts({ blksize: '7', timeout: '0', windowsize: 'x', multicast: '', utimeout: '1000' }), limits, 10);
    expect(n.blksize).toBe(512);
    expect(n.windowsize).toBe(1);
    expect(n.timeoutMs).toBeUndefined();
    expect(n.oack.size).toBe(0);
    expect(negotiate(opts({ timeout: '256' }), limits, 1).oack.size).toBe(0);
    expect(negotiate(opts({ blksize: '-5' }), limits, 1).oack.size).toBe(0);
  });
});
