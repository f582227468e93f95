// Which sender takes large downloads off the main thread, from the two settings: the sendfile
// thread where its addon is built and allowed, the sender process otherwise, none when
// http.bulk_process is off (the main process then sends everything).

import type { Logger } from 'pino';
import { BulkSender } from './bulk-sender.ts';
import type { DownloadSender } from './protocol.ts';
import { loadSendfileAddon } from './sendfile-addon.ts';
import { SendfileSender } from './sendfile-sender.ts';

export type DownloadSenderSettings = { bulkProcess: boolean; sendfile: boolean };

/** The sender, and why the sendfile thread is not it when it is not (for the log and doctor). */
export function makeDownloadSender(settings: DownloadSenderSettings, logger: Pick<Logger, 'warn' | 'info'>, load = loadSendfileAddon): { sender?: DownloadSender; note?: string } {
  if (!settings.bulkProcess) return { note: 'http.bulk_process is off: the main process sends every download' };
  if (settings.sendfile) {
    const loaded = load();
    if (loaded.addon) return { sender: new SendfileSender({ addon: loaded.addon }) };
    const note = `${loaded.reason}; large downloads go through the sender process`;
    logger.warn(note);
    return { sender: new BulkSender({ logger }), note };
  }
  return { sender: new BulkSender({ logger }), note: 'http.sendfile is off: large downloads go through the sender process' };
}
