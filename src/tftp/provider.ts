// Where TFTP files come from. The server asks a FileProvider to open a path for a client;
// providers are chained so per-client virtual files (generated iPXE scripts) sit in front of a
// static directory (iPXE binaries).

import { open, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';

export type TftpClient = { address: string; port: number };

/** An open file: its size, and positional reads so a transfer streams rather than loading it whole. */
export interface TftpSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

export type OpenResult =
  | { ok: true; source: TftpSource }
  | { ok: false; error: 'not-found' | 'access-denied'; message: string };

/**
 * What a provider throws when the file exists for this client but cannot be made now, for a
 * reason outside the request (the inventory's disk is full or failing). The client is sent the
 * message, which says what failed and that nothing changed, and may ask again; it is counted
 * and summarised like any refusal, not logged as a server error per request.
 */
export class FileUnavailable extends Error {}

export interface FileProvider {
  /** `name` is the request's filename, already checked by `normalizeTftpPath`. Undefined: not mine, ask the next. */
  open(name: string, client: TftpClient): Promise<OpenResult | undefined>;
}

/**
 * Turn a requested filename into a safe relative path, or explain why not.
 * A leading '/' is tolerated (many PXE ROMs send one); '..', backslashes, NUL, control
 * characters and empty segments are refused outright rather than "cleaned", so a request
 * either means exactly one file under the root or nothing.
 */
export function normalizeTftpPath(name: string): { ok: true; path: string } | { ok: false; reason: string } {
  const trimmed = name.replace(/^\/+/, '');
  if (trimmed === '') return { ok: false, reason: 'empty path' };
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(trimmed)) return { ok: false, reason: 'control character in path' };
  if (trimmed.includes('\\')) return { ok: false, reason: 'backslash in path' };
  const segments = trimmed.split('/');
  for (const s of segments) {
    if (s === '') return { ok: false, reason: 'empty path segment' };
    if (s === '.' || s === '..') return { ok: false, reason: 'relative segment in path' };
  }
  return { ok: true, path: segments.join('/') };
}

/** Bytes a large file's transfer reads ahead: a lock-step client asks for one block per ACK. */
const READ_AHEAD_BYTES = 256 * 1024;

class FileSource implements TftpSource {
  readonly size: number;
  private readonly fh: import('node:fs/promises').FileHandle;
  /** The last read-ahead chunk and where it starts: transfers move forward, so most reads are in it. */
  private ahead: { offset: number; data: Buffer } | undefined;
  constructor(fh: import('node:fs/promises').FileHandle, size: number) {
    this.fh = fh;
    this.size = size;
  }
  async read(offset: number, length: number): Promise<Buffer> {
    const a = this.ahead;
    if (a && offset >= a.offset && offset + length <= a.offset + a.data.length) return a.data.subarray(offset - a.offset, offset - a.offset + length);
    const want = Math.min(Math.max(length, READ_AHEAD_BYTES), this.size - offset);
    const buf = Buffer.allocUnsafe(Math.max(want, length));
    let done = 0;
    while (done < want) {
      const { bytesRead } = await this.fh.read(buf, done, want - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    if (done < length) throw new Error(`file shrank while being served (wanted ${length} bytes at ${offset})`);
    this.ahead = { offset, data: buf.subarray(0, done) };
    return buf.subarray(0, length);
  }
  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Files up to this size are read once and shared by every transfer of that version (iPXE binaries, U-Boot scripts). */
const SHARED_FILE_MAX_BYTES = 8 * 1024 * 1024;
/** What the shared copies may hold together; the oldest goes first. */
const SHARED_TOTAL_MAX_BYTES = 64 * 1024 * 1024;

/**
 * The whole file in shared memory, so transfers in the worker thread use this one copy. Checked
 * against the size it had when opened: a file being replaced is read again at the next request.
 */
async function readShared(fh: import('node:fs/promises').FileHandle, size: number): Promise<Buffer> {
  const data = Buffer.from(new SharedArrayBuffer(size));
  let done = 0;
  while (done < size) {
    const { bytesRead } = await fh.read(data, done, size - done, done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  const more = (await fh.read(Buffer.alloc(1), 0, 1, size)).bytesRead;
  if (done !== size || more !== 0) throw new Error(`file changed while being read (${more ? 'more than ' : ''}${done} of ${size} bytes)`);
  return data;
}

/**
 * Serves regular files below a root directory; symlinks may not lead outside it. A small file is
 * read whole once and its copy shared by every transfer (50 machines fetching undionly.kpxe read
 * it once, not once per window each), keyed by its inode, size and mtime so a replaced file is
 * read again at the next request while running transfers finish the version they started.
 */
export class DirectoryProvider implements FileProvider {
  private readonly root: string;
  private realRoot: string | undefined;
  private readonly shared = new Map<string, { key: string; size: number; data: Promise<Buffer> }>();
  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** The shared copy of a small file (reading it through `fh` the first time), or undefined for a large one. */
  private sharedCopy(real: string, key: string, size: number, fh: import('node:fs/promises').FileHandle): Promise<Buffer> | undefined {
    const hit = this.shared.get(real);
    if (hit?.key === key) return hit.data;
    if (size > SHARED_FILE_MAX_BYTES) return undefined;
    const data = readShared(fh, size);
    // A failed read is not kept: the next request reads again.
    data.catch(() => {
      if (this.shared.get(real)?.data === data) this.shared.delete(real);
    });
    this.shared.delete(real);
    this.shared.set(real, { key, size, data });
    // Oldest first out, never the one just added.
    let total = 0;
    for (const e of this.shared.values()) total += e.size;
    for (const [name, e] of this.shared) {
      if (total <= SHARED_TOTAL_MAX_BYTES || name === real) break;
      this.shared.delete(name);
      total -= e.size;
    }
    return data;
  }

  async open(name: string): Promise<OpenResult> {
    const full = path.join(this.root, name);
    let real: string;
    try {
      this.realRoot ??= await realpath(this.root);
      real = await realpath(full);
    } catch {
      return { ok: false, error: 'not-found', message: 'file not found' };
    }
    if (real !== this.realRoot && !real.startsWith(this.realRoot + path.sep)) {
      return { ok: false, error: 'access-denied', message: 'path leaves the TFTP root' };
    }
    // The common case, many machines asking for the same iPXE binary: its shared copy is current
    // (same file, size, times), so it is served without opening the file again.
    const hit = this.shared.get(real);
    if (hit) {
      const st = await stat(real).catch(() => undefined);
      if (st?.isFile() && versionKey(st) === hit.key) {
        try {
          return { ok: true, source: new BufferSource(await hit.data) };
        } catch {
          // Its read failed (and it is dropped): open and read the file below.
        }
      }
    }
    let fh;
    try {
      fh = await open(real, 'r');
    } catch {
      return { ok: false, error: 'not-found', message: 'file not found' };
    }
    const st = await fh.stat();
    if (!st.isFile()) {
      await fh.close();
      return { ok: false, error: 'not-found', message: 'not a regular file' };
    }
    const copy = this.sharedCopy(real, versionKey(st), st.size, fh);
    if (!copy) return { ok: true, source: new FileSource(fh, st.size) };
    try {
      return { ok: true, source: new BufferSource(await copy) };
    } catch {
      return { ok: true, source: new FileSource(fh, st.size) };
    } finally {
      // The copy is read (or failed): this handle is not needed unless it serves the fallback.
      if (this.shared.get(real)?.data === copy) await fh.close().catch(() => {});
    }
  }
}

/**
 * Which version of a file a shared copy is: a replaced file has another inode, an edited one
 * another size or mtime, and a change of mode (a file made unreadable) another ctime.
 */
function versionKey(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

export class BufferSource implements TftpSource {
  private readonly data: Buffer;
  constructor(data: Buffer) {
    this.data = data;
  }
  get size(): number {
    return this.data.length;
  }
  /** The whole file (shared memory for the directory's shared copies, so the transfer worker gets it without a copy). */
  get bytes(): Buffer {
    return this.data;
  }
  async read(offset: number, length: number): Promise<Buffer> {
    return this.data.subarray(offset, offset + length);
  }
  async close(): Promise<void> {}
}

/** Files generated per client, by exact name. The generator returns undefined to decline. */
export class VirtualProvider implements FileProvider {
  private readonly files = new Map<string, (client: TftpClient) => Promise<Buffer | undefined> | Buffer | undefined>();

  register(name: string, generate: (client: TftpClient) => Promise<Buffer | undefined> | Buffer | undefined): void {
    this.files.set(name, generate);
  }

  async open(name: string, client: TftpClient): Promise<OpenResult | undefined> {
    const generate = this.files.get(name);
    if (!generate) return undefined;
    const data = await generate(client);
    if (!data) return { ok: false, error: 'not-found', message: 'file not found' };
    return { ok: true, source: new BufferSource(data) };
  }
}

/** Asks each provider in turn; the first one that answers decides. */
export class ChainProvider implements FileProvider {
  private readonly providers: FileProvider[];
  constructor(...providers: FileProvider[]) {
    this.providers = providers;
  }
  async open(name: string, client: TftpClient): Promise<OpenResult> {
    for (const p of this.providers) {
      const r = await p.open(name, client);
      if (r) return r;
    }
    return { ok: false, error: 'not-found', message: 'file not found' };
  }
}
