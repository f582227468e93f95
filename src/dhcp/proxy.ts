// The proxyDHCP decision (PXE 2.1 spec, "proxyDHCP"), pure: a request in, the reply to send (or
// why none) out. Genesis never offers an address (yiaddr stays 0.0.0.0); the LAN's DHCP server
// does that. It answers only PXE and UEFI HTTP Boot clients, and tells each where to boot from:
//   firmware PXE (BIOS, UEFI)  → TFTP: the iPXE binary for its architecture (option 93)
//   UEFI HTTP Boot             → an http:// URL of that binary (vendor class HTTPClient)
//   iPXE itself (77 / 175)     → the HTTP boot.ipxe URL, so iPXE does not load iPXE again
//   arm64 UEFI PXE, no arm64 iPXE but Debian's network GRUB in assets/grub → that (grub/config.ts)
//   a Raspberry Pi 4's EEPROM bootloader → the "Raspberry Pi Boot" PXE menu it looks for, and
//                                Genesis as TFTP server (it then asks for <serial>/start4.elf)

import { GRUB_NETBOOT_ARM64, ipxeBinaryFor } from '../ipxe/binaries.ts';
import {
  BOOTREPLY,
  BOOTREQUEST,
  clientArch,
  clientMac,
  messageType,
  MessageType,
  Option,
  userClasses,
  vendorClass,
  type DhcpPacket,
} from './packet.ts';

export type ProxyContext = {
  /** Genesis's address on the PXE interface: server identifier and TFTP next-server. */
  serverIp: string;
  /** Where machines reach the HTTP server, e.g. http://192.0.2.1:8080 */
  baseUrl: string;
  /** Is this iPXE binary present in assets/ipxe (served by TFTP and HTTP)? */
  haveBinary: (name: string) => boolean;
  /** Is Debian's network GRUB for arm64 in assets/grub (the fallback for arm64 UEFI PXE)? */
  haveGrubArm64?: () => boolean;
};

export type ClientKind = 'ipxe' | 'pxe' | 'http' | 'rpi';

/** The PXE menu entry a Raspberry Pi's bootloader requires in option 43 before it network-boots. */
export const RPI_BOOT_MENU = 'Raspberry Pi Boot';
/** IEEE OUIs of Raspberry Pi boards' Ethernet (Raspberry Pi Foundation and Raspberry Pi Trading). */
const RPI_OUIS = ['b8:27:eb', 'dc:a6:32', 'e4:5f:01', 'd8:3a:dd', '28:cd:c1', '2c:cf:67'];

/**
 * A Raspberry Pi 4's bootloader announces itself as BIOS PXE (arch 0, UNDI 2.1), like an x86
 * machine. Its client GUID (option 97) starts with the fourcc "RPi4" (0x34695052, little-endian)
 * by default (bootloader DHCP_OPTION97=1); older bootloaders repeat the serial number, so the
 * board's MAC vendor prefix is the other sign.
 */
export function isRaspberryPi(req: DhcpPacket, mac: string): boolean {
  const guid = req.options.get(Option.CLIENT_GUID);
  if (guid && guid.length >= 5 && guid.subarray(1, 5).toString('latin1') === 'RPi4') return true;
  if (guid && guid.length >= 4 && guid.subarray(0, 4).toString('latin1') === 'RPi4') return true;
  return RPI_OUIS.includes(mac.slice(0, 8));
}

/** Option 43 for a Pi: discovery control 3 (use this offer's server), the menu item and a zero-second prompt. */
function rpiVendorOptions(): Buffer {
  const item = Buffer.from(RPI_BOOT_MENU, 'latin1');
  const prompt = Buffer.from('PXE', 'latin1');
  return Buffer.concat([
    Buffer.from([6, 1, 3]),
    Buffer.from([9, item.length + 3, 0, 0, item.length]),
    item,
    Buffer.from([10, prompt.length + 1, 0]),
    prompt,
    Buffer.from([255]),
  ]);
}

export type ProxyAnswer =
  | {
      kind: 'reply';
      packet: DhcpPacket;
      /** broadcast to 255.255.255.255:68, back to a relay (giaddr:67), or to the sender (port 4011). */
      to: 'broadcast' | 'relay' | 'sender';
      mac: string;
      client: ClientKind;
      arch: number;
      bootfile: string;
    }
  /** `uboot`: a U-Boot board asked (vendor class U-Boot.*, or client arch 21/22): not answered, but worth knowing. */
  | { kind: 'ignore'; reason: string; mac?: string; uboot?: true };

/** U-Boot's own DHCP: it ignores proxy offers, so the LAN's DHCP server must name the file. */
export const UBOOT_IGNORES_PROXY = 'U-Boot ignores proxyDHCP offers: the LAN DHCP server must set next-server to Genesis and the file name to boot.scr.uimg';

/** `port`: which socket it came in on; 67 gets DISCOVERs, 4011 the boot-server REQUESTs. */
export function proxyAnswer(req: DhcpPacket, port: 'dhcp' | 'pxe', ctx: ProxyContext): ProxyAnswer {
  const mac = clientMac(req);
  if (req.op !== BOOTREQUEST) return { kind: 'ignore', reason: 'not a request', mac };
  if (!mac) return { kind: 'ignore', reason: `hardware type ${req.htype}/${req.hlen} is not Ethernet` };
  const type = messageType(req);
  const wanted = port === 'dhcp' ? [MessageType.DISCOVER] : [MessageType.REQUEST, MessageType.INFORM];
  if (type === undefined || !(wanted as number[]).includes(type)) {
    return { kind: 'ignore', reason: `message type ${type ?? 'none'} is not answered on the ${port === 'dhcp' ? 'DHCP' : 'PXE'} port`, mac };
  }
  const vendor = vendorClass(req);
  // RFC 4578 / IANA option 93: 21 and 22 are 32- and 64-bit ARM U-Boot.
  if (vendor.startsWith('U-Boot') || clientArch(req) === 21 || clientArch(req) === 22) return { kind: 'ignore', reason: UBOOT_IGNORES_PROXY, mac, uboot: true };
  const http = vendor.startsWith('HTTPClient');
  if (!http && !vendor.startsWith('PXEClient')) return { kind: 'ignore', reason: 'not a PXE client (vendor class is not PXEClient/HTTPClient)', mac };
  const arch = clientArch(req) ?? 0;

  let client: ClientKind;
  let bootfile: string;
  if (arch === 0 && !http && isRaspberryPi(req, mac)) {
    // The Pi asks Genesis's TFTP for <serial>/start4.elf and the rest (uboot/raspberry-pi.ts).
    client = 'rpi';
    bootfile = '';
  } else if (userClasses(req).includes('iPXE') || req.options.has(Option.IPXE_ENCAP)) {
    client = 'ipxe';
    bootfile = `${ctx.baseUrl}/boot.ipxe`;
  } else {
    const choice = ipxeBinaryFor(arch);
    if (choice.kind === 'unsupported') return { kind: 'ignore', reason: choice.reason, mac };
    const name = choice.candidates.find(ctx.haveBinary);
    client = http || choice.kind === 'http' ? 'http' : 'pxe';
    if (name) bootfile = client === 'http' ? `${ctx.baseUrl}/assets/ipxe/${name}` : name;
    // GRUB takes its config from its prefix on the TFTP server it came from, so only PXE can use it.
    else if (client === 'pxe' && choice.arch === 'arm64' && ctx.haveGrubArm64?.()) bootfile = GRUB_NETBOOT_ARM64;
    else {
      const fallback = choice.arch === 'arm64' && client === 'pxe' ? ` (nor ${GRUB_NETBOOT_ARM64} in assets)` : '';
      return { kind: 'ignore', reason: `none of ${choice.candidates.join(', ')} is in assets/ipxe${fallback}`, mac };
    }
  }

  const options = new Map<number, Buffer>();
  options.set(Option.MESSAGE_TYPE, Buffer.from([port === 'dhcp' ? MessageType.OFFER : MessageType.ACK]));
  options.set(Option.SERVER_ID, ipBytes(ctx.serverIp));
  options.set(Option.VENDOR_CLASS, Buffer.from(client === 'http' ? 'HTTPClient' : 'PXEClient'));
  // PXE requires the client GUID echoed back; firmware ignores offers without it.
  const guid = req.options.get(Option.CLIENT_GUID);
  if (guid) options.set(Option.CLIENT_GUID, guid);
  // PXE_DISCOVERY_CONTROL = 8: take the boot file from this offer, skip boot-server discovery.
  if (client === 'rpi') options.set(Option.VENDOR_SPECIFIC, rpiVendorOptions());
  else if (client !== 'http') options.set(Option.VENDOR_SPECIFIC, Buffer.from([6, 1, 8, 255]));
  if (client === 'pxe' || client === 'rpi') options.set(Option.SERVER_NAME, Buffer.from(ctx.serverIp));
  if (bootfile) options.set(Option.BOOTFILE_NAME, Buffer.from(bootfile));

  const packet: DhcpPacket = {
    op: BOOTREPLY,
    htype: req.htype,
    hlen: req.hlen,
    hops: 0,
    xid: req.xid,
    secs: 0,
    flags: req.flags,
    ciaddr: port === 'pxe' ? req.ciaddr : '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: ctx.serverIp,
    giaddr: req.giaddr,
    chaddr: req.chaddr,
    sname: '',
    // The header field holds 127 bytes; a longer URL travels in option 67 only.
    file: Buffer.byteLength(bootfile) <= 127 ? bootfile : '',
    options,
  };
  const to = port === 'pxe' ? 'sender' : req.giaddr !== '0.0.0.0' ? 'relay' : 'broadcast';
  return { kind: 'reply', packet, to, mac, client, arch, bootfile };
}

function ipBytes(addr: string): Buffer {
  return Buffer.from(addr.split('.').map(Number));
}
