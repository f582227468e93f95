// Downloading Talos boot assets: resumable (a `.part` file and an HTTP Range request), verified
// (published sha256, or the one recorded at the first fetch), and atomic (fsync, then rename into
// place), so the HTTP server never serves a half file. A lock file per asset makes a second
// process (or a second `genesis assets fetch`) wait for the first instead of writing alongside it.

import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Arch } from '../domain/node.ts';
import { inspectInitramfs, inspectKernel, TALOS_FILE_HEAD_BYTES } from './talos-file.ts';
import { ASSET_FILES, checksumUrl, formatSums, parseSums, remoteAssets, SUMS_FILE, talosAssetDir, type AssetSource } from './catalog.ts';

export class AssetError extends Error {}

export type Progress = (p: { file: string; done: number; total: number | undefined }) => void;

export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Run `fn` holding `<target>.lock` (O_EXCL, holding our pid). A lock left by a dead process is
 * taken over; a live holder is waited for, up to `waitMs`.
 */
async function withLock<T>(target: string, fn: () => Promise<T>, waitMs = 30 * 60_000): Promise<T> {
  const lock = `${target}.lock`;
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const h = await open(lock, 'wx');
      await h.writeFile(String(process.pid));
      await h.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
      if (holder && !alive(holder)) {
        await rm(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new AssetError(`${path.basename(target)}: another fetch (pid ${holder || '?'}) holds ${lock}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

/**
 * Download `url` to `dest` through `dest.part`, resuming a previous partial download. With
 * `expectedSha256`, a mismatch deletes the partial file and fails; nothing reaches `dest`.
 */
export async function downloadFile(url: string, dest: string, opts: { expectedSha256?: string; onProgress?: Progress } = {}): Promise<{ sha256: string; bytes: number; resumedAt: number }> {
  const part = `${dest}.part`;
  let have = existsSync(part) ? (await stat(part)).size : 0;
  const res = await fetch(url, { headers: have ? { range: `bytes=${have}-` } : {}, redirect: 'follow' }).catch((err: unknown) => {
    throw new AssetError(`${url}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
  });
  if (res.status === 416 && have) {
    // The partial file is already whole (or longer than the file now is): check it as it is.
    await res.body?.cancel();
  } else if (res.status !== 200 && res.status !== 206) {
    await res.body?.cancel();
    throw new AssetError(`${url}: HTTP ${res.status}`);
  }
  const resumedAt = res.status === 206 ? have : res.status === 416 ? have : 0;
  if (res.status === 200) have = 0; // the server ignored the range: start over
  const length = Number(res.headers.get('content-length') ?? NaN);
  const total = res.status === 206 || res.status === 200 ? (Number.isFinite(length) ? have + length : undefined) : have;
  const out = await open(part, have && res.status !== 200 ? 'a' : 'w');
  let received = 0;
  try {
    if (res.status !== 416 && res.body) {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        await out.write(chunk);
        received += chunk.length;
        opts.onProgress?.({ file: path.basename(dest), done: have + received, total });
      }
    }
    await out.sync();
  } catch (err) {
    throw new AssetError(`${url}: download interrupted after ${have + received} bytes (${(err as Error).message}); run the fetch again to resume`);
  } finally {
    await out.close();
  }
  if (total !== undefined && have + received < total) {
    throw new AssetError(`${url}: got ${have + received} of ${total} bytes; run the fetch again to resume`);
  }
  const sha256 = await sha256OfFile(part);
  if (opts.expectedSha256 && sha256 !== opts.expectedSha256) {
    await rm(part, { force: true });
    throw new AssetError(`${url}: sha256 ${sha256} does not match the expected ${opts.expectedSha256}; the download was discarded`);
  }
  await rename(part, dest);
  await fsyncDir(path.dirname(dest));
  return { sha256, bytes: (await stat(dest)).size, resumedAt };
}

export type FetchOutcome = { arch: Arch; file: string; status: 'present' | 'fetched'; sha256: string; bytes: number; resumedAt?: number };

/** The checksums recorded next to the files in `dir` (empty when none were recorded). */
export function readSums(dir: string): Map<string, string> {
  try {
    return parseSums(readFileSync(path.join(dir, SUMS_FILE), 'utf8'));
  } catch {
    return new Map();
  }
}

async function writeSums(dir: string, sums: Map<string, string>): Promise<void> {
  const tmp = path.join(dir, `.${SUMS_FILE}.${process.pid}`);
  await writeFile(tmp, formatSums(sums));
  await rename(tmp, path.join(dir, SUMS_FILE));
}

/** Fetch the kernel and initramfs of `version` for each arch; files already present and matching are kept. */
export async function fetchTalosAssets(o: { assetsDir: string; version: string; arches: Arch[]; source: AssetSource; onProgress?: Progress }): Promise<FetchOutcome[]> {
  const results: FetchOutcome[] = [];
  let published: Map<string, string> | undefined;
  const sumsUrl = checksumUrl(o.source, o.version);
  if (sumsUrl) {
    const res = await fetch(sumsUrl).catch((err: unknown) => {
      throw new AssetError(`${sumsUrl}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
    });
    if (!res.ok) throw new AssetError(`${sumsUrl}: HTTP ${res.status}; cannot verify the downloads`);
    published = parseSums(await res.text());
  }
  for (const arch of o.arches) {
    const dir = talosAssetDir(o.assetsDir, o.version, arch);
    await mkdir(dir, { recursive: true });
    for (const remote of remoteAssets(o.source, o.version, arch)) {
      const dest = path.join(dir, remote.file);
      const outcome = await withLock(dest, async (): Promise<FetchOutcome> => {
        const recorded = readSums(dir);
        const expected = published ? published.get(remote.remoteName) : recorded.get(remote.file);
        if (published && !expected) throw new AssetError(`${sumsUrl} lists no checksum for ${remote.remoteName}`);
        if (existsSync(dest)) {
          const sha = await sha256OfFile(dest);
          if (!expected || sha === expected) {
            recorded.set(remote.file, sha);
            await writeSums(dir, recorded);
            return { arch, file: remote.file, status: 'present', sha256: sha, bytes: (await stat(dest)).size };
          }
          // Changed on disk or upstream: fetch again (into .part; the old file serves until then).
        }
        const got = await downloadFile(remote.url, dest, { expectedSha256: expected, onProgress: o.onProgress });
        const now = readSums(dir);
        now.set(remote.file, got.sha256);
        await writeSums(dir, now);
        return { arch, file: remote.file, status: 'fetched', sha256: got.sha256, bytes: got.bytes, resumedAt: got.resumedAt || undefined };
      });
      results.push(outcome);
    }
  }
  return results;
}

/** Are both boot files of this version and arch in place? (Only whole, renamed files ever are.) */
export function talosAssetsPresent(assetsDir: string, version: string, arch: Arch): boolean {
  const dir = talosAssetDir(assetsDir, version, arch);
  return ASSET_FILES.every((f) => existsSync(path.join(dir, f)));
}

/**
 * Copies files of a version the operator brought into place (air-gapped setups), recorded for
 * later checks. Each is checked first (talos-file.ts) unless `force`: one that is not what its
 * name says refuses the whole import, before anything is written.
 */
export async function importTalosAssets(o: { assetsDir: string; version: string; arch: Arch; files: Record<string, string>; force?: boolean }): Promise<FetchOutcome[]> {
  if (!o.force) {
    for (const [file, from] of Object.entries(o.files)) {
      const head = await readHead(from);
      const verdict = file === 'vmlinuz' ? inspectKernel(head, o.arch) : inspectInitramfs(head);
      // A problem that ends in a question needs no full stop after it.
      if (!verdict.ok) throw new AssetError(`${from} was given as the ${o.arch} ${file === 'vmlinuz' ? 'kernel' : 'initramfs'}, but ${verdict.problem}${verdict.problem.endsWith('?') ? '' : '.'} Nothing was imported (--force imports it anyway)`);
    }
  }
  const dir = talosAssetDir(o.assetsDir, o.version, o.arch);
  await mkdir(dir, { recursive: true });
  const out: FetchOutcome[] = [];
  for (const [file, from] of Object.entries(o.files)) {
    const dest = path.join(dir, file);
    out.push(
      await withLock(dest, async () => {
        const part = `${dest}.part`;
        await copyFile(from, part);
        const h = await open(part, 'r');
        await h.sync();
        await h.close();
        const sha256 = await sha256OfFile(part);
        await rename(part, dest);
        await fsyncDir(dir);
        const sums = readSums(dir);
        sums.set(file, sha256);
        await writeSums(dir, sums);
        return { arch: o.arch, file, status: 'fetched' as const, sha256, bytes: (await stat(dest)).size };
      }),
    );
  }
  return out;
}

async function readHead(file: string): Promise<Buffer> {
  const h = await open(file, 'r');
  try {
    const head = Buffer.alloc(TALOS_FILE_HEAD_BYTES);
    const { bytesRead } = await h.read(head, 0, head.length, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await h.close();
  }
}

/**
 * `assets.fetch_on_start`: download what the default Talos version lacks without holding up the
 * start; machines that ask meanwhile are told to wait (the boot plan checks the files), not sent
 * to a 404. Undefined when nothing is missing; the promise never rejects (failures are logged).
 */
export function fetchMissingInBackground(o: { assetsDir: string; version: string; arches: Arch[]; source: AssetSource; log: Logger }): Promise<void> | undefined {
  const missing = o.arches.filter((a) => !talosAssetsPresent(o.assetsDir, o.version, a));
  if (!missing.length) return undefined;
  o.log.info({ version: o.version, arches: missing }, 'fetching Talos assets in the background');
  return fetchTalosAssets({ assetsDir: o.assetsDir, version: o.version, arches: missing, source: o.source }).then(
    (results) => o.log.info({ version: o.version, files: results.map((r) => `${r.arch}/${r.file}`) }, 'Talos assets ready'),
    (err: unknown) => o.log.error({ err: (err as Error).message }, 'could not fetch the Talos assets; machines wait until they are present (genesis assets fetch)'),
  );
}
