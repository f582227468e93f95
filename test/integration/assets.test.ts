// `genesis assets` as a real process against a local HTTP server standing in for GitHub releases
// and the Image Factory (this machine has no internet): verified downloads, a checksum mismatch,
// a download cut short and resumed, two fetches of the same asset at once, the factory's recorded
// checksums, import, list; and a machine whose assets are missing is told to wait.

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeScriptUrl, startGenesis } from '../helpers/genesis-app.ts';
import { BIN } from '../helpers/genesis-process.ts';
import { run } from '../helpers/run.ts';
import { until } from '../helpers/wait.ts';
import { fakePe } from '../helpers/pe.ts';
import { fakeInitramfs, fakeKernel } from '../helpers/boot-files.ts';

const V = 'v1.14.0';
const SCHEMATIC = 'a'.repeat(64);
const files = new Map<string, Buffer>([
  ['vmlinuz-amd64', fakeKernel('amd64', 3 * 1024 * 1024)],
  ['initramfs-amd64.xz', fakeInitramfs(5 * 1024 * 1024)],
  ['vmlinuz-arm64', fakeKernel('arm64', 1024 * 1024)],
  ['initramfs-arm64.xz', fakeInitramfs(2 * 1024 * 1024)],
  ['arm64-efi/snponly.efi', Buffer.concat([fakePe(0xaa64), randomBytes(200_000)])],
  ['not-efi.bin', randomBytes(10_000)],
]);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** What the stand-in release host does; tests change it. */
const host = {
  sums: () => [...files].map(([n, b]) => `${sha(b)}  ${n}`).join('\n') + '\n',
  /** Names whose next GET is cut off halfway. */
  cutOnce: new Set<string>(),
  requests: [] as Array<{ path: string; range?: string }>,
};

let server: http.Server;
let base = '';

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = req.url ?? '';
    host.requests.push({ path: url, range: req.headers.range });
    const m = /^\/(?:releases\/v[\d.]+|factory\/image\/[0-9a-f]{64}\/v[\d.]+|ipxe)\/(.+)$/.exec(url);
    let name = m?.[1];
    if (name === 'sha256sum.txt' && url.startsWith('/releases/')) {
      res.end(host.sums());
      return;
    }
    if (name?.startsWith('kernel-')) name = name.replace('kernel-', 'vmlinuz-');
    const body = name ? files.get(name) : undefined;
    if (!body) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const from = range ? Number(range[1]) : 0;
    if (from >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` });
      res.end();
      return;
    }
    res.writeHead(range ? 206 : 200, { 'content-length': body.length - from, ...(range ? { 'content-range': `bytes ${from}-${body.length - 1}/${body.length}` } : {}) });
    if (host.cutOnce.delete(name!)) {
      res.write(body.subarray(from, from + Math.floor((body.length - from) / 2)), () => res.destroy());
      return;
    }
    res.end(body.subarray(from));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.close();
});

function workdir() {
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-assets-'));
  return { dir, assets: path.join(dir, 'assets'), data: path.join(dir, 'data') };
}
const genesis = (w: ReturnType<typeof workdir>, args: string[]) =>
  run(process.execPath, [BIN, 'assets', ...args], {
    env: {
      PATH: process.env.PATH,
      GENESIS_ASSETS_DIR: w.assets,
      GENESIS_DATA_DIR: w.data,
      GENESIS_ASSETS_TALOS_URL: `${base}/releases`,
      GENESIS_ASSETS_FACTORY_URL: `${base}/factory`,
    },
  });
const placed = (w: ReturnType<typeof workdir>, arch: string, file: string) => path.join(w.assets, 'talos', V, arch, file);
const gets = (name: string) => host.requests.filter((r) => r.path.endsWith(`/${name}`));

describe('genesis assets ipxe (an iPXE EFI binary Debian does not ship)', () => {
  const efi = files.get('arm64-efi/snponly.efi')!;
  it('downloads the configured arm64 binary against its pinned sha256 and puts it where the proxyDHCP points arm64', async () => {
    const w = workdir();
    const env = { GENESIS_ASSETS_IPXE_ARM64_URL: `${base}/ipxe/arm64-efi/snponly.efi`, GENESIS_ASSETS_IPXE_ARM64_SHA256: sha(efi) };
    const r = await run(process.execPath, [BIN, 'assets', 'ipxe'], { env: { PATH: process.env.PATH, GENESIS_ASSETS_DIR: w.assets, GENESIS_DATA_DIR: w.data, ...env } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('installed ipxe/arm64-efi/snponly.efi (arm64)');
    expect(readFileSync(path.join(w.assets, 'ipxe', 'arm64-efi', 'snponly.efi'))).toEqual(efi);
    rmSync(w.dir, { recursive: true, force: true });
  });

  it('discards a download whose sha256 differs, refuses a URL without a pinned sum, and refuses a file that is not an EFI application', async () => {
    const w = workdir();
    const bad = await genesis(w, ['ipxe', `${base}/ipxe/arm64-efi/snponly.efi`, '--sha256', 'b'.repeat(64)]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/does not match the expected b{64}; the download was discarded/);
    const unpinned = await genesis(w, ['ipxe', `${base}/ipxe/arm64-efi/snponly.efi`]);
    expect(unpinned.code).toBe(1);
    expect(unpinned.stderr).toMatch(/a download needs its sha256 pinned/);
    const notEfi = await genesis(w, ['ipxe', `${base}/ipxe/not-efi.bin`, '--sha256', sha(files.get('not-efi.bin')!)]);
    expect(notEfi.code).toBe(1);
    expect(notEfi.stderr).toMatch(/not a PE\/COFF file .*an iPXE EFI build \(snponly\.efi\) is expected/);
    expect(existsSync(path.join(w.assets, 'ipxe', 'arm64-efi', 'snponly.efi'))).toBe(false);
    expect(readdirSync(path.join(w.assets, 'ipxe')).filter((n) => n.startsWith('.incoming'))).toEqual([]);
    rmSync(w.dir, { recursive: true, force: true });
  });

  it('takes a local file, placed by the architecture in its PE header', async () => {
    const w = workdir();
    mkdirSync(w.dir, { recursive: true });
    const x64 = path.join(w.dir, 'built.efi');
    writeFileSync(x64, fakePe(0x8664));
    const r = await genesis(w, ['ipxe', x64]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(path.join(w.assets, 'ipxe', 'snponly.efi'))).toBe(true);
    rmSync(w.dir, { recursive: true, force: true });
  });
});

describe('genesis assets grub (Debian\'s arm64 network GRUB, the fallback without arm64 iPXE)', () => {
  it('puts an arm64 EFI application in assets/grub and refuses an x86-64 one', async () => {
    const w = workdir();
    mkdirSync(w.dir, { recursive: true });
    const arm = path.join(w.dir, 'grubnetaa64.efi.signed');
    writeFileSync(arm, fakePe(0xaa64));
    const ok = await genesis(w, ['grub', arm]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('installed grub/grubnetaa64.efi (arm64)');
    expect(readFileSync(path.join(w.assets, 'grub', 'grubnetaa64.efi'))).toEqual(readFileSync(arm));
    const x64 = path.join(w.dir, 'grubx64.efi');
    writeFileSync(x64, fakePe(0x8664));
    const refused = await genesis(w, ['grub', x64]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/an x86-64 EFI application: Genesis uses GRUB for arm64 only/);
    expect(readdirSync(w.assets).filter((n) => n.startsWith('.incoming'))).toEqual([]);
    rmSync(w.dir, { recursive: true, force: true });
  });
});

describe('genesis assets fetch', () => {
  it('downloads, verifies against sha256sum.txt, records the sums, and keeps what is already there', async () => {
    const w = workdir();
    host.requests.length = 0;
    const r = await genesis(w, ['fetch', '--talos', V, '--arch', 'amd64,arm64']);
    expect(r.code, r.stderr).toBe(0);
    for (const arch of ['amd64', 'arm64']) {
      expect(readFileSync(placed(w, arch, 'vmlinuz'))).toEqual(files.get(`vmlinuz-${arch}`));
      expect(readFileSync(placed(w, arch, 'initramfs.xz'))).toEqual(files.get(`initramfs-${arch}.xz`));
      expect(readFileSync(placed(w, arch, 'SHA256SUMS'), 'utf8')).toContain(`${sha(files.get(`vmlinuz-${arch}`)!)}  vmlinuz`);
      expect(readdirSync(path.dirname(placed(w, arch, 'vmlinuz'))).sort()).toEqual(['SHA256SUMS', 'initramfs.xz', 'vmlinuz']);
    }
    expect(r.stdout).toMatch(/^fetched +v1\.14\.0\/amd64\/vmlinuz +3145728 bytes/m);
    // Not a TTY: plain progress lines.
    expect(r.stderr).toContain('vmlinuz: 100% (3.0/3.0 MiB)');
    const again = await genesis(w, ['fetch', '--talos', V, '--arch', 'amd64']);
    expect(again.stdout).toMatch(/^present +v1\.14\.0\/amd64\/vmlinuz/m);
    expect(gets('vmlinuz-amd64')).toHaveLength(1);
    rmSync(w.dir, { recursive: true, force: true });
  });

  it('refuses a download whose sha256 does not match, and leaves nothing behind', async () => {
    const w = workdir();
    const real = host.sums;
    host.sums = () => real().replace(sha(files.get('vmlinuz-amd64')!), '0'.repeat(64));
    try {
      const r = await genesis(w, ['fetch', '--talos', V, '--arch', 'amd64']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/vmlinuz-amd64: sha256 [0-9a-f]{64} does not match the expected 0{64}; the download was discarded/);
      expect(readdirSync(path.dirname(placed(w, 'amd64', 'vmlinuz')))).toEqual([]);
    } finally {
      host.sums = real;
    }
    rmSync(w.dir, { recursive: true, force: true });
  });

  it('resumes a download that was cut off, with a Range request', async () => {
    const w = workdir();
    host.requests.length = 0;
    host.cutOnce.add('initramfs-amd64.xz');
    const first = await genesis(w, ['fetch', '--talos', V, '--arch', 'amd64']);
    expect(first.code).toBe(1);
    expect(first.stderr).toContain('run the fetch again to resume');
    expect(existsSync(placed(w, 'amd64', 'initramfs.xz'))).toBe(false);
    const partial = readFileSync(`${placed(w, 'amd64', 'initramfs.xz')}.part`).length;
    expect(partial).toBeGreaterThan(0);
    const second = await genesis(w, ['fetch', '--talos', V, '--arch', 'amd64']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain(`(resumed at ${partial})`);
    expect(gets('initramfs-amd64.xz').at(-1)!.range).toBe(`bytes=${partial}-`);
    expect(readFileSync(placed(w, 'amd64', 'initramfs.xz'))).toEqual(files.get('initramfs-amd64.xz'));
    rmSync(w.dir, { recursive: true, force: true });
  });

  it('two fetches of the same asset at once: one downloads, the other waits for it, both succeed', async () => {
    const w = workdir();
    host.requests.length = 0;
    const [a, b] = await Promise.all([genesis(w, ['fetch', '--talos', V, '--arch', 'amd64']), genesis(w, ['fetch', '--talos', V, '--arch', 'amd64'])]);
    expect([a.code, b.code], a.stderr + b.stderr).toEqual([0, 0]);
    expect(gets('vmlinuz-amd64')).toHaveLength(1);
    expect(gets('initramfs-amd64.xz')).toHaveLength(1);
    expect(readFileSync(placed(w, 'amd64', 'initramfs.xz'))).toEqual(files.get('initramfs-amd64.xz'));
    expect(readdirSync(path.dirname(placed(w, 'amd64', 'vmlinuz'))).sort()).toEqual(['SHA256SUMS', 'initramfs.xz', 'vmlinuz']);
    rmSync(w.dir, { recursive: true, force: true });
  });

  it('from the Image Factory: records the sha256 of the first fetch and re-verifies against it', async () => {
    const w = workdir();
    const r = await genesis(w, ['fetch', '--talos', V, '--arch', 'amd64', '--schematic', SCHEMATIC]);
    expect(r.code, r.stderr).toBe(0);
    expect(host.requests.some((q) => q.path === `/factory/image/${SCHEMATIC}/${V}/kernel-amd64`)).toBe(true);
    expect(readFileSync(placed(w, 'amd64', 'SHA256SUMS'), 'utf8')).toContain(`${sha(files.get('vmlinuz-amd64')!)}  vmlinuz`);
    // Damaged on disk: the next fetch notices and downloads it again.
    writeFileSync(placed(w, 'amd64', 'vmlinuz'), 'damaged');
    const again = await genesis(w, ['fetch', '--talos', V, '--arch', 'amd64', '--schematic', SCHEMATIC]);
    expect(again.stdout).toMatch(/^fetched +v1\.14\.0\/amd64\/vmlinuz/m);
    expect(readFileSync(placed(w, 'amd64', 'vmlinuz'))).toEqual(files.get('vmlinuz-amd64'));
    rmSync(w.dir, { recursive: true, force: true });
  });
});

describe('genesis assets import and list', () => {
  it('imports release-named files from a directory and lists them with the nodes that use them', async () => {
    const w = workdir();
    const brought = path.join(w.dir, 'usb');
    mkdirSync(brought);
    writeFileSync(path.join(brought, 'vmlinuz-amd64'), files.get('vmlinuz-amd64')!);
    writeFileSync(path.join(brought, 'initramfs-amd64.xz'), files.get('initramfs-amd64.xz')!);
    const r = await genesis(w, ['import', '--talos', V, '--arch', 'amd64', brought]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(placed(w, 'amd64', 'initramfs.xz'))).toEqual(files.get('initramfs-amd64.xz'));
    const list = await genesis(w, ['list']);
    expect(list.stdout).toContain(`${V} (default)  used by 0 nodes`);
    expect(list.stdout).toMatch(new RegExp(`amd64/vmlinuz +3145728 bytes  sha256 ${sha(files.get('vmlinuz-amd64')!)}`));
    const bad = await genesis(w, ['import', '--talos', V, '--arch', 'amd64', path.join(w.dir, 'nope')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('is not a directory');
    rmSync(w.dir, { recursive: true, force: true });
  });

  it('refuses a kernel for the other architecture, the two files the other way round and a saved error page, importing nothing; --force imports them', async () => {
    const w = workdir();
    const kernel = path.join(w.dir, 'k');
    const initramfs = path.join(w.dir, 'i');
    const page = path.join(w.dir, 'page');
    writeFileSync(kernel, files.get('vmlinuz-arm64')!);
    writeFileSync(initramfs, files.get('initramfs-arm64.xz')!);
    writeFileSync(page, '<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n');
    const cases: Array<[string[], RegExp]> = [
      [[kernel, initramfs], /^genesis assets import: .*\/k was given as the amd64 kernel, but it is an arm64 kernel \(EFI zboot\), not an amd64 one: import it with --arch arm64\. Nothing was imported \(--force imports it anyway\)$/],
      [[initramfs, kernel], /\/i was given as the amd64 kernel, but it is an initramfs \(zstd\), not a kernel: are the kernel and the initramfs the other way round\? Nothing was imported \(--force imports it anyway\)$/],
      [[kernel, page], /\/k was given as the amd64 kernel, but it is an arm64 kernel/],
    ];
    for (const [args, line] of cases) {
      const r = await genesis(w, ['import', '--talos', V, '--arch', 'amd64', ...args]);
      expect([r.code, r.stdout]).toEqual([1, '']);
      expect(r.stderr.trimEnd()).toMatch(line);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    const html = await genesis(w, ['import', '--talos', V, '--arch', 'arm64', kernel, page]);
    expect(html.stderr).toMatch(/\/page was given as the arm64 initramfs, but it is an HTML or XML page \(a download that saved an error page\?\), not an initramfs/);
    // Nothing of any refused import is in place, not even the file that passed.
    expect(existsSync(path.join(w.assets, 'talos', V))).toBe(false);
    const arm = await genesis(w, ['import', '--talos', V, '--arch', 'arm64', kernel, initramfs]);
    expect(arm.code, arm.stderr).toBe(0);
    const forced = await genesis(w, ['import', '--talos', V, '--arch', 'amd64', kernel, initramfs, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(readFileSync(placed(w, 'amd64', 'vmlinuz'))).toEqual(files.get('vmlinuz-arm64'));
    rmSync(w.dir, { recursive: true, force: true });
  });
});

describe('serve and missing assets', () => {
  it('tells an assigned machine to wait while its Talos version is missing, then fetches it in the background', async () => {
    const g = await startGenesis(
      { GENESIS_ASSETS_FETCH_ON_START: 'true', GENESIS_ASSETS_TALOS_URL: `${base}/releases`, GENESIS_ASSETS_ARCHES: 'amd64' },
      { noTalosAssets: true },
    );
    try {
      await g.app.assetFetch;
      expect(readFileSync(path.join(g.assetsDir, 'talos', V, 'amd64', 'vmlinuz'))).toEqual(files.get('vmlinuz-amd64'));
      // arm64 was not asked for: an arm64 machine waits with a message that says what to do.
      expect((await g.api('PUT', '/nodes/52:54:00:00:0a:01', { role: 'worker' })).status).toBe(201);
      const script = await (await fetch(nodeScriptUrl(g.url, '52:54:00:00:0a:01', { buildarch: 'arm64' }))).text();
      expect(script).toContain(`is to install Talos ${V} arm64,`);
      expect(script).toContain(`genesis assets fetch --talos ${V} --arch arm64`);
      expect(script).not.toContain('/vmlinuz');
      expect((await g.api('PUT', '/nodes/52:54:00:00:0a:02', { role: 'worker' })).status).toBe(201);
      const amd = await until(async () => {
        const s = await (await fetch(nodeScriptUrl(g.url, '52:54:00:00:0a:02'))).text();
        return s.includes('/vmlinuz') ? s : undefined;
      }, 'the amd64 install script');
      expect(amd).toContain(`/assets/talos/${V}/amd64/vmlinuz`);
    } finally {
      await g.close();
    }
  });
});
