import { describe, expect, it } from 'vitest';
import { decode, encodeAck, encodeData, encodeError, encodeOack, encodeRequest, ErrorCode } from '../../src/tftp/packet.ts';
import { pumpAddon } from '../helpers/native-transfer.ts';

describe('TFTP packet codec', () => {
  it('decodes a read request with options, lower-casing mode and option names', () => {
    // What UEFI firmware sends on its first try.
    const buf = Buffer.from('\x00\x01snponly.efi\x00OCTET\x00tsize\x000\x00BLKSIZE\x001468\x00windowsize\x004\x00', 'latin1');
    const p = decode(buf);
    expect(p).toEqual({
      kind: 'rrq',
      filename: 'snponly.efi',
      mode: 'octet',
      options: new Map([
        ['tsize', '0'],
        ['blksize', '1468'],
        ['windowsize', '4'],
      ]),
    });
  });

  it('round-trips requests, data, acks, errors and oacks', () => {
    const opts = new Map([['blksize', '1468']]);
    expect(decode(encodeRequest('rrq', 'a/b.bin', 'octet', opts))).toEqual({ kind: 'rrq', filename: 'a/b.bin', mode: 'octet', options: opts });
    expect(decode(encodeRequest('wrq', 'x', 'octet'))).toMatchObject({ kind: 'wrq', filename: 'x' });
    const d = decode(encodeData(70000, Buffer.from('hello')));
    expect(d).toMatchObject({ kind: 'data', block: 70000 & 0xffff });
    expect(d.kind === 'data' && d.data.toString()).toBe('hello');
    expect(decode(encodeAck(65536))).toEqual({ kind: 'ack', block: 0 });
    expect(decode(encodeError(ErrorCode.FileNotFound, 'file not found'))).toEqual({ kind: 'error', code: 1, message: 'file not found' });
    expect(decode(encodeOack(opts))).toEqual({ kind: 'oack', options: opts });
  });

  it('encodes an error exactly as RFC 1350 lays it out', () => {
    expect(encodeError(ErrorCode.AccessViolation, 'no')).toEqual(Buffer.from([0, 5, 0, 2, 0x6e, 0x6f, 0]));
  });

  it('keeps the first of duplicated options', () => {
    const p = decode(Buffer.from('\x00\x01f\x00octet\x00blksize\x00512\x00blksize\x001468\x00', 'latin1'));
    expect(p.kind === 'rrq' && p.options.get('blksize')).toBe('512');
  });

  it('reports malformed packets instead of throwing', () => {
    const cases: Array<[string, Buffer]> = [
      ['empty', Buffer.alloc(0)],
      ['one byte', Buffer.from([0])],
      ['unknown opcode', Buffer.from([0, 9, 1, 2])],
      ['unterminated filename', Buffer.from('\x00\x01file', 'latin1')],
      ['no mode', Buffer.from('\x00\x01file\x00', 'latin1')],
      ['empty filename', Buffer.from('\x00\x01\x00octet\x00', 'latin1')],
      ['option without value', Buffer.from('\x00\x01f\x00octet\x00blksize\x00', 'latin1')],
      ['short ack', Buffer.from([0, 4, 1])],
      ['short data', Buffer.from([0, 3, 1])],
      ['short error', Buffer.from([0, 5, 0])],
    ];
    for (const [name, buf] of cases) {
      expect(decode(buf).kind, name).toBe('malformed');
    }
  });

  it('survives random bytes', () => {
    // A deterministic generator so a failure reproduces.
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (let i = 0; i < 5000; i++) {
      const len = rand() % 64;
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = rand();
      if (len >= 2) buf[1] = (buf[1]! % 8) as number;
      if (len >= 1) buf[0] = 0;
      expect(() => decode(buf)).not.toThrow();
    }
  });
});

describe("the TFTP pump's decoder (native/tftp-pump.c) against this one", () => {
  // The pump reads packets from the LAN in C: it must take exactly what decode() takes, or a
  // transfer on its thread would treat input differently from one in TypeScript.
  it('takes and refuses the same packets: every opcode, edge shapes, and 20,000 seeded mutations', () => {
    const addon = pumpAddon();
    const opts = (o: Record<string, string>) => new Map(Object.entries(o));
    const seeds = [
      encodeRequest('rrq', 'undionly.kpxe', 'octet'),
      encodeRequest('rrq', 'snponly.efi', 'octet', opts({ tsize: '0', blksize: '1468', windowsize: '4' })),
      encodeRequest('wrq', 'x', 'netascii'),
      encodeAck(0),
      encodeAck(65535),
      encodeData(1, Buffer.from('data')),
      encodeError(ErrorCode.FileNotFound, 'no'),
      encodeOack(opts({ blksize: '1468' })),
      Buffer.from([0, 6]),
    ];
    const shapes = [
      Buffer.alloc(0),
      Buffer.from([0]),
      Buffer.from([0, 1]),
      Buffer.from([0, 1, 0]),
      Buffer.from([0, 1, 0x61, 0, 0x62]),
      Buffer.from([0, 1, 0x61, 0, 0x62, 0, 0x63, 0]),
      Buffer.from([0, 1, 0x61, 0, 0x62, 0, 0, 0x63, 0]),
      Buffer.from([0, 1, 0x61, 0, 0x62, 0, 0x63, 0, 0x64, 0]),
      Buffer.from([0, 6, 0, 0x61, 0]),
      Buffer.from([0, 6, 0x61, 0]),
      Buffer.from([0, 3, 0]),
      Buffer.from([0, 4, 0, 1, 9, 9]),
      Buffer.from([0, 5, 0, 1]),
      Buffer.from([0, 7, 0, 1]),
      Buffer.from([1, 4, 0, 1]),
    ];
    let x = 0x2545f491;
    const next = (n: number) => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    const mutated = Array.from({ length: 20_000 }, () => {
      const b = Buffer.from(seeds[next(seeds.length)]!);
      const at = b.length ? next(b.length) : 0;
      switch (next(4)) {
        case 0:
          if (b.length) b[at] = next(256);
          return b;
        case 1:
          return b.subarray(0, at);
        case 2:
          return Buffer.concat([b.subarray(0, at), Buffer.from([next(2) ? 0 : next(256)]), b.subarray(at)]);
        default:
          return Buffer.concat([b, Buffer.from(Array.from({ length: next(8) }, () => (next(3) ? 0 : next(256))))]);
      }
    });
    const differ = [...seeds, ...shapes, ...mutated].filter((b) => addon.packetValid(b) !== (decode(b).kind !== 'malformed'));
    expect(differ.map((b) => b.toString('hex'))).toEqual([]);
    // Both kinds occur in the corpus: the comparison is not one-sided.
    const taken = mutated.filter((b) => addon.packetValid(b)).length;
    expect(taken).toBeGreaterThan(1000);
    expect(taken).toBeLessThan(19_000);
  });
});
