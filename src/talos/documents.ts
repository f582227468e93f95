// The shapes every part of config rendering shares: a machine config is a list of YAML documents,
// the v1alpha1 one (no `kind`) and multi-document ones identified by `kind` and, for some kinds,
// `name`. Pure helpers only.

import type { Contract } from './contract.ts';
import type { SecretsBundle } from './secrets.ts';

export type Document = Record<string, unknown>;

export type Role = 'controlplane' | 'worker';

export type Cni = { name: 'flannel' } | { name: 'none' } | { name: 'custom'; urls: string[] };

/** What `talosctl gen config` takes: the generator inputs. */
export type GenerateInput = {
  contract: Contract;
  secrets: SecretsBundle;
  role: Role;
  clusterName: string;
  /** https://host:port of the Kubernetes API (a VIP or a DNS name). */
  endpoint: string;
  /** Without the leading v: 1.28.0. */
  kubernetesVersion: string;
  installDisk?: string;
  installImage?: string;
  dnsDomain?: string;
  podSubnets?: string[];
  serviceSubnets?: string[];
  cni?: Cni;
  allowSchedulingOnControlPlanes?: boolean;
};

export const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * A deep copy of a document tree: plain maps, lists and scalars, what YAML and JSON give. The
 * render copies every document a few times (each step returns new documents and leaves its input
 * alone), and structuredClone, which serialises each object, was half of a render's time. A tree
 * has no object twice (parsePatch() makes YAML aliases copies) and no cycle. Anything that is not
 * a plain map or list (a Date, bytes) is copied by structuredClone.
 */
export function cloneTree<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item: unknown) => cloneTree(item)) as T;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return structuredClone(value);
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) copy[key] = cloneTree((value as Record<string, unknown>)[key]);
  return copy as T;
}

/** `v1alpha1` for the main config, `Kind/name` (name empty when the kind has none) otherwise. */
export function documentId(doc: Document): string {
  if (typeof doc['kind'] !== 'string') return 'v1alpha1';
  return `${doc['kind']}/${typeof doc['name'] === 'string' ? doc['name'] : ''}`;
}

/** How a document is named in messages: `KubeletConfig document`, `KubeAuthorizerConfig "rbac" document`, `v1alpha1 config`. */
export function documentLabel(doc: Document): string {
  if (typeof doc['kind'] !== 'string') return 'v1alpha1 config';
  return typeof doc['name'] === 'string' ? `${doc['kind']} ${JSON.stringify(doc['name'])} document` : `${doc['kind']} document`;
}

/** The v1alpha1 document, if there is one. */
export function mainDocument(docs: Document[]): Document | undefined {
  return docs.find((d) => typeof d['kind'] !== 'string');
}

export function findKind(docs: Document[], kind: string, name?: string): Document | undefined {
  return docs.find((d) => d['kind'] === kind && (name === undefined || d['name'] === name));
}

/** A new multi-document config document, keys in Talos's order (apiVersion, kind, name, rest). */
export function newDocument(kind: string, fields: Record<string, unknown> = {}): Document {
  return { apiVersion: 'v1alpha1', kind, ...fields };
}

/** A JSON pointer's keys (`/a~1b/0` → `a/b`, `0`), with or without the `#` of a schema pointer. */
export const pointerKeys = (pointer: string): string[] =>
  pointer
    .replace(/^#/, '')
    .split('/')
    .slice(1)
    .map((raw) => raw.replace(/~1/g, '/').replace(/~0/g, '~'));

/** The value at these keys (map keys, list indexes) of a tree of maps and lists, or undefined. */
export function valueAtKeys(root: unknown, keys: readonly string[]): unknown {
  let node = root;
  for (const k of keys) node = Array.isArray(node) ? node[Number(k)] : isMap(node) ? node[k] : undefined;
  return node;
}

/** The value a JSON pointer names in a tree of maps and lists, or undefined. */
export const valueAtPointer = (root: unknown, pointer: string): unknown => valueAtKeys(root, pointerKeys(pointer));

/** The value at a dotted path of plain mappings, or undefined. */
export function getPath(root: unknown, path: readonly string[]): unknown {
  let node: unknown = root;
  for (const k of path) {
    if (!isMap(node) || !Object.hasOwn(node, k)) return undefined;
    node = node[k];
  }
  return node;
}

/** Delete a dotted path, then any mapping it leaves empty on the way up (never the root). */
export function deletePath(root: Record<string, unknown>, path: readonly string[]): void {
  const chain: Record<string, unknown>[] = [root];
  for (const k of path.slice(0, -1)) {
    const next = chain.at(-1)![k];
    if (!isMap(next)) return;
    chain.push(next);
  }
  delete chain.at(-1)![path.at(-1)!];
  for (let i = chain.length - 1; i > 0; i--) {
    if (Object.keys(chain[i]!).length) break;
    delete chain[i - 1]![path[i - 1]!];
  }
}
