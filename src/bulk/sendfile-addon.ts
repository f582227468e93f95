// Loads native/sendfile.c's addon (built by scripts/build-native.sh when npm installs Genesis).
// Absent or unloadable, Genesis sends large downloads from its sender process instead; the reason
// is kept for the log and for `genesis doctor`.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** A sender made by the addon: its thread and its downloads. Opaque here. */
export type SendfileHandle = { readonly __sendfileHandle: unique symbol };

/** What native/sendfile.c exports. */
export type SendfileAddon = {
  /** Starts a sender's thread; onDone runs on this thread once per send (never after stop()). */
  create(onDone: (id: number, bytes: number, error: string | undefined) => void, stalledMs: number): SendfileHandle;
  /** Takes its own copy of the connection `fd` and the file; throws when either cannot be taken. */
  send(handle: SendfileHandle, fd: number, path: string, head: Buffer, start: number, length: number): number;
  /** Ends the sender's thread; the downloads it holds are cut off, unreported. */
  stop(handle: SendfileHandle): void;
};

/** Where the install script puts the addon. */
export const ADDON_PATH = fileURLToPath(new URL('../../build/native/sendfile.node', import.meta.url));

export type AddonLoad = { addon: SendfileAddon; path: string; reason?: undefined } | { addon?: undefined; reason: string };

/** The addon, or why not. `path` lets tests point at a missing file. */
export function loadSendfileAddon(path = ADDON_PATH): AddonLoad {
  if (process.platform !== 'linux') return { reason: 'sendfile is used on Linux only' };
  if (!existsSync(path)) return { reason: `the sendfile addon is not built (${path}; npm ci builds it with a C compiler: scripts/build-native.sh)` };
  try {
    const addon = createRequire(import.meta.url)(path) as SendfileAddon;
    if (typeof addon.create !== 'function' || typeof addon.send !== 'function' || typeof addon.stop !== 'function') return { reason: `${path} is not Genesis's sendfile addon` };
    return { addon, path };
  } catch (err) {
    return { reason: `the sendfile addon did not load: ${(err as Error).message.split('\n')[0]}` };
  }
}
