// The HTTP server: fastify with one plugin per concern. Handlers stay thin; the logic they call
// lives in the folders that own it (ipxe, inventory, talos).

import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';

export type HttpServerOptions = {
  logger: Logger;
};

export function buildHttpServer(opts: HttpServerOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    // Requests are logged by the handlers that matter (boot steps), not one line per hit.
    logController: new LogController({ disableRequestLogging: true }),
    // Firmware HTTP stacks are slow and small; keep idle sockets from piling up.
    keepAliveTimeout: 10_000,
    bodyLimit: 1024 * 1024,
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  return app;
}
