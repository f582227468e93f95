// The HTTP server: fastify with one plugin per concern. Handlers stay thin; the logic they call
// lives in the folders that own it (ipxe, inventory, boot, talos).

import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { MachineConfigService } from '../boot/machine-config.ts';
import type { BootService } from '../boot/service.ts';
import type { Talosconfigs } from '../boot/talosconfig.ts';
import type { Inventory } from '../inventory/store.ts';
import { apiRoutes } from './api.ts';
import { claimRoutes, type ClusterDeps } from './cluster.ts';
import { assetRoutes } from './assets.ts';
import { bootRoutes } from './boot.ts';
import { installErrorHandling } from './errors.ts';
import { healthRoutes } from './health.ts';
import { metricsRoutes } from './metrics.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { talosRoutes } from './talos.ts';
import { dashboardRoutes } from './dashboard.ts';
import type { Sessions } from '../auth/sessions.ts';

export type HttpServerOptions = {
  logger: Logger;
  inventory: Inventory;
  boot: BootService;
  configs: MachineConfigService;
  talosconfigs: Talosconfigs;
  assetsDir: string;
  tokenHash: Buffer;
  cluster: ClusterDeps;
  metrics: Metrics;
  sessions: Sessions;
  defaultTalosVersion: string;
};

export async function buildHttpServer(opts: HttpServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    // Requests are logged by the handlers that matter (boot steps), not one line per hit.
    logController: new LogController({ disableRequestLogging: true }),
    // Firmware HTTP stacks are slow and small; keep idle sockets from piling up.
    keepAliveTimeout: 10_000,
    bodyLimit: 64 * 1024,
    // Reject what the schema does not name (fastify's default silently drops it), and take
    // JSON types as sent: "3" is not a number, 1 is not a hostname.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  installErrorHandling(app);
  metricsRoutes(app, opts.metrics);
  healthRoutes(app, { inventory: opts.inventory, assetsDir: opts.assetsDir });
  bootRoutes(app, opts.boot);
  talosRoutes(app, opts.configs);
  await assetRoutes(app, { assetsDir: opts.assetsDir, inventory: opts.inventory });
  // Child contexts inherit the error handler; the token check is a hook of this context only.
  await app.register(
    (api) =>
      apiRoutes(api, {
        inventory: opts.inventory,
        tokenHash: opts.tokenHash,
        configs: opts.configs,
        talosconfigs: opts.talosconfigs,
        cluster: opts.cluster,
        sessions: opts.sessions,
      }),
    { prefix: '/api/v1' },
  );
  await app.register((ui) => dashboardRoutes(ui, { sessions: opts.sessions, tokenHash: opts.tokenHash, defaultTalosVersion: opts.defaultTalosVersion }));
  // The claim API takes the cluster's join token instead of (or as well as) the API token.
  await app.register((claims) => claimRoutes(claims, { ...opts.cluster, tokenHash: opts.tokenHash }), { prefix: '/api/v1/bootstrap' });
  return app;
}
