// The LAN probe's pure parts: the DISCOVER it sends is one Genesis's own proxyDHCP answers as it
// answers iPXE; offers are read (proxy vs the LAN's DHCP server, the wrong xid, garbage); and each
// server is judged. The real servers (dnsmasq, a second Genesis) are in lan-probe.test.ts under
// test/integration, in test namespaces.

import { describe, expect, it } from 'vitest';
import { genesisOrigin, judgeBootServers, PROBE_MAC, probeDiscover, readOffer, type BootServerOffer, type GenesisIdentity } from '../../src/dhcp/lan-probe.ts';
import { BOOTREPLY, clientMac, encode, MessageType, Option } from '../../src/dhcp/packet.ts';
import { proxyAnswer } from '../../src/dhcp/proxy.ts';

const XID = 0x1234abcd;
const ctx = { serverIp: '192.0.2.1', baseUrl: 'http://192.0.2.1:8080', haveBinary: () => true };

function genesisOffer(xid = XID): Buffer {
  const a = proxyAnswer(probeDiscover(xid), 'dhcp', ctx);
  if (a.kind !== 'reply') throw new Error(`Genesis did not answer the probe: ${a.reason}`);
  return encode(a.packet);
}

function dhcpServerOffer(over: { file?: string; siaddr?: string } = {}): Buffer {
  const p = probeDiscover(XID);
  return encode({
    ...p,
    op: BOOTREPLY,
    yiaddr: '192.0.2.150',
    siaddr: over.siaddr ?? '0.0.0.0',
    file: over.file ?? '',
    options: new Map([
      [Option.MESSAGE_TYPE, Buffer.from([MessageType.OFFER])],
      [Option.SERVER_ID, Buffer.from([192, 0, 2, 254])],
    ]),
  });
}

describe('the probe DISCOVER', () => {
  it('asks as iPXE, by broadcast, from a locally administered MAC; Genesis answers it with its boot.ipxe URL', () => {
    const p = probeDiscover(XID);
    expect(clientMac(p)).toBe(PROBE_MAC);
    expect(parseInt(PROBE_MAC.slice(0, 2), 16) & 0b10).toBe(0b10);
    expect(p.flags & 0x8000).toBe(0x8000);
    expect(readOffer(genesisOffer(), XID, '192.0.2.1')).toEqual({ server: '192.0.2.1', kind: 'proxy-dhcp', bootfile: 'http://192.0.2.1:8080/boot.ipxe', nextServer: '192.0.2.1' });
  });
});

describe('readOffer', () => {
  it("tells the LAN's DHCP server (it offers an address) from a proxyDHCP", () => {
    expect(readOffer(dhcpServerOffer(), XID, '192.0.2.254')).toEqual({ server: '192.0.2.254', kind: 'dhcp', bootfile: null, nextServer: null });
    expect(readOffer(dhcpServerOffer({ file: 'pxelinux.0', siaddr: '192.0.2.9' }), XID, '192.0.2.254')).toMatchObject({ kind: 'dhcp', bootfile: 'pxelinux.0', nextServer: '192.0.2.9' });
  });

  it('ignores answers to another probe, requests, and garbage', () => {
    expect(readOffer(genesisOffer(XID + 1), XID, '192.0.2.1')).toBeUndefined();
    expect(readOffer(encode(probeDiscover(XID)), XID, '192.0.2.1')).toBeUndefined();
    for (const junk of [Buffer.alloc(0), Buffer.alloc(300, 0xff), genesisOffer().subarray(0, 100)]) expect(readOffer(junk, XID, '192.0.2.1')).toBeUndefined();
  });
});

describe('judgeBootServers', () => {
  const self = { instance: 'me', cluster: 'lab', addresses: ['192.0.2.1'] };
  const proxy = (server: string, bootfile: string | null = `http://${server}:8080/boot.ipxe`): BootServerOffer => ({ server, kind: 'proxy-dhcp', bootfile, nextServer: server });
  const judge = (offers: BootServerOffer[], ids: Record<string, GenesisIdentity | null> = {}) => judgeBootServers(offers, new Map(Object.entries(ids)), self);

  it('this Genesis and a plain LAN DHCP server are fine; a server answering twice counts once', () => {
    const r = judge([proxy('192.0.2.1'), proxy('192.0.2.1'), { server: '192.0.2.254', kind: 'dhcp', bootfile: null, nextServer: null }], { '192.0.2.1': { cluster: 'lab', instance: 'me' } });
    expect(r.map((f) => [f.server, f.severity, f.own])).toEqual([
      ['192.0.2.1', 'ok', true],
      ['192.0.2.254', 'ok', false],
    ]);
  });

  it('a second Genesis for this cluster fails; one for another cluster and any other proxyDHCP warn', () => {
    const r = judge([proxy('192.0.2.2'), proxy('192.0.2.3'), proxy('192.0.2.4', 'undionly.kpxe')], {
      '192.0.2.2': { cluster: 'lab', instance: 'other' },
      '192.0.2.3': { cluster: 'attic', instance: 'third' },
      '192.0.2.4': null,
    });
    expect(r.map((f) => [f.server, f.severity])).toEqual([
      ['192.0.2.2', 'fail'],
      ['192.0.2.3', 'warn'],
      ['192.0.2.4', 'warn'],
    ]);
    expect(r[0]!.text).toMatch(/a second Genesis for cluster "lab" answers PXE clients at 192\.0\.2\.2/);
    expect(r[2]!.text).toMatch(/another proxyDHCP at 192\.0\.2\.4 .*undionly\.kpxe/);
  });

  it("the LAN's DHCP server sending PXE clients elsewhere warns; sending them here is fine", () => {
    const here = judge([{ server: '192.0.2.254', kind: 'dhcp', bootfile: 'http://192.0.2.1:8080/boot.ipxe', nextServer: null }]);
    const elsewhere = judge([{ server: '192.0.2.254', kind: 'dhcp', bootfile: 'pxelinux.0', nextServer: '192.0.2.9' }]);
    expect(here[0]!.severity).toBe('ok');
    expect(elsewhere[0]!.severity).toBe('warn');
  });

  it('doctor has no instance: a Genesis at this host is the running serve, not a second one', () => {
    const r = judgeBootServers([proxy('192.0.2.1')], new Map([['192.0.2.1', { cluster: 'lab', instance: 'serve' }]]), { instance: '', cluster: 'lab', addresses: ['192.0.2.1'] });
    expect(r[0]).toMatchObject({ own: true, severity: 'ok' });
  });

  it('asks only servers that hand out an iPXE script URL who they are', () => {
    expect(genesisOrigin(proxy('192.0.2.2'))).toBe('http://192.0.2.2:8080');
    expect(genesisOrigin(proxy('192.0.2.2', 'undionly.kpxe'))).toBeUndefined();
    expect(genesisOrigin(proxy('192.0.2.2', 'http://192.0.2.2/menu.ipxe'))).toBeUndefined();
  });
});
