// A minimal hand-driven TFTP peer for the cases no packaged client can produce on purpose:
// aborting after an OACK, sending from a wrong TID, sending garbage, or going silent.

import dgram from 'node:dgram';
import { decode, type Packet } from '../../src/tftp/packet.ts';

export class RawPeer {
  readonly socket = dgram.createSocket('udp4');
  private readonly queue: Array<{ packet: Packet; port: number; raw: Buffer }> = [];
  private waiter: (() => void) | undefined;

  async open(): Promise<this> {
    this.socket.on('message', (raw, rinfo) => {
      this.queue.push({ packet: decode(raw), port: rinfo.port, raw });
      this.waiter?.();
    });
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
    return this;
  }

  send(buf: Buffer, port: number): void {
    this.socket.send(buf, port, '127.0.0.1');
  }

  /** The next packet that arrives; the time limit only guards against a hung test. */
  async next(limitMs = 10_000): Promise<{ packet: Packet; port: number; raw: Buffer }> {
    const deadline = Date.now() + limitMs;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no packet arrived');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.queue.shift()!;
  }

  close(): void {
    this.socket.close();
  }
}
