// Local commands (config render --mac, assets list) read the inventory file directly: read-only,
// never migrating (that is serve's job at start), and with its problems (a newer schema, a file
// that is not a database, a read-only copy) as one line instead of a storage error.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { DB_FILE, Inventory } from '../inventory/store.ts';
import { CliError } from './api-client.ts';

/** `use` on the data dir's inventory; undefined when there is none yet. */
export function readInventory<T>(dataDir: string, use: (inventory: Inventory) => T): T | undefined {
  const file = path.join(dataDir, DB_FILE);
  if (!existsSync(file)) return undefined;
  let inventory: Inventory;
  try {
    inventory = Inventory.openReadOnly(file);
  } catch (err) {
    const message = (err as Error).message;
    throw new CliError(message.includes(file) ? message : `cannot read the inventory ${file}: ${message} (genesis doctor checks it)`);
  }
  try {
    return use(inventory);
  } finally {
    inventory.close();
  }
}
