// Reading a fleet from disk: one file, or every *.yaml/*.yml directly in a directory (name order),
// plus the patch files they name, relative to that directory. The parser never touches the disk.

import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import type { FleetSource } from './parse.ts';

export const FLEET_FILE_PATTERN = /\.ya?ml$/;

/** The directory a fleet's names are relative to: the path itself, or a file's directory (also when it does not exist yet). */
export function fleetRoot(fleetPath: string): string {
  try {
    if (statSync(fleetPath).isDirectory()) return fleetPath;
  } catch {
    // missing: as for a file, its directory
  }
  return path.dirname(fleetPath);
}

/** The fleet at `fleetPath` (a file or a directory); throws ENOENT and the like as they come. */
export function readFleetSource(fleetPath: string): FleetSource & { root: string } {
  const isDir = statSync(fleetPath).isDirectory();
  const root = isDir ? fleetPath : path.dirname(fleetPath);
  let realRoot: string | undefined;
  const names = isDir
    ? readdirSync(fleetPath, { withFileTypes: true })
        .filter((e) => e.isFile() && FLEET_FILE_PATTERN.test(e.name) && !e.name.startsWith('.'))
        .map((e) => e.name)
        .sort()
    : [path.basename(fleetPath)];
  return {
    root,
    documents: names.map((name) => ({ name, text: readFileSync(path.join(root, name), 'utf8') })),
    readRelative: (name) => {
      // A symlink out of the fleet's directory is refused like a `../` path: the fleet names its
      // own files and never reaches into the data dir (secrets) or elsewhere on the host.
      const real = realpathSync(path.join(root, name));
      realRoot ??= realpathSync(root);
      if (!real.startsWith(realRoot + path.sep)) throw Object.assign(new Error('it is a link out of the fleet directory'), { code: 'outside the fleet directory' });
      return readFileSync(real, 'utf8');
    },
  };
}

/**
 * A fleet sent as files (the CLI to the server, the stored last apply): `documents` names which
 * are fleet documents; every other file is there for a patch reference.
 */
export function sourceFromFiles(files: Record<string, string>, documents: string[]): FleetSource {
  return {
    documents: documents.map((name) => {
      const text = files[name];
      if (text === undefined) throw new Error(`${name} is not among the files sent`);
      return { name, text };
    }),
    readRelative: (name) => {
      const text = Object.hasOwn(files, name) ? files[name] : undefined;
      if (text === undefined) throw Object.assign(new Error('not among the files sent'), { code: 'ENOENT' });
      return text;
    },
  };
}
