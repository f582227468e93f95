// Where Genesis's JSON log lines go: a file descriptor (stdout), written in order off the main
// thread, never waited on and never retried for ever.
//
// Why not pino.destination (sonic-boom 4.2): pino runs its synchronous flush at exit, and that
// retries a failing write in a loop with 100 ms sleeps, for ever (a broken pipe, a full disk, a
// stalled pipe); and a write error other than a broken pipe is re-emitted as an unhandled 'error'.
// So with stdout on a full disk `genesis serve` died at its first log line and then never exited,
// and with the reader of its stdout gone (`genesis serve | tee` with tee killed, a log shipper that
// died) it never exited on SIGTERM. Here a line that cannot be written is dropped and counted, the
// next line written says how many were lost and why, and the exit writes what it can once.
//
// Queued lines are bounded (maxQueuedChars): a log reader that stalls costs at most that much
// memory, and lines beyond it are dropped and counted the same way.

import { write as fsWrite, writeSync as fsWriteSync } from 'node:fs';

export type LogSinkOptions = {
  fd: number;
  /** Characters of log lines held while the descriptor is not taking them; more are dropped. */
  maxQueuedChars?: number;
  /** How long to wait before writing again to a descriptor that said EAGAIN (a full non-blocking pipe). */
  retryMs?: number;
  /** For tests: the file system's calls. */
  fs?: { write: typeof fsWrite; writeSync: typeof fsWriteSync };
};

const DEFAULT_MAX_QUEUED = 8 * 1024 * 1024;

export class LogSink {
  private readonly fd: number;
  private readonly maxQueued: number;
  private readonly retryMs: number;
  private readonly fs: { write: typeof fsWrite; writeSync: typeof fsWriteSync };
  private queue: string[] = [];
  private queuedChars = 0;
  /** A chunk is with the thread pool (or waiting to be tried again). */
  private writing = false;
  /** Lines dropped since the last one written, and the last reason. */
  private lost = 0;
  private lostBecause = '';
  private readonly drained: Array<(err?: Error) => void> = [];

  constructor(opts: LogSinkOptions) {
    this.fd = opts.fd;
    this.maxQueued = opts.maxQueuedChars ?? DEFAULT_MAX_QUEUED;
    this.retryMs = opts.retryMs ?? 50;
    this.fs = opts.fs ?? { write: fsWrite, writeSync: fsWriteSync };
  }

  /** Lines dropped and not yet reported in the log itself (for tests and the exit). */
  get lostLines(): number {
    return this.lost;
  }

  /** pino's stream interface: one serialised line. Never throws, never blocks. */
  write(line: string): boolean {
    if (this.queuedChars + line.length > this.maxQueued) {
      this.drop(1, 'the log reader is not keeping up');
      return true;
    }
    this.queue.push(line);
    this.queuedChars += line.length;
    if (!this.writing) this.writeNext();
    return true;
  }

  /** Calls back once every line queued now has been written or dropped (pino's logger.flush). */
  flush(cb?: (err?: Error) => void): void {
    if (!this.writing && !this.queue.length) {
      if (cb) process.nextTick(cb);
      return;
    }
    if (cb) this.drained.push(cb);
  }

  /**
   * At exit: the queued lines written with one synchronous attempt; what fails is dropped. A chunk
   * the thread pool is writing is left to it (the exit does not wait for it).
   */
  flushSync(): void {
    if (!this.queue.length) return;
    const chunk = Buffer.from(this.takeQueued().text);
    let offset = 0;
    try {
      while (offset < chunk.length) {
        const n = this.fs.writeSync(this.fd, chunk, offset, chunk.length - offset);
        if (n <= 0) break;
        offset += n;
      }
    } catch {
      // Nothing more can be done at exit: not waited on, not retried.
    }
  }

  /**
   * The queued lines as one chunk, led by a line saying how many were lost before them; `carried`:
   * that count, lost again (not as one line) if the chunk is.
   */
  private takeQueued(): { text: string; carried: number } {
    const lines = this.queue;
    const carried = this.lost;
    this.queue = [];
    this.queuedChars = 0;
    if (carried > 0) {
      lines.unshift(lostLine(carried, this.lostBecause));
      this.lost = 0;
    }
    return { text: lines.join(''), carried };
  }

  private writeNext(): void {
    if (!this.queue.length) {
      this.writing = false;
      for (const cb of this.drained.splice(0)) cb();
      return;
    }
    this.writing = true;
    const { text, carried } = this.takeQueued();
    this.writeFrom(Buffer.from(text), 0, carried);
  }

  private writeFrom(chunk: Buffer, offset: number, carried: number): void {
    this.fs.write(this.fd, chunk, offset, chunk.length - offset, null, (err, n) => {
      if (err) {
        if (err.code === 'EAGAIN') {
          // A full non-blocking pipe: the reader may come back; new lines queue (bounded) meanwhile.
          setTimeout(() => this.writeFrom(chunk, offset, carried), this.retryMs).unref();
          return;
        }
        // Unwritten from the start: the lost-lines line is not a line of the log; its count is.
        const unwritten = countLines(chunk, offset);
        this.drop(offset === 0 && carried > 0 ? unwritten - 1 + carried : unwritten, err.code ?? err.message);
        this.writeNext();
        return;
      }
      if (offset + n < chunk.length) return this.writeFrom(chunk, offset + n, carried);
      this.writeNext();
    });
  }

  private drop(lines: number, because: string): void {
    this.lost += lines;
    this.lostBecause = because;
  }
}

/** Lines in the unwritten part of a chunk (each ends with a newline; a part of one counts as one). */
function countLines(chunk: Buffer, offset: number): number {
  let lines = 0;
  for (let i = offset; i < chunk.length; i++) if (chunk[i] === 0x0a) lines++;
  return Math.max(lines, 1);
}

/** pino's shape, so the line reads like the others in a log viewer. */
function lostLine(lost: number, because: string): string {
  return `${JSON.stringify({ level: 40, time: Date.now(), service: 'genesis', component: 'log', lost, reason: because, msg: 'log lines were lost: they could not be written' })}\n`;
}
