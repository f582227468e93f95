// Per-node settings Genesis adds to the generated config: what an operator would otherwise
// write as a node patch (hostname, install disk selector, static address, VIP, labels). Pure.
//
// From Talos 1.12 network settings are separate documents; the node's NIC is found by its MAC
// through a LinkAliasConfig, so Genesis never has to guess an interface name.

import type { Contract } from './contract.ts';
import { diskSelectorToCel } from './disk-selector.ts';
import { cloneTree, findKind, mainDocument, newDocument, type Document, type Role } from './documents.ts';

export type StaticNetwork = { address: string; gateway?: string; nameservers?: string[] };

export type NodeSettings = {
  mac: string;
  role: Role;
  hostname?: string | null;
  diskSelector?: Record<string, string> | null;
  labels?: Record<string, string>;
  /** null/undefined: DHCP. */
  network?: StaticNetwork | null;
  /** Control planes only: the shared API address they announce (Layer 2 VIP). */
  vip?: string | null;
  /** The installer image, for a 1.14 node whose disk selector keeps the install in machine.install. */
  installImage?: string;
};

/** Alias Genesis gives the NIC it PXE-booted from (not a kernel name, as Talos asks). */
export const LINK_ALIAS = 'pxe0';

export function applyNodeSettings(docs: Document[], contract: Contract, node: NodeSettings): Document[] {
  const out = docs.map((d) => cloneTree(d));
  const config = mainDocument(out)!;
  const machine = config['machine'] as Record<string, unknown>;

  if (node.diskSelector && Object.keys(node.diskSelector).length) {
    if (contract.unattendedInstall) {
      // The same CEL expression Talos evaluates for a v1alpha1 selector, where 1.14 reads it.
      const doc = newDocument('UnattendedInstallConfig', {
        installer: node.installImage ? { image: node.installImage } : {},
        provisioning: { diskSelector: { match: diskSelectorToCel(node.diskSelector) }, wipe: false },
      });
      const at = out.findIndex((d) => d['kind'] === 'UnattendedInstallConfig');
      if (at === -1) out.splice(out.findIndex((d) => d['kind'] === 'DiscoveryIdentityConfig') + 1, 0, doc);
      else out[at] = doc;
    } else {
      const install = machine['install'] as Record<string, unknown>;
      delete install['disk'];
      // Keep Talos's key order: disk/diskSelector first.
      machine['install'] = { diskSelector: { ...node.diskSelector }, ...install };
    }
  }
  if (node.labels && Object.keys(node.labels).length) {
    const kubeNode = contract.multidocKubernetes ? findKind(out, 'KubeNodeConfig') : undefined;
    if (kubeNode) kubeNode['labels'] = { ...((kubeNode['labels'] as Record<string, string>) ?? {}), ...node.labels };
    else machine['nodeLabels'] = { ...((machine['nodeLabels'] as Record<string, string>) ?? {}), ...node.labels };
  }

  const vip = node.role === 'controlplane' ? node.vip : null;
  const net = node.network ?? null;

  if (!contract.multidocNetwork) {
    const network: Record<string, unknown> = { ...((machine['network'] as Record<string, unknown>) ?? {}) };
    if (node.hostname) network['hostname'] = node.hostname;
    if (net || vip) {
      network['interfaces'] = [
        {
          deviceSelector: { hardwareAddr: node.mac },
          ...(net ? { addresses: [net.address] } : { dhcp: true }),
          ...(net?.gateway ? { routes: [{ network: '0.0.0.0/0', gateway: net.gateway }] } : {}),
          ...(vip ? { vip: { ip: vip } } : {}),
        },
      ];
    }
    if (net?.nameservers?.length) network['nameservers'] = [...net.nameservers];
    machine['network'] = network;
    return out;
  }

  if (node.hostname) {
    const at = out.findIndex((d) => d['kind'] === 'HostnameConfig');
    // A static hostname and `auto` conflict: the static one replaces the generated document.
    const doc = { apiVersion: 'v1alpha1', kind: 'HostnameConfig', hostname: node.hostname };
    if (at === -1) out.push(doc);
    else out[at] = doc;
  }
  if (net || vip) {
    out.push({ apiVersion: 'v1alpha1', kind: 'LinkAliasConfig', name: LINK_ALIAS, selector: { match: `mac(link.permanent_addr) == "${node.mac}"` } });
  }
  if (net) {
    out.push({
      apiVersion: 'v1alpha1',
      kind: 'LinkConfig',
      name: LINK_ALIAS,
      up: true,
      addresses: [{ address: net.address }],
      ...(net.gateway ? { routes: [{ gateway: net.gateway }] } : {}),
    });
    if (net.nameservers?.length) {
      const nameservers = net.nameservers.map((address) => ({ address }));
      // From 1.14 the generated config has a ResolverConfig already (host DNS): one document per kind.
      const resolver = findKind(out, 'ResolverConfig');
      if (resolver) resolver['nameservers'] = nameservers;
      else out.push(newDocument('ResolverConfig', { nameservers }));
    }
  }
  if (vip) out.push({ apiVersion: 'v1alpha1', kind: 'Layer2VIPConfig', name: vip, link: LINK_ALIAS });
  return out;
}
