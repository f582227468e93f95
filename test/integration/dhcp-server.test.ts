// The proxyDHCP sockets on loopback, unprivileged ports: the PXE boot-server exchange on 4011
// (unicast, so testable here; the broadcast offer on 67 is exercised by real firmware in
// test/e2e/boot-l2), hostile packets, and the wiring inside Genesis.

import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { decode, encode, MessageType, Option } from '../../src/dhcp/packet.ts';
import type { ProxyAnswer } from '../../src/dhcp/proxy.ts';
import { ProxyDhcpServer } from '../../src/dhcp/server.ts';
import { ConfigError } from '../../src/config/config.ts';
import { startGenesis } from '../helpers/genesis-app.ts';

const fixture = (name: string) => decode(Buffer.from(readFileSync(path.resolve(import.meta.dirname, `../fixtures/dhcp/${name}.hex`), 'utf8').trim(), 'hex'));

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function client(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  cleanup.push(() => s.close());
  return s;
}

/** A PXE boot-server request as OVMF sends it after taking an address (built from its captured DISCOVER). */
function bootServerRequest(): Buffer {
  const p = fixture('ovmf-pxe-discover');
  p.options.set(Option.MESSAGE_TYPE, Buffer.from([MessageType.REQUEST]));
  p.ciaddr = '127.0.0.1';
  return encode(p);
}

describe('proxyDHCP server', () => {
  it('answers a boot-server REQUEST on the PXE port with an ACK to the sender, and survives garbage', async () => {
    const server = new ProxyDhcpServer({
      address: '127.0.0.1',
      dhcpPort: 0,
      pxePort: 0,
      context: () => ({ serverIp: '192.0.2.1', baseUrl: 'http://192.0.2.1:8080', haveBinary: () => true }),
      logger: pino({ level: 'silent' }),
    });
    const answers: Array<ProxyAnswer | 'malformed'> = [];
    server.on('answer', (a: ProxyAnswer | 'malformed') => answers.push(a));
    const ports = await server.start();
    cleanup.push(() => server.close());
    const c = await client();

    // Hostile input first, on both ports: nothing comes back, nothing breaks.
    for (const port of [ports.dhcp, ports.pxe]) {
      for (const junk of [Buffer.alloc(0), Buffer.alloc(1500, 0xff), bootServerRequest().subarray(0, 250), Buffer.from('GET / HTTP/1.0\r\n\r\n')]) c.send(junk, port, '127.0.0.1');
    }
    c.send(bootServerRequest(), ports.pxe, '127.0.0.1');
    const [msg, rinfo] = (await once(c, 'message')) as [Buffer, dgram.RemoteInfo];
    expect(rinfo.port).toBe(ports.pxe);
    const ack = decode(msg);
    expect(ack.options.get(Option.MESSAGE_TYPE)).toEqual(Buffer.from([MessageType.ACK]));
    expect(ack.file).toBe('snponly.efi');
    expect(ack.xid).toBe(fixture('ovmf-pxe-discover').xid);
    // Every packet reported, once: the garbage as malformed, the one request answered.
    expect(answers.filter((a) => a === 'malformed')).toHaveLength(8);
    expect(answers.filter((a) => a !== 'malformed' && a.kind === 'reply')).toHaveLength(1);
  });
});

describe('proxyDHCP in Genesis', () => {
  it('starts with dhcp.proxy on, names only binaries present in assets/ipxe, and stops with Genesis', async () => {
    const g = await startGenesis({ GENESIS_DHCP_PROXY: 'true', GENESIS_DHCP_PORT: '0', GENESIS_DHCP_PXE_PORT: '0' });
    cleanup.push(() => g.close());
    const c = await client();
    const ask = async () => {
      c.send(bootServerRequest(), g.dhcpPorts!.pxe, '127.0.0.1');
      return decode(((await once(c, 'message')) as [Buffer])[0]);
    };
    // Only ipxe.efi is there: snponly.efi (the first choice for UEFI) is skipped.
    mkdirSync(path.join(g.assetsDir, 'ipxe'), { recursive: true });
    writeFileSync(path.join(g.assetsDir, 'ipxe', 'ipxe.efi'), 'not really iPXE');
    const ack = await ask();
    expect(ack.file).toBe('ipxe.efi');
    expect(ack.siaddr).toBe('127.0.0.1');
    // Counted in /metrics by result and client kind.
    const metrics = await (await fetch(`${g.url}/metrics`)).text();
    expect(metrics).toMatch(/^genesis_dhcp_requests_total\{result="offered",client="pxe"\} 1$/m);
    await g.close();
    cleanup.pop();
    // Closed with Genesis: the port is free again.
    const again = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(g.dhcpPorts!.pxe, '0.0.0.0', () => resolve());
    });
    again.close();
  });

  it('refuses to start when the address is not on this host, with one line', async () => {
    await expect(startGenesis({ GENESIS_DHCP_PROXY: 'true', GENESIS_DHCP_PORT: '0', GENESIS_DHCP_PXE_PORT: '0', GENESIS_ADVERTISE_ADDR: '192.0.2.77' })).rejects.toThrow(ConfigError);
  });
});
