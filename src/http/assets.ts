// Static boot assets (iPXE binaries, Talos kernels and initramfs) from the assets directory.
// @fastify/send does HEAD, Range, ETag/Last-Modified and conditional requests; this file decides
// which names may be asked for and how large a read is. A completed download of a Talos asset is
// recorded on the node that last booted from that address.
//
// Why not @fastify/static: its read size cannot be set. Measured with bench/assets.ts (100 MiB to
// 10 and 50 curl clients, nginx in the same run, 2 cores): 1 MiB reads move 0.50–0.60× nginx's
// bytes against 0.40–0.48× with 64 KiB, but GET /boot.ipxe during 50 downloads goes from p99
// about 45 ms to 620–840 ms (not yet profiled; large short-lived buffers and the GC they cause
// are the first suspect). Small requests matter more than bulk speed in a boot storm, so
// the read size stays 64 KiB until the bulk path leaves the main thread.

import { realpath } from 'node:fs/promises';
import path from 'node:path';
import send from '@fastify/send';
import type { FastifyInstance } from 'fastify';
import { ASSET_FILES } from '../assets/catalog.ts';
import type { AssetKind, BootSteps } from '../provision/boot-steps.ts';
import { sourceAddress } from '../net/address.ts';

/** Bytes per read from disk for an asset download (and so per write to the socket). */
export const ASSET_READ_BYTES = 64 * 1024;

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

export async function assetRoutes(app: FastifyInstance, deps: { assetsDir: string; steps: Pick<BootSteps, 'asset'> }): Promise<void> {
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
      const answer = await send(req.raw, `/${rel}`, {
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
      reply.code(answer.statusCode).headers(answer.headers);
      // UEFI HTTP Boot (EDK2: AAVMF, OVMF) runs what it downloads only if the name ends in .efi or
      // the type says so; the MIME table has no entry for .efi, so say it.
      if (rel.endsWith('.efi')) reply.header('content-type', 'application/efi');
      // The MIME table knows neither .kpxe nor vmlinuz: say what they are rather than nothing.
      else if (answer.headers['Content-Type'] === undefined) reply.header('content-type', 'application/octet-stream');
      return reply.send(answer.stream);
    },
  });

  app.addHook('onResponse', async (req, reply) => {
    if (!req.url.startsWith('/assets/talos/') || req.method !== 'GET') return;
    const range = req.headers.range;
    const whole = reply.statusCode === 200 || (reply.statusCode === 206 && typeof range === 'string' && /^bytes=0-/.test(range));
    if (!whole) return;
    const file = req.url.split('?')[0]!;
    deps.steps.asset(sourceAddress(req.ip), assetKind(file), { path: file, status: reply.statusCode });
  });
}

/** Which Talos file the route served, by the names the asset layout gives them (assets/catalog.ts). */
function assetKind(file: string): AssetKind {
  const name = file.slice(file.lastIndexOf('/') + 1);
  return name === ASSET_FILES[0] ? 'kernel' : name === ASSET_FILES[1] ? 'initramfs' : 'asset';
}
