// Config patches as `talosctl --config-patch` applies them. Pure.
//
// A patch is YAML. Either a JSON Patch (RFC 6902: a list of operations, applied to the v1alpha1
// document), or one or more documents merged strategically: a document without `kind` merges
// into the v1alpha1 config, a document with `kind` (and `name`) merges into the document of that
// kind or is added; `$patch: delete` removes a key or a whole document. Mappings merge key by key,
// scalars are replaced, lists are appended, except the lists Talos merges differently (below).

import { cloneTree, documentId, isMap, type Document } from './documents.ts';
import { parseYamlAsTalos, writtenAs, type ScalarTexts } from './yaml-in.ts';

export class PatchError extends Error {}

/** `texts`: the texts the patch wrote its plain numbers and booleans as (yaml-in.ts). */
export type Patch = { source: string; texts: ScalarTexts } & ({ kind: 'strategic'; documents: Document[] } | { kind: 'json6902'; ops: JsonPatchOp[] });

type JsonPatchOp = { op: 'add' | 'remove' | 'replace' | 'test'; path: string; value?: unknown };

/**
 * Fields that a patch replaces rather than merges (Talos's `merge:"replace"` struct tags, read from
 * its types at 1.14). v1alpha1 paths are dotted; a document's are `Kind:field`.
 */
const REPLACE_FIELDS = new Set([
  'cluster.network.podSubnets',
  'cluster.network.serviceSubnets',
  'cluster.apiServer.auditPolicy',
  'KubeNetworkConfig:podSubnets',
  'KubeNetworkConfig:serviceSubnets',
  'KubeAuditPolicyConfig:configuration',
  'KubeAuthenticationConfig:configuration',
  'KubeCredentialProviderConfig:configuration',
  'KubeStaticPodConfig:pod',
  'CRIBaseRuntimeSpecConfig:overrides',
  'BGPInstanceConfig:advertise',
  'BGPInstanceConfig:importRoutes',
  'BGPInstanceConfig:neighbors',
  'NetworkRuleConfig:ingress',
  'NetworkRuleConfig:ports',
]);
/** An item's identity by one of its fields (a string or a number), if it has it. */
const byField =
  (field: string) =>
  (item: unknown): string | undefined => {
    const v = isMap(item) ? item[field] : undefined;
    return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
  };

/**
 * Lists whose items merge with the item of the same identity (Talos's Merge methods on its list
 * types, read from its types at 1.11 to 1.14). `cluster.inlineManifests` is Genesis's own: Talos
 * appends, then refuses the duplicate name; here a later patch's manifest of a name replaces it.
 */
const KEYED_LISTS: Record<string, (item: unknown) => string | undefined> = {
  // NetworkDeviceList: by interface name, else by an equal device selector.
  'machine.network.interfaces': (i) => {
    const o = i as Record<string, unknown>;
    if (typeof o['interface'] === 'string') return `if:${o['interface']}`;
    if (o['deviceSelector'] && typeof o['deviceSelector'] === 'object') return `sel:${JSON.stringify(o['deviceSelector'])}`;
    return undefined;
  },
  'machine.network.interfaces.vlans': byField('vlanId'), // VlanList
  'cluster.apiServer.admissionControl': byField('name'), // AdmissionPluginConfigList
  'cluster.inlineManifests': byField('name'),
  'ExtensionServiceConfig:configFiles': byField('mountPath'), // ConfigFileList
  'ImageVerificationConfig:rules': byField('imagePattern'), // ImageVerificationRules (replaced whole, below)
};
/** Keyed lists whose item of the same identity is replaced by the patch's, not merged with it. */
const KEYED_REPLACE = new Set(['ImageVerificationConfig:rules']);

/**
 * Maps whose keys a patch sets whole (Talos's meta.Args, the `extraArgs` of 1.13 and later, whose
 * Merge copies the patch's keys over): an argument given as a list replaces the list it had,
 * where a plain map would append the two.
 */
const ARG_MAPS = new Set([
  'machine.kubelet.extraArgs',
  'cluster.apiServer.extraArgs',
  'cluster.controllerManager.extraArgs',
  'cluster.proxy.extraArgs',
  'cluster.scheduler.extraArgs',
  'cluster.etcd.extraArgs',
  'KubeAPIServerConfig:extraArgs',
  'KubeControllerManagerConfig:extraArgs',
  'KubeletConfig:extraArgs',
  'KubeProxyConfig:extraArgs',
  'KubeSchedulerConfig:extraArgs',
]);

export function parsePatch(text: string, source: string): Patch {
  let parsed: unknown[];
  let texts: ScalarTexts;
  try {
    const read = parseYamlAsTalos(text);
    parsed = read.values.filter((d) => d !== null && d !== undefined);
    texts = read.texts;
  } catch (err) {
    throw new PatchError(`${source}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  parsed = parsed.map((d, i) => asTree(d, parsed.length > 1 ? `${source} (document ${i + 1})` : source, '', new Set()));
  if (parsed.length === 1 && Array.isArray(parsed[0])) {
    const ops = parsed[0] as unknown[];
    for (const [i, op] of ops.entries()) {
      if (!isMap(op) || !['add', 'remove', 'replace', 'test'].includes(op['op'] as string) || typeof op['path'] !== 'string') {
        throw new PatchError(`${source}: JSON patch operation ${i} needs op (add, remove, replace or test) and path`);
      }
      if (op['op'] !== 'remove' && !('value' in op)) throw new PatchError(`${source}: JSON patch operation ${i} (${op['op']}) needs a value`);
    }
    return { source, texts, kind: 'json6902', ops: ops as JsonPatchOp[] };
  }
  for (const [i, d] of parsed.entries()) {
    if (!isMap(d)) throw new PatchError(`${source}: document ${i + 1} is not a mapping`);
    // A document's name is text to Talos (a routing rule's `name: 1000` is "1000"), and documents
    // are told apart and merged by it: it is taken as written.
    const name = d['name'];
    if (typeof d['kind'] === 'string' && (typeof name === 'number' || typeof name === 'boolean')) {
      const written = writtenAs(name, 'name', [{ texts }]);
      d['name'] = written && 'text' in written ? written.text : String(name);
    }
  }
  return { source, texts, kind: 'strategic', documents: parsed as Document[] };
}

function mergeInto(base: unknown, patch: unknown, path: string): unknown {
  if (isMap(patch) && patch['$patch'] === 'delete') return undefined;
  if (REPLACE_FIELDS.has(path)) return stripDirectives(patch);
  if (isMap(base) && isMap(patch)) {
    const out: Record<string, unknown> = { ...base };
    const whole = ARG_MAPS.has(path);
    for (const [k, v] of Object.entries(patch)) {
      const p = path.endsWith(':') ? `${path}${k}` : path ? `${path}.${k}` : k;
      const merged = k in out && !whole ? mergeInto(out[k], v, p) : stripDirectives(v);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
    return out;
  }
  if (Array.isArray(base) && Array.isArray(patch)) {
    const identity = KEYED_LISTS[path];
    if (identity) {
      const out = [...base];
      for (const item of patch) {
        const id = identity(item);
        const at = id === undefined ? -1 : out.findIndex((x) => identity(x) === id);
        if (at === -1) out.push(cloneTree(item));
        else {
          const merged = KEYED_REPLACE.has(path) ? stripDirectives(item) : mergeInto(out[at], item, path);
          if (merged === undefined) out.splice(at, 1);
          else out[at] = merged;
        }
      }
      return out;
    }
    return [...base, ...cloneTree(patch)];
  }
  return stripDirectives(patch);
}

function stripDirectives(v: unknown): unknown {
  if (isMap(v)) {
    if (v['$patch'] === 'delete') return undefined;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const s = stripDirectives(x);
      if (s !== undefined) out[k] = s;
    }
    return out;
  }
  return cloneTree(v);
}

/** Keys that reach an object's prototype: never walked or written, whatever the patch says. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function decodePointer(pointer: string, source: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PatchError(`${source}: JSON patch path ${JSON.stringify(pointer)} must start with /`);
  const keys = pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const bad = keys.find((k) => PROTOTYPE_KEYS.has(k));
  if (bad !== undefined) throw new PatchError(`${source}: JSON patch path ${JSON.stringify(pointer)}: ${JSON.stringify(bad)} is not a config field`);
  return keys;
}

/**
 * The parsed patch as a tree: what a YAML alias points at is copied to each place that names it
 * (so a later change through one place does not show through the other, and every copy in the
 * render is a tree's), an alias inside the node it names is refused (a cycle has no config), and
 * so is a `__proto__` key (merged, it would replace an object's prototype).
 */
function asTree(v: unknown, source: string, at: string, ancestors: Set<object>): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (ancestors.has(v)) throw new PatchError(`${source}: ${at || 'the document'} is an alias of a node that contains it: a config cannot contain itself`);
  ancestors.add(v);
  try {
    if (Array.isArray(v)) return v.map((x, i) => asTree(x, source, `${at}[${i}]`, ancestors));
    if (!isMap(v)) return cloneTree(v);
    const tree: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      if (k === '__proto__') throw new PatchError(`${source}: ${at ? `${at}.` : ''}__proto__ is not a config field`);
      tree[k] = asTree(v[k], source, at ? `${at}.${k}` : k, ancestors);
    }
    return tree;
  } finally {
    ancestors.delete(v);
  }
}

function applyJsonPatch(doc: Document, ops: JsonPatchOp[], source: string): Document {
  const root = { doc: cloneTree(doc) as unknown };
  for (const [i, op] of ops.entries()) {
    const keys = ['doc', ...decodePointer(op.path, source)];
    const fail = (why: string): never => {
      throw new PatchError(`${source}: JSON patch operation ${i} (${op.op} ${op.path}): ${why}`);
    };
    let parent: unknown = root;
    for (const k of keys.slice(0, -1)) {
      parent = Array.isArray(parent) ? parent[Number(k)] : isMap(parent) ? parent[k] : undefined;
      if (parent === undefined) fail('the path does not exist');
    }
    const last = keys.at(-1)!;
    if (Array.isArray(parent)) {
      const idx = last === '-' ? parent.length : Number(last);
      if (!Number.isInteger(idx) || idx < 0 || idx > parent.length || (op.op !== 'add' && idx >= parent.length)) fail('no such list index');
      if (op.op === 'add') parent.splice(idx, 0, cloneTree(op.value));
      else if (op.op === 'remove') parent.splice(idx, 1);
      else if (op.op === 'replace') parent[idx] = cloneTree(op.value);
      else if (JSON.stringify(parent[idx]) !== JSON.stringify(op.value)) fail('test failed');
    } else if (isMap(parent)) {
      if (op.op !== 'add' && !(last in parent)) fail('the path does not exist');
      if (op.op === 'add' || op.op === 'replace') parent[last] = cloneTree(op.value);
      else if (op.op === 'remove') delete parent[last];
      else if (JSON.stringify(parent[last]) !== JSON.stringify(op.value)) fail('test failed');
    } else {
      fail('the parent is not a mapping or list');
    }
  }
  if (!isMap(root.doc)) throw new PatchError(`${source}: a JSON patch must leave the config a mapping`);
  return root.doc;
}

/** Apply patches in order; returns new documents, the input is not changed. */
export function applyPatches(docs: Document[], patches: Patch[]): Document[] {
  const out = docs.map((d) => cloneTree(d));
  for (const patch of patches) {
    if (patch.kind === 'json6902') {
      const at = out.findIndex((d) => documentId(d) === 'v1alpha1');
      if (at === -1) throw new PatchError(`${patch.source}: a JSON patch needs the v1alpha1 config document`);
      out[at] = applyJsonPatch(out[at]!, patch.ops, patch.source);
      continue;
    }
    for (const p of patch.documents) {
      const id = documentId(p);
      const at = out.findIndex((d) => documentId(d) === id);
      if (at === -1) {
        if (p['$patch'] === 'delete') continue;
        out.push(stripDirectives(p) as Document);
        continue;
      }
      // Paths inside a document are prefixed with its kind, so REPLACE_FIELDS can name them.
      const merged = mergeInto(out[at], p, typeof p['kind'] === 'string' ? `${p['kind']}:` : '');
      if (merged === undefined) out.splice(at, 1);
      else out[at] = merged as Document;
    }
  }
  return out;
}
