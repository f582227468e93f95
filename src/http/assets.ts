// Static boot assets (iPXE binaries, Talos kernels and initramfs) from the assets directory.
// @fastify/send does HEAD, Range, ETag/Last-Modified and conditional requests; this file decides
// which names may be asked for and how large a read is. A completed download of a Talos asset is
// recorded on the node that last booted from that address.
//
// A large download (OFFLOAD_MIN_BYTES and up: kernels, initramfs) is decided here and sent off the
// main thread (src/bulk: the sendfile thread, or the sender process where that addon is not built):
// this route builds the head, hands the socket over, and records the download when the sender
// reports it complete. Smaller files (iPXE binaries, U-Boot and GRUB
// files), HEAD, 304 and anything when the sender is off or unavailable are served here.
//
// Why not @fastify/static: its read size cannot be set. Measured with bench/assets.ts (100 MiB to
// 10 and 50 curl clients, nginx in the same run, 2 cores): on the main thread, 1 MiB reads moved
// 0.50–0.60× nginx's bytes against 0.40–0.48× with 64 KiB, but GET /boot.ipxe during 50 downloads
// went from p99 about 45 ms to 620–840 ms. So reads here stay 64 KiB; off the main thread the
// kernel sends the file (sendfile), or the sender process reads it 256 KiB at a time.

import { createReadStream } from 'node:fs';
import { realpath } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import send from '@fastify/send';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ASSET_FILES } from '../assets/catalog.ts';
import type { DownloadSender } from '../bulk/protocol.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { AssetKind, BootSteps } from '../provision/boot-steps.ts';
import { sourceAddress } from '../net/address.ts';
import { responseHead } from './response-head.ts';

/** Bytes per read from disk for an asset download (and so per write to the socket). */
export const ASSET_READ_BYTES = 64 * 1024;

/** Responses of at least this many body bytes go off the main thread when a sender is there. */
export const OFFLOAD_MIN_BYTES = 4 * 1024 * 1024;

export type AssetRouteDeps = {
  assetsDir: string;
  steps: Pick<BootSteps, 'asset'>;
  /** Absent: every download is sent from this process. */
  bulk?: Pick<DownloadSender, 'handOff'>;
  /**
   * Counts handed-over responses, which fastify's onResponse hook never sees, and the downloads
   * being sent now, by this process or by the sender.
   */
  metrics?: Pick<Metrics, 'httpResponse' | 'downloadStarted' | 'downloadEnded'>;
};

/** One path segment an asset URL may hold: what release tags, arches and file names use; no leading dot. */
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$/;

/**
 * The path below /assets/ a URL names, when every segment is a plain name (so no `..`, no dotfile,
 * no percent-escape, no empty segment); undefined otherwise. Nothing Genesis serves needs more.
 */
export function assetPath(url: string): string | undefined {
  const pathname = url.split('?')[0]!;
  if (!pathname.startsWith('/assets/')) return undefined;
  const segments = pathname.slice('/assets/'.length).split('/');
  if (segments.length > 8 || !segments.every((s) => SEGMENT.test(s))) return undefined;
  return segments.join('/');
}

/**
 * Is the file, with every symlink resolved, inside the assets root (`realRoot`, itself resolved)?
 * A symlink out of it (the TFTP server refuses them too) is not served. Undefined: no such file.
 */
export async function insideRoot(realRoot: string, rel: string): Promise<boolean | undefined> {
  let real: string;
  try {
    real = await realpath(path.join(realRoot, rel));
  } catch {
    return undefined;
  }
  return real === realRoot || real.startsWith(realRoot + path.sep);
}

export async function assetRoutes(app: FastifyInstance, deps: AssetRouteDeps): Promise<void> {
  const notFound = { error: 'not_found', message: 'not found' };
  // Resolved once: the root does not move while Genesis runs (it creates it before listening).
  const realRoot = await realpath(deps.assetsDir);
  app.route({
    method: ['GET', 'HEAD'],
    url: '/assets/*',
    handler: async (req, reply) => {
      const rel = assetPath(req.url);
      if (rel === undefined || (await insideRoot(realRoot, rel)) !== true) {
        if (rel === undefined) req.log.debug({ path: req.url.slice(0, 120) }, 'asset request for a name outside the plain-name rule refused');
        return reply.code(404).send(notFound);
      }
      // With a bulk sender, a GET is first answered as a HEAD would be: status and headers (Range,
      // ETag, 304) from one stat, no file opened. A download the sender takes then costs this
      // thread no open and close of a stream it would not read; one it does not take is opened below.
      const probe = deps.bulk !== undefined && req.method === 'GET';
      const answer = await send(probe ? ({ method: 'HEAD', headers: req.raw.headers } as IncomingMessage) : req.raw, `/${rel}`, {
        root: realRoot,
        highWaterMark: ASSET_READ_BYTES,
        dotfiles: 'deny',
        index: false,
        // Kernels change only when a new version directory appears; revalidate via ETag.
        cacheControl: true,
        maxAge: 0,
      });
      if (answer.type !== 'file') {
        answer.stream.destroy();
        if (answer.statusCode === 416) {
          return reply.code(416).header('content-range', answer.headers['Content-Range']).send({ error: 'range_not_satisfiable', message: 'the range is outside the file' });
        }
        // 403 (a dotfile), 404, and 301 (a directory): all just "not found" to a booting machine.
        if ([301, 403, 404].includes(answer.statusCode)) return reply.code(404).send(notFound);
        return reply.code(answer.statusCode).send({ error: 'bad_request', message: 'cannot serve that' });
      }
      const headers: Record<string, string | number> = { ...answer.headers };
      // UEFI HTTP Boot (EDK2: AAVMF, OVMF) runs what it downloads only if the name ends in .efi or
      // the type says so; the MIME table has no entry for .efi, so say it.
      if (rel.endsWith('.efi')) headers['Content-Type'] = 'application/efi';
      // The MIME table knows neither .kpxe nor vmlinuz: say what they are rather than nothing.
      else if (headers['Content-Type'] === undefined) headers['Content-Type'] = 'application/octet-stream';
      let stream = answer.stream;
      const body = probe ? bodyRange(answer.statusCode, headers) : undefined;
      if (body) {
        answer.stream.destroy();
        const range = { path: answer.metadata.path, ...body };
        if (range.end - range.start + 1 >= OFFLOAD_MIN_BYTES && handOver(req, reply, deps, answer.statusCode, headers, range)) return reply;
        // What @fastify/send itself would have opened for the GET.
        stream = createReadStream(range.path, { highWaterMark: ASSET_READ_BYTES, start: range.start, end: range.end });
      }
      reply.code(answer.statusCode).headers(headers);
      if (req.method === 'GET' && (answer.statusCode === 200 || answer.statusCode === 206) && deps.metrics) {
        const metrics = deps.metrics;
        metrics.downloadStarted('genesis');
        // 'close' comes once, whether the last byte went out or the client went away.
        reply.raw.once('close', () => metrics.downloadEnded('genesis'));
      }
      return reply.send(stream);
    },
  });

  app.addHook('onResponse', async (req, reply) => recordWhole(deps, req, reply.statusCode, sourceAddress(req.ip)));
}

/**
 * The bytes a 200 or 206 answer carries, from the headers @fastify/send set (Content-Length, and
 * Content-Range for a range); undefined for an answer with no body (304). `end` is inclusive, as
 * createReadStream takes it (an empty file: start = end, and reading it yields nothing).
 */
export function bodyRange(status: number, headers: Record<string, string | number>): { start: number; end: number } | undefined {
  const length = Number(headers['Content-Length']);
  if (!Number.isSafeInteger(length)) return undefined;
  if (status === 200) return { start: 0, end: Math.max(0, length - 1) };
  if (status !== 206) return undefined;
  const m = /^bytes (\d+)-(\d+)\//.exec(String(headers['Content-Range'] ?? ''));
  return m ? { start: Number(m[1]), end: Number(m[2]) } : undefined;
}

/**
 * Gives the response to the download sender; false when there is none to take it (nothing was touched
 * then, and the caller sends the response itself).
 */
function handOver(
  req: FastifyRequest,
  reply: FastifyReply,
  deps: AssetRouteDeps,
  status: number,
  headers: Record<string, string | number>,
  range: { path: string; start: number; end: number },
): boolean {
  const head = responseHead(status, headers);
  // Read before the socket goes: req.ip comes from it.
  const address = sourceAddress(req.ip);
  const sent = deps.bulk!.handOff(req.raw.socket, { head, ...range });
  if (!sent) return false;
  // The sender owns the connection from here; fastify must not write to it.
  reply.hijack();
  deps.metrics?.downloadStarted('sender');
  sent
    .then((report) => {
      deps.metrics?.downloadEnded('sender');
      if (!report.ok) req.log.info({ path: req.url.slice(0, 120), bytes: report.bytes, reason: report.error }, 'asset download ended early');
      // The reply never finishes here (hijacked), so its elapsed time runs to this report.
      deps.metrics?.httpResponse(req.routeOptions.url ?? 'unmatched', req.method, status, report.bytes, reply.elapsedTime / 1000);
      if (report.ok) recordWhole(deps, req, status, address);
    })
    .catch((err: unknown) => req.log.error({ err }, 'recording a handed-over download failed'));
  return true;
}

/** What a machine boots from the assets dir: a Talos version's files, or a Linux profile's (assets/<profile>/<arch>/). */
const BOOT_FILE = /^\/assets\/(talos\/[^/]+|(?!ipxe\/|grub\/|rpi\/)[^/]+)\/(amd64|arm64)\/[^/?]+(\?|$)/;

/** A whole kernel or initramfs reached the client (or a range from its first byte). */
function recordWhole(deps: AssetRouteDeps, req: FastifyRequest, status: number, address: string): void {
  if (!BOOT_FILE.test(req.url) || req.method !== 'GET') return;
  const range = req.headers.range;
  const whole = status === 200 || (status === 206 && typeof range === 'string' && /^bytes=0-/.test(range));
  if (!whole) return;
  const file = req.url.split('?')[0]!;
  deps.steps.asset(address, assetKind(file), { path: file, status });
}

/** Which Talos file the route served, by the names the asset layout gives them (assets/catalog.ts); a profile's file is an `asset` with its path. */
function assetKind(file: string): AssetKind {
  if (!file.startsWith('/assets/talos/')) return 'asset';
  const name = file.slice(file.lastIndexOf('/') + 1);
  return name === ASSET_FILES[0] ? 'kernel' : name === ASSET_FILES[1] ? 'initramfs' : 'asset';
}
