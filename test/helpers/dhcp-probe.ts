// A DHCP client for the router-recipe tests, run inside a test network namespace: it broadcasts
// one captured DISCOVER (a fixture, with the broadcast flag set so any server answers by
// broadcast) from port 68 and prints the first OFFER as JSON: next-server and boot file name.
//
//   node test/helpers/dhcp-probe.ts <fixture> [--no-ipxe]
//
// --no-ipxe drops the user class (77) and iPXE's options (175): the firmware's own DISCOVER.

import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decode, encode, MessageType, Option } from '../../src/dhcp/packet.ts';

const [fixture, flag] = process.argv.slice(2);
const p = decode(Buffer.from(readFileSync(path.resolve(import.meta.dirname, `../fixtures/dhcp/${fixture}.hex`), 'utf8').trim(), 'hex'));
if (flag === '--no-ipxe') {
  p.options.delete(Option.USER_CLASS);
  p.options.delete(175);
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
  process.stdout.write(JSON.stringify({ siaddr: reply.siaddr, file: reply.file, yiaddr: reply.yiaddr }) + '\n');
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
