// GET /api/v1/stream: node changes as Server-Sent Events (`event: node`, data { event, node }),
// and new kernel-log lines (`event: log`, data { mac, lines }: a count; read them from
// /nodes/:mac/logs), for live views (`genesis nodes watch`, a dashboard). A comment line every 15 s keeps proxies
// from closing an idle stream; streams are ended before the server closes.

import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { ChangeFeed } from '../inventory/ports.ts';

export function streamRoutes(app: FastifyInstance, inventory: ChangeFeed): void {
  const open = new Set<ServerResponse>();
  app.addHook('preClose', async () => {
    for (const res of open) res.end();
  });

  app.get('/stream', async (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write(': genesis node changes\n\n');
    const send = (change: unknown) => res.write(`event: node\ndata: ${JSON.stringify(change)}\n\n`);
    const sendLog = (log: unknown) => res.write(`event: log\ndata: ${JSON.stringify(log)}\n\n`);
    inventory.changes.on('change', send);
    inventory.changes.on('log', sendLog);
    const beat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    beat.unref();
    open.add(res);
    const stop = () => {
      inventory.changes.off('change', send);
      inventory.changes.off('log', sendLog);
      clearInterval(beat);
      open.delete(res);
    };
    req.raw.on('close', stop);
    res.on('close', stop);
  });
}
