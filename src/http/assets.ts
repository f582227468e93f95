// Static boot assets (iPXE binaries, Talos kernels and initramfs) from the assets directory, via
// @fastify/static: HEAD, Range, ETag/Last-Modified and streaming come from it. A completed
// download of a Talos asset is recorded on the node that last booted from that address.

import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import type { Inventory } from '../inventory/store.ts';
import { clientIp } from './boot.ts';

export async function assetRoutes(app: FastifyInstance, deps: { assetsDir: string; inventory: Inventory }): Promise<void> {
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
  });

  app.addHook('onResponse', async (req, reply) => {
    if (!req.url.startsWith('/assets/talos/') || req.method !== 'GET') return;
    const range = req.headers.range;
    const whole = reply.statusCode === 200 || (reply.statusCode === 206 && typeof range === 'string' && /^bytes=0-/.test(range));
    if (!whole) return;
    try {
      const node = deps.inventory.byIp(clientIp(req.ip));
      if (node) deps.inventory.record(node.mac, 'asset-fetched', 'boot', { path: req.url.split('?')[0], status: reply.statusCode });
    } catch (err) {
      req.log.warn({ err }, 'could not record the asset download');
    }
  });
}
