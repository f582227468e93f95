// The data dir holds the cluster's CA keys, the inventory and the API token: a directory this
// process can write, readable by Genesis's user alone. Before anything opens a file there it is
// checked, and what is wrong (a read-only filesystem, a file in the way, another owner) is said
// plainly with the fix, instead of an errno from deep inside mkdir or SQLite. The permissions are
// tightened at every start, so a data dir made by an older Genesis (0644 database files), or
// copied in by hand, is tightened too.

import { accessSync, chmodSync, constants, existsSync, lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const FIX = 'set GENESIS_DATA_DIR (or data_dir) to a writable directory; under Docker keep the genesis-data volume mounted at /data';

/** Create `dir` if needed (0700) and check it can be written; a sentence saying why not, else undefined. */
export function prepareWritableDir(dir: string, what = 'data dir', fix = FIX): string | undefined {
  try {
    if (existsSync(dir) && !statSync(dir).isDirectory()) return `${what} ${dir} is a file, not a directory: ${fix}`;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, constants.W_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // mkdir -p under a read-only mount reports ENOENT for the part it could not create.
    if (code === 'EROFS' || (code === 'ENOENT' && readOnlyAncestor(dir))) return `${what} ${dir} is on a read-only filesystem: ${fix}`;
    if (code === 'EACCES' || code === 'EPERM') return `${what} ${dir} is not writable by this user (uid ${process.getuid?.() ?? '?'}): fix its owner or permissions, or ${fix}`;
    if (code === 'ENOTDIR' || code === 'EEXIST') return `${what} ${dir}: part of that path is a file, not a directory: ${fix}`;
    return `${what} ${dir} cannot be used (${code ?? (err as Error).message}): ${fix}`;
  }
}

/** The nearest existing ancestor of `dir` is on a read-only filesystem. */
function readOnlyAncestor(dir: string): boolean {
  for (let p = path.dirname(dir); ; p = path.dirname(p)) {
    if (existsSync(p)) {
      try {
        accessSync(p, constants.W_OK);
        return false;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'EROFS';
      }
    }
    if (p === path.dirname(p)) return false;
  }
}

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
