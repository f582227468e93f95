// Where the sendfile addon is not built (or http.sendfile is off), large asset downloads (Talos
// kernels and initramfs) leave the main thread this way: the HTTP route decides what to send and
// builds the response head, then hands the client's socket to a sender process, which writes the
// bytes with large reads on the other core and closes the connection. The main thread keeps
// answering boot scripts, configs and the API while gigabytes go out.
//
// Why a process: Node can pass a connected socket to a child process (SCM_RIGHTS over the IPC
// channel), not to a worker thread; only native code can take its descriptor (sendfile-sender.ts).
// Why not the whole HTTP server in several processes: the inventory, the bootstrap lock and the
// change feed live in this one.
//
// The sender starts on the first large download and exits after a quiet minute, so an idle
// Genesis carries no second process. When it cannot start or dies, downloads are served on the
// main thread as before (handOff returns undefined), and a running download whose sender died is
// reported as failed: the client sees its connection drop and retries, as after any network fault.

import { type ChildProcess, fork } from 'node:child_process';
import type { Socket } from 'node:net';
import { getCompileCacheDir } from 'node:module';
import { getPriority, setPriority } from 'node:os';
import type { Logger } from 'pino';
import type { DownloadSender, SendJob, SendReport, Taken } from './protocol.ts';

export type BulkSenderOptions = {
  logger: Pick<Logger, 'warn'>;
  /** How long the sender stays up with nothing to send. */
  idleExitMs?: number;
  /** The program to run (tests substitute one); the sender by default. */
  program?: URL;
  /**
   * Downloads the sender holds at most; more are served by the main process meanwhile. Each holds
   * one buffer there (protocol.ts readBytesFor), so this bounds what a flood of slow clients can
   * make it hold.
   */
  maxInFlight?: number;
};

/**
 * 256 downloads × 256 KiB + 768 × 64 KiB: 112 MB at most in the sender's buffers, besides the
 * files it holds for many downloads at once (shared-files.ts, 320 MiB at most). At 256, a storm
 * of 1000 machines left most downloads to the main thread (docs/performance.md).
 */
const DEFAULT_MAX_IN_FLIGHT = 1024;

/**
 * How much lower the sender's priority is (nice). `node bench/assets.ts --repo`, alternated:
 * `GET /boot.ipxe` p99 while 50 downloads run 6.1–9.6 ms against 19–28 ms at the same priority
 * (3.8–5.5 against 7.0–11.8 before the shared files), with the same throughput (docs/performance.md).
 */
export const SENDER_NICE = 10;

/**
 * The sender's environment: Genesis's, with Node's compile cache where Genesis has it on
 * (bin/genesis.js turns it on in-process, which a child does not inherit). Without it each
 * sender start strips its TypeScript again and carries the stripper: 74 MB resident instead of
 * 50. The child keeps its own cache under Genesis's (Node adds a directory per version), filled
 * by the first sender that starts.
 */
function senderEnv(): NodeJS.ProcessEnv {
  const cacheDir = getCompileCacheDir();
  return cacheDir ? { ...process.env, NODE_COMPILE_CACHE: cacheDir } : process.env;
}

/** After this many sender deaths within a minute of each start, stop trying: serve in process. */
const MAX_QUICK_DEATHS = 3;

export class BulkSender implements DownloadSender {
  private child: ChildProcess | undefined;
  private startedAt = 0;
  private quickDeaths = 0;
  private disabled = false;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (report: SendReport) => void; child: ChildProcess; socket: Socket }>();
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly opts: BulkSenderOptions;

  constructor(opts: BulkSenderOptions) {
    this.opts = opts;
  }

  /** The sender's pid while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Hands `socket` to the sender with a job; resolves when the sender reports. Undefined when no
   * sender is available: the caller serves the response itself, and the socket is untouched.
   */
  handOff(socket: Socket, job: Omit<SendJob, 'id'>): Promise<SendReport> | undefined {
    if (this.pending.size >= (this.opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT)) return undefined;
    const child = this.running();
    if (!child) return undefined;
    clearTimeout(this.idleTimer);
    const id = this.nextId++;
    return new Promise<SendReport>((resolve) => {
      this.pending.set(id, { resolve, child, socket });
      // This process keeps its copy of the connection until the sender says it holds its own
      // ('taken'): a sender that dies first would otherwise leave the client waiting on a
      // connection nobody holds open or closes. Paused, so nothing here reads from it meanwhile.
      socket.pause();
      child.send({ ...job, id } satisfies SendJob, socket, { keepOpen: true }, (err) => {
        if (!err) return;
        socket.destroy();
        this.settle({ id, ok: false, bytes: 0, error: `could not hand the connection over: ${err.message}` });
      });
    });
  }

  /** Stops the sender; downloads it was sending are cut off (shutdown does not wait for them). */
  async close(): Promise<void> {
    this.disabled = true;
    clearTimeout(this.idleTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await exited;
  }

  private running(): ChildProcess | undefined {
    if (this.disabled) return undefined;
    if (this.child && this.child.connected) return this.child;
    let child: ChildProcess;
    try {
      child = fork(this.opts.program ?? new URL('./sender-process.ts', import.meta.url), [], {
        // Nothing of the parent's flags (inspector, heap limits): the sender needs none of them.
        execArgv: [],
        env: senderEnv(),
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        serialization: 'json',
      });
    } catch (err) {
      this.opts.logger.warn({ err }, 'bulk sender could not start; serving downloads on the main thread');
      this.disabled = true;
      return undefined;
    }
    this.child = child;
    this.lowerPriority(child);
    this.startedAt = performance.now();
    child.on('message', (message: SendReport | Taken) => {
      if ('taken' in message) this.pending.get(message.id)?.socket.destroy();
      else this.settle(message);
    });
    child.on('error', (err) => {
      this.opts.logger.warn({ err }, 'bulk sender error');
      // A process that never started sends no 'exit': end its jobs here, closing their connections.
      if (child.pid === undefined) this.exited(child, null, null);
    });
    child.once('exit', (code, signal) => this.exited(child, code, signal));
    return child;
  }

  /**
   * The sender yields the CPU to this process: when both cores are busy, a boot script, a config
   * or a TFTP block is answered first and a download's next 256 KiB waits a little. Raising a
   * child's nice value needs no privilege; where it is refused (a seccomp profile), the sender
   * runs at the same priority as before.
   */
  private lowerPriority(child: ChildProcess): void {
    if (child.pid === undefined) return;
    try {
      // Relative to this process's own (a child starts with it); 19 is the lowest there is.
      setPriority(child.pid, Math.min(19, getPriority() + SENDER_NICE));
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message }, 'the bulk sender runs at the same CPU priority as Genesis (setpriority was refused)');
    }
  }

  private settle(report: SendReport): void {
    const job = this.pending.get(report.id);
    if (!job) return;
    this.pending.delete(report.id);
    job.resolve(report);
    if (this.pending.size === 0) this.armIdleExit();
  }

  private armIdleExit(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.pending.size === 0 && this.child?.connected) this.child.disconnect();
    }, this.opts.idleExitMs ?? 60_000);
    this.idleTimer.unref();
  }

  private exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child === child) this.child = undefined;
    // Only this sender's jobs: a new sender may already be running others (one retiring while
    // the next download started a fresh one).
    const lost = [...this.pending].filter(([, job]) => job.child === child);
    for (const [id, job] of lost) {
      // Closing this process's copy (if the sender never took the socket) ends the connection.
      job.socket.destroy();
      this.settle({ id, ok: false, bytes: 0, error: 'the bulk sender exited' });
    }
    if (this.disabled || (code === 0 && signal === null)) return;
    const quick = performance.now() - this.startedAt < 60_000;
    this.quickDeaths = quick ? this.quickDeaths + 1 : 0;
    const gaveUp = this.quickDeaths >= MAX_QUICK_DEATHS;
    if (gaveUp) this.disabled = true;
    this.opts.logger.warn(
      { code, signal, downloadsCut: lost.length },
      gaveUp ? 'bulk sender keeps dying; serving downloads on the main thread from now on' : 'bulk sender exited; the next large download starts it again',
    );
  }
}
