// The TFTP directory provider against real files: small files are read once and shared by their
// version, a replaced file is read again while running transfers keep the version they started,
// and large files stream through a read-ahead window that returns exactly the file's bytes.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryProvider, type TftpSource } from '../../src/tftp/provider.ts';

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'genesis-tftp-provider-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

async function source(p: DirectoryProvider, name: string): Promise<TftpSource> {
  const r = await p.open(name);
  if (!r.ok) throw new Error(r.message);
  return r.source;
}
async function whole(s: TftpSource, step: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let at = 0; at < s.size; at += step) parts.push(Buffer.from(await s.read(at, Math.min(step, s.size - at))));
  return Buffer.concat(parts);
}

describe('DirectoryProvider', () => {
  it('shares one copy of a small file among concurrent transfers; a replaced file is read again, running ones keep theirs', async () => {
    const p = new DirectoryProvider(root);
    const v1 = randomBytes(300_000);
    writeFileSync(path.join(root, 'undionly.kpxe'), v1);
    const many = await Promise.all(Array.from({ length: 50 }, () => source(p, 'undionly.kpxe')));
    for (const s of many) expect(s.size).toBe(v1.length);
    expect((await whole(many[0]!, 1468)).equals(v1)).toBe(true);
    // The same buffer behind every transfer: read once.
    const firstBlocks = await Promise.all(many.map((s) => s.read(0, 512)));
    expect(new Set(firstBlocks.map((b) => b.buffer)).size).toBe(1);

    // An operator replaces it (write beside, rename over): the next transfer gets the new one.
    const v2 = randomBytes(200_000);
    writeFileSync(path.join(root, '.new'), v2);
    renameSync(path.join(root, '.new'), path.join(root, 'undionly.kpxe'));
    const fresh = await source(p, 'undionly.kpxe');
    expect((await whole(fresh, 1468)).equals(v2)).toBe(true);
    expect((await whole(many[1]!, 512)).equals(v1)).toBe(true);
    await Promise.all([...many, fresh].map((s) => s.close()));
  });

  it('a file edited in place (same inode, same size) is read again; a removed one is not served from its copy', async () => {
    const p = new DirectoryProvider(root);
    const file = path.join(root, 'boot.scr');
    const v1 = Buffer.alloc(4096, 1);
    writeFileSync(file, v1);
    utimesSync(file, 1_700_000_000, 1_700_000_000);
    const first = await source(p, 'boot.scr');
    const again = await source(p, 'boot.scr');
    expect(Buffer.from(await again.read(0, 4096)).equals(v1)).toBe(true);
    const v2 = Buffer.alloc(4096, 2);
    writeFileSync(file, v2);
    utimesSync(file, 1_700_000_100, 1_700_000_100);
    const edited = await source(p, 'boot.scr');
    expect(Buffer.from(await edited.read(0, 4096)).equals(v2)).toBe(true);
    expect(Buffer.from(await first.read(0, 4096)).equals(v1)).toBe(true);
    unlinkSync(file);
    expect(await p.open('boot.scr')).toMatchObject({ ok: false, error: 'not-found' });
    await Promise.all([first, again, edited].map((s) => s.close()));
  });

  it('a large file streams through the read-ahead window: in order, out of order, odd block sizes', async () => {
    const p = new DirectoryProvider(root);
    const big = randomBytes(9 * 1024 * 1024 + 12345);
    writeFileSync(path.join(root, 'vmlinuz'), big);
    const s = await source(p, 'vmlinuz');
    expect((await whole(s, 1468)).equals(big)).toBe(true);
    // A retransmission asks again for blocks behind the window; a window ask goes past it.
    for (const [at, len] of [[0, 512], [5_000_000, 65464 * 8], [1468 * 3, 1468], [big.length - 100, 100]] as const) {
      expect(Buffer.from(await s.read(at, len)).equals(big.subarray(at, at + len))).toBe(true);
    }
    await s.close();
  });

  it('still refuses a symlink out of the root, and what is not a regular file', async () => {
    const outside = mkdtempSync(path.join(tmpdir(), 'genesis-outside-'));
    try {
      writeFileSync(path.join(outside, 'secret'), 'x');
      symlinkSync(path.join(outside, 'secret'), path.join(root, 'link'));
      const p = new DirectoryProvider(root);
      expect(await p.open('link')).toMatchObject({ ok: false, error: 'access-denied' });
      expect(await p.open('.')).toMatchObject({ ok: false });
      expect(await p.open('missing')).toMatchObject({ ok: false, error: 'not-found' });
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
