// GET /metrics: Prometheus text format. Open like /healthz (scrapers rarely carry tokens); it
// names no machine, address or secret, only counts.

import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../metrics/metrics.ts';

export function metricsRoutes(app: FastifyInstance, metrics: Metrics): void {
  // Every response, whatever the route, counted and timed by its pattern (never the raw URL: MACs,
  // tokens). The time runs from routing (fastify's elapsedTime) to the response's last byte, so
  // a request's wait for its turn (scheduling/time-slices.ts) is in it; time in the accept queue
  // and in parsing the request is not.
  app.addHook('onResponse', async (req, reply) => {
    const length = Number(reply.getHeader('content-length') ?? 0);
    metrics.httpResponse(req.routeOptions.url ?? 'unmatched', req.method, reply.statusCode, Number.isFinite(length) ? length : 0, reply.elapsedTime / 1000);
  });
  app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).header('cache-control', 'no-store').send(await metrics.text()));
}
