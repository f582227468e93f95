// The DHCP codec and the proxyDHCP decision on packets captured from real firmware (iPXE ROMs,
// OVMF's PXE and HTTP Boot, Debian's snponly.efi, busybox udhcpc): see test/fixtures/dhcp/SOURCE.md.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { clientArch, clientMac, decode, DhcpDecodeError, encode, MessageType, messageType, Option, userClasses, vendorClass, type DhcpPacket } from '../../src/dhcp/packet.ts';
import { proxyAnswer, type ProxyContext } from '../../src/dhcp/proxy.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/dhcp');
const raw = (name: string) => Buffer.from(readFileSync(path.join(FIXTURES, `${name}.hex`), 'utf8').trim(), 'hex');
const packet = (name: string) => decode(raw(name));

const ctx: ProxyContext = { serverIp: '192.0.2.1', baseUrl: 'http://192.0.2.1:8080', haveBinary: () => true };

function reply(a: ReturnType<typeof proxyAnswer>) {
  if (a.kind !== 'reply') throw new Error(`ignored: ${a.reason}`);
  return a;
}

describe('DHCP codec on captured packets', () => {
  it('reads what each firmware sends', () => {
    const table = [
      ['ipxe-bios-rom-discover', '52:54:00:e2:01:01', 0, 'PXEClient:Arch:00000:UNDI:002001', ['iPXE']],
      ['ipxe-efi-rom-discover', '52:54:00:e2:01:02', 7, 'PXEClient:Arch:00007:UNDI:003010', ['iPXE']],
      ['ovmf-pxe-discover', '52:54:00:e2:01:03', 7, 'PXEClient:Arch:00007:UNDI:003000', []],
      ['ovmf-http-boot-discover', '52:54:00:e2:01:04', 16, 'HTTPClient:Arch:00016:UNDI:003000', []],
      ['ipxe-snponly-after-ovmf-pxe-discover', '52:54:00:e2:01:03', 7, 'PXEClient:Arch:00007:UNDI:003010', ['iPXE']],
      ['linux-udhcpc-discover', '52:54:00:e2:01:01', undefined, 'udhcp 1.35.0', []],
    ] as const;
    for (const [name, mac, arch, vendor, classes] of table) {
      const p = packet(name);
      expect({ mac: clientMac(p), type: messageType(p), arch: clientArch(p), vendor: vendorClass(p), classes: userClasses(p) }, name).toEqual({
        mac,
        type: MessageType.DISCOVER,
        arch,
        vendor,
        classes: [...classes],
      });
    }
    // The options the dhcp package would have dropped are all there.
    const efi = packet('ipxe-efi-rom-discover');
    for (const code of [Option.CLIENT_ARCH, Option.CLIENT_NDI, Option.CLIENT_GUID, Option.USER_CLASS, Option.IPXE_ENCAP]) expect(efi.options.has(code), String(code)).toBe(true);
    expect(packet('ovmf-pxe-discover').flags).toBe(0x8000);
  });

  it('encodes what it decodes', () => {
    for (const name of ['ipxe-bios-rom-discover', 'ovmf-pxe-discover', 'ovmf-http-boot-discover', 'ipxe-bios-rom-request']) {
      const p = packet(name);
      const again = decode(encode(p));
      expect({ ...again, options: [...again.options] }, name).toEqual({ ...p, options: [...p.options] });
    }
  });

  it('splits an option longer than 255 bytes and joins it back (RFC 3396)', () => {
    const p = packet('ovmf-pxe-discover');
    p.options.set(Option.BOOTFILE_NAME, Buffer.alloc(600, 0x61));
    expect(decode(encode(p)).options.get(Option.BOOTFILE_NAME)).toEqual(Buffer.alloc(600, 0x61));
  });

  it('refuses malformed packets with DhcpDecodeError', () => {
    const good = raw('ovmf-pxe-discover');
    const cases: Array<[string, Buffer]> = [
      ['empty', Buffer.alloc(0)],
      ['short header', good.subarray(0, 200)],
      ['no cookie', Buffer.concat([good.subarray(0, 236), Buffer.from([1, 2, 3, 4]), good.subarray(240)])],
      ['option past the end', Buffer.concat([good.subarray(0, 240), Buffer.from([60, 200, 0x50])])],
      ['option without length', Buffer.concat([good.subarray(0, 240), Buffer.from([60])])],
      ['hlen 17', Buffer.from(good).fill(17, 2, 3)],
    ];
    for (const [what, buf] of cases) expect(() => decode(buf), what).toThrow(DhcpDecodeError);
  });

  it('never throws anything but DhcpDecodeError, and never an answer that cannot be encoded, on mutated packets', () => {
    let seed = 7;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const sources = ['ipxe-bios-rom-discover', 'ovmf-pxe-discover', 'ovmf-http-boot-discover', 'ipxe-efi-rom-discover'].map(raw);
    let decoded = 0;
    for (let i = 0; i < 3000; i++) {
      const buf = Buffer.from(sources[i % sources.length]!);
      const cut = rnd(3) === 0 ? buf.subarray(0, rnd(buf.length)) : buf;
      for (let k = 0; k < 1 + rnd(8); k++) if (cut.length) cut[rnd(cut.length)] = rnd(256);
      let p: DhcpPacket;
      try {
        p = decode(cut);
      } catch (err) {
        expect(err).toBeInstanceOf(DhcpDecodeError);
        continue;
      }
      decoded++;
      for (const port of ['dhcp', 'pxe'] as const) {
        const a = proxyAnswer(p, port, ctx);
        if (a.kind === 'reply') expect(encode(a.packet).length).toBeGreaterThanOrEqual(300);
      }
    }
    expect(decoded).toBeGreaterThan(100);
  });
});

describe('proxyDHCP answers', () => {
  it('gives iPXE (ROM or chain-loaded) the HTTP boot.ipxe, so it does not load iPXE again', () => {
    for (const name of ['ipxe-bios-rom-discover', 'ipxe-efi-rom-discover', 'ipxe-snponly-after-ovmf-pxe-discover', 'ipxe-snponly-after-http-boot-discover']) {
      const a = reply(proxyAnswer(packet(name), 'dhcp', ctx));
      expect(a, name).toMatchObject({ client: 'ipxe', bootfile: 'http://192.0.2.1:8080/boot.ipxe', to: 'broadcast' });
    }
  });

  it('gives firmware PXE the iPXE binary for its architecture over TFTP, with the PXE options', () => {
    const req = packet('ovmf-pxe-discover');
    const a = reply(proxyAnswer(req, 'dhcp', ctx));
    expect(a).toMatchObject({ client: 'pxe', arch: 7, bootfile: 'snponly.efi', to: 'broadcast', mac: '52:54:00:e2:01:03' });
    const p = a.packet;
    expect(p).toMatchObject({ op: 2, xid: req.xid, yiaddr: '0.0.0.0', siaddr: '192.0.2.1', flags: 0x8000, file: 'snponly.efi' });
    expect(p.chaddr).toEqual(req.chaddr);
    expect([...p.options.keys()]).toEqual([53, 54, 60, 97, 43, 66, 67]);
    expect(p.options.get(53)).toEqual(Buffer.from([MessageType.OFFER]));
    expect(p.options.get(54)).toEqual(Buffer.from([192, 0, 2, 1]));
    expect(p.options.get(60)!.toString()).toBe('PXEClient');
    expect(p.options.get(97)).toEqual(req.options.get(97));
    expect(p.options.get(43)).toEqual(Buffer.from([6, 1, 8, 255]));
    expect(p.options.get(67)!.toString()).toBe('snponly.efi');

    const bios = packet('ipxe-bios-rom-discover');
    bios.options.delete(Option.USER_CLASS);
    bios.options.delete(Option.IPXE_ENCAP);
    expect(reply(proxyAnswer(bios, 'dhcp', ctx))).toMatchObject({ client: 'pxe', bootfile: 'undionly.kpxe' });
  });

  it('falls back to the next binary the directory has, and ignores the machine when it has none', () => {
    expect(reply(proxyAnswer(packet('ovmf-pxe-discover'), 'dhcp', { ...ctx, haveBinary: (n) => n === 'ipxe.efi' })).bootfile).toBe('ipxe.efi');
    expect(proxyAnswer(packet('ovmf-pxe-discover'), 'dhcp', { ...ctx, haveBinary: () => false })).toMatchObject({ kind: 'ignore', reason: 'none of snponly.efi, ipxe.efi is in assets/ipxe' });
  });

  it('gives UEFI HTTP Boot a URL and vendor class HTTPClient', () => {
    const a = reply(proxyAnswer(packet('ovmf-http-boot-discover'), 'dhcp', ctx));
    expect(a).toMatchObject({ client: 'http', arch: 16, bootfile: 'http://192.0.2.1:8080/assets/ipxe/snponly.efi' });
    expect(a.packet.options.get(60)!.toString()).toBe('HTTPClient');
    expect(a.packet.options.has(43)).toBe(false);
  });

  it('answers the boot-server REQUEST on 4011 with an ACK to the sender', () => {
    const req = packet('ovmf-pxe-discover');
    req.options.set(Option.MESSAGE_TYPE, Buffer.from([MessageType.REQUEST]));
    req.ciaddr = '192.0.2.150';
    const a = reply(proxyAnswer(req, 'pxe', ctx));
    expect(a).toMatchObject({ to: 'sender', bootfile: 'snponly.efi' });
    expect(a.packet.options.get(53)).toEqual(Buffer.from([MessageType.ACK]));
    expect(a.packet.ciaddr).toBe('192.0.2.150');
  });

  it('replies to a relay agent through it', () => {
    const req = packet('ovmf-pxe-discover');
    req.giaddr = '192.0.2.254';
    expect(reply(proxyAnswer(req, 'dhcp', ctx))).toMatchObject({ to: 'relay' });
  });

  it('leaves everyone else to the LAN DHCP server', () => {
    expect(proxyAnswer(packet('linux-udhcpc-discover'), 'dhcp', ctx)).toMatchObject({ kind: 'ignore', reason: expect.stringContaining('not a PXE client') });
    expect(proxyAnswer(packet('ipxe-bios-rom-request'), 'dhcp', ctx)).toMatchObject({ kind: 'ignore', reason: expect.stringContaining('message type 3') });
    expect(proxyAnswer(packet('ovmf-pxe-discover'), 'pxe', ctx)).toMatchObject({ kind: 'ignore' });
    const offer = encode(reply(proxyAnswer(packet('ovmf-pxe-discover'), 'dhcp', ctx)).packet);
    expect(proxyAnswer(decode(offer), 'dhcp', ctx)).toMatchObject({ kind: 'ignore', reason: 'not a request' });
    const ia32 = packet('ovmf-pxe-discover');
    ia32.options.set(Option.CLIENT_ARCH, Buffer.from([0, 6]));
    expect(proxyAnswer(ia32, 'dhcp', ctx)).toMatchObject({ kind: 'ignore', reason: expect.stringContaining('32-bit') });
  });
});


// No Pi can be emulated here: the DISCOVER is a BIOS PXE one (arch 0, UNDI 2.1, as the Pi 4's
// bootloader announces itself) with the Pi's marks written from Raspberry Pi's bootloader
// documentation: option 97 starting with the fourcc "RPi4", or a Raspberry Pi MAC prefix.
describe('the proxyDHCP and a Raspberry Pi 4 bootloader', () => {
  const piDiscover = (mac: string, guid?: Buffer) => {
    const p = packet('ipxe-bios-rom-discover');
    for (const o of [Option.USER_CLASS, Option.IPXE_ENCAP, Option.CLIENT_GUID]) p.options.delete(o);
    p.options.set(Option.VENDOR_CLASS, Buffer.from('PXEClient:Arch:00000:UNDI:002001'));
    p.options.set(Option.CLIENT_ARCH, Buffer.from([0, 0]));
    if (guid) p.options.set(Option.CLIENT_GUID, guid);
    p.chaddr = Buffer.concat([Buffer.from(mac.split(':').map((h) => parseInt(h, 16))), Buffer.alloc(10)]);
    return p;
  };
  const rpiGuid = Buffer.concat([Buffer.from([0]), Buffer.from('RPi4', 'latin1'), Buffer.from([0x11, 0x31, 0xc0, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x12, 0x34, 0xab, 0xcd])]);

  it('answers with the "Raspberry Pi Boot" menu and Genesis as TFTP server, and no boot file', () => {
    for (const p of [piDiscover('02:00:00:0a:00:01', rpiGuid), piDiscover('dc:a6:32:0a:00:01')]) {
      const a = reply(proxyAnswer(p, 'dhcp', ctx));
      expect(a.client).toBe('rpi');
      const o43 = a.packet.options.get(Option.VENDOR_SPECIFIC)!;
      expect(o43.toString('latin1')).toContain('Raspberry Pi Boot');
      // Sub-options in order: discovery control 3, the menu (type 0, its text), the prompt, the end.
      expect([...o43.subarray(0, 8)]).toEqual([6, 1, 3, 9, 20, 0, 0, 17]);
      expect(o43.at(-1)).toBe(255);
      expect(a.packet.siaddr).toBe('192.0.2.1');
      expect(a.packet.options.get(Option.SERVER_NAME)?.toString()).toBe('192.0.2.1');
      expect(a.packet.options.has(Option.BOOTFILE_NAME)).toBe(false);
      expect(a.packet.file).toBe('');
      // The round trip through the codec keeps it.
      expect(decode(encode(a.packet)).options.get(Option.VENDOR_SPECIFIC)).toEqual(o43);
    }
  });

  it('an x86 BIOS machine with the same DISCOVER still gets undionly.kpxe', () => {
    const a = reply(proxyAnswer(piDiscover('52:54:00:0a:00:01'), 'dhcp', ctx));
    expect(a).toMatchObject({ client: 'pxe', bootfile: 'undionly.kpxe' });
  });
});
