// Where the running `genesis serve` keeps its data, for the CLI started in another directory.
// The default data dir is ./data, relative to where Genesis was started; a `genesis nodes` run
// from elsewhere would look in the wrong place and lose the API token. serve writes a small marker
// under the user's state directory (XDG_STATE_HOME, else ~/.local/state); the CLI reads it only
// when nothing (flag, file, GENESIS_DATA_DIR) names a data dir and ./data does not exist.

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export type ServeMarker = {
  dataDir: string;
  assetsDir: string;
  url: string;
  pid: number;
  startedAt: string;
  /**
   * The ports it bound. `genesis doctor` run by the same user names this serve as their holder
   * when it cannot see the serve's sockets itself (a serve holding a capability the shell lacks).
   */
  ports?: Array<{ proto: 'tcp' | 'udp'; port: number }>;
};

export function serveMarkerPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const base = env.XDG_STATE_HOME || (env.HOME ? path.join(env.HOME, '.local', 'state') : undefined);
  return base ? path.join(base, 'genesis', 'serve.json') : undefined;
}

/** Record where this Genesis keeps its data (owner-only; atomically replaced). Throws on I/O errors. */
export function writeServeMarker(marker: ServeMarker, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const file = serveMarkerPath(env);
  if (!file) return undefined;
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(marker) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
  return file;
}

/** The marker, or undefined when there is none or it is not one of ours. */
export function readServeMarker(env: NodeJS.ProcessEnv = process.env): ServeMarker | undefined {
  const file = serveMarkerPath(env);
  if (!file) return undefined;
  try {
    const m = JSON.parse(readFileSync(file, 'utf8')) as Partial<ServeMarker>;
    if (typeof m.dataDir !== 'string' || !path.isAbsolute(m.dataDir) || typeof m.assetsDir !== 'string' || typeof m.url !== 'string') return undefined;
    return m as ServeMarker;
  } catch {
    return undefined;
  }
}
