// A node's config: its own settings per version contract, patches in order, schema enforcement.

import { describe, expect, it } from 'vitest';
import { applyPatches, parsePatch, PatchError } from '../../src/talos/patch.ts';
import { redactDocuments, REDACTED } from '../../src/talos/redact.ts';
import { renderConfig, RenderError, type ClusterSettings, type NodeInput } from '../../src/talos/render.ts';
import { fixtureSecrets, testCluster } from '../helpers/talos-inputs.ts';

const secrets = fixtureSecrets();
const MAC = '52:54:00:aa:bb:01';

const cluster = testCluster;
const node = (over: Partial<NodeInput> = {}): NodeInput => ({ mac: MAC, role: 'worker', talosVersion: 'v1.13.9', ...over });
const render = (n: Partial<NodeInput> = {}, c: Partial<ClusterSettings> = {}, patches: string[] = []) =>
  renderConfig({ cluster: cluster(c), secrets, node: node(n), patches: patches.map((p, i) => parsePatch(p, `patch ${i}`)) });
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const v1 = (r: { documents: Obj[] }): Obj => r.documents.find((d) => d['kind'] === undefined)!;
const kind = (r: { documents: Obj[] }, k: string): Obj[] => r.documents.filter((d) => d['kind'] === k);

describe('cluster settings', () => {
  it('install disk and image (plain and Image Factory), pinned to the node\'s Talos version', () => {
    expect(v1(render()).machine.install).toEqual({ disk: '/dev/sda', image: 'ghcr.io/siderolabs/installer:v1.13.9', wipe: false, grubUseUKICmdline: true });
    const schematic = 'a'.repeat(64);
    expect(v1(render({ talosVersion: 'v1.12.4', installDisk: '/dev/nvme0n1' }, { schematicId: schematic })).machine.install).toMatchObject({
      disk: '/dev/nvme0n1',
      image: `factory.talos.dev/installer/${schematic}:v1.12.4`,
    });
  });

  it('CNI none/custom, subnets, scheduling on control planes', () => {
    const r = render({ role: 'controlplane' }, { cni: { name: 'custom', urls: ['https://example.test/cilium.yaml'] }, podSubnets: ['10.1.0.0/16'], allowSchedulingOnControlPlanes: true });
    expect(v1(r).cluster.network).toEqual({ cni: { name: 'custom', urls: ['https://example.test/cilium.yaml'] }, dnsDomain: 'cluster.local', podSubnets: ['10.1.0.0/16'], serviceSubnets: ['10.96.0.0/12'] });
    expect(v1(r).cluster.allowSchedulingOnControlPlanes).toBe(true);
    expect(v1(render({}, { cni: { name: 'none' } })).cluster.network.cni).toEqual({ name: 'none' });
  });

  it('endpoint from the VIP when none is given; neither is a clear error', () => {
    expect(v1(render({}, { endpoint: '', vip: '192.0.2.100' })).cluster.controlPlane.endpoint).toBe('https://192.0.2.100:6443');
    expect(() => render({}, { endpoint: '' })).toThrow('cluster.endpoint is not set');
  });

  it('an unsupported Talos version is a RenderError naming the range', () => {
    expect(() => render({ talosVersion: 'v1.9.0' })).toThrow(RenderError);
    expect(() => render({ talosVersion: 'v1.9.0' })).toThrow('Genesis renders machine configs for Talos v1.11 to v1.14; v1.9.0 is not one of them');
  });
});

describe('node settings', () => {
  const net = { address: '192.0.2.21/24', gateway: '192.0.2.1', nameservers: ['192.0.2.1', '192.0.2.2'] };

  it('1.12 and 1.13: hostname, static address and VIP as documents bound to the NIC by MAC', () => {
    for (const talosVersion of ['v1.12.11', 'v1.13.9']) {
      const r = render({ talosVersion, role: 'controlplane', hostname: 'cp1', network: net }, { vip: '192.0.2.100' });
      expect(kind(r, 'HostnameConfig')).toEqual([{ apiVersion: 'v1alpha1', kind: 'HostnameConfig', hostname: 'cp1' }]);
      expect(kind(r, 'LinkAliasConfig')).toEqual([{ apiVersion: 'v1alpha1', kind: 'LinkAliasConfig', name: 'pxe0', selector: { match: `mac(link.permanent_addr) == "${MAC}"` } }]);
      expect(kind(r, 'LinkConfig')).toEqual([{ apiVersion: 'v1alpha1', kind: 'LinkConfig', name: 'pxe0', up: true, addresses: [{ address: '192.0.2.21/24' }], routes: [{ gateway: '192.0.2.1' }] }]);
      expect(kind(r, 'ResolverConfig')).toEqual([{ apiVersion: 'v1alpha1', kind: 'ResolverConfig', nameservers: [{ address: '192.0.2.1' }, { address: '192.0.2.2' }] }]);
      expect(kind(r, 'Layer2VIPConfig')).toEqual([{ apiVersion: 'v1alpha1', kind: 'Layer2VIPConfig', name: '192.0.2.100', link: 'pxe0' }]);
    }
  });

  it('1.11: the same settings in machine.network', () => {
    const r = render({ talosVersion: 'v1.11.5', role: 'controlplane', hostname: 'cp1', network: net }, { vip: '192.0.2.100' });
    expect(v1(r).machine.network).toEqual({
      hostname: 'cp1',
      interfaces: [{ deviceSelector: { hardwareAddr: MAC }, addresses: ['192.0.2.21/24'], routes: [{ network: '0.0.0.0/0', gateway: '192.0.2.1' }], vip: { ip: '192.0.2.100' } }],
      nameservers: ['192.0.2.1', '192.0.2.2'],
    });
    expect(r.documents).toHaveLength(1);
  });

  it('the VIP goes to control planes only; DHCP nodes keep DHCP', () => {
    expect(kind(render({ role: 'worker' }, { vip: '192.0.2.100' }), 'Layer2VIPConfig')).toEqual([]);
    const cp = render({ role: 'controlplane' }, { vip: '192.0.2.100' });
    expect(kind(cp, 'LinkConfig')).toEqual([]);
    expect(kind(cp, 'Layer2VIPConfig')).toHaveLength(1);
    expect(v1(render({ talosVersion: 'v1.11.0', role: 'controlplane' }, { vip: '192.0.2.100' })).machine.network.interfaces).toEqual([
      { deviceSelector: { hardwareAddr: MAC }, dhcp: true, vip: { ip: '192.0.2.100' } },
    ]);
  });

  it('a disk selector replaces the disk path; labels join the control-plane label', () => {
    const r = render({ role: 'controlplane', diskSelector: { type: 'nvme', size: '>= 200GB' }, labels: { 'topology.kubernetes.io/zone': 'rack1' } });
    expect(v1(r).machine.install.disk).toBeUndefined();
    expect(v1(r).machine.install.diskSelector).toEqual({ type: 'nvme', size: '>= 200GB' });
    expect(v1(r).machine.nodeLabels).toEqual({ 'node.kubernetes.io/exclude-from-external-load-balancers': '', 'topology.kubernetes.io/zone': 'rack1' });
  });
});

describe('the MAC in a config', () => {
  // ConfigRenderer.renderServed serves a config that does not write its machine's MAC to every
  // machine with the same other inputs. That is right only while a MAC enters a config as written
  // text and nothing else: every per-node setting, rendered for two MACs, must differ by that text alone.
  const A = '52:54:00:aa:bb:01';
  const B = '52:54:00:cc:dd:02';
  // Per setting, whether the config writes the MAC: always, never, or on control planes (a VIP).
  const settings: Array<[Partial<NodeInput>, Partial<ClusterSettings>, boolean | 'controlplane']> = [
    [{}, {}, false],
    [{ hostname: 'n1' }, {}, false],
    [{ network: { address: '192.0.2.21/24', gateway: '192.0.2.1', nameservers: ['192.0.2.1'] } }, {}, true],
    [{}, { vip: '192.0.2.100' }, 'controlplane'],
    [{ labels: { zone: 'a' }, diskSelector: { size: '>= 100GB' } }, {}, false],
    [{ hostname: 'n1', installDisk: '/dev/nvme0n1', labels: { zone: 'a' }, network: { address: '192.0.2.21/24' } }, { vip: '192.0.2.100' }, true],
  ];
  for (const talosVersion of ['v1.11.5', 'v1.12.4', 'v1.13.9', 'v1.14.0']) {
    for (const role of ['worker', 'controlplane'] as const) {
      it(`${talosVersion} ${role}: the text of the MAC is all that differs`, () => {
        for (const [n, c, writes] of settings) {
          const [a, b] = [A, B].map((mac) => render({ mac, role, talosVersion, ...n }, c));
          expect(a!.yaml.includes(A)).toBe(writes === true || writes === role);
          expect(a!.yaml.replaceAll(A, B)).toBe(b!.yaml);
          expect(a!.warnings).toEqual(b!.warnings);
        }
      });
    }
  }
});

describe('patches', () => {
  it('apply in order (cluster, role, node): later wins, lists append, subnets replace', () => {
    const r = render({}, {}, [
      'machine:\n  kubelet:\n    extraArgs:\n      max-pods: "150"\n  certSANs: [a.example]\ncluster:\n  network:\n    podSubnets: [10.9.0.0/16]\n',
      'machine:\n  kubelet:\n    extraArgs:\n      max-pods: "200"\n  certSANs: [b.example]\n',
    ]);
    expect(v1(r).machine.kubelet.extraArgs).toEqual({ 'max-pods': '200' });
    expect(v1(r).machine.certSANs).toEqual(['a.example', 'b.example']);
    expect(v1(r).cluster.network.podSubnets).toEqual(['10.9.0.0/16']);
  });

  it('add, merge and delete documents; $patch: delete removes a key', () => {
    const r = render({}, {}, [
      'apiVersion: v1alpha1\nkind: HostnameConfig\n$patch: delete\n---\napiVersion: v1alpha1\nkind: KmsgLogConfig\nname: remote\nurl: tcp://192.0.2.5:5000\n',
      'machine:\n  features:\n    hostDNS:\n      $patch: delete\n',
    ]);
    expect(kind(r, 'HostnameConfig')).toEqual([]);
    expect(kind(r, 'KmsgLogConfig')).toEqual([{ apiVersion: 'v1alpha1', kind: 'KmsgLogConfig', name: 'remote', url: 'tcp://192.0.2.5:5000' }]);
    expect(v1(r).machine.features.hostDNS).toBeUndefined();
  });

  it('JSON patches (RFC 6902) change the v1alpha1 document', () => {
    const r = render({}, {}, ['- op: add\n  path: /machine/sysctls\n  value: {vm.nr_hugepages: "128"}\n- op: replace\n  path: /machine/install/wipe\n  value: true\n- op: remove\n  path: /machine/certSANs\n']);
    expect(v1(r).machine.sysctls).toEqual({ 'vm.nr_hugepages': '128' });
    expect(v1(r).machine.install.wipe).toBe(true);
    expect('certSANs' in v1(r).machine).toBe(false);
    expect(() => render({}, {}, ['- op: remove\n  path: /machine/nothing\n'])).toThrow('JSON patch operation 0 (remove /machine/nothing): the path does not exist');
  });

  it('interfaces merge by identity instead of duplicating', () => {
    const base = [{ machine: { network: { interfaces: [{ interface: 'eth0', dhcp: true }] } } }];
    const out = applyPatches(base, [parsePatch('machine:\n  network:\n    interfaces:\n      - interface: eth0\n        mtu: 9000\n      - interface: eth1\n', 'p')]);
    expect((out[0] as Obj).machine.network.interfaces).toEqual([{ interface: 'eth0', dhcp: true, mtu: 9000 }, { interface: 'eth1' }]);
  });

  it('a patch that breaks the schema is refused with the field and the rule', () => {
    expect(() => render({}, {}, ['machine:\n  install:\n    disk: [7]\n  kubelet:\n    imagee: x\n'])).toThrow(
      'does not pass Talos\'s schema: v1alpha1 config /machine/kubelet: unknown field "imagee" (did you mean "image"?); v1alpha1 config /machine/install/disk: must be string',
    );
    try {
      render({ talosVersion: 'v1.12.0' }, {}, ['apiVersion: v1alpha1\nkind: LinkConfig\nmtu: 1500\n']);
      expect.unreachable();
    } catch (err) {
      expect((err as RenderError).problems).toEqual(["LinkConfig document /: must have required property 'name'"]);
    }
  });

  it('bad YAML and bad JSON patch operations are PatchErrors naming the source', () => {
    expect(() => parsePatch('machine: [unclosed', 'talos.patches.cluster (/etc/p.yaml)')).toThrow(/^talos\.patches\.cluster \(\/etc\/p\.yaml\): not valid YAML/);
    expect(() => parsePatch('- op: move\n  path: /a\n', 'node configPatch')).toThrow(PatchError);
    expect(() => parsePatch('- just a string\n', 'x')).toThrow('JSON patch operation 0 needs op');
    expect(() => parsePatch('machine: {}\n---\n- 1\n', 'x')).toThrow('document 2 is not a mapping');
  });
});

describe('reporting to Genesis', () => {
  const telemetry = { eventSink: '192.0.2.1:8090', kernelLog: 'tcp://192.0.2.1:8092/' };
  it('adds the event sink and kernel-log documents, valid for every supported version', () => {
    for (const talosVersion of ['v1.11.5', 'v1.12.0', 'v1.13.9']) {
      const r = render({ talosVersion }, { telemetry });
      expect(kind(r, 'EventSinkConfig'), talosVersion).toEqual([{ apiVersion: 'v1alpha1', kind: 'EventSinkConfig', endpoint: '192.0.2.1:8090' }]);
      expect(kind(r, 'KmsgLogConfig'), talosVersion).toEqual([{ apiVersion: 'v1alpha1', kind: 'KmsgLogConfig', name: 'genesis', url: 'tcp://192.0.2.1:8092/' }]);
    }
    expect(kind(render(), 'EventSinkConfig')).toEqual([]);
  });
  it('a patch can point them elsewhere or remove them, and add a second log destination', () => {
    const r = render({}, { telemetry }, [
      'apiVersion: v1alpha1\nkind: EventSinkConfig\nendpoint: 192.0.2.9:8090\n---\napiVersion: v1alpha1\nkind: KmsgLogConfig\nname: genesis\n$patch: delete\n---\napiVersion: v1alpha1\nkind: KmsgLogConfig\nname: siem\nurl: udp://192.0.2.7:514\n',
    ]);
    expect(kind(r, 'EventSinkConfig')).toEqual([{ apiVersion: 'v1alpha1', kind: 'EventSinkConfig', endpoint: '192.0.2.9:8090' }]);
    expect(kind(r, 'KmsgLogConfig').map((d) => d['name'])).toEqual(['siem']);
  });
});

describe('redaction', () => {
  it('masks every key, token and secret, keeps certificates', () => {
    const r = render({ role: 'controlplane' });
    const red = redactDocuments(r.documents) as Obj[];
    const text = JSON.stringify(red);
    for (const secret of [secrets.certs.os.key, secrets.certs.k8s.key, secrets.certs.etcd.key, secrets.certs.k8sserviceaccount.key, secrets.trustdinfo.token, secrets.secrets.bootstraptoken, secrets.cluster.secret, secrets.secrets.secretboxencryptionsecret!]) {
      expect(text).not.toContain(secret);
    }
    expect(red[0]!.machine.ca).toEqual({ crt: secrets.certs.os.crt, key: REDACTED });
    expect(red[0]!.cluster.secretboxEncryptionSecret).toBe(REDACTED);
  });
});
