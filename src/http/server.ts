// The HTTP server: fastify with one plugin per concern. Handlers stay thin; the logic they call
// lives in the folders that own it (ipxe, inventory, boot, talos).

import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { MachineConfigService } from '../provision/machine-config.ts';
import type { ConfigRenderer } from '../provision/config-renderer.ts';
import type { BootService } from '../provision/service.ts';
import type { BootSteps } from '../provision/boot-steps.ts';
import type { DownloadSender } from '../bulk/protocol.ts';
import type { Talosconfigs } from '../provision/talosconfig-issuer.ts';
import type { Kubeconfigs } from '../provision/kubeconfig-issuer.ts';
import type { EtcdBackups } from '../backup/etcd-backups.ts';
import fastifySwagger from '@fastify/swagger';
import { openApiOptions } from './openapi.ts';
import type { ColdStart } from '../power/cold-start.ts';
import type { PowerControl } from '../power/power-control.ts';
import type { InventoryPorts } from '../inventory/ports.ts';
import { apiRoutes } from './api.ts';
import type { FleetReconciler } from '../fleet/reconciler.ts';
import { claimRoutes, type ClusterDeps } from './cluster.ts';
import { assetRoutes } from './assets.ts';
import { bootRoutes } from './boot.ts';
import { installErrorHandling } from './errors.ts';
import { healthRoutes } from './health.ts';
import type { GenesisIdentity } from '../dhcp/lan-probe.ts';
import type { LanStatus } from './lan.ts';
import { metricsRoutes } from './metrics.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { talosRoutes } from './talos.ts';
import type { TimeSlices } from '../scheduling/time-slices.ts';
import { cloudInitRoutes } from './cloud-init.ts';
import type { CloudInitService } from '../provision/cloud-init.ts';
import { dashboardRoutes } from './dashboard.ts';
import type { Sessions } from '../auth/sessions.ts';

export type HttpServerOptions = {
  logger: Logger;
  inventory: InventoryPorts;
  boot: BootService;
  /** Where install scripts and configs run their costly part, shared with TFTP's per-machine files (scheduling/time-slices.ts). */
  bootWork: TimeSlices;
  /** Where the asset route reports whole downloads (provision/boot-steps.ts). */
  steps: BootSteps;
  /** This Genesis's cluster and instance, on /healthz (another Genesis probing the LAN reads it). */
  identity: GenesisIdentity;
  lan?: { watch?: LanStatus; disabledBecause: string };
  configs: MachineConfigService;
  /** The NoCloud datasource of machines whose profile is not Talos. */
  cloudInit: CloudInitService;
  /** The boot profiles a node may name. */
  profiles?: () => readonly string[];
  renderer: ConfigRenderer;
  talosconfigs: Talosconfigs;
  kubeconfigs: Kubeconfigs;
  backups: EtcdBackups;
  power: PowerControl;
  coldStart: ColdStart;
  assetsDir: string;
  /** Sends large downloads off the main thread (src/bulk); absent: all from this one. */
  bulk?: DownloadSender;
  tokenHash: Buffer;
  cluster: ClusterDeps;
  fleet: FleetReconciler;
  metrics: Metrics;
  sessions: Sessions;
  defaultTalosVersion: string;
  /** Whole request (headers and body) must arrive within this (ms); a client dribbling a body cannot hold a socket. */
  requestTimeoutMs?: number;
};

export async function buildHttpServer(opts: HttpServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    // Requests are logged by the handlers that matter (boot steps), not one line per hit.
    logController: new LogController({ disableRequestLogging: true }),
    // Firmware HTTP stacks are slow and small; keep idle sockets from piling up.
    keepAliveTimeout: 10_000,
    bodyLimit: 64 * 1024,
    // Slow requests (headers or body sent a byte at a time) are cut off; a socket with no traffic
    // either way for two minutes is closed. A large asset download keeps its socket busy.
    requestTimeout: opts.requestTimeoutMs ?? 30_000,
    connectionTimeout: 120_000,
    // Node checks those timeouts on this interval (default 30 s, which would let a slow request live a minute).
    http: { connectionsCheckingInterval: 1000 },
    // Reject what the schema does not name (fastify's default silently drops it), and take
    // JSON types as sent: "3" is not a number, 1 is not a hostname.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  // The headers alone get less time than the whole request (Node's default is 60 s).
  app.server.headersTimeout = Math.min(15_000, opts.requestTimeoutMs ?? 30_000);
  installErrorHandling(app);
  // Collects every route's schema as it is added, for GET /api/v1/openapi.json (openapi.ts).
  await app.register(fastifySwagger, openApiOptions());
  metricsRoutes(app, opts.metrics);
  healthRoutes(app, { inventory: opts.inventory, assetsDir: opts.assetsDir, identity: opts.identity });
  // Install scripts and configs run their costly part a slice at a time, after the poll phase
  // has answered the cheap requests that arrived with them (scheduling/time-slices.ts).
  bootRoutes(app, opts.boot, opts.bootWork);
  talosRoutes(app, opts.configs, opts.bootWork);
  // Its own context: the form parser for phone-home applies there only.
  await app.register((ci) => cloudInitRoutes(ci, opts.cloudInit));
  await assetRoutes(app, { assetsDir: opts.assetsDir, steps: opts.steps, bulk: opts.bulk, metrics: opts.metrics });
  // Child contexts inherit the error handler; the token check is a hook of this context only.
  await app.register(
    (api) =>
      apiRoutes(api, {
        inventory: opts.inventory,
        tokenHash: opts.tokenHash,
        renderer: opts.renderer,
        profiles: opts.profiles,
        talosconfigs: opts.talosconfigs,
        kubeconfigs: opts.kubeconfigs,
        backups: opts.backups,
        power: opts.power,
        coldStart: opts.coldStart,
        cluster: opts.cluster,
        fleet: opts.fleet,
        sessions: opts.sessions,
        lan: opts.lan,
      }),
    { prefix: '/api/v1' },
  );
  await app.register((ui) => dashboardRoutes(ui, { sessions: opts.sessions, tokenHash: opts.tokenHash, defaultTalosVersion: opts.defaultTalosVersion }));
  // The claim API takes the cluster's join token instead of (or as well as) the API token.
  await app.register((claims) => claimRoutes(claims, { ...opts.cluster, tokenHash: opts.tokenHash }), { prefix: '/api/v1/bootstrap' });
  return app;
}
