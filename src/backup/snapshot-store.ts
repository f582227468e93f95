// etcd snapshots on disk: `<dir>/<name>.db` beside `<name>.json` (its metadata) and, when the
// operator gave a passphrase, `<name>.secrets.enc` (the secrets bundle, encrypted). A snapshot is
// streamed to a hidden `.part` file, fsynced, and renamed into place only once complete and
// checked, so a failed or partial snapshot (a node dying mid-stream, a full disk) never replaces
// or hides a good one. The metadata file is written last: a `.db` without one is an unfinished
// write and is not listed.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { SnapshotDigest, type EtcdIntegrity } from './etcd-integrity.ts';

export type SnapshotSource = { mac: string; hostname: string | null; address: string; talosVersion: string | null };

export type SnapshotRecord = {
  name: string;
  cluster: string;
  takenAt: string;
  /** Bytes, the appended etcd hash included. */
  size: number;
  /** sha256 of the file as stored (hex). */
  sha256: string;
  /** Whether etcd's own appended hash matched when it was taken. */
  etcdIntegrity: EtcdIntegrity;
  /** Not known from the stream alone; kept for the format (etcdutl snapshot status can tell). */
  revision: number | null;
  source: SnapshotSource;
  durationMs: number;
  /** `<name>.secrets.enc` beside it: the secrets bundle, encrypted (secrets-envelope.ts); null when none. */
  secretsFile: string | null;
  /** sha256 of that file (openssl's format has no authentication tag; this tells a damaged copy). */
  secretsSha256: string | null;
};

export type VerifyResult = { name: string; ok: boolean; problems: string[]; sha256: string; size: number; etcdIntegrity: EtcdIntegrity };

export class SnapshotError extends Error {}

const SECRETS_EXT = '.secrets.enc';

const NAME = /^etcd-[a-z0-9-]+-\d{8}T\d{6}Z(-\d+)?$/;

/** `etcd-homelab-20261201T101500Z`: sorts by time, safe in any file system. */
export function snapshotName(cluster: string, at: Date): string {
  return `etcd-${cluster}-${at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
}

export function isSnapshotName(name: string): boolean {
  return NAME.test(name);
}

export class SnapshotStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  private file(name: string, ext: '.db' | '.json' | typeof SECRETS_EXT): string {
    if (!isSnapshotName(name)) throw new SnapshotError(`${JSON.stringify(name)} is not a snapshot name`);
    return path.join(this.dir, name + ext);
  }

  /** Complete snapshots, newest first. */
  async list(): Promise<SnapshotRecord[]> {
    let entries: string[];
    try {
      entries = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const records: SnapshotRecord[] = [];
    for (const e of entries) {
      if (!e.endsWith('.json') || !isSnapshotName(e.slice(0, -5))) continue;
      try {
        records.push(JSON.parse(await readFile(path.join(this.dir, e), 'utf8')) as SnapshotRecord);
      } catch {
        // A metadata file that does not parse is not a snapshot anyone can trust; verify reports it.
      }
    }
    return records.sort((a, b) => (a.takenAt < b.takenAt ? 1 : a.takenAt > b.takenAt ? -1 : a.name < b.name ? 1 : -1));
  }

  async get(name: string): Promise<SnapshotRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.file(name, '.json'), 'utf8')) as SnapshotRecord;
    } catch (err) {
      if (err instanceof SnapshotError || (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Path of a snapshot's database file, for `etcdutl snapshot restore` or a recover. */
  databasePath(name: string): string {
    return this.file(name, '.db');
  }

  /**
   * Stream `chunks` into a new snapshot. Throws SnapshotError (and leaves nothing behind) when the
   * stream fails, the disk is full, or the data is empty or fails etcd's appended hash.
   */
  async write(opts: { cluster: string; takenAt: Date; source: SnapshotSource; chunks: AsyncIterable<Buffer>; secrets?: Buffer }): Promise<SnapshotRecord> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.removeLeftovers();
    const name = await this.freeName(snapshotName(opts.cluster, opts.takenAt));
    const part = path.join(this.dir, `.${name}.db.part`);
    const started = Date.now();
    const digest = new SnapshotDigest();
    const fh = await open(part, 'wx', 0o600);
    try {
      try {
        // Talos sends 1 KiB chunks: each is copied into one reused buffer, written when full (one
        // syscall per 256 KiB, not per chunk). Holding the chunks themselves until a batch filled
        // kept a million small objects alive past young-generation GC, and the heap grew by
        // ~100 MB; copied, they die young and memory stays flat whatever the database's size.
        const batch = Buffer.allocUnsafe(WRITE_BATCH_BYTES);
        let filled = 0;
        for await (const chunk of opts.chunks) {
          digest.update(chunk);
          let at = 0;
          while (at < chunk.length) {
            const n = chunk.copy(batch, filled, at);
            filled += n;
            at += n;
            if (filled === batch.length) {
              await writeAll(fh, batch);
              filled = 0;
            }
          }
        }
        if (filled) await writeAll(fh, batch.subarray(0, filled));
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      await rm(part, { force: true });
      throw new SnapshotError(writeFailure(err, this.dir));
    }
    const { sha256, etcd } = digest.finish();
    if (digest.size === 0 || etcd === 'hash-mismatch') {
      await rm(part, { force: true });
      throw new SnapshotError(digest.size === 0 ? 'the node sent an empty snapshot' : `the snapshot failed etcd's own sha256 check (${digest.size} bytes): it is truncated or damaged`);
    }
    const record: SnapshotRecord = {
      name,
      cluster: opts.cluster,
      takenAt: opts.takenAt.toISOString(),
      size: digest.size,
      sha256,
      etcdIntegrity: etcd,
      revision: null,
      source: opts.source,
      durationMs: Date.now() - started,
      secretsFile: opts.secrets ? `${name}${SECRETS_EXT}` : null,
      secretsSha256: opts.secrets ? createHash('sha256').update(opts.secrets).digest('hex') : null,
    };
    try {
      await rename(part, this.file(name, '.db'));
      if (opts.secrets) await writeFileDurably(this.file(name, SECRETS_EXT), opts.secrets);
      await writeFileDurably(this.file(name, '.json'), JSON.stringify(record, null, 2) + '\n');
      await syncDir(this.dir);
    } catch (err) {
      await rm(part, { force: true });
      await rm(this.file(name, '.db'), { force: true });
      await rm(this.file(name, SECRETS_EXT), { force: true });
      throw new SnapshotError(writeFailure(err, this.dir));
    }
    return record;
  }

  /** Read the file back and check it against its metadata and etcd's appended hash. */
  async verify(name: string): Promise<VerifyResult> {
    const record = await this.get(name);
    if (!record) throw new SnapshotError(`no snapshot named ${name} in ${this.dir}`);
    const digest = new SnapshotDigest();
    try {
      for await (const chunk of createReadStream(this.file(name, '.db'), { highWaterMark: 1 << 20 })) digest.update(chunk as Buffer);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return { name, ok: false, problems: [`cannot read ${name}.db: ${code ?? (err as Error).message}`], sha256: '', size: 0, etcdIntegrity: 'no-hash' };
    }
    const { sha256, etcd } = digest.finish();
    const problems: string[] = [];
    if (digest.size !== record.size) problems.push(`size is ${digest.size} bytes, ${record.size} when taken`);
    if (sha256 !== record.sha256) problems.push(`sha256 is ${sha256}, ${record.sha256} when taken`);
    if (etcd === 'hash-mismatch') problems.push("etcd's appended sha256 does not match the database");
    if (record.secretsFile && record.secretsSha256) {
      const enc = await readFile(this.file(name, SECRETS_EXT)).catch((err: NodeJS.ErrnoException) => err);
      if (!Buffer.isBuffer(enc)) problems.push(`cannot read ${record.secretsFile}: ${enc.code ?? enc.message}`);
      else if (createHash('sha256').update(enc).digest('hex') !== record.secretsSha256) problems.push(`${record.secretsFile} does not match its sha256 when taken`);
    }
    return { name, ok: problems.length === 0, problems, sha256, size: digest.size, etcdIntegrity: etcd };
  }

  async remove(name: string): Promise<void> {
    // Metadata first: a crash in between leaves an unlisted .db, never a listed snapshot without data.
    await rm(this.file(name, '.json'), { force: true });
    await rm(this.file(name, '.db'), { force: true });
    await rm(this.file(name, SECRETS_EXT), { force: true });
  }

  /** `.part` files of writes a crash interrupted, and `.db` files whose metadata never landed. */
  private async removeLeftovers(): Promise<void> {
    const entries = await readdir(this.dir);
    const names = new Set(entries);
    for (const e of entries) {
      const base = e.endsWith('.db') ? e.slice(0, -3) : e.endsWith(SECRETS_EXT) ? e.slice(0, -SECRETS_EXT.length) : null;
      const orphan = base !== null && isSnapshotName(base) && !names.has(base + '.json');
      if ((e.startsWith('.etcd-') && e.endsWith('.part')) || orphan) await rm(path.join(this.dir, e), { force: true });
    }
  }

  private async freeName(base: string): Promise<string> {
    for (let n = 1; ; n++) {
      const name = n === 1 ? base : `${base}-${n}`;
      const taken = await stat(path.join(this.dir, name + '.json')).then(
        () => true,
        () => false,
      );
      if (!taken) return name;
    }
  }
}

const WRITE_BATCH_BYTES = 256 * 1024;

/** write until every byte is down (a short write on a nearly full disk is retried for the rest). */
async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  for (let at = 0; at < buf.length; ) at += (await fh.write(buf, at, buf.length - at)).bytesWritten;
}

async function writeFileDurably(file: string, text: string | Buffer): Promise<void> {
  const part = `${path.dirname(file)}/.${path.basename(file)}.part`;
  const fh = await open(part, 'w', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(part, file);
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function writeFailure(err: unknown, dir: string): string {
  if (err instanceof SnapshotError) return err.message;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return `the disk holding ${dir} is full (${code}); the snapshot was discarded and the earlier ones are untouched`;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return `cannot write to ${dir} (${code}); check backup.dir and its permissions`;
  // Anything else came from the node's stream (TalosApiError) or the file system: its message is the reason.
  return (err as Error).message ?? String(err);
}
