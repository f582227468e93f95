// The operator's admin kubeconfig: server = the cluster endpoint (a VIP or DNS name, never one
// node), so it works as soon as the API is up and keeps working when a control plane is replaced.

import { clusterEndpoint, type ClusterSettings } from '../talos/render.ts';
import { issueKubernetesAdminCertificate, renderKubeconfig } from '../talos/kubeconfig.ts';
import type { SecretsStore } from '../talos/secrets-store.ts';

export class Kubeconfigs {
  private readonly secrets: SecretsStore;
  private readonly cluster: ClusterSettings;
  private readonly lifetimeDays: number;

  constructor(secrets: SecretsStore, cluster: ClusterSettings, lifetimeDays: number) {
    this.secrets = secrets;
    this.cluster = cluster;
    this.lifetimeDays = lifetimeDays;
  }

  async render(now = new Date()): Promise<string> {
    const bundle = this.secrets.current();
    const admin = await issueKubernetesAdminCertificate(bundle, { lifetimeDays: this.lifetimeDays, now });
    return renderKubeconfig({ cluster: this.cluster.name, endpoint: clusterEndpoint(this.cluster), caCrt: bundle.certs.k8s.crt, admin });
  }
}
