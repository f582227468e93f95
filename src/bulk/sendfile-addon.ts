// Loads native/sendfile.c's addon (built by scripts/build-native.sh when npm installs Genesis).
// Absent or unloadable, Genesis sends large downloads from its sender process instead; the reason
// is kept for the log and for `genesis doctor`.

import { addonPath, loadAddon, type AddonLoad } from '../native/load-addon.ts';

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
export const ADDON_PATH = addonPath('sendfile');

/** The addon, or why not. `path` lets tests point at a missing file. */
export function loadSendfileAddon(path = ADDON_PATH): AddonLoad<SendfileAddon> {
  return loadAddon<SendfileAddon>(path, 'sendfile', ['create', 'send', 'stop']);
}
