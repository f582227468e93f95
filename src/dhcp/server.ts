// The proxyDHCP sockets. Node's dgram cannot bind to a device (SO_BINDTODEVICE) nor tell which
// interface a datagram came in on (IP_PKTINFO), so: requests are received on 0.0.0.0 (broadcasts
// reach only wildcard sockets), and every reply is sent from a socket bound to Genesis's address on
// the PXE interface. The kernel sends a limited broadcast out of the interface owning the source
// address, so a machine on another interface never hears Genesis. SO_REUSEADDR on all sockets
// lets a DHCP server on the same host keep port 67 (dnsmasq needs --bind-interfaces for that).

import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { decode, DhcpDecodeError, encode } from './packet.ts';
import { proxyAnswer, type ProxyAnswer, type ProxyContext } from './proxy.ts';

export type ProxyDhcpOptions = {
  /** Genesis's address on the PXE interface. */
  address: string;
  dhcpPort: number;
  pxePort: number;
  context: () => ProxyContext;
  logger: Logger;
};


function bind(socket: dgram.Socket, address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve(socket.address().port);
    });
  });
}

/**
 * Reports, as events (as the TFTP server reports its transfers): 'answer' with (answer, port, from)
 * after every decision, the answer 'malformed' for a packet that did not decode; `from` is the
 * sender's address (on the PXE port, the client's own lease). The wiring hands them to the
 * boot-step observer, which counts them.
 */
export class ProxyDhcpServer extends EventEmitter {
  private readonly opts: ProxyDhcpOptions;
  private readonly log: Logger;
  private sockets: dgram.Socket[] = [];
  private sender: dgram.Socket | undefined;
  private pxe: dgram.Socket | undefined;
  constructor(opts: ProxyDhcpOptions) {
    super();
    this.opts = opts;
    this.log = opts.logger;
  }

  async start(): Promise<{ dhcp: number; pxe: number }> {
    const make = () => {
      const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
      this.sockets.push(s);
      return s;
    };
    const listen = make();
    const dhcp = await bind(listen, '0.0.0.0', this.opts.dhcpPort);
    this.sender = make();
    await bind(this.sender, this.opts.address, dhcp);
    this.sender.setBroadcast(true);
    this.pxe = make();
    const pxe = await bind(this.pxe, '0.0.0.0', this.opts.pxePort);
    listen.on('message', (m, r) => this.handle(m, r, 'dhcp'));
    this.sender.on('message', (m, r) => this.handle(m, r, 'dhcp'));
    this.pxe.on('message', (m, r) => this.handle(m, r, 'pxe'));
    for (const s of this.sockets) s.on('error', (err) => this.log.error({ err }, 'proxyDHCP socket error'));
    this.log.info({ address: this.opts.address, dhcp, pxe }, 'proxyDHCP listening');
    return { dhcp, pxe };
  }

  private handle(msg: Buffer, from: dgram.RemoteInfo, port: 'dhcp' | 'pxe'): void {
    let answer: ProxyAnswer;
    try {
      answer = proxyAnswer(decode(msg), port, this.opts.context());
    } catch (err) {
      // A malformed packet is the sender's problem; anything else is a bug, but still never
      // allowed to take the process down from a UDP handler.
      this.emit('answer', 'malformed', port, from.address);
      if (err instanceof DhcpDecodeError) this.log.debug({ from: from.address, port, err: err.message, hex: msg.subarray(0, 1500).toString('hex') }, 'malformed DHCP packet dropped');
      else this.log.error({ from: from.address, port, err: (err as Error).message }, 'DHCP request could not be handled; dropped');
      return;
    }
    this.emit('answer', answer, port, from.address);
    if (answer.kind === 'ignore') {
      // The request itself, in hex, for captures (no secrets travel in DHCP).
      this.log.debug({ mac: answer.mac, port, reason: answer.reason, hex: msg.toString('hex') }, 'DHCP request not answered');
      return;
    }
    const bytes = encode(answer.packet);
    const [socket, host, dport] =
      answer.to === 'sender' ? [this.pxe!, from.address, from.port] : answer.to === 'relay' ? [this.sender!, answer.packet.giaddr, 67] : [this.sender!, '255.255.255.255', 68];
    socket.send(bytes, dport, host, (err) => {
      if (err) {
        this.log.warn({ mac: answer.mac, err: err.message }, 'proxyDHCP reply not sent');
        return;
      }
      // Debug: anyone can send PXE requests; answers are counted in metrics and, for known machines, on their timeline.
      this.log.debug({ mac: answer.mac, client: answer.client, arch: answer.arch, bootfile: answer.bootfile, port }, 'proxyDHCP answered');
      this.log.debug({ mac: answer.mac, port, hex: msg.toString('hex') }, 'proxyDHCP request');
    });
  }

  close(): Promise<void> {
    const all = this.sockets.splice(0);
    return Promise.all(all.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(() => undefined);
  }
}
