// The floor for a lock-step TFTP server in Node: the smallest responder that can serve one file
// to atftp (OACK for blksize, then one DATA per ACK, no retransmission, no checks). Comparing
// Genesis with it separates the cost of Genesis's own code from Node's per-datagram cost.
//
//   node bench/node-udp-floor.ts <file> [port=16990]
//   atftp --get -r x -l /tmp/out --option "blksize 1468" 127.0.0.1 16990
//
// Measured with every process pinned to one CPU (taskset -c 0) so scheduler placement does not
// dominate: see the README's performance section.

import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';

const data = readFileSync(process.argv[2]!);
const port = Number(process.argv[3] ?? 16990);
const BS = 1468;
const last = Math.floor(data.length / BS) + 1;

function block(n: number): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(3, 0);
  head.writeUInt16BE(n & 0xffff, 2);
  return Buffer.concat([head, data.subarray((n - 1) * BS, Math.min(n * BS, data.length))]);
}

const listener = dgram.createSocket('udp4');
listener.on('message', (msg, peer) => {
  if (msg.readUInt16BE(0) !== 1) return;
  const t = dgram.createSocket('udp4');
  let n = 0;
  t.on('message', (m) => {
    if (m.readUInt16BE(0) !== 4 || m.readUInt16BE(2) !== (n & 0xffff)) return;
    if (n === last) return t.close();
    n++;
    t.send(block(n), peer.port, peer.address);
  });
  t.bind(0, () => t.send(Buffer.concat([Buffer.from([0, 6]), Buffer.from(`blksize\0${BS}\0`)]), peer.port, peer.address));
});
listener.bind(port, '127.0.0.1');
