// Large downloads sent by the kernel (sendfile) from a thread of the sendfile addon's own: the HTTP
// route decides what to send and builds the response head on the main thread, then hands over the
// client's connection, a file and a byte range (the same handOff as the sender process,
// bulk-sender.ts). The addon takes its own copy of the connection, so this side closes its handle
// at once; the bytes go from the page cache to the socket without passing through this process's
// memory or its event loop, which keeps answering boot scripts, configs and the API meanwhile.

import type { Socket } from 'node:net';
import type { DownloadSender, SendJob, SendReport } from './protocol.ts';
import type { SendfileAddon, SendfileHandle } from './sendfile-addon.ts';

export type SendfileSenderOptions = {
  addon: SendfileAddon;
  /** A client that takes nothing for this long is dropped (the HTTP server's connection timeout). */
  stalledMs?: number;
  /** Downloads held at once; more are served by the main process meanwhile (two descriptors each). */
  maxInFlight?: number;
};

/** A connected socket's descriptor: a TCP handle's, on Linux. */
type WithHandle = { _handle?: { fd?: unknown } | null };

const DEFAULT_MAX_IN_FLIGHT = 4096;

export class SendfileSender implements DownloadSender {
  private readonly pending = new Map<number, (report: SendReport) => void>();
  private readonly addon: SendfileAddon;
  private readonly handle: SendfileHandle;
  private readonly maxInFlight: number;
  private closed = false;

  constructor(opts: SendfileSenderOptions) {
    this.addon = opts.addon;
    this.maxInFlight = opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.handle = this.addon.create((id, bytes, error) => this.settle(id, bytes, error), opts.stalledMs ?? 120_000);
  }

  /**
   * Hands `socket` over with a job; resolves when its last byte is sent or the download fails.
   * Undefined when it cannot be taken (closed, full, no descriptor, the file gone): the caller
   * serves the response itself, and the socket is untouched.
   */
  handOff(socket: Socket, job: Omit<SendJob, 'id'>): Promise<SendReport> | undefined {
    if (this.closed || this.pending.size >= this.maxInFlight) return undefined;
    const fd = (socket as unknown as WithHandle)._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return undefined;
    let id: number;
    try {
      id = this.addon.send(this.handle, fd, job.path, Buffer.from(job.head, 'latin1'), job.start, job.end - job.start + 1);
    } catch {
      return undefined;
    }
    // The addon holds its own copy now: closing ours leaves the connection open until it is done.
    socket.destroy();
    return new Promise<SendReport>((resolve) => this.pending.set(id, resolve));
  }

  /** Stops the thread; downloads it was sending are cut off (shutdown does not wait for them). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.addon.stop(this.handle);
    for (const [id, resolve] of this.pending) resolve({ id, ok: false, bytes: 0, error: 'Genesis is shutting down' });
    this.pending.clear();
  }

  private settle(id: number, bytes: number, error: string | undefined): void {
    const resolve = this.pending.get(id);
    if (!resolve) return;
    this.pending.delete(id);
    resolve(error === undefined ? { id, ok: true, bytes } : { id, ok: false, bytes, error });
  }
}
