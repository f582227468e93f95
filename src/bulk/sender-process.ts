// The bulk sender's own process: it is handed a connected client socket and a file range by
// Genesis (bulk-sender.ts), writes the response head Genesis built and then the bytes, and reports
// how it went. It decides nothing: which file, which range and which headers are Genesis's
// decisions, made on the main thread with the inventory at hand. It runs only this file's code, so
// large reads and their buffers never pause the main thread's event loop or its garbage collector.

import { open } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { readBytesFor, type SendJob, type SendReport, type Taken } from './protocol.ts';

/** A client that takes nothing for this long is dropped (the HTTP server's connectionTimeout). */
const STALLED_MS = 120_000;

/**
 * Read buffers, reused: each download reads into one and writes it out, and takes the next read
 * only once the socket has taken the last write. Buffers allocated per read (what a read stream
 * does) waited for the garbage collector: 200 downloads at once held over 200 MB here.
 */
const spare = new Map<number, Buffer[]>();
const SPARE_MAX = 64;
/** Downloads being sent now: the next one's buffer size depends on it (readBytesFor). */
let active = 0;

function takeBuffer(size: number): Buffer {
  return spare.get(size)?.pop() ?? Buffer.allocUnsafe(size);
}

function giveBack(buffer: Buffer): void {
  const pool = spare.get(buffer.length) ?? [];
  if (pool.length < SPARE_MAX) pool.push(buffer);
  spare.set(buffer.length, pool);
}

function write(socket: Socket, data: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => socket.write(data, (err) => (err ? reject(err) : resolve())));
}

async function send(job: SendJob, socket: Socket): Promise<SendReport> {
  let bytes = 0;
  socket.setTimeout(STALLED_MS, () => socket.destroy(new Error('the client took nothing for 120 s')));
  // A client gone mid-write surfaces as the write's error; this keeps it from being thrown again.
  socket.on('error', () => {});
  const buffer = takeBuffer(readBytesFor(active));
  active++;
  try {
    await write(socket, job.head);
    if (job.end >= job.start) {
      const file = await open(job.path, 'r');
      try {
        for (let at = job.start; at <= job.end; ) {
          const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, job.end - at + 1), at);
          if (bytesRead === 0) throw new Error('the file is shorter than the head said');
          await write(socket, buffer.subarray(0, bytesRead));
          at += bytesRead;
          bytes += bytesRead;
        }
      } finally {
        await file.close();
      }
    }
    // A FIN once every byte is written: the head said Connection: close.
    await new Promise<void>((resolve) => socket.end(resolve));
    return { id: job.id, ok: true, bytes };
  } catch (err) {
    socket.destroy();
    return { id: job.id, ok: false, bytes, error: err instanceof Error ? err.message : String(err) };
  } finally {
    active--;
    giveBack(buffer);
  }
}

process.on('message', (job: SendJob, socket: Socket | undefined) => {
  if (!socket) {
    process.send?.({ id: job.id, ok: false, bytes: 0, error: 'no socket arrived with the job' } satisfies SendReport);
    return;
  }
  process.send?.({ id: job.id, taken: true } satisfies Taken);
  void send(job, socket).then((report) => process.send?.(report));
});

// Genesis going away (its IPC channel closing) ends this process: nothing here outlives it.
process.on('disconnect', () => process.exit(0));
