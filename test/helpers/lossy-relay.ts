// A UDP relay that drops a fixed share of packets each way, for TFTP under loss.
// Clients talk to the relay's port; the relay forwards their first packet to the server's
// listening port and later ones to the transfer port (TID) the server answered from.
// Drops come from a seeded generator, so a run is reproducible.

import dgram from 'node:dgram';

export class LossyRelay {
  private readonly listen = dgram.createSocket('udp4');
  private readonly upstreams = new Map<string, { socket: dgram.Socket; serverPort: number }>();
  private seed: number;
  readonly lossPercent: number;
  private readonly target: { host: string; port: number };
  dropped = { toServer: 0, toClient: 0 };

  constructor(target: { host: string; port: number }, lossPercent: number, seed = 42) {
    this.target = target;
    this.lossPercent = lossPercent;
    this.seed = seed;
  }

  private drop(): boolean {
    this.seed = (Math.imul(this.seed, 1664525) + 1013904223) >>> 0;
    return (this.seed >>> 8) % 10000 < this.lossPercent * 100;
  }

  async start(): Promise<number> {
    this.listen.on('message', (msg, rinfo) => {
      const key = `${rinfo.address}:${rinfo.port}`;
      let up = this.upstreams.get(key);
      if (!up) {
        const socket = dgram.createSocket('udp4');
        const entry = { socket, serverPort: this.target.port };
        socket.on('message', (reply, from) => {
          entry.serverPort = from.port;
          if (this.drop()) return void this.dropped.toClient++;
          this.listen.send(reply, rinfo.port, rinfo.address);
        });
        socket.bind(0, '127.0.0.1');
        this.upstreams.set(key, entry);
        up = entry;
      }
      if (this.drop()) return void this.dropped.toServer++;
      up.socket.send(msg, up.serverPort, this.target.host);
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
