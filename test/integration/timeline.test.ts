// A node's timeline through a whole boot over real protocols: the proxyDHCP answer (port 4011,
// unicast, so loopback works), the TFTP download (curl), the boot script, kernel and initramfs,
// the config; oldest first, with durations. Strangers' DHCP requests leave no trace.

import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, encode, MessageType, Option } from '../../src/dhcp/packet.ts';
import { LOOP_ADVICE } from '../../src/provision/chainload-loop.ts';
import { nodeScriptUrl, startGenesis, type TestGenesis } from '../helpers/genesis-app.ts';
import { run } from '../helpers/run.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test reads of API JSON
type Json = any;

let g: TestGenesis;
beforeAll(async () => {
  g = await startGenesis({ GENESIS_DHCP_PROXY: 'true', GENESIS_DHCP_PORT: '0', GENESIS_DHCP_PXE_PORT: '0' });
  writeFileSync(path.join(g.assetsDir, 'ipxe', 'snponly.efi'), Buffer.alloc(50_000, 1));
});
afterAll(async () => {
  await g.close();
});

/** OVMF's captured DISCOVER turned into a boot-server REQUEST from `mac`. */
async function pxeRequest(mac: string): Promise<void> {
  const p = decode(Buffer.from(readFileSync(path.resolve(import.meta.dirname, '../fixtures/dhcp/ovmf-pxe-discover.hex'), 'utf8').trim(), 'hex'));
  p.options.set(Option.MESSAGE_TYPE, Buffer.from([MessageType.REQUEST]));
  p.chaddr = Buffer.concat([Buffer.from(mac.split(':').map((h) => parseInt(h, 16))), Buffer.alloc(10)]);
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  s.send(encode(p), g.dhcpPorts!.pxe, '127.0.0.1');
  await once(s, 'message');
  s.close();
}

describe('GET /api/v1/nodes/:mac/timeline', () => {
  it('tells the boot in order, with the time since the start and since the step before', async () => {
    const mac = '52:54:00:00:0f:01';
    expect((await g.api('PUT', `/nodes/${mac}`, { role: 'worker' })).status).toBe(201);
    await pxeRequest(mac);
    const script = await (await fetch(nodeScriptUrl(g.url, mac))).text();
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'genesis-timeline-')), 'nbp');
    expect((await run('curl', ['-sS', '-o', out, `tftp://127.0.0.1:${g.tftpPort}/snponly.efi`])).code).toBe(0);
    await (await fetch(`${g.url}/assets/talos/v1.14.0/amd64/vmlinuz`)).arrayBuffer();
    await (await fetch(`${g.url}/assets/talos/v1.14.0/amd64/initramfs.xz`)).arrayBuffer();
    expect((await fetch(/ talos\.config=(\S+)/.exec(script)![1]!)).status).toBe(200);

    const res = await g.api('GET', `/nodes/${mac}/timeline`);
    expect(res.status).toBe(200);
    const { steps } = (await res.json()) as Json;
    const names = steps.map((s: Json) => s.step);
    // (The TFTP step is recorded when the server sees the last ACK, which may land just after the
    // next HTTP request: its place is not asserted, only that it is there.)
    expect(names.filter((n: string) => n !== 'tftp')).toEqual(['api-change', 'state discovered -> assigned', 'dhcp', 'script', 'kernel', 'initramfs', 'config', 'state assigned -> installing']);
    expect(names).toContain('tftp');
    expect(steps[0].sincePreviousMs).toBeNull();
    for (let i = 1; i < steps.length; i++) {
      expect(steps[i].sincePreviousMs).toBeGreaterThanOrEqual(0);
      expect(steps[i].sinceStartMs).toBe(steps[i - 1].sinceStartMs + steps[i].sincePreviousMs);
    }
    expect(steps.find((s: Json) => s.step === 'dhcp').detail).toMatchObject({ client: 'pxe', bootfile: 'snponly.efi', port: 'pxe' });
    expect(steps.find((s: Json) => s.step === 'tftp').detail).toMatchObject({ file: 'snponly.efi', bytes: 50_000 });
  });

  it('does not record DHCP requests from machines it does not know', async () => {
    const stranger = '52:54:00:00:0f:99';
    await pxeRequest(stranger);
    expect(((await (await g.api('GET', `/nodes/${stranger}/events`)).json()) as Json).events).toEqual([]);
    expect((await g.api('GET', `/nodes/${stranger}/timeline`)).status).toBe(404);
  });

  it('a known machine that loads iPXE again and again is held with the reason, until it reaches its script', async () => {
    writeFileSync(path.join(g.assetsDir, 'ipxe', 'undionly.kpxe'), Buffer.alloc(3_000, 3));
    const mac = '52:54:00:00:0f:03';
    const ip = '127.0.15.3';
    expect((await g.api('PUT', `/nodes/${mac}`, { role: 'worker' })).status).toBe(201);
    expect((await run('curl', ['-sf', '-o', '/dev/null', '--interface', ip, nodeScriptUrl(g.url, mac)])).code).toBe(0);
    const node = async () => (await (await g.api('GET', `/nodes/${mac}`)).json()) as Json;
    expect((await node()).waiting).toBeNull();
    // A router that hands iPXE its own binary: the same address fetches it three times.
    for (let i = 0; i < 3; i++) {
      const ended = once(g.app.tftp!, 'transfer-end');
      expect((await run('curl', ['-sS', '-o', '/dev/null', '--interface', ip, `tftp://127.0.0.1:${g.tftpPort}/undionly.kpxe`])).code).toBe(0);
      await ended;
    }
    expect((await node()).waiting).toBe(`${ip} fetched undionly.kpxe 3 times in 120 s: it ${LOOP_ADVICE}`);
    // The router is fixed: the machine reaches its script, and the hold is gone.
    expect((await run('curl', ['-sf', '-o', '/dev/null', '--interface', ip, nodeScriptUrl(g.url, mac)])).code).toBe(0);
    expect((await node()).waiting).toBeNull();
  });

  it("a first boot: the DHCP and TFTP steps taken before the machine was known start its timeline", async () => {
    const mac = '52:54:00:00:0f:04';
    const ip = '127.0.15.4';
    await pxeRequest(mac);
    const ended = once(g.app.tftp!, 'transfer-end');
    expect((await run('curl', ['-sS', '-o', '/dev/null', '--interface', ip, `tftp://127.0.0.1:${g.tftpPort}/snponly.efi`])).code).toBe(0);
    await ended;
    expect((await g.api('GET', `/nodes/${mac}/timeline`)).status).toBe(404);
    expect((await run('curl', ['-sf', '-o', '/dev/null', '--interface', ip, nodeScriptUrl(g.url, mac)])).code).toBe(0);
    const { steps } = (await (await g.api('GET', `/nodes/${mac}/timeline`)).json()) as Json;
    expect(steps.map((s: Json) => s.step)).toEqual(['dhcp', 'tftp', 'discovered']);
    expect(steps[1].detail).toMatchObject({ file: 'snponly.efi', bytes: 50_000 });
    expect(steps[2].sinceStartMs).toBeGreaterThanOrEqual(steps[1].sinceStartMs);
  });

  it('needs the API token', async () => {
    expect((await fetch(`${g.url}/api/v1/nodes/52:54:00:00:0f:01/timeline`)).status).toBe(401);
  });
});

describe('TFTP on a dual-stack socket (tftp.host "::")', () => {
  it('attributes the download to the node: IPv4 clients arrive as ::ffff:a.b.c.d and are matched as a.b.c.d', async () => {
    const dual = await startGenesis({ GENESIS_TFTP_HOST: '::' });
    try {
      writeFileSync(path.join(dual.assetsDir, 'ipxe', 'snponly.efi'), Buffer.alloc(20_000, 2));
      const mac = '52:54:00:00:0f:02';
      expect((await dual.api('PUT', `/nodes/${mac}`, { role: 'worker' })).status).toBe(201);
      expect((await fetch(nodeScriptUrl(dual.url, mac))).status).toBe(200);
      const ended = once(dual.app.tftp!, 'transfer-end');
      const out = path.join(mkdtempSync(path.join(tmpdir(), 'genesis-dual-')), 'nbp');
      expect((await run('curl', ['-sS', '-o', out, `tftp://127.0.0.1:${dual.tftpPort}/snponly.efi`])).code).toBe(0);
      const [summary] = (await ended) as Json[];
      expect(summary.client).toMatch(/^::ffff:127\.0\.0\.1:/);
      const { events } = (await (await dual.api('GET', `/nodes/${mac}/events`)).json()) as Json;
      expect(events.filter((e: Json) => e.type === 'tftp-served').map((e: Json) => e.detail)).toMatchObject([{ file: 'snponly.efi', bytes: 20_000 }]);
    } finally {
      await dual.close();
    }
  });
});
