// The asset route (http/assets.ts) through inject() over a real directory: what may be asked for,
// the content types firmware needs, ranges, and the whole downloads reported as boot steps.

import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { assetRoutes } from '../../../src/http/assets.ts';
import type { AssetKind } from '../../../src/provision/boot-steps.ts';
import { routeGroup } from '../../helpers/inject.ts';

const root = mkdtempSync(path.join(tmpdir(), 'genesis-assets-'));
const outside = mkdtempSync(path.join(tmpdir(), 'genesis-outside-'));
mkdirSync(path.join(root, 'talos', 'v1.14.0', 'amd64'), { recursive: true });
mkdirSync(path.join(root, 'ipxe'), { recursive: true });
writeFileSync(path.join(root, 'talos', 'v1.14.0', 'amd64', 'vmlinuz'), Buffer.alloc(4096, 1));
writeFileSync(path.join(root, 'talos', 'v1.14.0', 'amd64', 'initramfs.xz'), Buffer.alloc(8192, 2));
writeFileSync(path.join(root, 'ipxe', 'snponly.efi'), Buffer.alloc(1024, 3));
writeFileSync(path.join(root, 'ipxe', 'undionly.kpxe'), Buffer.alloc(512, 4));
writeFileSync(path.join(outside, 'secret'), 'not an asset');
symlinkSync(path.join(outside, 'secret'), path.join(root, 'ipxe', 'link.efi'));

async function app() {
  const steps: Array<[string, AssetKind, { path: string; status: number }]> = [];
  const a = await routeGroup((r) => assetRoutes(r, { assetsDir: root, steps: { asset: (ip, kind, detail) => steps.push([ip, kind, detail]) } }));
  return { a, steps };
}

describe('asset route', () => {
  it('serves kernels and initramfs, and reports each whole download with which file it was', async () => {
    const { a, steps } = await app();
    const k = await a.inject('/assets/talos/v1.14.0/amd64/vmlinuz');
    expect(k.statusCode).toBe(200);
    expect(k.rawPayload.length).toBe(4096);
    expect(k.headers['content-type']).toBe('application/octet-stream');
    expect(k.headers.etag).toBeTruthy();
    await a.inject('/assets/talos/v1.14.0/amd64/initramfs.xz');
    expect(steps).toEqual([
      ['127.0.0.1', 'kernel', { path: '/assets/talos/v1.14.0/amd64/vmlinuz', status: 200 }],
      ['127.0.0.1', 'initramfs', { path: '/assets/talos/v1.14.0/amd64/initramfs.xz', status: 200 }],
    ]);
  });

  it('ranges: a range from 0 counts as a download, a later range does not', async () => {
    const { a, steps } = await app();
    const first = await a.inject({ url: '/assets/talos/v1.14.0/amd64/initramfs.xz', headers: { range: 'bytes=0-1023' } });
    expect(first.statusCode).toBe(206);
    expect(first.rawPayload.length).toBe(1024);
    const rest = await a.inject({ url: '/assets/talos/v1.14.0/amd64/initramfs.xz', headers: { range: 'bytes=1024-' } });
    expect(rest.statusCode).toBe(206);
    expect(steps.map((s) => s[2].status)).toEqual([206]);
    const beyond = await a.inject({ url: '/assets/talos/v1.14.0/amd64/initramfs.xz', headers: { range: 'bytes=99999-' } });
    expect(beyond.statusCode).toBe(416);
  });

  it('.efi is application/efi (UEFI HTTP Boot runs nothing else); iPXE downloads are not boot steps', async () => {
    const { a, steps } = await app();
    const res = await a.inject('/assets/ipxe/snponly.efi');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/efi');
    expect(steps).toEqual([]);
  });

  it('nothing outside the plain-name rule or the assets root: traversal, dotfiles, escapes, symlinks out, directories', async () => {
    const { a } = await app();
    for (const url of ['/assets/../etc/passwd', '/assets/ipxe/%2e%2e/x', '/assets/.hidden', '/assets/ipxe/link.efi', '/assets/talos', '/assets/talos/v1.14.0/amd64/nope']) {
      const res = await a.inject(url);
      expect(res.statusCode, url).toBe(404);
      expect(res.body, url).not.toContain('not an asset');
    }
  });
});
