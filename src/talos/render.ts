// One node's machine config from start to finish: generate for its role and Talos version, add
// its own settings, apply the cluster, role and node patches in that order, settle v1alpha1 fields
// that a newer Talos moved into documents of their own, and validate the way Talos's decoder does.
// Pure: everything it needs is passed in.

import { createHash } from 'node:crypto';
import { documentYaml, scalarYaml } from './yaml-out.ts';
import { writtenAs } from './yaml-in.ts';
import { contractFor, ContractError, type Contract } from './contract.ts';
import { DiskSelectorError } from './disk-selector.ts';
import { cloneTree, documentLabel, isMap, pointerKeys, valueAtKeys, valueAtPointer, type Cni, type Document, type Role } from './documents.ts';
import { generateDocuments } from './generate.ts';
import { LegacyFieldError, reconcileLegacyFields } from './legacy-fields.ts';
import { applyNodeSettings, type StaticNetwork } from './node.ts';
import { applyPatches, PatchError, type Patch } from './patch.ts';
import { BOOL_WORDS, checkDocuments, deprecatedFieldsUsed, type ScalarPlaces } from './schema.ts';
import { installerVersionCheck, roleProblems, semanticProblems, settleInstall, workerProblems } from './validate.ts';
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

/**
 * `warnings`: what the operator should know about a config that is valid: deprecated fields it
 * uses (Talos accepts them, but they are not in its published schema) and 1.13-style settings
 * Genesis moved to where this Talos reads them. Never secret values.
 */
export type RenderedConfig = { contract: Contract; documents: Document[]; yaml: string; sha256: string; warnings: string[] };

export class RenderError extends Error {
  readonly problems: string[];
  /**
   * Every problem is something Talos allows only on control planes, in a worker's config: the
   * patches are fine for control planes (a cluster with none but them uses them as they are).
   */
  readonly controlPlaneOnly: boolean;
  constructor(message: string, problems: string[] = [], controlPlaneOnly = false) {
    super(problems.length ? `${message}: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ''}` : message);
    this.problems = problems;
    this.controlPlaneOnly = controlPlaneOnly;
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

/** Multi-document YAML as Talos writes it: 4-space indent, long values never folded (yaml-out.ts). */
export function toYaml(documents: Document[]): string {
  return documents.map((d) => documentYaml(d)).join('---\n');
}

/**
 * The documents with their scalars as Talos's decoder reads them, where their values here say
 * otherwise (`places`, from checkDocuments):
 * - a patch's plain number or boolean in a field Talos reads as text: Talos keeps the text as
 *   written (a label `01` is "01", `1.30` is "1.30", `True` is "True"), so that text goes back, as
 *   a string. Where the patches wrote that value in several ways, which one stands here is not
 *   known: a problem, asking for quotes;
 * - a YAML 1.1 word for a boolean (`yes`, `off`, …) in a boolean field is that boolean, so that
 *   Genesis's own rules (a 1.14 document made from a v1alpha1 field) read it as Talos does.
 */
function settleScalars(documents: Document[], places: Map<number, ScalarPlaces>, patches: Patch[]): { documents: Document[]; problems: string[] } {
  const problems: string[] = [];
  let out = documents;
  const set = (index: number, keys: string[], last: string, value: unknown) => {
    // Copied before the first change: the documents may share subtrees with the patches.
    if (out === documents) out = documents.map((d) => cloneTree(d));
    const target = valueAtKeys(out[index], keys) as Record<string, unknown> | unknown[];
    if (Array.isArray(target)) target[Number(last)] = value;
    else target[last] = value;
  };
  for (const [index, { inText, boolWords }] of places) {
    for (const pointer of inText) {
      const keys = pointerKeys(pointer);
      const last = keys.pop()!;
      const parent = valueAtKeys(out[index], keys);
      const value = Array.isArray(parent) ? parent[Number(last)] : isMap(parent) ? parent[last] : undefined;
      if (typeof value !== 'number' && typeof value !== 'boolean') continue;
      const written = writtenAs(value, Array.isArray(parent) ? (keys.at(-1) ?? '') : last, patches);
      if (!written) continue;
      if ('ambiguous' in written) {
        const ways = written.ambiguous.map((t) => JSON.stringify(t)).join(', ');
        problems.push(`${documentLabel(out[index]!)} ${pointer}: Talos keeps the text written here, and the patches write ${scalarYaml(value)} there as ${ways}: quote the one meant (${JSON.stringify(written.ambiguous[0])})`);
        continue;
      }
      if (written.text !== scalarYaml(value)) set(index, keys, last, written.text);
    }
    for (const pointer of boolWords) {
      const keys = pointerKeys(pointer);
      const last = keys.pop()!;
      const word = valueAtPointer(out[index], pointer);
      if (typeof word === 'string' && BOOL_WORDS.has(word)) set(index, keys, last, BOOL_WORDS.get(word));
    }
  }
  return { documents: out, problems };
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
  let withNode: Document[];
  try {
    withNode = applyNodeSettings(generated, contract, {
    mac: node.mac,
    role: node.role,
    hostname: node.hostname,
    diskSelector: node.diskSelector,
    labels: node.labels,
    network: node.network,
    vip: cluster.vip || null,
      installImage: installerImage(cluster, node.talosVersion),
    });
  } catch (err) {
    if (err instanceof DiskSelectorError) throw new RenderError(`node ${node.mac}: ${err.message}`);
    throw err;
  }
  const withTelemetry = cluster.telemetry ? [...withNode, ...telemetryDocuments(cluster.telemetry)] : withNode;
  const label = `the config for ${node.mac} (Talos ${node.talosVersion}, ${node.role})`;
  let documents: Document[];
  const warnings: string[] = [];
  try {
    const install = settleInstall(contract, withTelemetry, applyPatches(withTelemetry, input.patches));
    // The v1alpha1 document is checked as patched, before any field moves out of it: a value
    // moved into a 1.14 document must have been valid where the patch wrote it, and is moved as
    // Talos reads it.
    const mains = install.documents.flatMap((d, i) => (typeof d['kind'] !== 'string' ? [i] : []));
    const early = checkDocuments(contract, mains.map((i) => install.documents[i]!));
    const patched = settleScalars(install.documents, new Map([...early.scalars].map(([i, places]) => [mains[i]!, places])), input.patches);
    // The installer a patch names, checked where the patch wrote it.
    const installer = installerVersionCheck(patched.documents, node.talosVersion);
    const earlyProblems = [...early.problems, ...patched.problems, ...installer.problems];
    if (earlyProblems.length) throw new RenderError(`${label} does not pass Talos's schema`, earlyProblems);
    const settled = reconcileLegacyFields(contract, patched.documents);
    documents = settled.documents;
    warnings.push(...install.notes, ...installer.warnings, ...settled.notes);
  } catch (err) {
    if (err instanceof PatchError) throw new RenderError(`patch failed: ${err.message}`);
    if (err instanceof LegacyFieldError) throw new RenderError(`${label} cannot be written`, [err.message]);
    throw err;
  }
  const checked = checkDocuments(contract, documents);
  const read = settleScalars(documents, checked.scalars, input.patches);
  documents = read.documents;
  const placed = workerProblems(documents);
  const problems = [...checked.problems, ...read.problems, ...roleProblems(documents, node.role), ...semanticProblems(documents), ...placed];
  if (problems.length === placed.length && placed.length) throw new RenderError(`${label} has what Talos allows only on control planes`, problems, true);
  if (problems.length) throw new RenderError(`${label} does not pass Talos's schema`, problems);
  // Deprecated fields Genesis itself writes (e.g. `persist`, which Talos's generator writes too) are not news.
  const own = new Set(deprecatedFieldsUsed(contract, withTelemetry));
  for (const field of deprecatedFieldsUsed(contract, documents)) {
    if (!own.has(field)) warnings.push(`${field} is deprecated in Talos v1.${contract.minor}: Talos still accepts it, but it is not in the published schema and may go in a later release`);
  }
  const yaml = toYaml(documents);
  return { contract, documents, yaml, sha256: createHash('sha256').update(yaml).digest('hex'), warnings };
}
