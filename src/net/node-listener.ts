// A TCP listener for connections nodes keep open to Genesis (the Talos event sink, the kernel-log
// receiver): it tracks the open sockets, so the servers can say how many nodes are connected and
// from where, and closing it ends them all. A socket error is the node's business, never fatal.

import net from 'node:net';
import { sourceAddress } from './address.ts';

export class NodeListener {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly host: string;
  private readonly port: number;

  constructor(opts: { host: string; port: number; maxConnections: number }, onSocket: (socket: net.Socket) => void) {
    this.host = opts.host;
    this.port = opts.port;
    // Keep-alive finds nodes that vanished (power cut) on connections that may idle for hours.
    this.server = net.createServer({ keepAlive: true, keepAliveInitialDelay: 30_000 }, (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {});
      onSocket(socket);
    });
    this.server.maxConnections = opts.maxConnections;
  }

  get connections(): number {
    return this.sockets.size;
  }

  /** Where the open connections come from. */
  connectedAddresses(): string[] {
    return [...this.sockets].map((s) => sourceAddress(s.remoteAddress ?? ''));
  }

  async start(): Promise<{ address: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.host, port: this.port }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const a = this.server.address() as net.AddressInfo;
    return { address: a.address, port: a.port };
  }

  /** Stop accepting and end every open connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}
