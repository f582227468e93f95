// One Talos API client per node address, reused across calls and replaced when the credentials
// change (a re-imported secrets bundle). Shared by everything that talks to nodes (bootstrap,
// etcd backups), so each keeps no connection cache of its own. The client (grpc-js with Talos's
// protos) is loaded on the first dial: a Genesis that has not yet talked to a node does not hold it.

import type { TalosApiClient, TalosApiCredentials } from './api-client.ts';

export class TalosDialer {
  private readonly credentials: () => Promise<TalosApiCredentials>;
  private readonly port: number;
  private readonly timeoutMs: number;
  private readonly clients = new Map<string, { creds: TalosApiCredentials; client: TalosApiClient }>();

  constructor(credentials: () => Promise<TalosApiCredentials>, opts: { port: number; timeoutMs: number }) {
    this.credentials = credentials;
    this.port = opts.port;
    this.timeoutMs = opts.timeoutMs;
  }

  async dial(addr: string): Promise<TalosApiClient> {
    const creds = await this.credentials();
    // Before the map is read: from here to set() nothing yields, so two dials cannot both make one.
    const { TalosApiClient } = await import('./api-client.ts');
    const have = this.clients.get(addr);
    if (have && have.creds === creds) return have.client;
    have?.client.close();
    const client = new TalosApiClient(addr, this.port, creds, { timeoutMs: this.timeoutMs });
    this.clients.set(addr, { creds, client });
    return client;
  }

  closeAll(): void {
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }
}
