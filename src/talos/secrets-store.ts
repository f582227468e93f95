// The secrets bundle on disk: data/secrets.yaml, mode 0600, written atomically (temporary file,
// fsync, link or rename, fsync of the directory) so a crash or a full disk never leaves half a
// bundle behind. Two processes starting on a fresh data dir agree on one bundle: the first link
// wins and the other adopts it.

import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync, chmodSync, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { generateSecrets, parseSecrets, SecretsError, serializeSecrets, type SecretsBundle } from './secrets.ts';

export const SECRETS_FILE = 'secrets.yaml';

export function secretsPath(dataDir: string): string {
  return path.join(dataDir, SECRETS_FILE);
}

function writeTemp(dir: string, text: string): string {
  const tmp = path.join(dir, `.${SECRETS_FILE}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  return tmp;
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readBundle(file: string): SecretsBundle {
  try {
    return parseSecrets(readFileSync(file, 'utf8'));
  } catch (err) {
    if (err instanceof SecretsError) throw new SecretsError(`${file}: ${err.message}`);
    throw err;
  }
}

/** Load the bundle, creating it on first start. `created` tells the caller to say so. */
export async function loadOrCreateSecrets(dataDir: string): Promise<{ bundle: SecretsBundle; created: boolean; modeFixed: boolean }> {
  const file = secretsPath(dataDir);
  let st: Stats | undefined;
  try {
    st = statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (st) {
    let modeFixed = false;
    if ((st.mode & 0o077) !== 0) {
      chmodSync(file, 0o600);
      modeFixed = true;
    }
    return { bundle: readBundle(file), created: false, modeFixed };
  }
  const bundle = await generateSecrets();
  const tmp = writeTemp(dataDir, serializeSecrets(bundle));
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another Genesis sharing this data dir created it first: use theirs.
    return { bundle: readBundle(file), created: false, modeFixed: false };
  } finally {
    unlinkSync(tmp);
  }
  syncDir(dataDir);
  return { bundle, created: true, modeFixed: false };
}

/**
 * The bundle as the server uses it: re-read when the file changes (after `genesis secrets
 * import`), so no restart is needed. A broken file keeps the last good bundle in use and the
 * error is reported by `problem`.
 */
export class SecretsStore {
  private bundle: SecretsBundle;
  private stamp: string;
  /** statStamp() as recentStamp() last read it, and when. */
  private recent: { stamp: string; at: number } | undefined;
  private readonly file: string;
  problem: string | undefined;

  constructor(dataDir: string, bundle: SecretsBundle) {
    this.file = secretsPath(dataDir);
    this.bundle = bundle;
    this.stamp = this.statStamp();
  }

  /** Identity of the file on disk now (inode, size, mtime): changes when the bundle is replaced. */
  statStamp(): string {
    try {
      const s = statSync(this.file);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return 'missing';
    }
  }

  /** The identity of the file the bundle current() last returned was read from. */
  get loadedStamp(): string {
    return this.stamp;
  }

  /**
   * statStamp(), at most `maxAgeMs` old: for the render verdict's cache key, asked on every
   * install script, where a bundle replaced a second ago may be noticed a second late. What is
   * served (current()) always looks at the file.
   */
  recentStamp(maxAgeMs = 1000, now = Date.now()): string {
    if (!this.recent || now - this.recent.at >= maxAgeMs) this.recent = { stamp: this.statStamp(), at: now };
    return this.recent.stamp;
  }

  current(): SecretsBundle {
    const now = this.statStamp();
    if (now !== this.stamp) {
      try {
        this.bundle = readBundle(this.file);
        this.problem = undefined;
        this.stamp = now;
      } catch (err) {
        this.problem = (err as Error).message;
        throw new SecretsError(`the secrets bundle changed on disk and cannot be used: ${this.problem}`);
      }
    }
    return this.bundle;
  }
}

/** Replace the bundle with an imported one (already parsed and checked by the caller). */
export function writeSecrets(dataDir: string, bundle: SecretsBundle): void {
  const tmp = writeTemp(dataDir, serializeSecrets(bundle));
  try {
    renameSync(tmp, secretsPath(dataDir));
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
  syncDir(dataDir);
}

export function readSecretsFile(dataDir: string): SecretsBundle | undefined {
  const file = secretsPath(dataDir);
  try {
    statSync(file);
  } catch {
    return undefined;
  }
  return readBundle(file);
}
