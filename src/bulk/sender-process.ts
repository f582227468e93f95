// The bulk sender's own process: it is handed a connected client socket and a file range by
// Genesis (bulk-sender.ts), writes the response head Genesis built and then the bytes, and reports
// how it went. It decides nothing: which file, which range and which headers are Genesis's
// decisions, made on the main thread with the inventory at hand. It runs only this file's code, so
// large reads and their buffers never pause the main thread's event loop or its garbage collector.

import { open, type FileHandle } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { readBytesFor, type SendJob, type SendReport, type Taken } from './protocol.ts';
import { SharedFiles, type FileIdentity } from './shared-files.ts';

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

/** Files many clients download at once, held in memory for them (shared-files.ts). */
const shared = new SharedFiles();

/** Bytes per write from a file held in memory: the socket's callback paces the next. */
const MEMORY_WRITE_BYTES = 1024 * 1024;

async function send(job: SendJob, socket: Socket): Promise<SendReport> {
  const sent = { bytes: 0 };
  let fromMemory = false;
  socket.setTimeout(STALLED_MS, () => socket.destroy(new Error('the client took nothing for 120 s')));
  // A client gone mid-write surfaces as the write's error; this keeps it from being thrown again.
  socket.on('error', () => {});
  try {
    await write(socket, job.head);
    if (job.end >= job.start) {
      const file = await open(job.path, 'r');
      try {
        const st = await file.stat();
        const identity: FileIdentity = { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
        shared.enter(identity, () => readWhole(job.path, identity));
        try {
          if (job.end >= st.size) throw new Error('the file is shorter than the head said');
          fromMemory = await sendRange(file, identity, job, socket, sent);
        } finally {
          shared.leave(identity);
        }
      } finally {
        await file.close();
      }
    }
    // A FIN once every byte is written: the head said Connection: close.
    await new Promise<void>((resolve) => socket.end(resolve));
    return { id: job.id, ok: true, bytes: sent.bytes, ...(fromMemory ? { fromMemory } : {}) };
  } catch (err) {
    socket.destroy();
    return { id: job.id, ok: false, bytes: sent.bytes, error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * The whole file, opened on its own (the download that asks for it streams on and closes its
 * handle), in as few reads as the kernel allows: one, for a file in the page cache. readFile()
 * reads 512 KiB at a time, each a trip through the thread pool and back through an event loop
 * busy with the downloads. A file replaced meanwhile is not loaded (its identity differs).
 */
async function readWhole(path: string, identity: FileIdentity): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const st = await file.stat();
    if (st.dev !== identity.dev || st.ino !== identity.ino || st.size !== identity.size || st.mtimeMs !== identity.mtimeMs) throw new Error('the file was replaced');
    const content = Buffer.allocUnsafeSlow(st.size);
    for (let at = 0; at < st.size; ) {
      const { bytesRead } = await file.read(content, at, st.size - at, at);
      if (bytesRead === 0) return content.subarray(0, at);
      at += bytesRead;
    }
    return content;
  } finally {
    await file.close();
  }
}

/**
 * The range, counted in `sent` as it goes: from the file through one reused buffer, and from
 * memory as soon as the file is held there (a download that began before its load finished
 * switches over at its next chunk). True when any of it came from memory.
 */
async function sendRange(file: FileHandle, identity: FileIdentity, job: SendJob, socket: Socket, sent: { bytes: number }): Promise<boolean> {
  let buffer: Buffer | undefined;
  let fromMemory = false;
  try {
    for (let at = job.start; at <= job.end; ) {
      const content = shared.held(identity);
      if (content) {
        if (buffer) {
          active--;
          giveBack(buffer);
          buffer = undefined;
        }
        fromMemory = true;
        const chunk = content.subarray(at, Math.min(job.end + 1, at + MEMORY_WRITE_BYTES));
        await write(socket, chunk);
        at += chunk.length;
        sent.bytes += chunk.length;
        continue;
      }
      if (!buffer) {
        buffer = takeBuffer(readBytesFor(active));
        active++;
      }
      const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, job.end - at + 1), at);
      if (bytesRead === 0) throw new Error('the file is shorter than the head said');
      await write(socket, buffer.subarray(0, bytesRead));
      at += bytesRead;
      sent.bytes += bytesRead;
    }
    return fromMemory;
  } finally {
    if (buffer) {
      active--;
      giveBack(buffer);
    }
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
