import { describe, expect, it } from 'vitest';
import { assetPath, bodyRange } from '../../src/http/assets.ts';

describe('which names /assets/ serves', () => {
  it.each([
    ['/assets/talos/v1.14.0/amd64/vmlinuz', 'talos/v1.14.0/amd64/vmlinuz'],
    ['/assets/talos/v1.13.0-beta.1/arm64/initramfs.xz?x=1', 'talos/v1.13.0-beta.1/arm64/initramfs.xz'],
    ['/assets/ipxe/arm64-efi/snponly.efi', 'ipxe/arm64-efi/snponly.efi'],
    ['/assets/ipxe/undionly.kpxe', 'ipxe/undionly.kpxe'],
  ])('%s → %s', (url, rel) => {
    expect(assetPath(url)).toBe(rel);
  });

  it.each([
    '/assets/',
    '/assets/../data/genesis.db',
    '/assets/%2e%2e/data/genesis.db',
    '/assets/talos/..%2f..%2fdata/genesis.db',
    '/assets/talos/.hidden',
    '/assets/talos//vmlinuz',
    '/assets/talos/./vmlinuz',
    '/assets/talos/a%20b',
    '/assets/talos\\..\\x',
    '/assets/-rf',
    '/assetsx/talos/vmlinuz',
    `/assets/${'a/'.repeat(9)}b`,
    `/assets/${'a'.repeat(200)}`,
  ])('refuses %s', (url) => {
    expect(assetPath(url)).toBeUndefined();
  });
});

describe('the bytes an asset answer carries (from @fastify/send\'s headers)', () => {
  it('200: the whole file; 206: its Content-Range; an empty file: nothing to read', () => {
    expect(bodyRange(200, { 'Content-Length': 30_000_000 })).toEqual({ start: 0, end: 29_999_999 });
    expect(bodyRange(206, { 'Content-Length': 100, 'Content-Range': 'bytes 1000-1099/30000000' })).toEqual({ start: 1000, end: 1099 });
    expect(bodyRange(200, { 'Content-Length': 0 })).toEqual({ start: 0, end: 0 });
  });

  it('no body: a 304, or headers it cannot read', () => {
    expect(bodyRange(304, { ETag: 'W/"1-2"' })).toBeUndefined();
    expect(bodyRange(206, { 'Content-Length': 100 })).toBeUndefined();
    expect(bodyRange(200, {})).toBeUndefined();
  });
});
