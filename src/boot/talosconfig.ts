// talosconfig for the operator: endpoints are the control planes Genesis knows an address for,
// the client certificate is issued fresh by the OS CA on every call.

import type { Inventory } from '../inventory/store.ts';
import { clusterEndpoint, type ClusterSettings } from '../talos/render.ts';
import type { SecretsStore } from '../talos/secrets-store.ts';
import { issueAdminCertificate, renderTalosconfig } from '../talos/talosconfig.ts';

export class Talosconfigs {
  private readonly inventory: Inventory;
  private readonly secrets: SecretsStore;
  private readonly cluster: ClusterSettings;

  constructor(inventory: Inventory, secrets: SecretsStore, cluster: ClusterSettings) {
    this.inventory = inventory;
    this.secrets = secrets;
    this.cluster = cluster;
  }

  /** Control-plane addresses; with none known yet, the host of the cluster endpoint (a VIP or DNS name). */
  endpoints(): string[] {
    const ips = this.inventory
      .list({ role: 'controlplane' })
      .map((n) => n.network?.address.split('/')[0] ?? n.lastIp)
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
