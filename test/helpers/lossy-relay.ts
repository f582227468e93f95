// A UDP relay that drops a share of packets each way, for TFTP under loss.
// Clients talk to the relay's port; the relay forwards requests (RRQ/WRQ) to the server's
// listening port, as a client on the LAN sends them, and every other packet to the transfer port
// (TID) the server answered from. Drops come from a seeded generator, so a run's choices are
// reproducible, or from a plan that names exactly which packets to drop.

import dgram from 'node:dgram';

export type Direction = 'toServer' | 'toClient';
/** Decides one packet: `index` counts packets in that direction for that client port, from 0. */
export type DropPlan = (direction: Direction, index: number, packet: Buffer) => boolean;

const RRQ = 1;
const WRQ = 2;

export class LossyRelay {
  private readonly listen = dgram.createSocket('udp4');
  private readonly upstreams = new Map<string, { socket: dgram.Socket; serverPort: number; sent: Record<Direction, number> }>();
  private seed: number;
  readonly lossPercent: number;
  private readonly target: { host: string; port: number };
  private readonly plan: DropPlan | undefined;
  private readonly repeatsToTransferPort: boolean;
  dropped = { toServer: 0, toClient: 0 };

  /**
   * `plan`: drop exactly the packets it names instead of a share. `repeatsToTransferPort`: deliver
   * a repeated request to the port the server last answered from, as some NATs do.
   */
  constructor(target: { host: string; port: number }, lossPercent: number, seed = 42, options: { plan?: DropPlan; repeatsToTransferPort?: boolean } = {}) {
    this.target = target;
    this.lossPercent = lossPercent;
    this.seed = seed;
    this.plan = options.plan;
    this.repeatsToTransferPort = options.repeatsToTransferPort ?? false;
  }

  private drop(direction: Direction, index: number, packet: Buffer): boolean {
    if (this.plan) return this.plan(direction, index, packet);
    this.seed = (Math.imul(this.seed, 1664525) + 1013904223) >>> 0;
    return (this.seed >>> 8) % 10000 < this.lossPercent * 100;
  }

  async start(): Promise<number> {
    this.listen.on('message', (msg, rinfo) => {
      const key = `${rinfo.address}:${rinfo.port}`;
      let up = this.upstreams.get(key);
      if (!up) {
        const socket = dgram.createSocket('udp4');
        const entry = { socket, serverPort: this.target.port, sent: { toServer: 0, toClient: 0 } };
        socket.on('message', (reply, from) => {
          entry.serverPort = from.port;
          if (this.drop('toClient', entry.sent.toClient++, reply)) return void this.dropped.toClient++;
          this.listen.send(reply, rinfo.port, rinfo.address);
        });
        socket.bind(0, '127.0.0.1');
        this.upstreams.set(key, entry);
        up = entry;
      }
      if (this.drop('toServer', up.sent.toServer++, msg)) return void this.dropped.toServer++;
      // A repeated request goes to the listening port like the first, as on a LAN: the client has
      // heard nothing from the transfer port yet.
      const opcode = msg.length >= 2 ? msg.readUInt16BE(0) : 0;
      const request = opcode === RRQ || opcode === WRQ;
      const port = request && !this.repeatsToTransferPort ? this.target.port : up.serverPort;
      up.socket.send(msg, port, this.target.host);
    });
    await new Promise<void>((resolve) => this.listen.bind(0, '127.0.0.1', resolve));
    return this.listen.address().port;
  }

  close(): void {
    this.listen.close();
    for (const u of this.upstreams.values()) u.socket.close();
    this.upstreams.clear();
  }
}
