// The machine config `talosctl gen config` writes for one role, rebuilt from its inputs. Pure:
// same inputs, same documents. Keys are created in Talos's order so the YAML reads like theirs.
//
// Only generator inputs live here (what talosctl's flags set). Per-node settings that talosctl
// leaves to patches (hostname, static addresses, VIP, labels, disk selector) are in node.ts.
// Talos 1.14 writes a different shape (most settings in documents of their own): that generator
// is generate-multidoc.ts, chosen here by the contract.

import { auditPolicy, EXCLUDE_FROM_LB, K8S_REGISTRY, KUBE_PRISM_PORT, KUBELET_IMAGE, podSecurityConfiguration } from './defaults.ts';
import type { Document, GenerateInput } from './documents.ts';
import { generateMultidocDocuments } from './generate-multidoc.ts';

export type { Cni, Document, GenerateInput, Role } from './documents.ts';

export function generateDocuments(input: GenerateInput): Document[] {
  return input.contract.multidocKubernetes ? generateMultidocDocuments(input) : generateV1Alpha1Documents(input);
}

/** Talos 1.11 to 1.13: nearly everything in the one v1alpha1 document. */
function generateV1Alpha1Documents(input: GenerateInput): Document[] {
  const { contract: c, secrets: s, role } = input;
  const cp = role === 'controlplane';
  const k8s = `v${input.kubernetesVersion}`;
  const endpointHost = new URL(input.endpoint).hostname.replace(/^\[|\]$/g, '');

  const features: Document = {};
  if (c.legacyFeatureFlags) Object.assign(features, { rbac: true, stableHostname: true, apidCheckExtKeyUsage: true });
  Object.assign(features, {
    diskQuotaSupport: true,
    kubePrism: { enabled: true, port: KUBE_PRISM_PORT },
    hostDNS: { enabled: true, forwardKubeDNSToHost: true },
  });

  const install: Document = {};
  if (input.installDisk) install['disk'] = input.installDisk;
  if (input.installImage) install['image'] = input.installImage;
  install['wipe'] = false;
  if (c.grubUseUKICmdline) install['grubUseUKICmdline'] = true;

  const machine: Document = {
    type: role,
    token: s.trustdinfo.token,
    // A worker gets the OS CA certificate but not its key.
    ca: cp ? { ...s.certs.os } : { crt: s.certs.os.crt, key: '' },
    certSANs: [],
    kubelet: { image: `${KUBELET_IMAGE}:${k8s}`, defaultRuntimeSeccompProfileEnabled: true, disableManifestsDirectory: true },
    ...(c.emptyMachineNetwork ? { network: {} } : {}),
    install,
    features,
    ...(cp ? { nodeLabels: { [EXCLUDE_FROM_LB]: '' } } : {}),
  };

  const network: Document = {};
  if (input.cni && input.cni.name !== 'flannel') network['cni'] = input.cni.name === 'custom' ? { name: 'custom', urls: input.cni.urls } : { name: 'none' };
  Object.assign(network, {
    dnsDomain: input.dnsDomain ?? 'cluster.local',
    podSubnets: input.podSubnets ?? ['10.244.0.0/16'],
    serviceSubnets: input.serviceSubnets ?? ['10.96.0.0/12'],
  });

  const discovery = { enabled: true, registries: { kubernetes: { disabled: true }, service: {} } };
  const cluster: Document = {
    id: s.cluster.id,
    secret: s.cluster.secret,
    controlPlane: { endpoint: input.endpoint },
    clusterName: input.clusterName,
    network,
    token: s.secrets.bootstraptoken,
  };
  if (cp) {
    if (s.secrets.secretboxencryptionsecret) cluster['secretboxEncryptionSecret'] = s.secrets.secretboxencryptionsecret;
    else cluster['aescbcEncryptionSecret'] = s.secrets.aescbcencryptionsecret;
    cluster['ca'] = { ...s.certs.k8s };
    cluster['aggregatorCA'] = { ...s.certs.k8saggregator };
    cluster['serviceAccount'] = { ...s.certs.k8sserviceaccount };
    cluster['apiServer'] = {
      image: `${K8S_REGISTRY}/kube-apiserver:${k8s}`,
      ...(c.legacyApiServerFields ? { certSANs: [endpointHost], disablePodSecurityPolicy: true } : {}),
      admissionControl: [{ name: 'PodSecurity', configuration: podSecurityConfiguration() }],
      auditPolicy: auditPolicy(),
    };
    cluster['controllerManager'] = { image: `${K8S_REGISTRY}/kube-controller-manager:${k8s}` };
    cluster['proxy'] = { image: `${K8S_REGISTRY}/kube-proxy:${k8s}` };
    cluster['scheduler'] = { image: `${K8S_REGISTRY}/kube-scheduler:${k8s}` };
    cluster['discovery'] = discovery;
    cluster['etcd'] = { ca: { ...s.certs.etcd } };
    if (input.allowSchedulingOnControlPlanes) cluster['allowSchedulingOnControlPlanes'] = true;
  } else {
    cluster['ca'] = { crt: s.certs.k8s.crt, key: '' };
    cluster['discovery'] = discovery;
  }

  const docs: Document[] = [{ version: 'v1alpha1', debug: false, persist: true, machine, cluster }];
  if (c.multidocNetwork) docs.push({ apiVersion: 'v1alpha1', kind: 'HostnameConfig', auto: 'stable' });
  return docs;
}
