// DHCP/BOOTP packets (RFC 2131, 2132), decoded and encoded without sockets. Our own codec rather
// than the `dhcp` package: that one drops options it has no table entry for, and PXE lives in
// exactly those (77 user class, 93 client arch, 94 NIC id, 97 client GUID, 175 iPXE). Options are
// kept as raw bytes by code; repeated codes are concatenated (RFC 3396).

export class DhcpDecodeError extends Error {}

export const MAGIC_COOKIE = 0x63825363;
export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;

export const MessageType = { DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8 } as const;

export const Option = {
  PAD: 0,
  SERVER_NAME: 66,
  BOOTFILE_NAME: 67,
  VENDOR_SPECIFIC: 43,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_LIST: 55,
  MAX_MESSAGE_SIZE: 57,
  VENDOR_CLASS: 60,
  USER_CLASS: 77,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_GUID: 97,
  IPXE_ENCAP: 175,
  END: 255,
} as const;

export type DhcpPacket = {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** The 16-byte client hardware address field. */
  chaddr: Buffer;
  sname: string;
  file: string;
  options: Map<number, Buffer>;
};

const HEADER = 236;
const MIN_LENGTH = HEADER + 4; // header + magic cookie, no options

const ip = (b: Buffer, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
const cstring = (b: Buffer) => {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('latin1');
};

export function decode(buf: Buffer): DhcpPacket {
  if (buf.length < MIN_LENGTH) throw new DhcpDecodeError(`${buf.length} bytes is shorter than a DHCP header`);
  if (buf.readUInt32BE(HEADER) !== MAGIC_COOKIE) throw new DhcpDecodeError('no DHCP magic cookie (plain BOOTP is not served)');
  const hlen = buf[2]!;
  if (hlen > 16) throw new DhcpDecodeError(`hardware address length ${hlen} is more than 16`);
  // Fragments are collected and joined once per code at the end: joining at each fragment would
  // copy quadratically (a 64 KB packet of one-byte fragments of one option is 21,000 copies of a
  // growing buffer, seconds of CPU on one event loop). Linear in the packet: at most one join per
  // distinct code.
  const fragments = new Map<number, Buffer[]>();
  let at = MIN_LENGTH;
  while (at < buf.length) {
    const code = buf[at]!;
    if (code === Option.PAD) {
      at++;
      continue;
    }
    if (code === Option.END) break;
    if (at + 1 >= buf.length) throw new DhcpDecodeError(`option ${code} has no length byte`);
    const len = buf[at + 1]!;
    if (at + 2 + len > buf.length) throw new DhcpDecodeError(`option ${code} runs past the end of the packet`);
    const value = buf.subarray(at + 2, at + 2 + len);
    const list = fragments.get(code);
    if (list) list.push(value);
    else fragments.set(code, [value]);
    at += 2 + len;
  }
  const options = new Map<number, Buffer>();
  for (const [code, parts] of fragments) options.set(code, parts.length === 1 ? Buffer.from(parts[0]!) : Buffer.concat(parts));
  return {
    op: buf[0]!,
    htype: buf[1]!,
    hlen,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: ip(buf, 12),
    yiaddr: ip(buf, 16),
    siaddr: ip(buf, 20),
    giaddr: ip(buf, 24),
    chaddr: Buffer.from(buf.subarray(28, 44)),
    sname: cstring(buf.subarray(44, 108)),
    file: cstring(buf.subarray(108, 236)),
    options,
  };
}

function putIp(buf: Buffer, at: number, addr: string): void {
  const parts = addr.split('.').map(Number);
  for (let i = 0; i < 4; i++) buf[at + i] = parts[i]!;
}

/** Encode a packet; options are written in insertion order, values over 255 bytes split (RFC 3396). */
export function encode(p: DhcpPacket): Buffer {
  if (Buffer.byteLength(p.sname, 'latin1') > 63 || Buffer.byteLength(p.file, 'latin1') > 127) {
    throw new RangeError('sname or file too long for the BOOTP header');
  }
  const head = Buffer.alloc(MIN_LENGTH);
  head[0] = p.op;
  head[1] = p.htype;
  head[2] = p.hlen;
  head[3] = p.hops;
  head.writeUInt32BE(p.xid >>> 0, 4);
  head.writeUInt16BE(p.secs, 8);
  head.writeUInt16BE(p.flags, 10);
  putIp(head, 12, p.ciaddr);
  putIp(head, 16, p.yiaddr);
  putIp(head, 20, p.siaddr);
  putIp(head, 24, p.giaddr);
  p.chaddr.copy(head, 28, 0, 16);
  head.write(p.sname, 44, 63, 'latin1');
  head.write(p.file, 108, 127, 'latin1');
  head.writeUInt32BE(MAGIC_COOKIE, HEADER);
  const parts: Buffer[] = [head];
  for (const [code, value] of p.options) {
    for (let off = 0; off === 0 || off < value.length; off += 255) {
      const chunk = value.subarray(off, off + 255);
      parts.push(Buffer.from([code, chunk.length]), chunk);
    }
  }
  parts.push(Buffer.from([Option.END]));
  const out = Buffer.concat(parts);
  // Some old PXE ROMs drop replies shorter than a BOOTP packet (300 bytes): pad.
  return out.length < 300 ? Buffer.concat([out, Buffer.alloc(300 - out.length)]) : out;
}

/** The client MAC from chaddr (Ethernet only), as aa:bb:cc:dd:ee:ff. */
export function clientMac(p: DhcpPacket): string | undefined {
  if (p.htype !== 1 || p.hlen !== 6) return undefined;
  return [...p.chaddr.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export function messageType(p: DhcpPacket): number | undefined {
  const v = p.options.get(Option.MESSAGE_TYPE);
  return v?.length === 1 ? v[0] : undefined;
}

/** Option 93: the first architecture type the client lists (RFC 4578). */
export function clientArch(p: DhcpPacket): number | undefined {
  const v = p.options.get(Option.CLIENT_ARCH);
  return v && v.length >= 2 ? v.readUInt16BE(0) : undefined;
}

export function vendorClass(p: DhcpPacket): string {
  return p.options.get(Option.VENDOR_CLASS)?.toString('latin1') ?? '';
}

/** Option 77 holds one or more length-prefixed class names (RFC 3004); iPXE sends a bare "iPXE". */
export function userClasses(p: DhcpPacket): string[] {
  const v = p.options.get(Option.USER_CLASS);
  if (!v?.length) return [];
  const out: string[] = [];
  let at = 0;
  while (at < v.length) {
    const len = v[at]!;
    if (len === 0 || at + 1 + len > v.length) return [v.toString('latin1')]; // not RFC 3004 framed
    out.push(v.subarray(at + 1, at + 1 + len).toString('latin1'));
    at += 1 + len;
  }
  return out;
}
