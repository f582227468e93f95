// The boot chain over real HTTP (fetch and curl): boot.ipxe, the per-machine script, assets.

import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeScriptUrl, startGenesis, type TestGenesis } from '../helpers/genesis-app.ts';
import { until } from '../helpers/wait.ts';
import { run, sha256, sha256File } from '../helpers/run.ts';

let g: TestGenesis;
const kernel = randomBytes(6 * 1024 * 1024 + 123);
const MAC = '52:54:00:aa:00:01';

beforeAll(async () => {
  g = await startGenesis();
  const dir = path.join(g.assetsDir, 'talos', 'v1.14.0', 'amd64');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'vmlinuz'), kernel);
  writeFileSync(path.join(dir, 'initramfs.xz'), randomBytes(1000));
  writeFileSync(path.join(g.assetsDir, 'talos', '.hidden'), 'secret');
  mkdirSync(path.join(g.assetsDir, 'ipxe', 'arm64-efi'), { recursive: true });
  writeFileSync(path.join(g.assetsDir, 'ipxe', 'arm64-efi', 'snponly.efi'), randomBytes(4096));
});
afterAll(() => g.close());

/** Expand boot.ipxe's chain URL the way iPXE would for a given machine. */
function expand(chainUrl: string, vars: Record<string, string>): string {
  return chainUrl.replace(/\$\{([a-z]+)(?::[a-z]+)?\}/g, (_, name: string) => encodeURIComponent(vars[name] ?? ''));
}

describe('boot chain', () => {
  it('a fresh machine is recorded from its first request, assigned by the API, then gets the Talos kernel', async () => {
    const entry = await run('curl', ['-sS', '-f', `${g.url}/boot.ipxe`]);
    expect(entry.code).toBe(0);
    const chain = entry.stdout.split('\n').find((l) => l.startsWith('chain '))!.split(' ')[3]!;
    const url = expand(chain, { mac: '52-54-00-aa-00-01', buildarch: 'x86_64', platform: 'pcbios', uuid: '4C4C4544-0000-1000-8000-000000000001', serial: 'SN 42&x', manufacturer: 'Dell Inc.', product: 'OptiPlex 3080' });

    const waiting = await fetch(url);
    expect(waiting.status).toBe(200);
    expect(waiting.headers.get('content-type')).toMatch(/^text\/plain/);
    const w = await waiting.text();
    expect(w).toContain(`machine ${MAC} is recorded but has no role yet`);
    expect(w).not.toContain('kernel ');

    const node = await (await g.api('GET', `/nodes/${MAC}`)).json();
    expect(node).toMatchObject({
      mac: MAC, role: 'unassigned', state: 'discovered', arch: 'amd64', firmware: 'bios', lastIp: '127.0.0.1',
      uuid: '4c4c4544-0000-1000-8000-000000000001', serial: 'SN 42&x', manufacturer: 'Dell Inc.', product: 'OptiPlex 3080',
    });

    const assign = await g.api('PUT', `/nodes/${MAC}`, { role: 'controlplane', hostname: 'cp-1' });
    expect(assign.status).toBe(200);

    const script = await (await fetch(url)).text();
    expect(script).toContain(`kernel ${g.url}/assets/talos/v1.14.0/amd64/vmlinuz initrd=initramfs.xz talos.platform=metal`);
    expect(script).toContain(`talos.config=${g.url}/talos/config/${MAC}`);
    expect(script).toContain('initrd --name initramfs.xz');
    const events = (await (await g.api('GET', `/nodes/${MAC}/events`)).json()) as { events: Array<{ type: string }> };
    expect(events.events.map((e) => e.type)).toEqual(['script-served', 'state-changed', 'api-change', 'discovered']);
  });

  it('a request without a valid MAC gets 400 and records nothing', async () => {
    const before = ((await (await g.api('GET', '/nodes')).json()) as { nodes: unknown[] }).nodes.length;
    for (const q of ['', '?mac=', '?mac=zz:zz', '?mac=01:00:5e:00:00:01', `?mac=${'a'.repeat(300)}`]) {
      const r = await fetch(`${g.url}/ipxe/node${q}`);
      expect(r.status).toBe(400);
      await r.text();
    }
    expect(((await (await g.api('GET', '/nodes')).json()) as { nodes: unknown[] }).nodes.length).toBe(before);
  });

  it('installed machines leave to the disk: exit, sanboot, or 404 as the node record says', async () => {
    const mac = '52:54:00:aa:00:02';
    await g.api('PUT', `/nodes/${mac}`, { role: 'worker' });
    expect((await g.api('POST', `/nodes/${mac}/installed`)).status).toBe(200);
    expect(await (await fetch(nodeScriptUrl(g.url, mac))).text()).toMatch(/leaving to the local disk\nexit 1\n$/);
    await g.api('PATCH', `/nodes/${mac}`, { localBoot: 'sanboot' });
    expect(await (await fetch(nodeScriptUrl(g.url, mac))).text()).toContain('sanboot --no-describe --drive 0x80');
    await g.api('PATCH', `/nodes/${mac}`, { localBoot: 'http404' });
    const r = await fetch(nodeScriptUrl(g.url, mac));
    expect(r.status).toBe(404);
    await r.text();
    expect((await g.api('POST', `/nodes/${mac}/reinstall`)).status).toBe(200);
    expect(await (await fetch(nodeScriptUrl(g.url, mac))).text()).toContain('/assets/talos/v1.14.0/amd64/vmlinuz');
  });

  it('boot.ipxe is also a TFTP file, identical to the HTTP one', async () => {
    const out = path.join(tmpdir(), `genesis-boot-${process.pid}.ipxe`);
    const r = await run('curl', ['-sS', '-o', out, `tftp://127.0.0.1:${g.tftpPort}/boot.ipxe`]);
    expect(r.code).toBe(0);
    const http = Buffer.from(await (await fetch(`${g.url}/boot.ipxe`)).arrayBuffer());
    expect(sha256File(out)).toBe(sha256(http));
    rmSync(out);
  });
});

describe('assets', () => {
  const assetUrl = () => `${g.url}/assets/talos/v1.14.0/amd64/vmlinuz`;

  it('serves a multi-MiB kernel whole, with the right length and checksum', async () => {
    const out = path.join(tmpdir(), `genesis-kernel-${process.pid}`);
    const r = await run('curl', ['-sS', '-f', '-o', out, '-D', '-', assetUrl()]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`content-length: ${kernel.length}\\r`, 'i'));
    expect(r.stdout).toMatch(/etag: /i);
    expect(sha256File(out)).toBe(sha256(kernel));
    rmSync(out);
  });

  it('serves iPXE EFI binaries as application/efi (what UEFI HTTP Boot runs)', async () => {
    for (const method of ['GET', 'HEAD']) {
      const r = await fetch(`${g.url}/assets/ipxe/arm64-efi/snponly.efi`, { method });
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('application/efi');
      await r.arrayBuffer();
    }
    expect((await fetch(assetUrl(), { method: 'HEAD' })).headers.get('content-type')).not.toBe('application/efi');
  });

  it('names a type for files the MIME table does not know (a kernel, undionly.kpxe)', async () => {
    expect((await fetch(assetUrl(), { method: 'HEAD' })).headers.get('content-type')).toBe('application/octet-stream');
  });

  it('HEAD gives the length without a body', async () => {
    const r = await fetch(assetUrl(), { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-length')).toBe(String(kernel.length));
    expect(r.headers.get('accept-ranges')).toBe('bytes');
    expect((await r.arrayBuffer()).byteLength).toBe(0);
  });

  it('Range requests reassemble to the same checksum (curl -r, in 1 MiB pieces)', async () => {
    const step = 1024 * 1024;
    const parts: Buffer[] = [];
    for (let start = 0; start < kernel.length; start += step) {
      const end = Math.min(start + step, kernel.length) - 1;
      const out = path.join(tmpdir(), `genesis-range-${process.pid}-${start}`);
      const r = await run('curl', ['-sS', '-f', '-r', `${start}-${end}`, '-o', out, '-w', '%{http_code}', assetUrl()]);
      expect(r.stdout).toBe('206');
      parts.push(await import('node:fs').then((fs) => fs.readFileSync(out)));
      rmSync(out);
    }
    expect(sha256(Buffer.concat(parts))).toBe(sha256(kernel));
  });

  it('Range details: Content-Range, suffix ranges, unsatisfiable ranges, conditional GET', async () => {
    const r = await fetch(assetUrl(), { headers: { range: 'bytes=100-199' } });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe(`bytes 100-199/${kernel.length}`);
    expect(Buffer.from(await r.arrayBuffer()).equals(kernel.subarray(100, 200))).toBe(true);

    const tail = await fetch(assetUrl(), { headers: { range: 'bytes=-10' } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(kernel.subarray(-10))).toBe(true);

    const bad = await fetch(assetUrl(), { headers: { range: `bytes=${kernel.length + 10}-` } });
    expect(bad.status).toBe(416);
    await bad.arrayBuffer();

    // curl, not fetch: the fetch standard adds Cache-Control: no-cache to conditional requests.
    const etag = r.headers.get('etag')!;
    const again = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', `If-None-Match: ${etag}`, assetUrl()]);
    expect(again.stdout).toBe('304');
  });

  it('a completed kernel download is recorded on the machine that booted from that address', async () => {
    const mac = '52:54:00:aa:00:03';
    await fetch(nodeScriptUrl(g.url, mac)).then((r) => r.text());
    await fetch(assetUrl()).then((r) => r.arrayBuffer());
    // A 6 MiB kernel is sent off the main thread and recorded when that sender reports, which
    // may come just after the client has read the last byte.
    const event = await until(async () => {
      const { events } = (await (await g.api('GET', `/nodes/${mac}/events?limit=1`)).json()) as { events: Array<{ type: string; detail: { path: string } }> };
      return events[0]?.type === 'asset-fetched' ? events[0] : undefined;
    }, 'the download recorded');
    expect(event).toMatchObject({ type: 'asset-fetched', detail: { path: '/assets/talos/v1.14.0/amd64/vmlinuz' } });
  });

  it('missing files are 404; traversal and dotfiles never leave the asset directory', async () => {
    const missing = await fetch(`${g.url}/assets/talos/v9.9.9/amd64/vmlinuz`);
    expect(missing.status).toBe(404);
    await missing.arrayBuffer();
    for (const p of ['/assets/../data/genesis.db', '/assets/%2e%2e/data/genesis.db', '/assets/talos/..%2f..%2fdata/genesis.db', '/assets/talos/.hidden']) {
      const r = await run('curl', ['-sS', '--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', `${g.url}${p}`]);
      expect(['400', '403', '404']).toContain(r.stdout);
    }
  });
});
