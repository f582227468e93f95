// Real-world patches, written from Talos's documentation and the homelab guides people copy from,
// rendered for every supported minor and both roles. Each must render and pass validation where
// Talos accepts it, land where that Talos reads it, and never leave a v1alpha1 field next to the
// document that replaced it (Talos's `V1Alpha1ConflictValidate` refuses such a config: the pairs
// below are read from Talos 1.14's types, independently of src/talos/legacy-fields.ts).

import { describe, expect, it } from 'vitest';
import { parsePatch } from '../../src/talos/patch.ts';
import { renderConfig, RenderError, type RenderedConfig } from '../../src/talos/render.ts';
import { fixtureSecrets, testCluster } from '../helpers/talos-inputs.ts';

const secrets = fixtureSecrets();
const MAC = '52:54:00:aa:bb:02';
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Role = 'controlplane' | 'worker';

const MINORS = [11, 12, 13, 14] as const;
const VERSION: Record<number, string> = { 11: 'v1.11.6', 12: 'v1.12.11', 13: 'v1.13.9', 14: 'v1.14.0' };

const cluster = testCluster({ endpoint: 'https://192.0.2.100:6443' });

function render(minor: number, role: Role, patches: string[]): RenderedConfig {
  return renderConfig({ cluster, secrets, node: { mac: MAC, role, talosVersion: VERSION[minor]! }, patches: patches.map((p, i) => parsePatch(p, `patch ${i + 1}`)) });
}
const v1 = (r: RenderedConfig): Obj => r.documents.find((d) => d['kind'] === undefined)! as Obj;
const doc = (r: RenderedConfig, kind: string, name?: string): Obj | undefined =>
  r.documents.find((d) => d['kind'] === kind && (name === undefined || d['name'] === name)) as Obj | undefined;

/** Talos 1.14's V1Alpha1ConflictValidate pairs: a document kind, and the v1alpha1 fields it refuses beside it. */
const TALOS_CONFLICTS: Array<[string, string[]]> = [
  ['KubeletConfig', ['machine.kubelet']],
  ['KubeCredentialProviderConfig', ['machine.kubelet']],
  ['KubeAPIServerConfig', ['cluster.apiServer', 'cluster.controlPlane.localAPIServerPort']],
  ['KubeAPIServerCAConfig', ['cluster.ca']],
  ['KubeAggregatorCAConfig', ['cluster.aggregatorCA']],
  ['KubeAdmissionControlConfig', ['cluster.apiServer.admissionControl']],
  ['KubeAuthorizerConfig', ['cluster.apiServer.admissionControl']],
  ['KubeAuditPolicyConfig', ['cluster.apiServer.auditPolicy']],
  ['KubeClusterConfig', ['cluster.clusterName', 'cluster.controlPlane.endpoint']],
  ['KubeControllerManagerConfig', ['cluster.controllerManager', 'machine.controlPlane.controllerManager']],
  ['KubeSchedulerConfig', ['cluster.scheduler', 'machine.controlPlane.scheduler']],
  ['KubeCoreDNSConfig', ['cluster.coreDNS']],
  ['KubeEtcdEncryptionConfig', ['cluster.secretboxEncryptionSecret', 'cluster.aescbcEncryptionSecret']],
  ['KubeFlannelCNIConfig', ['cluster.network']],
  ['KubeNetworkConfig', ['cluster.network']],
  [
    'KubeNodeConfig',
    [
      'cluster.allowSchedulingOnControlPlanes',
      'cluster.allowSchedulingOnMasters',
      'machine.kubelet.skipNodeRegistration',
      'machine.kubelet.registerWithFQDN',
      'machine.kubelet.nodeIP',
      'machine.nodeLabels',
      'machine.nodeAnnotations',
      'machine.nodeTaints',
    ],
  ],
  ['KubePrismConfig', ['machine.features.kubePrism']],
  ['KubeProxyConfig', ['cluster.proxy']],
  ['KubeServiceAccountConfig', ['cluster.serviceAccount']],
  ['KubeTalosAPIAccessConfig', ['machine.features.kubernetesTalosAPIAccess']],
  ['HostnameConfig', ['machine.network.hostname']],
  ['ResolverConfig', ['machine.network.searchDomains', 'machine.network.nameservers', 'machine.network.disableSearchDomain']],
  ['DiscoveryServiceConfig', ['cluster.discovery']],
  ['DiscoveryIdentityConfig', ['cluster.id', 'cluster.secret']],
  ['UnattendedInstallConfig', ['machine.install']],
  ['KubeSpanConfig', ['machine.network.kubespan']],
  ['CRIBaseRuntimeSpecConfig', ['machine.baseRuntimeSpecOverrides']],
  ['ImageCacheConfig', ['machine.features.imageCache']],
];

function conflicts(r: RenderedConfig): string[] {
  const main = v1(r);
  const has = (dotted: string) => dotted.split('.').reduce<unknown>((n, k) => (n && typeof n === 'object' ? (n as Obj)[k] : undefined), main) !== undefined;
  const out: string[] = [];
  for (const [kind, fields] of TALOS_CONFLICTS) {
    if (!doc(r, kind)) continue;
    for (const f of fields) if (has(f)) out.push(`${kind} + ${f}`);
  }
  if (main['machine']?.['features']?.['stableHostname'] === true && doc(r, 'HostnameConfig')) out.push('HostnameConfig + machine.features.stableHostname');
  if (main['machine']?.['features']?.['hostDNS'] !== undefined && doc(r, 'ResolverConfig')?.['hostDNS'] !== undefined) out.push('ResolverConfig + machine.features.hostDNS');
  return out;
}

type Case = {
  name: string;
  patch: string;
  /** Minors whose Talos accepts the patch (a document kind that a minor lacks, say). Default: all. */
  minors?: readonly number[];
  /** Roles whose Talos accepts the patch (a shared VIP is for control planes). Default: both. */
  roles?: readonly Role[];
  check?: (r: RenderedConfig, minor: number, role: Role) => void;
};

const CORPUS: Case[] = [
  {
    name: 'VIP on an interface (the Virtual IP guide, 1.11-style machine.network)',
    roles: ['controlplane'],
    patch: 'machine:\n  network:\n    interfaces:\n      - deviceSelector:\n          physical: true\n        dhcp: true\n        vip:\n          ip: 192.0.2.100\n',
    check: (r, minor) => {
      expect(v1(r).machine.network.interfaces).toEqual([{ deviceSelector: { physical: true }, dhcp: true, vip: { ip: '192.0.2.100' } }]);
      if (minor >= 12) expect(r.warnings.join('\n')).toMatch(new RegExp(`machine\\.network(\\.interfaces)? is deprecated in Talos v1\\.${minor}`));
      else expect(r.warnings).toEqual([]);
    },
  },
  {
    name: 'nameservers',
    patch: 'machine:\n  network:\n    nameservers:\n      - 192.0.2.1\n      - 1.1.1.1\n',
    check: (r, minor) => {
      if (minor >= 14) {
        expect(doc(r, 'ResolverConfig')).toMatchObject({ nameservers: [{ address: '192.0.2.1' }, { address: '1.1.1.1' }], hostDNS: { enabled: true } });
        expect(v1(r).machine.network).toBeUndefined();
        expect(r.warnings.join('\n')).toContain('machine.network.nameservers → ResolverConfig');
      } else {
        expect(v1(r).machine.network.nameservers).toEqual(['192.0.2.1', '1.1.1.1']);
      }
    },
  },
  {
    name: 'registry mirror, v1alpha1 form',
    patch: 'machine:\n  registries:\n    mirrors:\n      docker.io:\n        endpoints:\n          - https://registry.lab.example\n',
    check: (r) => expect(v1(r).machine.registries.mirrors['docker.io'].endpoints).toEqual(['https://registry.lab.example']),
  },
  {
    name: 'registry mirror, document form',
    patch: 'apiVersion: v1alpha1\nkind: RegistryMirrorConfig\nname: docker.io\nendpoints:\n  - url: https://registry.lab.example\n',
    minors: [12, 13, 14],
    check: (r) => expect(doc(r, 'RegistryMirrorConfig', 'docker.io')?.['endpoints']).toEqual([{ url: 'https://registry.lab.example' }]),
  },
  {
    name: 'extra kernel arguments for the installed system',
    patch: 'machine:\n  install:\n    extraKernelArgs:\n      - console=ttyS0,115200\n      - net.ifnames=0\n',
    check: (r, minor) => {
      const install = v1(r).machine.install;
      expect(install.extraKernelArgs).toEqual(['console=ttyS0,115200', 'net.ifnames=0']);
      expect(install.disk).toBe('/dev/sda');
      // 1.12/1.13 refuse extraKernelArgs with the generated grubUseUKICmdline: true.
      if (minor === 12 || minor === 13) {
        expect(install.grubUseUKICmdline).toBe(false);
        expect(r.warnings.join('\n')).toContain('grubUseUKICmdline is turned off');
      }
      if (minor >= 14) {
        expect(doc(r, 'UnattendedInstallConfig')).toBeUndefined();
        expect(install).toEqual({ disk: '/dev/sda', image: 'ghcr.io/siderolabs/installer:v1.14.0', wipe: false, extraKernelArgs: ['console=ttyS0,115200', 'net.ifnames=0'] });
        expect(r.warnings.join('\n')).toContain('the install stays in the deprecated machine.install section');
      }
    },
  },
  {
    name: 'kubelet extraArgs',
    patch: 'machine:\n  kubelet:\n    extraArgs:\n      rotate-server-certificates: true\n',
    check: (r, minor) => {
      if (minor >= 14) {
        expect(doc(r, 'KubeletConfig')?.['extraArgs']).toEqual({ 'rotate-server-certificates': true });
        expect(v1(r).machine.kubelet).toBeUndefined();
      } else {
        expect(v1(r).machine.kubelet.extraArgs).toEqual({ 'rotate-server-certificates': true });
      }
    },
  },
  {
    name: "Longhorn's kubelet mount of /var/lib/longhorn",
    patch: 'machine:\n  kubelet:\n    extraMounts:\n      - destination: /var/lib/longhorn\n        type: bind\n        source: /var/lib/longhorn\n        options:\n          - bind\n          - rshared\n          - rw\n',
    check: (r, minor) => {
      const mount = { destination: '/var/lib/longhorn', type: 'bind', source: '/var/lib/longhorn', options: ['bind', 'rshared', 'rw'] };
      expect(v1(r).machine.kubelet.extraMounts).toEqual([mount]);
      if (minor >= 14) {
        // KubeletConfig has no mounts: the kubelet settings stay in machine.kubelet, complete.
        expect(doc(r, 'KubeletConfig')).toBeUndefined();
        expect(v1(r).machine.kubelet).toEqual({ image: 'ghcr.io/siderolabs/kubelet:v1.36.3', defaultRuntimeSeccompProfileEnabled: true, extraMounts: [mount] });
      }
    },
  },
  {
    name: 'install disk selector',
    patch: "machine:\n  install:\n    diskSelector:\n      size: '>= 100GB'\n      type: ssd\n",
    check: (r, minor) => {
      if (minor >= 14) {
        expect(v1(r).machine.install).toBeUndefined();
        expect(doc(r, 'UnattendedInstallConfig')?.['provisioning']).toEqual({
          diskSelector: { match: 'disk.size >= 100000000000u && disk.transport != "" && !disk.rotational && !disk.readonly && !disk.cdrom' },
          wipe: false,
        });
      } else {
        expect(v1(r).machine.install.diskSelector).toEqual({ size: '>= 100GB', type: 'ssd' });
      }
    },
  },
  {
    name: 'install disk /dev/vda (the overrides case)',
    patch: 'machine:\n  install:\n    disk: /dev/vda\n',
    check: (r, minor) => {
      if (minor >= 14) expect(doc(r, 'UnattendedInstallConfig')?.['provisioning']).toEqual({ diskSelector: { match: 'disk.dev_path == "/dev/vda"' }, wipe: false });
      else expect(v1(r).machine.install.disk).toBe('/dev/vda');
    },
  },
  {
    name: 'bond with a VLAN, v1alpha1 form',
    patch:
      "machine:\n  network:\n    interfaces:\n      - interface: bond0\n        bond:\n          mode: 802.3ad\n          deviceSelectors:\n            - hardwareAddr: '52:54:00:*'\n        dhcp: true\n        vlans:\n          - vlanId: 20\n            addresses:\n              - 192.0.2.50/24\n",
    check: (r) => expect(v1(r).machine.network.interfaces[0].vlans).toEqual([{ vlanId: 20, addresses: ['192.0.2.50/24'] }]),
  },
  {
    name: 'bond with a VLAN, document form',
    patch:
      'apiVersion: v1alpha1\nkind: BondConfig\nname: bond0\nlinks:\n  - enp1s0\n  - enp2s0\nbondMode: 802.3ad\n---\napiVersion: v1alpha1\nkind: VLANConfig\nname: bond0.20\nvlanID: 20\nparent: bond0\naddresses:\n  - address: 192.0.2.50/24\n',
    minors: [12, 13, 14],
    check: (r) => expect(doc(r, 'VLANConfig', 'bond0.20')).toMatchObject({ parent: 'bond0', vlanID: 20 }),
  },
  {
    name: 'sysctls (numbers unquoted, as people write them)',
    patch: 'machine:\n  sysctls:\n    net.core.somaxconn: 65535\n    vm.nr_hugepages: "1024"\n',
    check: (r, minor) => {
      if (minor >= 14) {
        expect(doc(r, 'SysctlConfig')?.['params']).toEqual({ 'net.core.somaxconn': 65535, 'vm.nr_hugepages': '1024' });
        expect(v1(r).machine.sysctls).toBeUndefined();
      } else {
        expect(v1(r).machine.sysctls).toEqual({ 'net.core.somaxconn': 65535, 'vm.nr_hugepages': '1024' });
      }
    },
  },
  {
    name: 'system extensions: a schematic installer image, and the deprecated install.extensions',
    patch: `machine:\n  install:\n    image: factory.talos.dev/installer/${'a'.repeat(64)}:v1.14.0\n`,
    check: (r, minor) => {
      const image = `factory.talos.dev/installer/${'a'.repeat(64)}:v1.14.0`;
      if (minor >= 14) expect(doc(r, 'UnattendedInstallConfig')?.['installer']).toEqual({ image });
      else expect(v1(r).machine.install.image).toBe(image);
    },
  },
  {
    name: 'install.extensions (deprecated, still decoded)',
    patch: 'machine:\n  install:\n    extensions:\n      - image: ghcr.io/siderolabs/iscsi-tools:v0.1.4\n',
    check: (r) => expect(v1(r).machine.install.extensions).toEqual([{ image: 'ghcr.io/siderolabs/iscsi-tools:v0.1.4' }]),
  },
  {
    name: 'scheduling on control planes',
    patch: 'cluster:\n  allowSchedulingOnControlPlanes: true\n',
    check: (r, minor, role) => {
      if (minor < 14) return expect(v1(r).cluster.allowSchedulingOnControlPlanes).toBe(true);
      expect(v1(r).cluster.allowSchedulingOnControlPlanes).toBeUndefined();
      if (role === 'controlplane') expect(doc(r, 'KubeNodeConfig')?.['taints']).toBeUndefined();
    },
  },
  {
    name: 'API server certSANs and machine certSANs',
    patch: 'machine:\n  certSANs:\n    - 192.0.2.100\ncluster:\n  apiServer:\n    certSANs:\n      - k8s.lab.example\n      - 192.0.2.100\n',
    check: (r, minor, role) => {
      expect(v1(r).machine.certSANs).toEqual(['192.0.2.100']);
      if (minor >= 14 && role === 'controlplane') {
        expect(doc(r, 'KubeAPIServerConfig')?.['certExtraSANs']).toEqual(['k8s.lab.example', '192.0.2.100']);
        expect(v1(r).cluster.apiServer).toBeUndefined();
      }
      if (minor < 14) expect(v1(r).cluster.apiServer.certSANs).toEqual(expect.arrayContaining(['k8s.lab.example', '192.0.2.100']));
    },
  },
  {
    name: 'local API server port',
    patch: 'cluster:\n  controlPlane:\n    localAPIServerPort: 5443\n',
    check: (r, minor, role) => {
      if (minor >= 14 && role === 'controlplane') expect(doc(r, 'KubeAPIServerConfig')?.['apiPort']).toBe(5443);
      if (minor < 14) expect(v1(r).cluster.controlPlane.localAPIServerPort).toBe(5443);
    },
  },
  {
    name: 'DNS domain example.com',
    patch: 'cluster:\n  network:\n    dnsDomain: example.com\n',
    check: (r, minor) => (minor >= 14 ? expect(doc(r, 'KubeNetworkConfig')?.['dnsDomain']).toBe('example.com') : expect(v1(r).cluster.network.dnsDomain).toBe('example.com')),
  },
  {
    name: 'custom CNI URL',
    patch: 'cluster:\n  network:\n    cni:\n      name: custom\n      urls:\n        - https://example.com/cni.yaml\n',
    check: (r, minor, role) => {
      if (minor < 14) return expect(v1(r).cluster.network.cni).toEqual({ name: 'custom', urls: ['https://example.com/cni.yaml'] });
      expect(doc(r, 'KubeFlannelCNIConfig')).toBeUndefined();
      if (role === 'controlplane') expect(doc(r, 'KubeExternalManifestConfig', 'custom-cni')?.['url']).toBe('https://example.com/cni.yaml');
    },
  },
  {
    name: 'no CNI and no kube-proxy (the Cilium guide)',
    patch: 'cluster:\n  network:\n    cni:\n      name: none\n  proxy:\n    disabled: true\n',
    check: (r, minor, role) => {
      if (minor < 14) return expect(v1(r).cluster.proxy.disabled).toBe(true);
      expect(doc(r, 'KubeFlannelCNIConfig')).toBeUndefined();
      if (role === 'controlplane') expect(doc(r, 'KubeProxyConfig')?.['enabled']).toBe(false);
    },
  },
  {
    name: 'KubeletConfig clusterDNS (Talos 1.14 stability patch)',
    patch: 'apiVersion: v1alpha1\nkind: KubeletConfig\nclusterDNS:\n  - 3.3.3.3\n',
    minors: [14],
    check: (r) => expect(doc(r, 'KubeletConfig')?.['clusterDNS']).toEqual(['3.3.3.3']),
  },
  {
    name: 'time servers',
    patch: 'machine:\n  time:\n    servers:\n      - time.cloudflare.com\n',
    check: (r) => expect(v1(r).machine.time.servers).toEqual(['time.cloudflare.com']),
  },
  {
    name: 'hostname, v1alpha1 form',
    patch: 'machine:\n  network:\n    hostname: cp-1\n',
    check: (r, minor) => {
      if (minor >= 12) {
        expect(doc(r, 'HostnameConfig')).toEqual({ apiVersion: 'v1alpha1', kind: 'HostnameConfig', hostname: 'cp-1' });
        expect(v1(r).machine.network?.hostname).toBeUndefined();
      } else {
        expect(v1(r).machine.network.hostname).toBe('cp-1');
      }
    },
  },
  {
    name: 'cluster name, 1.13-style',
    patch: 'cluster:\n  clusterName: homelab-2\n',
    check: (r, minor) => {
      if (minor >= 14) {
        expect(doc(r, 'KubeClusterConfig')?.['clusterName']).toBe('homelab-2');
        expect(v1(r).cluster.clusterName).toBeUndefined();
      } else {
        expect(v1(r).cluster.clusterName).toBe('homelab-2');
      }
    },
  },
  {
    name: 'node labels',
    patch: 'machine:\n  nodeLabels:\n    topology.kubernetes.io/zone: rack-1\n',
    check: (r, minor) => {
      if (minor >= 14) expect(doc(r, 'KubeNodeConfig')?.['labels']).toMatchObject({ 'topology.kubernetes.io/zone': 'rack-1' });
      else expect(v1(r).machine.nodeLabels).toMatchObject({ 'topology.kubernetes.io/zone': 'rack-1' });
    },
  },
  {
    name: 'inline manifest',
    patch: 'cluster:\n  inlineManifests:\n    - name: namespace-lab\n      contents: |\n        apiVersion: v1\n        kind: Namespace\n        metadata:\n          name: lab\n',
    check: (r) => expect(v1(r).cluster.inlineManifests[0].name).toBe('namespace-lab'),
  },
  {
    name: 'kubelet nodeIP valid subnets',
    patch: 'machine:\n  kubelet:\n    nodeIP:\n      validSubnets:\n        - 192.0.2.0/24\n',
    check: (r, minor) => {
      if (minor >= 14) expect(doc(r, 'KubeNodeConfig')?.['nodeIP']).toEqual({ validSubnets: ['192.0.2.0/24'] });
      else expect(v1(r).machine.kubelet.nodeIP.validSubnets).toEqual(['192.0.2.0/24']);
    },
  },
  {
    // Talos reads plain numbers as Go does (go-yaml: strconv.ParseInt with base 0): 0644 is octal.
    name: 'a file with permissions 0644, as Go and YAML 1.1 write octal',
    patch: 'machine:\n  files:\n    - content: "x"\n      permissions: 0644\n      path: /var/etc/a.conf\n      op: create\n    - content: "y"\n      permissions: 0o600\n      path: /var/etc/b.conf\n      op: create\n',
    check: (r) => {
      expect(v1(r).machine.files.map((f: Obj) => f['permissions'])).toEqual([0o644, 0o600]);
      expect(r.yaml).toContain('permissions: 420\n');
    },
  },
  {
    name: 'an /etc file with mode 0644 (EtcFileConfig)',
    minors: [14],
    patch: 'apiVersion: v1alpha1\nkind: EtcFileConfig\nname: lab.conf\ncontents: "x=1\\n"\nmode: 0644\n',
    check: (r) => expect(doc(r, 'EtcFileConfig', 'lab.conf')?.['mode']).toBe(0o644),
  },
  {
    // Where Talos's field is text, go-yaml keeps a plain scalar as written.
    name: 'labels and arguments written as numbers and booleans keep their text',
    patch: 'machine:\n  nodeLabels:\n    lab.example/zone: 01\n    lab.example/release: 1.30\n  kubelet:\n    extraArgs:\n      rotate-server-certificates: True\n      max-pods: 250\n',
    check: (r, minor) => {
      const labels = minor >= 14 ? doc(r, 'KubeNodeConfig')!['labels'] : v1(r).machine.nodeLabels;
      expect(labels).toMatchObject({ 'lab.example/zone': '01', 'lab.example/release': '1.30' });
      const args = minor >= 14 ? doc(r, 'KubeletConfig')!['extraArgs'] : v1(r).machine.kubelet.extraArgs;
      // As written where the number or boolean would read the same (Genesis's output is unchanged there).
      expect(args).toEqual({ 'rotate-server-certificates': 'True', 'max-pods': 250 });
      expect(r.yaml).toContain('lab.example/zone: "01"\n');
      expect(r.yaml).toContain('lab.example/release: "1.30"\n');
    },
  },
  {
    name: 'a routing rule by action name, as Talos\'s example writes it',
    minors: [13, 14],
    patch: 'apiVersion: v1alpha1\nkind: RoutingRuleConfig\nname: "1000"\nsrc: 192.0.2.0/24\ntable: 100\naction: unicast\n---\napiVersion: v1alpha1\nkind: RoutingRuleConfig\nname: "1001"\nsrc: 198.51.100.0/24\naction: Blackhole\n',
    check: (r) => expect(doc(r, 'RoutingRuleConfig', '1001')?.['action']).toBe('Blackhole'),
  },
  {
    name: 'routing rules named by priority without quotes: each its own document',
    minors: [13, 14],
    patch: 'apiVersion: v1alpha1\nkind: RoutingRuleConfig\nname: 1000\nsrc: 192.0.2.0/24\ntable: 100\n---\napiVersion: v1alpha1\nkind: RoutingRuleConfig\nname: 1001\nsrc: 198.51.100.0/24\ntable: 101\n',
    check: (r) => {
      expect(r.documents.filter((d) => d['kind'] === 'RoutingRuleConfig').map((d) => [d['name'], d['table']])).toEqual([['1000', 100], ['1001', 101]]);
      expect(r.yaml).toContain('name: "1000"\n');
    },
  },
  {
    // go-yaml takes YAML 1.1's words for booleans into a boolean field (and only there).
    name: 'yes, on and off where Talos expects a boolean, as YAML 1.1 and Ansible write them',
    patch: 'cluster:\n  allowSchedulingOnControlPlanes: yes\n  proxy:\n    disabled: On\nmachine:\n  nodeLabels:\n    lab.example/gpu: yes\n',
    check: (r, minor, role) => {
      const labels = minor >= 14 ? doc(r, 'KubeNodeConfig')!['labels'] : v1(r).machine.nodeLabels;
      expect(labels).toMatchObject({ 'lab.example/gpu': 'yes' });
      if (minor < 14) return expect([v1(r).cluster.allowSchedulingOnControlPlanes, v1(r).cluster.proxy.disabled]).toEqual([true, true]);
      if (role !== 'controlplane') return;
      expect(doc(r, 'KubeProxyConfig')?.['enabled']).toBe(false);
      expect(doc(r, 'KubeNodeConfig')?.['taints']).toBeUndefined();
    },
  },
  {
    // A list in Talos's types; 1.11's and 1.12's schemas give its values as a single value.
    name: 'an encrypted user volume with LUKS2 performance options',
    patch: 'apiVersion: v1alpha1\nkind: UserVolumeConfig\nname: data\nprovisioning:\n  diskSelector:\n    match: disk.transport == "nvme"\n  minSize: 10GiB\nencryption:\n  provider: luks2\n  keys:\n    - slot: 0\n      nodeID: {}\n  options:\n    - no_read_workqueue\n    - no_write_workqueue\n',
    check: (r) => expect(doc(r, 'UserVolumeConfig', 'data')?.['encryption']).toMatchObject({ options: ['no_read_workqueue', 'no_write_workqueue'] }),
  },
  {
    name: 'YAML anchors and merge keys (go-yaml resolves <<)',
    patch: 'machine:\n  nodeLabels: &labels\n    lab.example/site: attic\n  nodeAnnotations:\n    <<: *labels\n    lab.example/owner: ops\n',
    check: (r, minor) => {
      const annotations = minor >= 14 ? doc(r, 'KubeNodeConfig')!['annotations'] : v1(r).machine.nodeAnnotations;
      expect(annotations).toEqual({ 'lab.example/site': 'attic', 'lab.example/owner': 'ops' });
    },
  },
  {
    name: 'a 1.13 control-plane config copied whole: discovery with the Kubernetes registry off',
    patch: 'cluster:\n  discovery:\n    enabled: true\n    registries:\n      kubernetes:\n        disabled: true\n      service: {}\n',
    check: (r, minor) => {
      if (minor >= 14) {
        expect(v1(r).cluster.discovery).toBeUndefined();
        expect(doc(r, 'DiscoveryServiceConfig')).toBeDefined();
      }
    },
  },
];

describe.each(MINORS)('Talos v1.%s', (minor) => {
  describe.each(['controlplane', 'worker'] as const)('%s', (role) => {
    const cases = CORPUS.filter((c) => (!c.minors || c.minors.includes(minor)) && (!c.roles || c.roles.includes(role)));
    it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
      let r: RenderedConfig;
      try {
        r = render(minor, role, [c.patch]);
      } catch (err) {
        if (err instanceof RenderError) throw new Error(`${err.message}\n${err.problems.join('\n')}`, { cause: err });
        throw err;
      }
      expect(conflicts(r)).toEqual([]);
      c.check?.(r, minor, role);
    });

    it('all of them at once', () => {
      const r = render(
        minor,
        role,
        cases.filter((c) => !c.name.startsWith('install disk /dev/vda') && !c.name.startsWith('system extensions')).map((c) => c.patch),
      );
      expect(conflicts(r)).toEqual([]);
    });
  });
});

describe("patches merge as Talos's own Merge methods merge them", () => {
  it.each(MINORS)('v1.%s: VLANs by vlanId, config files by mountPath', (minor) => {
    const vlans = (vlan: string) => `machine:\n  network:\n    interfaces:\n      - interface: eth0\n        vlans:\n${vlan}`;
    const r = render(minor, 'worker', [
      vlans('          - vlanId: 20\n            addresses: [192.0.2.20/24]\n'),
      vlans('          - vlanId: 20\n            mtu: 1400\n          - vlanId: 30\n            dhcp: true\n'),
      'apiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: nut-client\nconfigFiles:\n  - content: MONITOR ups@nas 1 user pass1 secondary\n    mountPath: /usr/local/etc/nut/upsmon.conf\n',
      'apiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: nut-client\nconfigFiles:\n  - content: MONITOR ups@nas 1 user pass2 secondary\n    mountPath: /usr/local/etc/nut/upsmon.conf\n',
    ]);
    expect(v1(r).machine.network.interfaces).toEqual([{ interface: 'eth0', vlans: [{ vlanId: 20, addresses: ['192.0.2.20/24'], mtu: 1400 }, { vlanId: 30, dhcp: true }] }]);
    expect(doc(r, 'ExtensionServiceConfig', 'nut-client')?.['configFiles']).toEqual([{ content: 'MONITOR ups@nas 1 user pass2 secondary', mountPath: '/usr/local/etc/nut/upsmon.conf' }]);
  });

  it.each([13, 14])('v1.%s: an argument given as a list replaces the list it had (meta.Args), it is not appended to it', (minor) => {
    const r = render(minor, 'controlplane', [
      'machine:\n  kubelet:\n    extraArgs:\n      feature-gates: [A=true]\n      max-pods: "150"\n',
      'machine:\n  kubelet:\n    extraArgs:\n      feature-gates: [B=true]\n',
    ]);
    const args = minor >= 14 ? doc(r, 'KubeletConfig')!['extraArgs'] : v1(r).machine.kubelet.extraArgs;
    expect(args).toMatchObject({ 'feature-gates': ['B=true'], 'max-pods': '150' });
  });

  it.each([13, 14])('v1.%s: an image verification rule of the same pattern replaces the one before', (minor) => {
    const rule = (keyless: string) => `apiVersion: v1alpha1\nkind: ImageVerificationConfig\nrules:\n  - imagePattern: registry.lab.example/*\n    keyless:\n${keyless}`;
    const r = render(minor, 'worker', [rule('      issuer: https://old.example\n      subject: ops@lab.example\n'), rule('      issuer: https://new.example\n      subjectRegExp: .*@lab\\.example\n')]);
    expect(doc(r, 'ImageVerificationConfig')?.['rules']).toEqual([{ imagePattern: 'registry.lab.example/*', keyless: { issuer: 'https://new.example', subjectRegExp: '.*@lab\\.example' } }]);
  });
});

describe('patches Talos refuses are refused, with the path', () => {
  it.each(MINORS)('v1.%s: a typo under a deprecated section is still a typo', (minor) => {
    const patch = 'machine:\n  network:\n    interfaces:\n      - interface: eth0\n        dhcpp: true\n';
    expect(() => render(minor, 'worker', [patch])).toThrow('v1alpha1 config /machine/network/interfaces/0: unknown field "dhcpp" (did you mean "dhcp"?)');
  });

  it.each(MINORS)('v1.%s: an unknown top-level field', (minor) => {
    expect(() => render(minor, 'worker', ['machine:\n  frobnicate: true\n'])).toThrow('v1alpha1 config /machine: unknown field "frobnicate"');
  });

  it.each(MINORS)('v1.%s: a disk selector by name (Talos cannot select the install disk by name)', (minor) => {
    expect(() => render(minor, 'worker', ['machine:\n  install:\n    diskSelector:\n      name: /dev/sda\n'])).toThrow(/selecting the install disk by name/);
  });

  it.each(MINORS)('v1.%s: what Talos allows only on control planes, given to a worker (a cluster-wide patch meant for them)', (minor) => {
    const hint = 'move it to the controlplane patch, not the cluster-wide one';
    const vip = 'machine:\n  network:\n    interfaces:\n      - interface: eth0\n        dhcp: true\n        vip: {ip: 192.0.2.100}\n        vlans:\n          - vlanId: 20\n            vip: {ip: 192.0.2.101}\n';
    expect(() => render(minor, 'worker', [vip])).toThrow(`v1alpha1 config /machine/network/interfaces/0/vip: virtual (shared) IP is not allowed on non-controlplane nodes: ${hint}`);
    expect(() => render(minor, 'worker', [vip])).toThrow('/machine/network/interfaces/0/vlans/0/vip: virtual (shared) IP is not allowed');
    const etcd = 'cluster:\n  etcd:\n    advertisedSubnets: [192.0.2.0/24]\n';
    expect(() => render(minor, 'worker', [etcd])).toThrow(`v1alpha1 config /cluster/etcd: etcd config is only allowed on control plane machines: ${hint}`);
    expect(v1(render(minor, 'controlplane', [vip, etcd])).cluster.etcd.advertisedSubnets).toEqual(['192.0.2.0/24']);
    if (minor >= 14) {
      expect(() => render(minor, 'worker', ['apiVersion: v1alpha1\nkind: KubeProxyConfig\nenabled: false\n'])).toThrow(`KubeProxyConfig document: Talos allows it only on control plane machines: ${hint}`);
    }
  });

  it.each([12, 13, 14])('v1.%s: an installer image tag for an older Talos than the machine boots is refused; a newer one is a warning', (minor) => {
    const image = (tag: string) => `machine:\n  install:\n    image: factory.talos.dev/installer/${'b'.repeat(64)}:${tag}\n`;
    // Named where the patch wrote it (on 1.14 Genesis moves it into UnattendedInstallConfig afterwards).
    const where = 'v1alpha1 config /machine/install/image';
    expect(() => render(minor, 'worker', [image('v1.11.2')])).toThrow(
      `${where}: factory.talos.dev/installer/${'b'.repeat(64)}:v1.11.2 installs Talos v1.11.2, older than ${VERSION[minor]}, which this machine boots and its config is written for: that Talos cannot read it; genesis nodes assign <mac> <role> --talos-version v1.11.2`,
    );
    // A release Genesis cannot write configs for is not offered as the fix.
    expect(() => render(minor, 'worker', [image('v1.9.5')])).toThrow('installs Talos v1.9.5, older than');
    expect(() => render(minor, 'worker', [image('v1.9.5')])).toThrow('that Talos cannot read it; Genesis writes configs for Talos v1.11 to v1.14: give the installer this machine\'s version, or leave the image to Genesis');
    if (minor >= 14) {
      const doc14 = 'apiVersion: v1alpha1\nkind: UnattendedInstallConfig\ninstaller:\n  image: ghcr.io/siderolabs/installer:v1.13.9\n';
      expect(() => render(minor, 'worker', [doc14])).toThrow('UnattendedInstallConfig document /installer/image: ghcr.io/siderolabs/installer:v1.13.9 installs Talos v1.13.9, older than v1.14.0');
    }
    const newer = render(minor, 'worker', [image('v1.14.9')]);
    expect(newer.warnings).toContainEqual(expect.stringMatching(new RegExp(`^${where} installs Talos v1\\.14\\.9, not ${VERSION[minor]!.replace(/\./g, '\\.')}, which this machine boots`)));
    expect(newer.warnings.find((w) => w.includes('installs Talos'))).toContain(minor === 14 ? '(every v1.14 release reads it)' : '(a newer Talos reads it, as after an upgrade)');
    // Another patch release of the machine's own minor (found trying v1.13.4 on a v1.13.9 machine: it said "a newer Talos").
    const samePatch = render(minor, 'worker', [image(`v1.${minor}.1`)]).warnings.find((w) => w.includes('installs Talos'));
    expect(samePatch).toContain(`installs Talos v1.${minor}.1, not ${VERSION[minor]}, which this machine boots and its config is written for (every v1.${minor} release reads it)`);
    // A digest, or a tag that is no release, says nothing about the version.
    expect(render(minor, 'worker', ['machine:\n  install:\n    image: registry.lab:5000/installer@sha256:' + 'c'.repeat(64) + '\n']).warnings.join('\n')).not.toContain('installs Talos');
  });

  it.each(MINORS)('v1.%s: a patch cannot change the machine\'s role (machine.type)', (minor) => {
    expect(() => render(minor, 'worker', ['machine:\n  type: controlplane\n'])).toThrow(
      'v1alpha1 config /machine/type: is "controlplane", but this machine is assigned "worker": the role is Genesis\'s assignment (genesis nodes assign <mac> controlplane), not a patch\'s',
    );
    expect(() => render(minor, 'controlplane', ['machine:\n  type: worker\n'])).toThrow('/machine/type: is "worker", but this machine is assigned "controlplane"');
    // Saying the same role again is fine.
    expect(v1(render(minor, 'worker', ['machine:\n  type: worker\n'])).machine.type).toBe('worker');
  });

  it.each(MINORS)('v1.%s: node labels, annotations and taints Kubernetes would refuse (Talos refuses the whole config)', (minor) => {
    const patch = 'machine:\n  nodeLabels:\n    topology.kubernetes.io/zone: Living Room\n    rack: "01"\n  nodeAnnotations:\n    talos.dev/owned-labels: x\n  nodeTaints:\n    dedicated: gpu:NoSchedule\n    bad: gpu:Never\n';
    const where = (field: string) => (minor >= 14 ? `KubeNodeConfig document /${field}` : `v1alpha1 config /machine/node${field[0]!.toUpperCase()}${field.slice(1)}`);
    let problems: string[] = [];
    try {
      render(minor, 'worker', [patch]);
    } catch (err) {
      problems = (err as RenderError).problems;
    }
    expect(problems).toEqual([
      `${where('labels')}: label topology.kubernetes.io/zone: value "Living Room" is not a valid Kubernetes label value (up to 63 letters, digits, '-', '_' and '.', beginning and ending with a letter or digit)`,
      `${where('annotations')}: annotation "talos.dev/owned-labels" is reserved by Talos`,
      `${where('taints')}: taint bad: effect "Never" is not one of NoSchedule, PreferNoSchedule, NoExecute`,
    ]);
    // The valid ones alone render.
    expect(render(minor, 'worker', ['machine:\n  nodeLabels:\n    rack: "01"\n  nodeTaints:\n    dedicated: gpu:NoSchedule\n']).documents).toBeDefined();
  });

  it.each([13, 14])('v1.%s: a routing rule\'s action is a name, never a number (Talos decodes it as text; its schema says integer)', (minor) => {
    const rule = (action: string) => `apiVersion: v1alpha1\nkind: RoutingRuleConfig\nname: "1000"\nsrc: 192.0.2.0/24\ntable: 100\naction: ${action}\n`;
    const meaning = 'RoutingRuleConfig "1000" document /action: must be one of "unicast", "blackhole", "unreachable", "prohibit", "unspec"';
    expect(() => render(minor, 'worker', [rule('1')])).toThrow(meaning);
    expect(() => render(minor, 'worker', [rule('drop')])).toThrow(meaning);
    // Talos's own rule: no table is fine for a blackhole (the corpus above), not for a lookup.
    const noTable = (action: string) => `apiVersion: v1alpha1\nkind: RoutingRuleConfig\nname: "1000"\nsrc: 192.0.2.0/24\n${action}`;
    for (const action of ['', 'action: unicast\n', 'action: Unicast\n']) {
      expect(() => render(minor, 'worker', [noTable(action)])).toThrow('RoutingRuleConfig "1000" document: either table or a non-unicast action must be specified');
    }
  });

  it.each(MINORS)('v1.%s: one value written two ways where Talos keeps the text: which was meant is asked, not guessed', (minor) => {
    const patch = 'machine:\n  nodeLabels:\n    lab.example/release: 1.30\n  nodeAnnotations:\n    lab.example/release: 1.3\n';
    expect(() => render(minor, 'worker', [patch])).toThrow(/(nodeLabels|labels)\/lab\.example~1release: Talos keeps the text written here, and the patches write 1\.3 there as "1\.30", "1\.3": quote the one meant \("1\.30"\)/);
    // Across patches, the last one to write it wins, as its value does.
    const r = render(minor, 'worker', ['machine:\n  nodeLabels:\n    lab.example/release: 1.3\n', 'machine:\n  nodeLabels:\n    lab.example/release: 1.30\n']);
    expect(r.yaml).toContain('lab.example/release: "1.30"\n');
    // The same value under another key (a number field there) is no doubt.
    const other = render(minor, 'worker', ['machine:\n  nodeLabels:\n    lab.example/zone: 010\n  files:\n    - content: x\n      permissions: 8\n      path: /var/etc/c\n      op: create\n']);
    expect(other.yaml).toContain('lab.example/zone: "010"\n');
  });

  it.each(MINORS)('v1.%s: a kind that does not exist names the one meant, or the release that brings it', (minor) => {
    expect(() => render(minor, 'worker', ['apiVersion: v1alpha1\nkind: KubeSpanEndpoints\nextraAnnouncedEndpoints:\n  - 192.0.2.2:51820\n'])).toThrow(
      `KubeSpanEndpoints document: Talos v1.${minor} has no document kind "KubeSpanEndpoints" (did you mean "KubeSpanEndpointsConfig"?)`,
    );
    if (minor < 14) {
      expect(() => render(minor, 'worker', ['apiVersion: v1alpha1\nkind: KubeletConfig\nclusterDNS:\n  - 192.0.2.10\n'])).toThrow(`Talos v1.${minor} has no document kind "KubeletConfig" (it is new in Talos v1.14)`);
    }
  });

  it('1.12: extraKernelArgs together with an explicit grubUseUKICmdline: true', () => {
    const patch = 'machine:\n  install:\n    extraKernelArgs: [a=b]\n    grubUseUKICmdline: true\n';
    // The generated value is true too: the operator's explicit true is indistinguishable, so Genesis keeps Talos's rule.
    expect(render(12, 'worker', [patch]).documents).toBeDefined();
  });

  it('1.14: a v1alpha1 field with no place in its document, next to that document, names the document', () => {
    expect(() => render(14, 'controlplane', ['cluster:\n  apiServer:\n    extraVolumes:\n      - hostPath: /etc/k\n        mountPath: /etc/k\n'])).toThrow(
      /cluster\.apiServer\.extraVolumes cannot be used together with the KubeAPIServerConfig document Talos v1\.14 uses; set it in the KubeAPIServerConfig document instead/,
    );
    expect(() => render(14, 'controlplane', ['cluster:\n  ca:\n    crt: eA==\n    key: eA==\n'])).toThrow(/cluster\.ca conflicts with the KubeAPIServerCAConfig document: Genesis writes it from the cluster secrets bundle/);
  });

  it('1.14: the same setting with two different values is refused, never silently picked', () => {
    const patches = ['apiVersion: v1alpha1\nkind: SysctlConfig\nparams:\n  vm.swappiness: "10"\n', 'machine:\n  sysctls:\n    vm.swappiness: "60"\n'];
    expect(() => render(14, 'worker', patches)).toThrow(/machine\.sysctls sets "vm\.swappiness" to "60", but the document already sets it to "10"/);
  });

  it('1.14: a document can be deleted and replaced by kind', () => {
    const r = render(14, 'controlplane', ['apiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\n$patch: delete\n', 'apiVersion: v1alpha1\nkind: KubePrismConfig\n$patch: delete\n---\napiVersion: v1alpha1\nkind: KubePrismConfig\nport: 7446\n']);
    expect(doc(r, 'KubeFlannelCNIConfig')).toBeUndefined();
    expect(doc(r, 'KubePrismConfig')).toEqual({ apiVersion: 'v1alpha1', kind: 'KubePrismConfig', port: 7446 });
    // Named kinds are matched by name.
    const named = render(14, 'controlplane', ['apiVersion: v1alpha1\nkind: KubeAuthorizerConfig\nname: rbac\n$patch: delete\n']);
    expect(named.documents.filter((d) => d['kind'] === 'KubeAuthorizerConfig').map((d) => d['name'])).toEqual(['node']);
  });

  it('1.14: lists Talos replaces are replaced, not appended', () => {
    const r = render(14, 'worker', ['apiVersion: v1alpha1\nkind: KubeNetworkConfig\npodSubnets:\n  - 10.42.0.0/16\n']);
    expect(doc(r, 'KubeNetworkConfig')?.['podSubnets']).toEqual(['10.42.0.0/16']);
  });
});
