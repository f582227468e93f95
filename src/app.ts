// Genesis as one object: it owns the servers, starts them in order and shuts them down in reverse.

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config/config.ts';
import { buildHttpServer } from './http/server.ts';
import { ChainProvider, DirectoryProvider, VirtualProvider } from './tftp/provider.ts';
import { TftpServer } from './tftp/server.ts';

export type Listening = { http: { address: string; port: number }; tftp?: { address: string; port: number } };

export class Genesis {
  readonly config: Config;
  readonly log: Logger;
  readonly tftpFiles = new VirtualProvider();
  tftp: TftpServer | undefined;
  http: FastifyInstance | undefined;

  constructor(config: Config, log: Logger) {
    this.config = config;
    this.log = log;
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
    mkdirSync(c.data_dir, { recursive: true });
    this.log.info({ advertise: c.advertise_addr, dataDir: c.data_dir, assetsDir: c.assets_dir }, 'genesis starting');

    this.http = buildHttpServer({ logger: this.log.child({ component: 'http' }) });
    await this.http.listen({ host: c.http.host, port: c.http.port });
    const ha = this.http.server.address();
    const listening: Listening = {
      http: typeof ha === 'object' && ha ? { address: ha.address, port: ha.port } : { address: c.http.host, port: c.http.port },
    };

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
    this.log.info(listening, 'genesis ready');
    return listening;
  }

  /** Stop accepting, let transfers finish within the grace period, close everything. */
  async close(): Promise<void> {
    const graceMs = this.config.shutdown_grace * 1000;
    await Promise.all([this.tftp?.close(graceMs), this.http?.close()]);
    this.log.info('genesis stopped');
  }
}
