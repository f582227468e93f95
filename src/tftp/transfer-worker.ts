// The transfer worker: a worker thread that runs TFTP transfers whose file the main thread has
// already opened and holds in memory (iPXE binaries, U-Boot and GRUB files, generated scripts).
// Every block and ACK of those transfers is handled here, on the other core, so a storm of
// lock-step transfers does not queue in front of the boot scripts and configs the main thread
// answers. The main thread keeps every decision about whether a transfer may start and what it
// serves; this side only moves blocks (transfer-engine.ts), and says when a transfer ended.

import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import type { Request } from './packet.ts';
import { BufferSource, type TftpClient } from './provider.ts';
import { type EngineEnd, type EngineSettings, TransferEngine } from './transfer-engine.ts';

/** A file's bytes: a view of shared memory (the directory's shared copies), or a transferred copy. */
export type FileBytes = { buffer: SharedArrayBuffer | ArrayBuffer; offset: number; length: number };

export type ToWorker =
  | { type: 'start'; id: number; request: Request; client: TftpClient; file: FileBytes }
  | { type: 'repeated'; id: number }
  | { type: 'abort'; id: number; reason: string; tell: boolean };

export type FromWorker =
  | { type: 'heard'; id: number }
  | { type: 'ended'; id: number; end: EngineEnd }
  | { type: 'failed'; id: number; message: string }
  /** The answer to a 'repeated': whether it was taken as a repeat (not, when the transfer heard from its client or ended first). */
  | { type: 'repeat'; id: number; taken: boolean };

/** Marks the worker's data, so that importing this module anywhere else starts nothing. */
export type WorkerData = { genesisTftpWorker: true; settings: EngineSettings };

export function serveTransfers(port: MessagePort, settings: EngineSettings): void {
  const engines = new Map<number, TransferEngine>();
  const post = (m: FromWorker) => port.postMessage(m);
  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'start': {
        const data = Buffer.from(m.file.buffer, m.file.offset, m.file.length);
        const engine = new TransferEngine(settings, m.request, m.client, new BufferSource(data), {
          heard: () => post({ type: 'heard', id: m.id }),
          ended: (end) => {
            engines.delete(m.id);
            post({ type: 'ended', id: m.id, end });
          },
        });
        engines.set(m.id, engine);
        engine.start().catch((err: unknown) => {
          engines.delete(m.id);
          post({ type: 'failed', id: m.id, message: err instanceof Error ? err.message : String(err) });
        });
        return;
      }
      case 'repeated': {
        const engine = engines.get(m.id);
        const taken = engine !== undefined && !engine.heard;
        post({ type: 'repeat', id: m.id, taken });
        if (taken) engine.repeated();
        return;
      }
      case 'abort':
        // An id already ended is no longer here: its 'ended' is on its way to the main thread.
        engines.get(m.id)?.abort(m.reason, m.tell);
        return;
    }
  });
}

const data = workerData as WorkerData | undefined;
if (parentPort && data?.genesisTftpWorker) serveTransfers(parentPort, data.settings);
