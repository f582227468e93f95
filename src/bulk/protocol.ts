// What Genesis and its bulk sender process say to each other over the IPC channel.

/** One response to send: the head Genesis built, then bytes start..end (inclusive) of the file. */
export type SendJob = { id: number; head: string; path: string; start: number; end: number };

/** How a job ended: `bytes` of the file reached the socket (the head not counted). */
export type SendReport = { id: number; ok: boolean; bytes: number; error?: string };

/** The sender holds the socket now: Genesis may close its own copy. */
export type Taken = { id: number; taken: true };

/**
 * Bytes per read in the sender. Measured by the issue on this 2-core VM: a Node server streaming
 * with 1 MiB reads moves about 0.75× nginx's bytes, 64 KiB reads about 0.4×; off the main thread
 * the large buffers no longer delay small requests.
 */
export const SEND_READ_BYTES = 256 * 1024;
