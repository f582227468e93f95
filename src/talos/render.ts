// One node's machine config from start to finish: generate for its role and Talos version, add
// its own settings, apply the cluster, role and node patches in that order, validate against
// Talos's schema. Pure: everything it needs is passed in.

import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { contractFor, ContractError, type Contract } from './contract.ts';
import { generateDocuments, type Cni, type Document, type Role } from './generate.ts';
import { applyNodeSettings, type StaticNetwork } from './node.ts';
import { applyPatches, PatchError, type Patch } from './patch.ts';
import { schemaProblems } from './schema.ts';
import type { SecretsBundle } from './secrets.ts';

export type ClusterSettings = {
  name: string;
  /** Empty: derived from the VIP. */
  endpoint: string;
  vip: string;
  kubernetesVersion: string;
  dnsDomain: string;
  podSubnets: string[];
  serviceSubnets: string[];
  cni: Cni;
  allowSchedulingOnControlPlanes: boolean;
  /** Default install disk for nodes with neither a disk nor a selector of their own. */
  installDisk: string;
  installerImage: string;
  schematicId: string;
  /** Where nodes send their Talos events and kernel log (Genesis); absent: nowhere. */
  telemetry?: Telemetry;
};

/** `host:port` of the event sink and the `tcp://host:port/` URL of the kernel-log receiver. */
export type Telemetry = { eventSink: string; kernelLog: string };

/**
 * The documents that keep a node reporting to Genesis after install (the kernel arguments only
 * reach the network-booted kernel). Added before the patches, so a patch can change or delete them.
 */
export function telemetryDocuments(t: Telemetry): Document[] {
  return [
    { apiVersion: 'v1alpha1', kind: 'EventSinkConfig', endpoint: t.eventSink },
    { apiVersion: 'v1alpha1', kind: 'KmsgLogConfig', name: 'genesis', url: t.kernelLog },
  ];
}

export type NodeInput = {
  mac: string;
  role: Role;
  talosVersion: string;
  hostname?: string | null;
  installDisk?: string | null;
  diskSelector?: Record<string, string> | null;
  labels?: Record<string, string>;
  network?: StaticNetwork | null;
};

export type RenderInput = {
  cluster: ClusterSettings;
  secrets: SecretsBundle;
  node: NodeInput;
  /** Cluster-wide, then role, then node patches, in the order they apply. */
  patches: Patch[];
};

export type RenderedConfig = { contract: Contract; documents: Document[]; yaml: string; sha256: string };

export class RenderError extends Error {
  readonly problems: string[];
  constructor(message: string, problems: string[] = []) {
    super(problems.length ? `${message}: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ''}` : message);
    this.problems = problems;
  }
}

export function clusterEndpoint(c: ClusterSettings): string {
  if (c.endpoint) return c.endpoint;
  if (c.vip) return `https://${c.vip}:6443`;
  throw new RenderError('cluster.endpoint is not set (and there is no cluster.vip to derive it from): set the Kubernetes API address, e.g. https://192.0.2.10:6443');
}

export function installerImage(c: ClusterSettings, talosVersion: string): string {
  return c.schematicId ? `factory.talos.dev/installer/${c.schematicId}:${talosVersion}` : `${c.installerImage}:${talosVersion}`;
}

/** Multi-document YAML as Talos writes it: 4-space indent, long values never folded. */
export function toYaml(documents: Document[]): string {
  return documents.map((d) => stringify(d, { indent: 4, lineWidth: 0 })).join('---\n');
}

export function renderConfig(input: RenderInput): RenderedConfig {
  const { cluster, node } = input;
  let contract: Contract;
  try {
    contract = contractFor(node.talosVersion);
  } catch (err) {
    if (err instanceof ContractError) throw new RenderError(err.message);
    throw err;
  }
  const generated = generateDocuments({
    contract,
    secrets: input.secrets,
    role: node.role,
    clusterName: cluster.name,
    endpoint: clusterEndpoint(cluster),
    kubernetesVersion: cluster.kubernetesVersion,
    // A disk selector replaces the path; applyNodeSettings writes it.
    installDisk: node.diskSelector ? undefined : (node.installDisk ?? cluster.installDisk),
    installImage: installerImage(cluster, node.talosVersion),
    dnsDomain: cluster.dnsDomain,
    podSubnets: cluster.podSubnets,
    serviceSubnets: cluster.serviceSubnets,
    cni: cluster.cni,
    allowSchedulingOnControlPlanes: cluster.allowSchedulingOnControlPlanes,
  });
  const withNode = applyNodeSettings(generated, contract, {
    mac: node.mac,
    role: node.role,
    hostname: node.hostname,
    diskSelector: node.diskSelector,
    labels: node.labels,
    network: node.network,
    vip: cluster.vip || null,
  });
  const withTelemetry = cluster.telemetry ? [...withNode, ...telemetryDocuments(cluster.telemetry)] : withNode;
  let documents: Document[];
  try {
    documents = applyPatches(withTelemetry, input.patches);
  } catch (err) {
    if (err instanceof PatchError) throw new RenderError(`patch failed: ${err.message}`);
    throw err;
  }
  const problems = schemaProblems(contract, documents);
  if (problems.length) throw new RenderError(`the config for ${node.mac} (Talos ${node.talosVersion}, ${node.role}) does not pass Talos's schema`, problems);
  const yaml = toYaml(documents);
  return { contract, documents, yaml, sha256: createHash('sha256').update(yaml).digest('hex') };
}
