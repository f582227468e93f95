// Static boot assets (iPXE binaries, Talos kernels and initramfs) from the assets directory, via
// @fastify/static: HEAD, Range, ETag/Last-Modified and streaming come from it. A completed
// download of a Talos asset is recorded on the node that last booted from that address.

import { realpath } from 'node:fs/promises';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import type { Inventory } from '../inventory/store.ts';
import { sourceAddress } from '../net/address.ts';

/**
 * Is the file a URL names, with every symlink resolved, inside the assets root? @fastify/static
 * keeps the path inside the root but follows symlinks out of it (the TFTP server refuses them).
 * Undefined: the file does not exist (the static handler answers 404 itself).
 */
export async function insideRoot(root: string, urlPath: string): Promise<boolean | undefined> {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath.split('?')[0]!.replace(/^\/assets\//, ''));
  } catch {
    return false;
  }
  let real: string;
  let realRoot: string;
  try {
    realRoot = await realpath(root);
    real = await realpath(path.join(root, path.normalize(`/${rel}`)));
  } catch {
    return undefined;
  }
  return real === realRoot || real.startsWith(realRoot + path.sep);
}

export async function assetRoutes(app: FastifyInstance, deps: { assetsDir: string; inventory: Inventory }): Promise<void> {
  app.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith('/assets/')) return;
    if ((await insideRoot(deps.assetsDir, req.url)) === false) {
      req.log.debug({ path: req.url.slice(0, 120) }, 'asset request outside the assets root refused');
      return reply.code(404).send({ error: 'not_found', message: 'not found' });
    }
  });
  await app.register(fastifyStatic, {
    root: deps.assetsDir,
    prefix: '/assets/',
    decorateReply: false,
    index: false,
    list: false,
    dotfiles: 'deny',
    // Kernels change only when a new version directory appears; revalidate via ETag.
    cacheControl: true,
    maxAge: 0,
    // UEFI HTTP Boot (EDK2: AAVMF, OVMF) runs what it downloads only if the name ends in .efi or
    // the type says so; the MIME table has no entry for .efi, so say it.
    setHeaders: (reply, file) => {
      if (file.endsWith('.efi')) reply.header('content-type', 'application/efi');
    },
  });

  app.addHook('onResponse', async (req, reply) => {
    if (!req.url.startsWith('/assets/talos/') || req.method !== 'GET') return;
    const range = req.headers.range;
    const whole = reply.statusCode === 200 || (reply.statusCode === 206 && typeof range === 'string' && /^bytes=0-/.test(range));
    if (!whole) return;
    try {
      const node = deps.inventory.byIp(sourceAddress(req.ip));
      if (node) deps.inventory.record(node.mac, 'asset-fetched', 'boot', { path: req.url.split('?')[0], status: reply.statusCode });
    } catch (err) {
      req.log.warn({ err }, 'could not record the asset download');
    }
  });
}
