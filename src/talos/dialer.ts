// One Talos API client per node address, reused across calls and replaced when the credentials
// change (a re-imported secrets bundle). Shared by everything that talks to nodes (bootstrap,
// etcd backups), so each keeps no connection cache of its own. The client (grpc-js with Talos's
// protos) is loaded on the first dial: a Genesis that has not yet talked to a node does not hold it.

import { setImmediate as nextTurn } from 'node:timers/promises';
import { loadGrpcInPieces } from './load-in-pieces.ts';
import type { TalosApiClient, TalosApiCredentials } from './api-client.ts';

type ClientModule = typeof import('./api-client.ts');

/**
 * The client module: grpc-js, and proto-loader with protobufjs, a few of their modules per turn of
 * the event loop (load-in-pieces.ts); then the client's own module; then, after a turn of their
 * own, Talos's protos (about 13 ms idle, among the longest pieces left). Loaded at once, it held
 * the main thread for 227–316 ms in a 1000-machine storm, where the first control plane is probed
 * (docs/performance.md); in three parts, the grpc-js part alone still held it for 53–163 ms.
 */
async function loadClientModule(): Promise<ClientModule> {
  await loadGrpcInPieces();
  const client = await import('./api-client.ts');
  await nextTurn();
  client.machineServiceDefinition();
  return client;
}

export class TalosDialer {
  private readonly credentials: () => Promise<TalosApiCredentials>;
  private readonly port: number;
  private readonly timeoutMs: number;
  private readonly clients = new Map<string, { creds: TalosApiCredentials; client: TalosApiClient }>();
  private clientModule: Promise<ClientModule> | undefined;

  constructor(credentials: () => Promise<TalosApiCredentials>, opts: { port: number; timeoutMs: number }) {
    this.credentials = credentials;
    this.port = opts.port;
    this.timeoutMs = opts.timeoutMs;
  }

  async dial(addr: string): Promise<TalosApiClient> {
    const creds = await this.credentials();
    // Before the map is read: from here to set() nothing yields, so two dials cannot both make one.
    // A load that failed is tried again at the next dial, not remembered.
    const { TalosApiClient } = await (this.clientModule ??= loadClientModule().catch((err: unknown) => {
      this.clientModule = undefined;
      throw err;
    }));
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
