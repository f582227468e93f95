// Which sender takes large downloads off the main thread, from the two settings: the sendfile
// thread where its addon is built and allowed, the sender process otherwise, none when
// http.bulk_process is off (the main process then sends everything).

import type { Logger } from 'pino';
import { BulkSender } from './bulk-sender.ts';
import type { DownloadSender } from './protocol.ts';
import { loadSendfileAddon } from './sendfile-addon.ts';
import { SendfileSender } from './sendfile-sender.ts';

export type DownloadSenderSettings = { bulkProcess: boolean; sendfile: boolean };

/**
 * The sender, or none. A sendfile thread asked for whose addon is missing is not logged here: the
 * start's preflight (doctor's `downloads` check) warns once, with why and how to build it.
 */
export function makeDownloadSender(settings: DownloadSenderSettings, logger: Pick<Logger, 'warn'>, load = loadSendfileAddon): DownloadSender | undefined {
  if (!settings.bulkProcess) return undefined;
  if (settings.sendfile) {
    const loaded = load();
    if (loaded.addon) return new SendfileSender({ addon: loaded.addon });
  }
  return new BulkSender({ logger });
}
