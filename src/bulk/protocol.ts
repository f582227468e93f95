// What Genesis and its bulk sender process say to each other over the IPC channel, and what both
// download senders offer the HTTP route.

import type { Socket } from 'node:net';

/** One response to send: the head Genesis built, then bytes start..end (inclusive) of the file. */
export type SendJob = { id: number; head: string; path: string; start: number; end: number };

/**
 * How a job ended: `bytes` of the file reached the socket (the head not counted); `fromMemory`
 * when they were written from the file held in memory for many downloads (shared-files.ts).
 */
export type SendReport = { id: number; ok: boolean; bytes: number; error?: string; fromMemory?: boolean };

/**
 * What sends large downloads off the main thread: the sendfile thread (sendfile-sender.ts) or the
 * sender process (bulk-sender.ts). handOff is undefined when it cannot take the job, and then the
 * socket is untouched and the caller serves the response itself.
 */
export interface DownloadSender {
  handOff(socket: Socket, job: Omit<SendJob, 'id'>): Promise<SendReport> | undefined;
  close(): Promise<void>;
}

/** The sender holds the socket now: Genesis may close its own copy. */
export type Taken = { id: number; taken: true };

/**
 * Bytes per read in the sender, into one buffer per download that is reused. Measured with
 * bench/assets.ts and bench/storm.ts (docs/performance.md): read streams with 1 MiB reads gave
 * 0.62–0.74× nginx, with 256 KiB reads the sender alone held 214 MB in a 200-machine storm; one
 * reused 256 KiB buffer gives 0.86–1.13× and about 95 MB.
 */
export const SEND_READ_BYTES = 256 * 1024;

/** Downloads streaming from their file (each with its buffer) before the next ones get smaller buffers. */
export const ROOMY_DOWNLOADS = 256;

/** Bytes per read for a download that starts while the sender already holds ROOMY_DOWNLOADS. */
export const CROWDED_READ_BYTES = 64 * 1024;

/**
 * The buffer for a download starting while the sender holds `active` others. In a storm of a
 * thousand machines each download gets a small share of the wire anyway; small buffers let the
 * sender hold all of them (256 × 256 KiB + 768 × 64 KiB = 112 MB at most) instead of leaving the
 * rest to the main thread, where they delayed every boot script and config.
 */
export function readBytesFor(active: number): number {
  return active < ROOMY_DOWNLOADS ? SEND_READ_BYTES : CROWDED_READ_BYTES;
}
