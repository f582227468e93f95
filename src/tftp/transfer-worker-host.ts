// The main thread's side of the transfer worker (transfer-worker.ts): starts it on the first
// transfer it is given, passes transfers in and their ends back, and copes with its death.
//
// Why a worker thread: at 1000 machines booting at once, the lock-step TFTP transfers on the main
// thread were what `boot.ipxe` waited for (p95 1.9-2.0 s, against 0.7-0.8 s with the same files
// served by dnsmasq; docs/performance.md). A transfer needs no socket handed over (it binds its
// own), only the file's bytes, which the directory's shared copies hold in shared memory.
//
// The worker stays up once started: a finished worker thread gives none of its memory back to the
// system (measured with a worker that loads only dgram: the process stayed 15 MB larger after
// terminate()), so stopping it when idle would only cost a restart.
// When it cannot start or keeps dying, transfers run on the main thread as before.

import { getCompileCacheDir } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Request } from './packet.ts';
import type { TftpClient } from './provider.ts';
import type { EngineEnd, EngineEvents, EngineSettings } from './transfer-engine.ts';
import type { FileBytes, FromWorker, ToWorker, WorkerData } from './transfer-worker.ts';

export type WorkerJobEvents = EngineEvents & {
  /** The transfer could not start there (its socket would not bind). */
  failed(message: string): void;
};

export type TransferWorkerOptions = {
  settings: EngineSettings;
  logger: Pick<Logger, 'warn'>;
  /** The program to run (tests substitute one); the transfer worker by default. */
  program?: URL;
};

/** After this many worker deaths within a minute of each start, stop trying: transfers run on the main thread. */
const MAX_QUICK_DEATHS = 3;

/**
 * A worker started from an ES module that first turns Node's compile cache on where Genesis has
 * it: a worker does not share the main thread's, and without it each start strips the
 * TypeScript again and carries the stripper (measured on `genesis serve`: its first transfer made
 * it 15 MB larger with the cache, 25 MB without).
 */
function bootstrap(program: URL): string {
  const cacheDir = getCompileCacheDir();
  const enable = cacheDir ? `m.enableCompileCache?.(${JSON.stringify(cacheDir)});` : '';
  return `import('node:module').then((m) => { ${enable} return import(${JSON.stringify(program.href)}); });`;
}

/** The bytes to send: shared memory is passed as is, anything else is copied once and moved. */
function fileBytes(data: Buffer): { file: FileBytes; transfer: ArrayBuffer[] } {
  if (data.buffer instanceof SharedArrayBuffer) return { file: { buffer: data.buffer, offset: data.byteOffset, length: data.length }, transfer: [] };
  const copy = new Uint8Array(data);
  return { file: { buffer: copy.buffer, offset: 0, length: copy.length }, transfer: [copy.buffer] };
}

export class TransferWorker {
  private worker: Worker | undefined;
  private startedAt = 0;
  private quickDeaths = 0;
  private disabled = false;
  private nextId = 1;
  private readonly jobs = new Map<number, { events: WorkerJobEvents; worker: Worker }>();
  /** For each transfer, what to do if a repeated request turns out not to be one, oldest first. */
  private readonly repeats = new Map<number, Array<() => void>>();
  private readonly opts: TransferWorkerOptions;

  constructor(opts: TransferWorkerOptions) {
    this.opts = opts;
  }

  /** Transfers running there now. */
  get running(): number {
    return this.jobs.size;
  }

  /** Whether its thread is running (started by a transfer, not yet stopped). */
  get threadRunning(): boolean {
    return this.worker !== undefined;
  }

  /** Runs a transfer of `data` in the worker; its id, or undefined when the worker cannot be used (run it here). */
  start(request: Request, client: TftpClient, data: Buffer, events: WorkerJobEvents): number | undefined {
    const worker = this.started();
    if (!worker) return undefined;
    const id = this.nextId++;
    this.jobs.set(id, { events, worker });
    const { file, transfer } = fileBytes(data);
    this.post(worker, { type: 'start', id, request, client, file }, transfer);
    return id;
  }

  /**
   * The client repeated its request: answered again in the worker, unless the worker heard from
   * the client or ended the transfer before this reached it; then the request is a new one, and
   * `notTaken` runs once those reports have been handled.
   */
  repeated(id: number, notTaken: () => void): void {
    const job = this.jobs.get(id);
    if (!job) return notTaken();
    const waiting = this.repeats.get(id);
    if (waiting) waiting.push(notTaken);
    else this.repeats.set(id, [notTaken]);
    this.post(job.worker, { type: 'repeated', id });
  }

  /** Asks the worker to end a transfer; its end is reported as usual, shortly after. */
  abort(id: number, reason: string, tell: boolean): void {
    const job = this.jobs.get(id);
    if (job) this.post(job.worker, { type: 'abort', id, reason, tell });
  }

  /** Stops the worker; transfers still running there end as aborted. */
  async close(): Promise<void> {
    this.disabled = true;
    const worker = this.worker;
    if (worker) await worker.terminate();
  }

  private post(worker: Worker, message: ToWorker, transfer: ArrayBuffer[] = []): void {
    worker.postMessage(message, transfer);
  }

  private started(): Worker | undefined {
    if (this.disabled) return undefined;
    if (this.worker) return this.worker;
    let worker: Worker;
    try {
      const program = this.opts.program ?? new URL('./transfer-worker.ts', import.meta.url);
      worker = new Worker(bootstrap(program), {
        eval: true,
        workerData: { genesisTftpWorker: true, settings: this.opts.settings } satisfies WorkerData,
        // Nothing of the main thread's flags (inspector, heap limits): the worker needs none of them.
        execArgv: [],
        // A small young generation, like the main thread's (npm start's --max-semi-space-size=2):
        // the worker allocates little per block, and every MB here is resident at a storm's peak.
        resourceLimits: { maxYoungGenerationSizeMb: 4 },
      });
    } catch (err) {
      this.opts.logger.warn({ err }, 'the TFTP transfer worker could not start; transfers run on the main thread');
      this.disabled = true;
      return undefined;
    }
    this.worker = worker;
    this.startedAt = performance.now();
    // Never what keeps Genesis running: shutdown closes it, and an idle one holds nothing open.
    worker.unref();
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (err) => this.opts.logger.warn({ err }, 'the TFTP transfer worker failed'));
    worker.once('exit', (code) => this.exited(worker, code));
    return worker;
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'repeat') {
      const waiting = this.repeats.get(m.id);
      const notTaken = waiting?.shift();
      if (waiting?.length === 0) this.repeats.delete(m.id);
      if (!m.taken) notTaken?.();
      return;
    }
    const job = this.jobs.get(m.id);
    if (!job) return;
    switch (m.type) {
      case 'heard':
        job.events.heard();
        return;
      case 'ended':
        this.jobs.delete(m.id);
        job.events.ended(m.end);
        return;
      case 'failed':
        this.jobs.delete(m.id);
        job.events.failed(m.message);
        return;
    }
  }

  private exited(worker: Worker, code: number): void {
    if (this.worker === worker) this.worker = undefined;
    const lost = [...this.jobs].filter(([, job]) => job.worker === worker);
    const end = (detail: string): EngineEnd => ({ outcome: { result: 'aborted', detail }, stats: undefined, neverAcknowledged: false });
    for (const [id, job] of lost) {
      this.jobs.delete(id);
      job.events.ended(end(this.disabled ? 'aborted by server: server shutting down' : `the TFTP transfer worker stopped (exit code ${code})`));
    }
    // Repeats it never answered were not taken: each is a new request now that its transfer ended.
    for (const [id] of lost) {
      const waiting = this.repeats.get(id) ?? [];
      this.repeats.delete(id);
      for (const notTaken of waiting) notTaken();
    }
    if (this.disabled) return;
    const quick = performance.now() - this.startedAt < 60_000;
    this.quickDeaths = quick ? this.quickDeaths + 1 : 0;
    const gaveUp = this.quickDeaths >= MAX_QUICK_DEATHS;
    if (gaveUp) this.disabled = true;
    this.opts.logger.warn(
      { code, transfersCut: lost.length },
      gaveUp ? 'the TFTP transfer worker keeps stopping; transfers run on the main thread from now on' : 'the TFTP transfer worker stopped; the next transfer starts it again',
    );
  }
}
