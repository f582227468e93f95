// Values Talos's generator writes into every machine config, shared by the generators of each
// config shape. Pure constants.

export const KUBELET_IMAGE = 'ghcr.io/siderolabs/kubelet';
export const K8S_REGISTRY = 'registry.k8s.io';
export const KUBE_PRISM_PORT = 7445;
export const EXCLUDE_FROM_LB = 'node.kubernetes.io/exclude-from-external-load-balancers';

/** The PodSecurity admission plugin configuration Talos writes for every control plane. */
export function podSecurityConfiguration(): Record<string, unknown> {
  return {
    apiVersion: 'pod-security.admission.config.k8s.io/v1alpha1',
    defaults: {
      audit: 'restricted',
      'audit-version': 'latest',
      enforce: 'baseline',
      'enforce-version': 'latest',
      warn: 'restricted',
      'warn-version': 'latest',
    },
    exemptions: { namespaces: ['kube-system'], runtimeClasses: [], usernames: [] },
    kind: 'PodSecurityConfiguration',
  };
}

/** The default kube-apiserver audit policy. */
export const auditPolicy = () => ({ apiVersion: 'audit.k8s.io/v1', kind: 'Policy', rules: [{ level: 'Metadata' }] });

/** Flannel as Talos deploys it by default (1.14's KubeFlannelCNIConfig). */
export const FLANNEL_BACKEND = { backendType: 'vxlan', backendPort: 4789 } as const;

/** Talos's default discovery service. */
export const DISCOVERY_SERVICE_ENDPOINT = 'https://discovery.talos.dev/';

/** Control-plane node role label and taint key. */
export const CONTROL_PLANE_ROLE = 'node-role.kubernetes.io/control-plane';
