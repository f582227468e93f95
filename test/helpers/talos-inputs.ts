// The inputs the rendering tests share: Talos's published test bundle and a homelab's cluster settings.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ClusterSettings } from '../../src/talos/render.ts';
import { parseSecrets } from '../../src/talos/secrets.ts';

export const fixtureSecrets = () => parseSecrets(readFileSync(path.resolve(import.meta.dirname, '../fixtures/talos/stability/secrets.yaml'), 'utf8'));

export const testCluster = (over: Partial<ClusterSettings> = {}): ClusterSettings => ({
  name: 'lab',
  endpoint: 'https://k8s.lab.example:6443',
  vip: '',
  kubernetesVersion: '1.36.3',
  dnsDomain: 'cluster.local',
  podSubnets: ['10.244.0.0/16'],
  serviceSubnets: ['10.96.0.0/12'],
  cni: { name: 'flannel' },
  allowSchedulingOnControlPlanes: false,
  installDisk: '/dev/sda',
  installerImage: 'ghcr.io/siderolabs/installer',
  schematicId: '',
  ...over,
});
