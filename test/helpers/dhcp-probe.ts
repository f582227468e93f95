// A DHCP client for the router-recipe tests, run inside a test network namespace: it broadcasts
// one captured DISCOVER (a fixture, with the broadcast flag set so any server answers by
// broadcast) from port 68 and prints the first OFFER as JSON: next-server and boot file name.
//
//   node test/helpers/dhcp-probe.ts <fixture> [--no-ipxe | --arch N]
//
// --no-ipxe drops the user class (77) and iPXE's options (175): the firmware's own DISCOVER.
// --arch N sets the client architecture (option 93, and the Arch in a PXEClient/HTTPClient vendor
// class): OVMF's HTTP Boot DISCOVER as an arm64 machine's (19) sends it.

import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decode, encode, MessageType, Option } from '../../src/dhcp/packet.ts';

const [fixture, flag, value] = process.argv.slice(2);
const p = decode(Buffer.from(readFileSync(path.resolve(import.meta.dirname, `../fixtures/dhcp/${fixture}.hex`), 'utf8').trim(), 'hex'));
if (flag === '--no-ipxe') {
  p.options.delete(Option.USER_CLASS);
  p.options.delete(175);
}
if (flag === '--arch') {
  const arch = Number(value);
  p.options.set(Option.CLIENT_ARCH, Buffer.from([arch >> 8, arch & 0xff]));
  const vendor = p.options.get(Option.VENDOR_CLASS)?.toString();
  if (vendor) p.options.set(Option.VENDOR_CLASS, Buffer.from(vendor.replace(/Arch:\d{5}/, `Arch:${String(arch).padStart(5, '0')}`)));
}
p.flags = 0x8000;
p.xid = (Math.random() * 2 ** 32) >>> 0;

const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
socket.on('message', (msg) => {
  let reply;
  try {
    reply = decode(msg);
  } catch {
    return;
  }
  if (reply.xid !== p.xid || reply.options.get(Option.MESSAGE_TYPE)?.[0] !== MessageType.OFFER) return;
  const vendorClass = reply.options.get(Option.VENDOR_CLASS)?.toString() ?? null;
  // The boot file as firmware reads it: the header's file field, else option 67 (dnsmasq sends
  // only option 67 when the client asks for it, as OVMF does).
  const file = reply.file || (reply.options.get(Option.BOOTFILE_NAME)?.toString().replace(/\0+$/, '') ?? '');
  process.stdout.write(JSON.stringify({ siaddr: reply.siaddr, file, yiaddr: reply.yiaddr, vendorClass }) + '\n');
  socket.close();
  clearInterval(resend);
  clearTimeout(giveUp);
});
socket.bind(68, '0.0.0.0', () => {
  socket.setBroadcast(true);
  const send = () => socket.send(encode(p), 67, '255.255.255.255');
  send();
  resend = setInterval(send, 1000);
});
let resend: NodeJS.Timeout;
// Bounded: a server that never answers ends the probe, and the test reports it.
const giveUp = setTimeout(() => {
  process.stderr.write('no OFFER in 10 s\n');
  process.exit(1);
}, 10_000);
