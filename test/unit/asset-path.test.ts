import { describe, expect, it } from 'vitest';
import { assetPath } from '../../src/http/assets.ts';

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
