// Genesis as one object: it owns the inventory and the servers, starts them in order and shuts
// them down in reverse.

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { loadOrCreateApiToken, type ApiToken } from './auth/api-token.ts';
import { BootService } from './boot/service.ts';
import type { Config } from './config/config.ts';
import { buildHttpServer } from './http/server.ts';
import { Inventory } from './inventory/store.ts';
import { ChainProvider, DirectoryProvider, VirtualProvider } from './tftp/provider.ts';
import { TftpServer } from './tftp/server.ts';

export type Listening = { http: { address: string; port: number }; tftp?: { address: string; port: number } };

export const DB_FILE = 'genesis.db';

export class Genesis {
  readonly config: Config;
  readonly log: Logger;
  readonly tftpFiles = new VirtualProvider();
  inventory: Inventory | undefined;
  apiToken: ApiToken | undefined;
  tftp: TftpServer | undefined;
  http: FastifyInstance | undefined;
  private httpPort = 0;

  constructor(config: Config, log: Logger) {
    this.config = config;
    this.log = log;
  }

  /** Where machines reach the HTTP server: the advertised address and the port actually bound. */
  baseUrl(): string {
    return `http://${this.config.advertise_addr}:${this.httpPort || this.config.http.port}`;
  }

  /** Start everything; if any part fails, stop what already started so the process can exit. */
  async start(): Promise<Listening> {
    try {
      return await this.startServers();
    } catch (err) {
      await this.close().catch(() => {});
      throw err;
    }
  }

  private async startServers(): Promise<Listening> {
    const c = this.config;
    mkdirSync(c.data_dir, { recursive: true, mode: 0o700 });
    mkdirSync(path.join(c.assets_dir, 'ipxe'), { recursive: true });
    mkdirSync(path.join(c.assets_dir, 'talos'), { recursive: true });
    this.log.info({ advertise: c.advertise_addr, dataDir: c.data_dir, assetsDir: c.assets_dir }, 'genesis starting');

    this.inventory = Inventory.open(path.join(c.data_dir, DB_FILE), {
      autoAssign: c.auto_assign,
      eventRetention: c.inventory.event_retention,
    });
    this.apiToken = loadOrCreateApiToken(c.data_dir, c.api_token);
    const boot = new BootService({
      inventory: this.inventory,
      baseUrl: () => this.baseUrl(),
      defaultTalosVersion: c.talos.version,
      retrySeconds: c.ipxe.retry_seconds,
      extraKernelArgs: c.talos.extra_kernel_args ? c.talos.extra_kernel_args.split(' ') : [],
      log: this.log.child({ component: 'boot' }),
    });
    // For DHCP setups that can only hand out a file name: iPXE fetches boot.ipxe over TFTP.
    this.tftpFiles.register('boot.ipxe', () => Buffer.from(boot.entryScript()));

    this.http = await buildHttpServer({
      logger: this.log.child({ component: 'http' }),
      inventory: this.inventory,
      boot,
      assetsDir: c.assets_dir,
      tokenHash: this.apiToken.hash,
    });
    await this.http.listen({ host: c.http.host, port: c.http.port });
    const ha = this.http.server.address();
    const listening: Listening = {
      http: typeof ha === 'object' && ha ? { address: ha.address, port: ha.port } : { address: c.http.host, port: c.http.port },
    };
    this.httpPort = listening.http.port;

    if (c.tftp.enabled) {
      this.tftp = new TftpServer({
        host: c.tftp.host,
        port: c.tftp.port,
        // Virtual (per-client) files first, then the iPXE binaries under assets/ipxe.
        provider: new ChainProvider(this.tftpFiles, new DirectoryProvider(path.join(c.assets_dir, 'ipxe'))),
        limits: { maxBlksize: c.tftp.max_blksize, maxWindowsize: c.tftp.max_windowsize },
        maxTransfers: c.tftp.max_transfers,
        defaultTimeoutMs: c.tftp.timeout * 1000,
        minRtoMs: 20,
        initialRtoMs: 250,
        maxRetries: c.tftp.max_retries,
        logger: this.log.child({ component: 'tftp' }),
      });
      listening.tftp = await this.tftp.start();
    }
    this.log.info({ ...listening, baseUrl: this.baseUrl(), apiToken: this.apiToken.source }, 'genesis ready');
    return listening;
  }

  /** Stop accepting, let transfers finish within the grace period, close everything. */
  async close(): Promise<void> {
    const graceMs = this.config.shutdown_grace * 1000;
    await Promise.all([this.tftp?.close(graceMs), this.http?.close()]);
    this.inventory?.close();
    this.inventory = undefined;
    this.log.info('genesis stopped');
  }
}
