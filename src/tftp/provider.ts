// Where TFTP files come from. The server asks a FileProvider to open a path for a client;
// providers are chained so per-client virtual files (generated iPXE scripts) sit in front of a
// static directory (iPXE binaries).

import { open, realpath } from 'node:fs/promises';
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

class FileSource implements TftpSource {
  readonly size: number;
  private readonly fh: import('node:fs/promises').FileHandle;
  constructor(fh: import('node:fs/promises').FileHandle, size: number) {
    this.fh = fh;
    this.size = size;
  }
  async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) throw new Error(`file shrank while being served (wanted ${length} bytes at ${offset})`);
      done += bytesRead;
    }
    return buf;
  }
  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Serves regular files below a root directory; symlinks may not lead outside it. */
export class DirectoryProvider implements FileProvider {
  private readonly root: string;
  private realRoot: string | undefined;
  constructor(root: string) {
    this.root = path.resolve(root);
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
    return { ok: true, source: new FileSource(fh, st.size) };
  }
}

export class BufferSource implements TftpSource {
  private readonly data: Buffer;
  constructor(data: Buffer) {
    this.data = data;
  }
  get size(): number {
    return this.data.length;
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
