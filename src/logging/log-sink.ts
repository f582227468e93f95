// Where Genesis's JSON log lines go: stdout, written in order, never waited on, never retried for
// ever, and never by a thread that a stalled reader can hold.
//
// Why not pino.destination (sonic-boom 4.2): pino runs its synchronous flush at exit, and that
// retries a failing write in a loop with 100 ms sleeps, for ever (a broken pipe, a full disk, a
// stalled pipe); and a write error other than a broken pipe is re-emitted as an unhandled 'error'.
// So with stdout on a full disk `genesis serve` died at its first log line and then never exited,
// and with the reader of its stdout gone (`genesis serve | tee` with tee killed, a log shipper that
// died) it never exited on SIGTERM. Here a line that cannot be written is dropped and counted, and
// the next line written says how many were lost and why.
//
// A pipe or a socket (a shell pipe, Docker's FIFO, journald's socket) is written through the event
// loop, never the thread pool: libuv joins its pool's threads at exit, so one blocked in write(2)
// on a pipe whose reader stopped reading held the exit for ever (a stalled reader, not a gone one).
// A file or a character device (a disk file, /dev/full, a terminal) is written on the pool: a
// write there returns. Queued lines are bounded (maxQueuedChars): a log reader that stalls costs
// at most that much memory, and lines beyond it are dropped and counted the same way. Nothing is
// written at exit: what is queued then is lost (`genesis serve` waits up to 2 s for it first).

import { fstatSync, write as fsWrite } from 'node:fs';
import net from 'node:net';

/** Where a chunk goes: `done` once it is all written (or the error). */
export type LogTarget = { write(chunk: Buffer, done: (err: NodeJS.ErrnoException | null) => void): void };

export type LogSinkOptions = {
  target: LogTarget;
  /** Characters of log lines held while the target is not taking them; more are dropped. */
  maxQueuedChars?: number;
};

const DEFAULT_MAX_QUEUED = 8 * 1024 * 1024;

/**
 * The target for a descriptor: a pipe or a socket through the event loop (net.Socket), anything
 * else through the thread pool, a partial write continued and EAGAIN tried again after `retryMs`.
 */
export function targetForDescriptor(fd: number, retryMs = 50): LogTarget {
  let stat;
  try {
    stat = fstatSync(fd);
  } catch {
    stat = undefined;
  }
  if (stat && (stat.isFIFO() || stat.isSocket())) {
    const socket = new net.Socket({ fd, readable: false, writable: true });
    // The log is never what keeps the process alive; its errors come to each write's callback too.
    socket.unref();
    socket.on('error', () => undefined);
    return { write: (chunk, done) => void socket.write(chunk, (err) => done((err as NodeJS.ErrnoException | null | undefined) ?? null)) };
  }
  const writeFrom = (chunk: Buffer, offset: number, done: (err: NodeJS.ErrnoException | null) => void): void =>
    fsWrite(fd, chunk, offset, chunk.length - offset, null, (err, n) => {
      if (err?.code === 'EAGAIN') return void setTimeout(() => writeFrom(chunk, offset, done), retryMs).unref();
      if (err) return done(err);
      if (offset + n < chunk.length) return writeFrom(chunk, offset + n, done);
      done(null);
    });
  return { write: (chunk, done) => writeFrom(chunk, 0, done) };
}

export class LogSink {
  private readonly target: LogTarget;
  private readonly maxQueued: number;
  private queue: string[] = [];
  private queuedChars = 0;
  /** A chunk is with the target; while it is, the lines that come queue behind it. */
  private writing = false;
  /** Lines dropped since the last one written, and the last reason. */
  private lost = 0;
  private lostBecause = '';
  private readonly drained: Array<(err?: Error) => void> = [];

  constructor(opts: LogSinkOptions) {
    this.target = opts.target;
    this.maxQueued = opts.maxQueuedChars ?? DEFAULT_MAX_QUEUED;
  }

  /** Lines dropped and not yet reported in the log itself (for tests). */
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
    const chunk = Buffer.from(text);
    this.target.write(chunk, (err) => {
      if (err) {
        // Counted whole (a part may have gone out); the lost-lines line is not a line of the log, the count it carried is.
        const lines = countLines(chunk);
        this.drop(carried > 0 ? lines - 1 + carried : lines, err.code ?? err.message);
      }
      this.writeNext();
    });
  }

  private drop(lines: number, because: string): void {
    this.lost += lines;
    this.lostBecause = because;
  }
}

/** Lines in a chunk (each ends with a newline). */
function countLines(chunk: Buffer): number {
  let lines = 0;
  for (let i = 0; i < chunk.length; i++) if (chunk[i] === 0x0a) lines++;
  return Math.max(lines, 1);
}

/** pino's shape, so the line reads like the others in a log viewer. */
function lostLine(lost: number, because: string): string {
  return `${JSON.stringify({ level: 40, time: Date.now(), service: 'genesis', component: 'log', lost, reason: because, msg: 'log lines were lost: they could not be written' })}\n`;
}
