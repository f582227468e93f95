// The machine config Talos 1.14's generator writes (contract `MultidocKubernetesConfigSupported`).
// The v1alpha1 document keeps only the machine identity, trustd token, bootstrap token and etcd
// CA; everything else is a document of its own, in the order Talos emits them (pinned by
// test/fixtures/talos/stability/v1.14). Pure.

import {
  auditPolicy,
  CONTROL_PLANE_ROLE,
  DISCOVERY_SERVICE_ENDPOINT,
  EXCLUDE_FROM_LB,
  FLANNEL_BACKEND,
  K8S_REGISTRY,
  KUBE_PRISM_PORT,
  KUBELET_IMAGE,
  podSecurityConfiguration,
} from './defaults.ts';
import { newDocument, type Document, type GenerateInput } from './documents.ts';

/** The bundle stores PEM base64-encoded (as talosctl does); 1.14's documents carry the PEM text. */
const pem = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

/** CEL string literal, as Go's %q writes it for a device path. */
export const celString = (s: string) => JSON.stringify(s);

/** Talos 1.14's install-disk selector for a device path: `disk.dev_path == "/dev/sda"`. */
export function installDiskMatch(disk: string): string {
  return `disk.dev_path == ${celString(disk)}`;
}

export function unattendedInstallDocument(disk: string, image: string | undefined): Document {
  return newDocument('UnattendedInstallConfig', {
    installer: image ? { image } : {},
    provisioning: { diskSelector: { match: installDiskMatch(disk) }, wipe: false },
  });
}

/** Custom CNI manifests: Talos names the one it generates `custom-cni`; further ones are numbered. */
export function cniManifestName(index: number): string {
  return index === 0 ? 'custom-cni' : `custom-cni-${index + 1}`;
}

export function generateMultidocDocuments(input: GenerateInput): Document[] {
  const { secrets: s, role } = input;
  const cp = role === 'controlplane';
  const k8s = `v${input.kubernetesVersion}`;
  const cni = input.cni ?? { name: 'flannel' };

  const machine: Document = {
    type: role,
    token: s.trustdinfo.token,
    // A worker gets the OS CA certificate but not its key.
    ca: cp ? { ...s.certs.os } : { crt: s.certs.os.crt, key: '' },
    certSANs: [],
    features: { diskQuotaSupport: true },
  };
  const cluster: Document = { token: s.secrets.bootstraptoken };
  if (cp) cluster['etcd'] = { ca: { ...s.certs.etcd } };

  const docs: Document[] = [
    { version: 'v1alpha1', debug: false, persist: true, machine, cluster },
    newDocument('DiscoveryServiceConfig', { name: 'default', endpoint: DISCOVERY_SERVICE_ENDPOINT }),
    newDocument('DiscoveryIdentityConfig', { clusterID: s.cluster.id, clusterSecret: s.cluster.secret }),
  ];
  // Talos writes the install document only when it knows the disk (its selector is required).
  if (input.installDisk) docs.push(unattendedInstallDocument(input.installDisk, input.installImage));
  docs.push(
    newDocument('ResolverConfig', { hostDNS: { enabled: true, forwardKubeDNSToHost: true } }),
    newDocument('VolumeConfig', { name: 'EPHEMERAL', mount: { secure: true } }),
    newDocument('FilesystemTrimConfig', { interval: '168h0m0s' }),
    newDocument('SecurityProfileConfig', { workloadIsolation: true }),
    newDocument('HostnameConfig', { auto: 'stable' }),
    newDocument('KubeClusterConfig', { clusterName: input.clusterName, endpoint: input.endpoint }),
  );

  const node: Document = { nodeIP: {} };
  if (cp) {
    node['labels'] = { [CONTROL_PLANE_ROLE]: '', [EXCLUDE_FROM_LB]: '' };
    if (!input.allowSchedulingOnControlPlanes) node['taints'] = { [CONTROL_PLANE_ROLE]: 'NoSchedule' };
  }
  docs.push(
    newDocument('KubeNodeConfig', node),
    newDocument('KubeletConfig', { image: `${KUBELET_IMAGE}:${k8s}`, config: {}, defaultRuntimeSeccompProfileEnabled: true }),
    newDocument('KubeNetworkConfig', {
      dnsDomain: input.dnsDomain ?? 'cluster.local',
      podSubnets: input.podSubnets ?? ['10.244.0.0/16'],
      serviceSubnets: input.serviceSubnets ?? ['10.96.0.0/12'],
    }),
    newDocument('KubeAPIServerCAConfig', cp ? { issuingCA: { cert: pem(s.certs.k8s.crt), key: pem(s.certs.k8s.key) } } : { acceptedCAs: [pem(s.certs.k8s.crt)] }),
    newDocument('KubePrismConfig', { port: KUBE_PRISM_PORT }),
  );
  if (!cp) return docs;

  const providers: unknown[] = [];
  if (s.secrets.secretboxencryptionsecret) providers.push({ secretbox: { keys: [{ name: 'key2', secret: s.secrets.secretboxencryptionsecret }] } });
  if (s.secrets.aescbcencryptionsecret) providers.push({ secretbox: { keys: [{ name: 'key1', secret: s.secrets.aescbcencryptionsecret }] } });

  docs.push(
    newDocument('KubeAggregatorCAConfig', { issuingCA: { cert: pem(s.certs.k8saggregator.crt), key: pem(s.certs.k8saggregator.key) } }),
    newDocument('KubeAdmissionControlConfig', { name: 'PodSecurity', configuration: podSecurityConfiguration() }),
    newDocument('KubeAuditPolicyConfig', { configuration: auditPolicy() }),
    newDocument('KubeAuthenticationConfig', {
      configuration: { anonymous: { conditions: [{ path: '/livez' }, { path: '/readyz' }, { path: '/healthz' }], enabled: true }, jwt: [] },
    }),
    newDocument('KubeAuthorizerConfig', { name: 'node', type: 'Node' }),
    newDocument('KubeAuthorizerConfig', { name: 'rbac', type: 'RBAC' }),
    newDocument('KubeEtcdEncryptionConfig', { config: { resources: [{ providers, resources: ['secrets'] }] } }),
    newDocument('KubeServiceAccountConfig', { issuer: { privateKey: pem(s.certs.k8sserviceaccount.key), issuerURL: input.endpoint } }),
    newDocument('KubeAPIServerConfig', { image: `${K8S_REGISTRY}/kube-apiserver:${k8s}` }),
    newDocument('KubeControllerManagerConfig', { image: `${K8S_REGISTRY}/kube-controller-manager:${k8s}` }),
    newDocument('KubeSchedulerConfig', { image: `${K8S_REGISTRY}/kube-scheduler:${k8s}`, config: {} }),
    newDocument('KubeProxyConfig', { image: `${K8S_REGISTRY}/kube-proxy:${k8s}`, config: {} }),
  );
  // Flannel unless another CNI is chosen; `none` means no CNI document at all.
  if (cni.name === 'flannel') docs.push(newDocument('KubeFlannelCNIConfig', { ...FLANNEL_BACKEND }));
  docs.push(newDocument('KubeCoreDNSConfig', { enabled: true }));
  if (cni.name === 'custom') cni.urls.forEach((url, i) => docs.push(newDocument('KubeExternalManifestConfig', { name: cniManifestName(i), url })));
  return docs;
}
