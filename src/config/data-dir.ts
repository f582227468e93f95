// The data dir holds the cluster's CA keys, the inventory and the API token: readable by Genesis's
// user alone. Applied at every start, so a data dir made by an older Genesis (0644 database
// files), or copied in by hand, is tightened too.

import { chmodSync, lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';

/** chmod 0700 the directory and 0600 every regular file directly in it; returns what could not be changed. */
export function tightenDataDir(dir: string): string[] {
  const failed: string[] = [];
  const tryChmod = (p: string, mode: number) => {
    try {
      chmodSync(p, mode);
    } catch {
      failed.push(p);
    }
  };
  tryChmod(dir, 0o700);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return failed;
  }
  for (const name of names) {
    const p = path.join(dir, name);
    try {
      // Never follow a symlink: chmod would change its target, wherever that is.
      if (lstatSync(p).isFile()) tryChmod(p, 0o600);
    } catch {
      failed.push(p);
    }
  }
  return failed;
}
