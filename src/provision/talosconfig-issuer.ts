// talosconfig for the operator: endpoints are the control planes Genesis knows an address for,
// the client certificate is issued fresh by the OS CA on every call; and the credentials Genesis
// itself uses on the Talos API.

import type { NodeReader } from '../inventory/ports.ts';
import { nodeAddress } from '../domain/node.ts';
import { clusterEndpoint, type ClusterSettings } from '../talos/render.ts';
import type { TalosApiCredentials } from '../talos/api-client.ts';
import { pemFromBase64, type SecretsBundle } from '../talos/secrets.ts';
import type { SecretsStore } from '../talos/secrets-store.ts';
import { issueAdminCertificate, renderTalosconfig } from '../talos/talosconfig.ts';

export class Talosconfigs {
  private readonly inventory: Pick<NodeReader, 'list'>;
  private readonly secrets: SecretsStore;
  private readonly cluster: ClusterSettings;

  constructor(inventory: Pick<NodeReader, 'list'>, secrets: SecretsStore, cluster: ClusterSettings) {
    this.inventory = inventory;
    this.secrets = secrets;
    this.cluster = cluster;
  }

  /** Control-plane addresses; with none known yet, the host of the cluster endpoint (a VIP or DNS name). */
  endpoints(): string[] {
    const ips = this.inventory
      .list({ role: 'controlplane' })
      .map(nodeAddress)
      .filter((ip): ip is string => !!ip);
    if (ips.length) return [...new Set(ips)];
    try {
      return [new URL(clusterEndpoint(this.cluster)).hostname];
    } catch {
      return [];
    }
  }

  async render(): Promise<string> {
    const bundle = this.secrets.current();
    const admin = await issueAdminCertificate(bundle);
    return renderTalosconfig({ context: this.cluster.name, endpoints: this.endpoints(), caCrt: bundle.certs.os.crt, admin });
  }
}

/**
 * Talos API client credentials: the OS CA to check nodes against and an os:admin certificate it
 * signed, issued once per secrets bundle (a re-imported bundle gets a new one) and never stored.
 */
export function talosApiCredentials(secrets: SecretsStore): () => Promise<TalosApiCredentials> {
  let issued: { bundle: SecretsBundle; creds: Promise<TalosApiCredentials> } | undefined;
  return () => {
    const bundle = secrets.current();
    if (issued?.bundle !== bundle) {
      issued = { bundle, creds: issueAdminCertificate(bundle).then((admin) => ({ ca: pemFromBase64(bundle.certs.os.crt), crt: admin.crt, key: admin.key })) };
    }
    return issued.creds;
  };
}
