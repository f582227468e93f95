// Where a v1alpha1 (1.13-style) setting lands when the config also has the document that replaced
// it. Talos refuses a config that sets both (each such document's `V1Alpha1ConflictValidate`,
// e.g. "kubelet config is already set in v1alpha1 config (.machine.kubelet)"), so a patch written
// for an older Talos would make an unservable config. After the patches, every rule below looks
// for its v1alpha1 field; if the replacing document is present it either
//   - lifts the value into that document, field by field (what Talos 1.14's generator does with
//     the same input), and removes the v1alpha1 copy; or
//   - lowers the generated document back into the v1alpha1 section, when the value has no place in
//     the document but Talos still reads the v1alpha1 field (machine.kubelet.extraMounts,
//     machine.install.extraKernelArgs); or
//   - refuses, naming the document to use.
// Either way no config has two copies of a setting. Pure.

import type { Contract } from './contract.ts';
import { cloneTree, deletePath, findKind, getPath, isMap, mainDocument, newDocument, type Document } from './documents.ts';
import { CONTROL_PLANE_ROLE } from './defaults.ts';
import { DiskSelectorError, diskSelectorToCel } from './disk-selector.ts';
import { cniManifestName, installDiskMatch } from './generate-multidoc.ts';

export class LegacyFieldError extends Error {}

/** What a rule did, for the warnings shown with the render. */
type Outcome = { moved?: string; lowered?: string } | undefined;

type Context = { docs: Document[]; main: Document; contract: Contract };

type Rule = {
  /** The v1alpha1 field, dotted. */
  path: string;
  /** The document replacing it. */
  kind: string;
  name?: string;
  /** First minor where Genesis's generator writes that document (earlier, the field is simply used). */
  since: number;
  /** Only when the document has this (Talos's validator is narrower than "present"). */
  when?: (doc: Document) => boolean;
  /**
   * Where Talos's generator of this minor would write the setting although no such document is
   * there yet (sysctls): the document to create, and the kind it follows in Talos's order.
   */
  create?: { after: string };
  /** Move `value` into the config; returns what it did. Throws LegacyFieldError when it cannot. */
  apply?: (value: unknown, doc: Document, ctx: Context) => Outcome;
};

const fail = (msg: string): never => {
  throw new LegacyFieldError(msg);
};

const asMap = (v: unknown, path: string): Record<string, unknown> => (isMap(v) ? v : fail(`${path} must be a mapping`));

/** Merge string maps; a key set to different values on both sides is a conflict, never a silent pick. */
function mergeMaps(target: Record<string, unknown>, add: Record<string, unknown>, what: string): Record<string, unknown> {
  const out = { ...target };
  for (const [k, v] of Object.entries(add)) {
    if (Object.hasOwn(out, k) && JSON.stringify(out[k]) !== JSON.stringify(v)) {
      fail(`${what} sets ${JSON.stringify(k)} to ${JSON.stringify(v)}, but the document already sets it to ${JSON.stringify(out[k])}`);
    }
    out[k] = v;
  }
  return out;
}

/** Copy the fields named in `map` (v1alpha1 name → document name); any other field is returned. */
function liftFields(value: Record<string, unknown>, doc: Document, map: Record<string, string>, path: string): string[] {
  const rest: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    const to = map[k];
    if (!to) {
      rest.push(k);
      continue;
    }
    if (isMap(v) && isMap(doc[to])) doc[to] = mergeMaps(doc[to], v, `${path}.${k}`);
    else if (Array.isArray(v) && Array.isArray(doc[to]) && to === 'certExtraSANs') doc[to] = [...new Set([...(doc[to] as unknown[]), ...v])];
    else doc[to] = cloneTree(v);
  }
  return rest;
}

/** A rule whose fields map one to one onto the document; anything else is refused, naming the document. */
function fieldsRule(path: string, kind: string, map: Record<string, string>, extra?: (k: string, v: unknown, doc: Document, ctx: Context) => boolean): Rule {
  return {
    path,
    kind,
    since: 14,
    apply(value, doc, ctx) {
      const v = asMap(value, path);
      const rest = liftFields(v, doc, map, path);
      const unplaced = rest.filter((k) => !extra?.(k, v[k], doc, ctx));
      if (unplaced.length) {
        fail(`${unplaced.map((k) => `${path}.${k}`).join(', ')} cannot be used together with the ${kind} document Talos v1.${ctx.contract.minor} uses; set it in the ${kind} document instead`);
      }
      return { moved: `${path} → ${kind}` };
    },
  };
}

const KUBELET_FIELDS = { image: 'image', extraArgs: 'extraArgs', extraConfig: 'config', clusterDNS: 'clusterDNS', defaultRuntimeSeccompProfileEnabled: 'defaultRuntimeSeccompProfileEnabled' };
const KUBE_NODE_FIELDS_OF_KUBELET = { nodeIP: 'nodeIP', skipNodeRegistration: 'skipNodeRegistration', registerWithFQDN: 'registerWithFQDN' };

/**
 * machine.kubelet: the node-registration fields go to KubeNodeConfig, the rest to KubeletConfig.
 * A field KubeletConfig has no place for (extraMounts, e.g. Longhorn's /var/lib/longhorn) keeps the
 * whole kubelet section in v1alpha1, which Talos 1.14 still reads: the generated KubeletConfig is
 * folded into it and removed.
 */
function kubeletRule(): Rule {
  return {
    path: 'machine.kubelet',
    kind: 'KubeletConfig',
    since: 14,
    apply(value, doc, ctx) {
      const v = { ...asMap(value, 'machine.kubelet') };
      const nodeFields = Object.keys(v).filter((k) => k in KUBE_NODE_FIELDS_OF_KUBELET);
      if (nodeFields.length) {
        const node = findKind(ctx.docs, 'KubeNodeConfig') ?? fail('machine.kubelet.nodeIP needs the KubeNodeConfig document, which the config no longer has');
        for (const k of nodeFields) {
          node[k] = cloneTree(v[k]);
          delete v[k];
        }
      }
      const fits = Object.keys(v).every((k) => k in KUBELET_FIELDS);
      if (fits) {
        liftFields(v, doc, KUBELET_FIELDS, 'machine.kubelet');
        return { moved: 'machine.kubelet → KubeletConfig' + (nodeFields.length ? ' and KubeNodeConfig' : '') };
      }
      // Lower: the document's settings go under the v1alpha1 names, the v1alpha1 values win where both are set.
      const lowered: Record<string, unknown> = {};
      for (const [from, to] of Object.entries(KUBELET_FIELDS)) {
        const dv = doc[to];
        if (dv === undefined || (isMap(dv) && !Object.keys(dv).length)) continue;
        lowered[from] = cloneTree(dv);
      }
      for (const [k, x] of Object.entries(v)) lowered[k] = isMap(x) && isMap(lowered[k]) ? mergeMaps(lowered[k] as Record<string, unknown>, x, `machine.kubelet.${k}`) : x;
      removeDocument(ctx.docs, doc);
      (ctx.main['machine'] as Record<string, unknown>)['kubelet'] = lowered;
      const why = Object.keys(v).filter((k) => !(k in KUBELET_FIELDS));
      return { lowered: `machine.kubelet.${why.join(', machine.kubelet.')} has no place in Talos v1.${ctx.contract.minor}'s KubeletConfig document, so the kubelet settings stay in the deprecated machine.kubelet section (Talos v1.${ctx.contract.minor} still reads it) and the KubeletConfig document is left out` };
    },
  };
}

/** `disk.dev_path == "/dev/sda"` back to /dev/sda, or undefined for any other expression. */
function devPathOf(match: unknown): string | undefined {
  if (typeof match !== 'string') return undefined;
  const m = /^disk\.dev_path == ("(?:[^"\\]|\\.)*")$/.exec(match.trim());
  if (!m) return undefined;
  try {
    return JSON.parse(m[1]!) as string;
  } catch {
    return undefined;
  }
}

/**
 * machine.install: disk, diskSelector (as the CEL expression Talos evaluates for it), image and wipe
 * go to UnattendedInstallConfig. Fields that document has no place for (extraKernelArgs,
 * extensions, ...) keep the install in v1alpha1: Talos 1.14 still runs its install sequence from
 * machine.install when there is no UnattendedInstallConfig.
 */
function installRule(): Rule {
  const PLACED = ['disk', 'diskSelector', 'image', 'wipe'];
  return {
    path: 'machine.install',
    kind: 'UnattendedInstallConfig',
    since: 14,
    apply(value, doc, ctx) {
      const v = asMap(value, 'machine.install');
      const installer = isMap(doc['installer']) ? { ...doc['installer'] } : {};
      const provisioning = isMap(doc['provisioning']) ? { ...doc['provisioning'] } : {};
      if (Object.keys(v).every((k) => PLACED.includes(k))) {
        // As in Talos, a selector wins over a disk path when both are given.
        if (isMap(v['diskSelector'])) provisioning['diskSelector'] = { match: celOf(v['diskSelector']) };
        else if (typeof v['disk'] === 'string') provisioning['diskSelector'] = { match: installDiskMatch(v['disk']) };
        if (v['image'] !== undefined) installer['image'] = v['image'];
        if (v['wipe'] !== undefined) provisioning['wipe'] = v['wipe'];
        doc['installer'] = installer;
        doc['provisioning'] = provisioning;
        return { moved: 'machine.install → UnattendedInstallConfig' };
      }
      const selector = isMap(provisioning['diskSelector']) ? provisioning['diskSelector']['match'] : undefined;
      const disk = devPathOf(selector);
      if (selector !== undefined && disk === undefined && v['disk'] === undefined && v['diskSelector'] === undefined) {
        fail(`machine.install.${Object.keys(v).join(', machine.install.')} needs the install in machine.install, but the UnattendedInstallConfig document selects the disk with ${JSON.stringify(selector)}, which machine.install cannot express; give machine.install a disk or diskSelector too`);
      }
      const lowered: Record<string, unknown> = {};
      if (disk !== undefined) lowered['disk'] = disk;
      if (installer['image'] !== undefined) lowered['image'] = installer['image'];
      lowered['wipe'] = provisioning['wipe'] ?? false;
      for (const [k, x] of Object.entries(v)) lowered[k] = x;
      removeDocument(ctx.docs, doc);
      (ctx.main['machine'] as Record<string, unknown>)['install'] = lowered;
      const why = Object.keys(v).filter((k) => !PLACED.includes(k));
      return { lowered: `machine.install.${why.join(', machine.install.')} has no place in Talos v1.${ctx.contract.minor}'s UnattendedInstallConfig document, so the install stays in the deprecated machine.install section (Talos v1.${ctx.contract.minor} still installs from it) and the UnattendedInstallConfig document is left out` };
    },
  };
}

function celOf(selector: Record<string, unknown>): string {
  try {
    return diskSelectorToCel(selector);
  } catch (err) {
    if (err instanceof DiskSelectorError) return fail(`machine.install.${err.message}`);
    throw err;
  }
}

function removeDocument(docs: Document[], doc: Document): void {
  const at = docs.indexOf(doc);
  if (at !== -1) docs.splice(at, 1);
}

const SECRET_MESSAGE = 'Genesis writes it from the cluster secrets bundle; to change it, import another bundle (genesis secrets import)';

function ownedBySecrets(path: string, kind: string, same?: (value: unknown, doc: Document) => boolean): Rule {
  return {
    path,
    kind,
    since: 14,
    apply(value, doc) {
      if (same?.(value, doc)) return { moved: `${path} (the same as the ${kind} document) dropped` };
      return fail(`${path} conflicts with the ${kind} document: ${SECRET_MESSAGE}`);
    },
  };
}

function cniApply(value: unknown, doc: Document, ctx: Context): Outcome {
  const net = asMap(value, 'cluster.network');
  const cni = net['cni'];
  delete net['cni'];
  const rest = liftFields(net, doc, { dnsDomain: 'dnsDomain', podSubnets: 'podSubnets', serviceSubnets: 'serviceSubnets' }, 'cluster.network');
  if (rest.length) fail(`${rest.map((k) => `cluster.network.${k}`).join(', ')} cannot be used with the KubeNetworkConfig document Talos v1.${ctx.contract.minor} uses; set it there instead`);
  if (cni !== undefined) {
    const c = asMap(cni, 'cluster.network.cni');
    const flannel = findKind(ctx.docs, 'KubeFlannelCNIConfig');
    const dropCustom = () => {
      for (const d of ctx.docs.filter((x) => x['kind'] === 'KubeExternalManifestConfig' && typeof x['name'] === 'string' && x['name'].startsWith('custom-cni'))) removeDocument(ctx.docs, d);
    };
    if (c['name'] === 'none') {
      if (flannel) removeDocument(ctx.docs, flannel);
      dropCustom();
    } else if (c['name'] === 'custom') {
      if (flannel) removeDocument(ctx.docs, flannel);
      dropCustom();
      // Control planes apply cluster manifests; Talos's generator writes them for control planes only.
      const urls = Array.isArray(c['urls']) ? c['urls'] : [];
      if (isControlPlane(ctx)) urls.forEach((url, i) => ctx.docs.push(newDocument('KubeExternalManifestConfig', { name: cniManifestName(i), url })));
    } else if (c['name'] === 'flannel' || c['name'] === undefined) {
      const f = flannel ?? (isControlPlane(ctx) ? fail('cluster.network.cni flannel: the KubeFlannelCNIConfig document was removed; add it back instead') : undefined);
      const extra = isMap(c['flannel']) ? c['flannel'] : {};
      if (f) {
        if (Array.isArray(extra['extraArgs'])) f['extraArgs'] = cloneTree(extra['extraArgs']);
        if (Object.keys(extra).some((k) => k !== 'extraArgs')) fail('cluster.network.cni.flannel: only extraArgs has a place in the KubeFlannelCNIConfig document; set the rest there');
      }
    } else {
      fail(`cluster.network.cni.name ${JSON.stringify(c['name'])}: use none, custom or flannel`);
    }
  }
  return { moved: 'cluster.network → KubeNetworkConfig' + (cni !== undefined ? ' and the CNI documents' : '') };
}

function isControlPlane(ctx: Context): boolean {
  const machine = ctx.main['machine'];
  return isMap(machine) && machine['type'] !== 'worker';
}

function schedulingApply(value: unknown, doc: Document, ctx: Context): Outcome {
  if (!isControlPlane(ctx)) return { moved: 'cluster.allowSchedulingOnControlPlanes (no effect on a worker) dropped' };
  const taints = isMap(doc['taints']) ? { ...doc['taints'] } : {};
  if (value === true) delete taints[CONTROL_PLANE_ROLE];
  else taints[CONTROL_PLANE_ROLE] = 'NoSchedule';
  if (Object.keys(taints).length) doc['taints'] = taints;
  else delete doc['taints'];
  return { moved: 'cluster.allowSchedulingOnControlPlanes → KubeNodeConfig taints' };
}

/** In the order they apply. The multi-document network kinds exist from 1.12; the Kubernetes ones from 1.14. */
const RULES: Rule[] = [
  installRule(),
  kubeletRule(),
  fieldsRule('cluster.controlPlane', 'KubeClusterConfig', { endpoint: 'endpoint' }, (k, v, _doc, ctx) => {
    if (k !== 'localAPIServerPort') return false;
    const api = findKind(ctx.docs, 'KubeAPIServerConfig');
    if (api) api['apiPort'] = v;
    return true;
  }),
  {
    path: 'cluster.clusterName',
    kind: 'KubeClusterConfig',
    since: 14,
    apply(value, doc) {
      doc['clusterName'] = value;
      return { moved: 'cluster.clusterName → KubeClusterConfig' };
    },
  },
  fieldsRule('cluster.apiServer', 'KubeAPIServerConfig', { image: 'image', extraArgs: 'extraArgs', env: 'env', resources: 'resources', certSANs: 'certExtraSANs' }, (k, v, _doc, ctx) => {
    if (k === 'disablePodSecurityPolicy') return true; // hidden since 1.12, meaningless since PSP's removal
    if (k === 'auditPolicy') {
      const audit = findKind(ctx.docs, 'KubeAuditPolicyConfig');
      if (audit) audit['configuration'] = cloneTree(v);
      else ctx.docs.push(newDocument('KubeAuditPolicyConfig', { configuration: cloneTree(v) }));
      return true;
    }
    if (k === 'admissionControl' && Array.isArray(v)) {
      for (const plugin of v) {
        const p = asMap(plugin, 'cluster.apiServer.admissionControl[]');
        const existing = findKind(ctx.docs, 'KubeAdmissionControlConfig', String(p['name']));
        if (existing) existing['configuration'] = cloneTree(p['configuration']);
        else ctx.docs.push(newDocument('KubeAdmissionControlConfig', { name: p['name'], configuration: cloneTree(p['configuration']) }));
      }
      return true;
    }
    return false;
  }),
  fieldsRule('cluster.controllerManager', 'KubeControllerManagerConfig', { image: 'image', extraArgs: 'extraArgs', env: 'env', resources: 'resources' }),
  fieldsRule('machine.controlPlane.controllerManager', 'KubeControllerManagerConfig', {}, (k, v, doc) => {
    if (k !== 'disabled') return false;
    doc['enabled'] = v !== true;
    return true;
  }),
  fieldsRule('machine.controlPlane.scheduler', 'KubeSchedulerConfig', {}, (k, v, doc) => {
    if (k !== 'disabled') return false;
    doc['enabled'] = v !== true;
    return true;
  }),
  fieldsRule('cluster.scheduler', 'KubeSchedulerConfig', { image: 'image', extraArgs: 'extraArgs', env: 'env', resources: 'resources', config: 'config' }),
  fieldsRule('cluster.proxy', 'KubeProxyConfig', { image: 'image', extraArgs: 'extraArgs', mode: 'mode' }, (k, v, doc) => {
    if (k !== 'disabled') return false;
    doc['enabled'] = v !== true;
    return true;
  }),
  fieldsRule('cluster.coreDNS', 'KubeCoreDNSConfig', { image: 'image' }, (k, v, doc) => {
    if (k !== 'disabled') return false;
    doc['enabled'] = v !== true;
    return true;
  }),
  { path: 'cluster.network', kind: 'KubeNetworkConfig', since: 14, apply: cniApply },
  { path: 'cluster.allowSchedulingOnControlPlanes', kind: 'KubeNodeConfig', since: 14, apply: schedulingApply },
  { path: 'cluster.allowSchedulingOnMasters', kind: 'KubeNodeConfig', since: 14, apply: schedulingApply },
  ...(['nodeLabels', 'nodeAnnotations', 'nodeTaints'] as const).map(
    (f): Rule => ({
      path: `machine.${f}`,
      kind: 'KubeNodeConfig',
      since: 14,
      apply(value, doc) {
        const to = { nodeLabels: 'labels', nodeAnnotations: 'annotations', nodeTaints: 'taints' }[f];
        doc[to] = mergeMaps(isMap(doc[to]) ? doc[to] : {}, asMap(value, `machine.${f}`), `machine.${f}`);
        return { moved: `machine.${f} → KubeNodeConfig ${to}` };
      },
    }),
  ),
  {
    path: 'machine.features.kubePrism',
    kind: 'KubePrismConfig',
    since: 14,
    apply(value, doc, ctx) {
      const v = asMap(value, 'machine.features.kubePrism');
      if (v['enabled'] === false) removeDocument(ctx.docs, doc);
      else if (v['port'] !== undefined) doc['port'] = v['port'];
      return { moved: 'machine.features.kubePrism → KubePrismConfig' };
    },
  },
  fieldsRule('machine.features.hostDNS', 'ResolverConfig', {}, (k, v, doc) => {
    if (!['enabled', 'forwardKubeDNSToHost', 'resolveMemberNames'].includes(k)) return false;
    doc['hostDNS'] = { ...(isMap(doc['hostDNS']) ? doc['hostDNS'] : {}), [k]: v };
    return true;
  }),
  {
    path: 'cluster.discovery',
    kind: 'DiscoveryServiceConfig',
    since: 14,
    apply(value, doc, ctx) {
      const v = asMap(value, 'cluster.discovery');
      const service = getPath(v, ['registries', 'service']);
      const k8sDisabled = getPath(v, ['registries', 'kubernetes', 'disabled']);
      if (k8sDisabled === false) fail('cluster.discovery.registries.kubernetes: Talos v1.14 has no Kubernetes discovery registry; remove it');
      if (v['enabled'] === false || (isMap(service) && service['disabled'] === true)) removeDocument(ctx.docs, doc);
      else if (isMap(service) && typeof service['endpoint'] === 'string') doc['endpoint'] = service['endpoint'];
      return { moved: 'cluster.discovery → DiscoveryServiceConfig' };
    },
  },
  ownedBySecrets('cluster.id', 'DiscoveryIdentityConfig', (v, d) => v === d['clusterID']),
  ownedBySecrets('cluster.secret', 'DiscoveryIdentityConfig', (v, d) => v === d['clusterSecret']),
  ownedBySecrets('cluster.ca', 'KubeAPIServerCAConfig'),
  ownedBySecrets('cluster.aggregatorCA', 'KubeAggregatorCAConfig'),
  ownedBySecrets('cluster.serviceAccount', 'KubeServiceAccountConfig'),
  ownedBySecrets('cluster.secretboxEncryptionSecret', 'KubeEtcdEncryptionConfig'),
  ownedBySecrets('cluster.aescbcEncryptionSecret', 'KubeEtcdEncryptionConfig'),
  {
    path: 'machine.sysctls',
    kind: 'SysctlConfig',
    since: 14,
    create: { after: 'ResolverConfig' },
    apply(value, doc) {
      doc['params'] = mergeMaps(isMap(doc['params']) ? doc['params'] : {}, asMap(value, 'machine.sysctls'), 'machine.sysctls');
      return { moved: 'machine.sysctls → SysctlConfig' };
    },
  },
  // Network settings (multi-document from 1.12).
  {
    path: 'machine.network.hostname',
    kind: 'HostnameConfig',
    since: 12,
    apply(value, doc) {
      delete doc['auto'];
      doc['hostname'] = value;
      return { moved: 'machine.network.hostname → HostnameConfig' };
    },
  },
  {
    path: 'machine.features.stableHostname',
    kind: 'HostnameConfig',
    since: 12,
    // false is Talos's default (no conflict); true is what HostnameConfig `auto: stable` says.
    apply: (v, doc) =>
      v === false || (v === true && doc['auto'] === 'stable')
        ? { moved: 'machine.features.stableHostname (the HostnameConfig document decides) dropped' }
        : fail('machine.features.stableHostname conflicts with the HostnameConfig document; set auto: stable there'),
  },
  {
    path: 'machine.network.nameservers',
    kind: 'ResolverConfig',
    since: 12,
    apply(value, doc) {
      if (!Array.isArray(value)) return fail('machine.network.nameservers must be a list');
      if (Array.isArray(doc['nameservers']) && doc['nameservers'].length) fail('machine.network.nameservers: the ResolverConfig document already lists nameservers; set them there');
      doc['nameservers'] = value.map((address) => ({ address }));
      return { moved: 'machine.network.nameservers → ResolverConfig' };
    },
  },
  {
    path: 'machine.network.searchDomains',
    kind: 'ResolverConfig',
    since: 12,
    apply(value, doc) {
      doc['searchDomains'] = { ...(isMap(doc['searchDomains']) ? doc['searchDomains'] : {}), domains: cloneTree(value) };
      return { moved: 'machine.network.searchDomains → ResolverConfig' };
    },
  },
  {
    path: 'machine.network.disableSearchDomain',
    kind: 'ResolverConfig',
    since: 12,
    apply(value, doc) {
      doc['searchDomains'] = { ...(isMap(doc['searchDomains']) ? doc['searchDomains'] : {}), disableDefault: value };
      return { moved: 'machine.network.disableSearchDomain → ResolverConfig' };
    },
  },
  // Documents Genesis never writes, but a patch may add next to the old field: Talos refuses both.
  { path: 'machine.network.kubespan', kind: 'KubeSpanConfig', since: 13 },
  { path: 'machine.time', kind: 'TimeSyncConfig', since: 12 },
  { path: 'machine.kubelet', kind: 'KubeCredentialProviderConfig', since: 14 },
  { path: 'machine.baseRuntimeSpecOverrides', kind: 'CRIBaseRuntimeSpecConfig', since: 14 },
  { path: 'machine.features.imageCache', kind: 'ImageCacheConfig', since: 14 },
  { path: 'machine.features.kubernetesTalosAPIAccess', kind: 'KubeTalosAPIAccessConfig', since: 14 },
  { path: 'machine.systemDiskEncryption', kind: 'VolumeConfig', name: 'EPHEMERAL', since: 14, when: (d) => d['encryption'] !== undefined },
];

/** Each rule with its path split once, in RULES' order: every render looks up every rule. */
const RULE_SEGMENTS: ReadonlyMap<Rule, string[]> = new Map(RULES.map((rule) => [rule, rule.path.split('.')]));

export type LegacyResult = { documents: Document[]; notes: string[] };

/**
 * Reconcile v1alpha1 fields with the documents that replace them. Returns new documents and a
 * note per field moved or kept; throws LegacyFieldError naming the document to use.
 */
export function reconcileLegacyFields(contract: Contract, input: Document[]): LegacyResult {
  const docs = input.map((d) => cloneTree(d));
  const main = mainDocument(docs);
  if (!main) return { documents: docs, notes: [] };
  const ctx: Context = { docs, main, contract };
  const notes: string[] = [];
  for (const [rule, segments] of RULE_SEGMENTS) {
    if (contract.minor < rule.since) continue;
    const value = getPath(main, segments);
    if (value === undefined) continue;
    let doc = findKind(docs, rule.kind, rule.name);
    if (!doc && rule.create) {
      doc = newDocument(rule.kind, rule.name ? { name: rule.name } : {});
      docs.splice(docs.findIndex((d) => d['kind'] === rule.create!.after) + 1 || docs.length, 0, doc);
    }
    if (!doc || (rule.when && !rule.when(doc))) continue;
    if (!rule.apply) {
      fail(`${rule.path} and the ${rule.kind} document cannot both be set (Talos v1.${contract.minor} refuses the config); keep only the ${rule.kind} document`);
    }
    const outcome = rule.apply!(value, doc, ctx);
    if (outcome?.moved) {
      deletePath(main, segments);
      notes.push(`${outcome.moved} (where Talos v1.${contract.minor} reads it)`);
    } else if (outcome?.lowered) {
      notes.push(outcome.lowered);
    }
  }
  return { documents: docs, notes };
}
