// A TCP listener for connections nodes keep open to Genesis (the Talos event sink, the kernel-log
// receiver): it tracks the open sockets, so the servers can say how many nodes are connected and
// from where, and closing it ends them all. A socket error is the node's business, never fatal.

import net from 'node:net';
import { sourceAddress } from './address.ts';

export type NodeListenerOptions = {
  host: string;
  port: number;
  maxConnections: number;
  /** Connections one source address may hold open: one host cannot take every slot. Default 4. */
  maxPerAddress?: number;
  /** A connection that has sent nothing for this long is closed (ms). Default 30 s. */
  firstByteMs?: number;
  /** A connection with no traffic either way for this long is closed (ms); a node reconnects when it has something to say. Default 10 min. */
  idleMs?: number;
};

export type RefusedConnection = { address: string; reason: 'per-address-cap' | 'silent' | 'idle' };

export class NodeListener {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly perAddress = new Map<string, number>();
  private readonly host: string;
  private readonly port: number;

  constructor(opts: NodeListenerOptions, onSocket: (socket: net.Socket) => void, onRefused: (r: RefusedConnection) => void = () => {}) {
    this.host = opts.host;
    this.port = opts.port;
    const maxPerAddress = opts.maxPerAddress ?? 4;
    const firstByteMs = opts.firstByteMs ?? 30_000;
    const idleMs = opts.idleMs ?? 600_000;
    // Keep-alive finds nodes that vanished (power cut) on connections that may idle for hours.
    this.server = net.createServer({ keepAlive: true, keepAliveInitialDelay: 30_000 }, (socket) => {
      const address = sourceAddress(socket.remoteAddress ?? '');
      socket.on('error', () => {});
      const held = this.perAddress.get(address) ?? 0;
      if (held >= maxPerAddress) {
        onRefused({ address, reason: 'per-address-cap' });
        socket.destroy();
        return;
      }
      this.perAddress.set(address, held + 1);
      this.sockets.add(socket);
      socket.on('close', () => {
        this.sockets.delete(socket);
        const n = (this.perAddress.get(address) ?? 1) - 1;
        if (n > 0) this.perAddress.set(address, n);
        else this.perAddress.delete(address);
      });
      // A connection that never speaks holds a slot for nothing; one that falls silent is ended
      // (Talos buffers its events and reconnects when it has more).
      socket.setTimeout(firstByteMs);
      socket.on('timeout', () => {
        if (socket.bytesRead === 0) {
          onRefused({ address, reason: 'silent' });
          socket.destroy();
        } else if (socket.timeout === firstByteMs && firstByteMs !== idleMs) {
          socket.setTimeout(idleMs);
        } else {
          onRefused({ address, reason: 'idle' });
          socket.destroy();
        }
      });
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
