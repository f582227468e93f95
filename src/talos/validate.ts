// The checks of Talos's own `Config.Validate()` (metal mode, which requires an install) that a JSON
// schema cannot express and that a Genesis config can run into once patched. Talos refuses such a
// config when the node boots, so Genesis refuses it (or settles it) before serving it. Pure.

import { isSupportedTalosVersion, parseTalosVersion, SUPPORTED_RANGE, type Contract } from './contract.ts';
import { DiskSelectorError, diskSelectorToCel } from './disk-selector.ts';
import { isValidLabelKey, isValidLabelValue } from '../domain/node.ts';
import { cloneTree, documentLabel, getPath, isMap, mainDocument, type Document } from './documents.ts';

export type Settled = { documents: Document[]; notes: string[] };

/**
 * Talos 1.12 and 1.13 refuse `install.extraKernelArgs` together with `install.grubUseUKICmdline`
 * ("can't be used together"), and their generator writes `grubUseUKICmdline: true`. When a patch
 * adds kernel arguments and leaves the generated `true` alone, the arguments are what the operator
 * asked for: Genesis turns the UKI command line off so GRUB builds its own with them. A patch that
 * sets both itself is refused by semanticProblems, as Talos would.
 */
export function settleInstall(contract: Contract, generated: Document[], patched: Document[]): Settled {
  if (!contract.grubUseUKICmdline) return { documents: patched, notes: [] };
  const before = getPath(mainDocument(generated), ['machine', 'install', 'grubUseUKICmdline']);
  const main = mainDocument(patched);
  const install = getPath(main, ['machine', 'install']);
  if (!isMap(install) || !Array.isArray(install['extraKernelArgs']) || !install['extraKernelArgs'].length) return { documents: patched, notes: [] };
  if (install['grubUseUKICmdline'] !== true || before !== true) return { documents: patched, notes: [] };
  const documents = patched.map((d) => (d === main ? cloneTree(d) : d));
  ((mainDocument(documents)!['machine'] as Record<string, unknown>)['install'] as Record<string, unknown>)['grubUseUKICmdline'] = false;
  return {
    documents,
    notes: [`machine.install.extraKernelArgs is set, so machine.install.grubUseUKICmdline is turned off (Talos v1.${contract.minor} refuses the two together; GRUB then builds the command line with those arguments)`],
  };
}

/** Problems Talos's Validate() would report for the install section; empty when there are none. */
export function semanticProblems(docs: Document[]): string[] {
  const problems: string[] = [];
  const install = getPath(mainDocument(docs), ['machine', 'install']);
  if (isMap(install)) {
    const disk = install['disk'];
    const selector = install['diskSelector'];
    // Go's YAML decoder reads a number into the string field, so `disk: 7` is a (bad) disk, not none.
    const hasDisk = (typeof disk === 'string' && disk !== '') || typeof disk === 'number';
    if (!hasDisk && !(isMap(selector) && Object.keys(selector).length)) {
      problems.push('v1alpha1 config /machine/install: either install disk or diskSelector should be defined');
    }
    if (isMap(selector)) {
      try {
        diskSelectorToCel(selector);
      } catch (err) {
        if (!(err instanceof DiskSelectorError)) throw err;
        problems.push(`v1alpha1 config /machine/install: install disk selector is invalid: ${err.message}`);
      }
    }
    if (Array.isArray(install['extraKernelArgs']) && install['extraKernelArgs'].length && install['grubUseUKICmdline'] === true) {
      problems.push("v1alpha1 config /machine/install: install.extraKernelArgs and install.grubUseUKICmdline can't be used together");
    }
  }
  problems.push(...nodeMetadataProblems(docs));
  for (const rule of docs.filter((d) => d['kind'] === 'RoutingRuleConfig')) {
    // Talos's RoutingRuleConfigV1Alpha1.Validate: a rule that looks up (unicast, Talos's default
    // when no action is given) needs a table to look in. The schema marks the table as required
    // (schema.ts lets it go).
    const unset = (v: unknown) => v === undefined || v === null || v === '' || v === 0 || (typeof v === 'string' && ['0', 'unspec'].includes(v.toLowerCase()));
    const looksUp = unset(rule['action']) || (typeof rule['action'] === 'string' && rule['action'].toLowerCase() === 'unicast');
    if (unset(rule['table']) && looksUp) problems.push(`${documentLabel(rule)}: either table or a non-unicast action must be specified`);
  }
  return problems;
}

/** The documents Talos 1.14 allows only on control planes (its ControlplaneOnlyConfig kinds). */
const CONTROLPLANE_ONLY_KINDS = new Set([
  'KubeAdmissionControlConfig',
  'KubeAggregatorCAConfig',
  'KubeAPIServerConfig',
  'KubeAuditPolicyConfig',
  'KubeAuthenticationConfig',
  'KubeAuthorizerConfig',
  'KubeControllerManagerConfig',
  'KubeCoreDNSConfig',
  'KubeEtcdEncryptionConfig',
  'KubeFlannelCNIConfig',
  'KubeProxyConfig',
  'KubeSchedulerConfig',
  'KubeServiceAccountConfig',
  'KubeTalosAPIAccessConfig',
]);

// Written for a machine's console too: it keeps 200 characters, and shows quotes and semicolons as '?' (talos.patches.controlplane, the fleet file's patches.controlplane: docs/machine-configs.md).
const IN_CONTROLPLANE_PATCH = 'move it to the controlplane patch, not the cluster-wide one';

/**
 * What Talos refuses on a worker, most often from a cluster-wide patch meant for control planes:
 * a shared VIP on an interface or VLAN and an etcd section (v1alpha1 Validate, every minor), and
 * the documents only control planes run (1.14's container validation). Empty for a control plane.
 */
export function workerProblems(docs: Document[]): string[] {
  if (getPath(mainDocument(docs), ['machine', 'type']) !== 'worker') return [];
  const problems: string[] = [];
  const interfaces = getPath(mainDocument(docs), ['machine', 'network', 'interfaces']);
  for (const [i, iface] of (Array.isArray(interfaces) ? interfaces : []).entries()) {
    if (!isMap(iface)) continue;
    const at = `v1alpha1 config /machine/network/interfaces/${i}`;
    if (iface['vip'] !== undefined && iface['vip'] !== null) problems.push(`${at}/vip: virtual (shared) IP is not allowed on non-controlplane nodes: ${IN_CONTROLPLANE_PATCH}`);
    for (const [j, vlan] of (Array.isArray(iface['vlans']) ? iface['vlans'] : []).entries()) {
      if (isMap(vlan) && vlan['vip'] !== undefined && vlan['vip'] !== null) problems.push(`${at}/vlans/${j}/vip: virtual (shared) IP is not allowed on non-controlplane nodes: ${IN_CONTROLPLANE_PATCH}`);
    }
  }
  const cluster = getPath(mainDocument(docs), ['cluster']);
  if (isMap(cluster) && cluster['etcd'] !== undefined && cluster['etcd'] !== null) problems.push(`v1alpha1 config /cluster/etcd: etcd config is only allowed on control plane machines: ${IN_CONTROLPLANE_PATCH}`);
  for (const doc of docs.filter((d) => typeof d['kind'] === 'string' && CONTROLPLANE_ONLY_KINDS.has(d['kind']))) {
    problems.push(`${documentLabel(doc)}: Talos allows it only on control plane machines: ${IN_CONTROLPLANE_PATCH}`);
  }
  return problems;
}

/** Annotations Talos keeps for itself (its constants.AnnotationOwned*). */
const RESERVED_ANNOTATIONS = new Set(['talos.dev/owned-labels', 'talos.dev/owned-annotations', 'talos.dev/owned-taints']);
const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];
const ANNOTATIONS_MAX_BYTES = 256 * 1024;
const LABEL_FORM = "up to 63 letters, digits, '-', '_' and '.', beginning and ending with a letter or digit";

/**
 * Talos's checks of the node's Kubernetes labels, annotations and taints (its labels package,
 * run by v1alpha1 Validate and, on 1.14, KubeNodeConfig's): a value Kubernetes would refuse makes
 * Talos refuse the whole config, so the node would never install. Genesis's own `labels` setting
 * is checked when it is set; these come from patches (`machine.nodeLabels`, `nodeTaints`, ...).
 */
function nodeMetadataProblems(docs: Document[]): string[] {
  const problems: string[] = [];
  const text = (v: unknown) => (typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v));
  /** `at(field)`: how a field of the place is named in messages. */
  const check = (at: (field: string) => string, labels: unknown, annotations: unknown, taints: unknown) => {
    if (isMap(labels)) {
      const where = at('labels');
      for (const [k, v] of Object.entries(labels)) {
        if (!isValidLabelKey(k)) problems.push(`${where}: label key ${JSON.stringify(k)} is not a valid Kubernetes label key`);
        else if (!isValidLabelValue(text(v))) problems.push(`${where}: label ${k}: value ${JSON.stringify(text(v))} is not a valid Kubernetes label value (${LABEL_FORM})`);
      }
    }
    if (isMap(annotations)) {
      const where = at('annotations');
      let bytes = 0;
      for (const [k, v] of Object.entries(annotations)) {
        if (!isValidLabelKey(k)) problems.push(`${where}: annotation key ${JSON.stringify(k)} is not a valid Kubernetes annotation key`);
        if (RESERVED_ANNOTATIONS.has(k)) problems.push(`${where}: annotation ${JSON.stringify(k)} is reserved by Talos`);
        bytes += Buffer.byteLength(k) + Buffer.byteLength(text(v));
      }
      if (bytes > ANNOTATIONS_MAX_BYTES) problems.push(`${where}: the annotations total ${bytes} bytes, over Kubernetes's limit of ${ANNOTATIONS_MAX_BYTES}`);
    }
    if (isMap(taints)) {
      const where = at('taints');
      for (const [k, v] of Object.entries(taints)) {
        if (!isValidLabelKey(k)) {
          problems.push(`${where}: taint key ${JSON.stringify(k)} is not a valid Kubernetes taint key`);
          continue;
        }
        // `value:Effect`, or the effect alone.
        const taint = text(v);
        const colon = taint.indexOf(':');
        const [value, effect] = colon === -1 ? [undefined, taint] : [taint.slice(0, colon), taint.slice(colon + 1)];
        if (!TAINT_EFFECTS.includes(effect)) problems.push(`${where}: taint ${k}: effect ${JSON.stringify(effect)} is not one of ${TAINT_EFFECTS.join(', ')}`);
        else if (value !== undefined && !isValidLabelValue(value)) problems.push(`${where}: taint ${k}: value ${JSON.stringify(value)} is not a valid Kubernetes label value (${LABEL_FORM})`);
      }
    }
  };
  const machine = getPath(mainDocument(docs), ['machine']);
  const node = (field: string) => `node${field[0]!.toUpperCase()}${field.slice(1)}`;
  if (isMap(machine)) check((f) => `v1alpha1 config /machine/${node(f)}`, machine['nodeLabels'], machine['nodeAnnotations'], machine['nodeTaints']);
  for (const doc of docs.filter((d) => d['kind'] === 'KubeNodeConfig')) check((f) => `${documentLabel(doc)} /${f}`, doc['labels'], doc['annotations'], doc['taints']);
  return problems;
}

/**
 * A patch that sets `machine.type` to another role than the machine's: Genesis's assignment is the
 * role (the bootstrap, the VIP and the CA keys follow it), so a config that says otherwise is
 * refused rather than a worker turned control plane behind its back.
 */
export function roleProblems(docs: Document[], role: 'controlplane' | 'worker'): string[] {
  const type = getPath(mainDocument(docs), ['machine', 'type']);
  if (type === undefined || type === role) return [];
  return [`v1alpha1 config /machine/type: is ${JSON.stringify(type)}, but this machine is assigned ${JSON.stringify(role)}: the role is Genesis's assignment (genesis nodes assign <mac> ${String(type)}), not a patch's`];
}

/**
 * The Talos version a patch's installer image tag would install, where it is not the machine's.
 * The machine boots its Talos version's kernel and gets a config written for that version's
 * contract, then installs the installer's. An older minor (an Image Factory URL copied for an
 * older release, say) would boot from disk into a Talos that cannot read that config: refused.
 * A newer release reads an older contract's config, as after an upgrade: a warning, since Genesis
 * still counts the machine at its own version. An image by digest or with a tag that is not a
 * release says nothing, and is left alone.
 */
export function installerVersionCheck(docs: Document[], talosVersion: string): { problems: string[]; warnings: string[] } {
  const problems: string[] = [];
  const warnings: string[] = [];
  const own = parseTalosVersion(talosVersion);
  const images: Array<[string, unknown]> = [
    ['v1alpha1 config /machine/install/image', getPath(mainDocument(docs), ['machine', 'install', 'image'])],
    ['UnattendedInstallConfig document /installer/image', getPath(docs.find((d) => d['kind'] === 'UnattendedInstallConfig'), ['installer', 'image'])],
  ];
  for (const [where, image] of images) {
    // The tag after the image's last ':' (an image by digest, `@sha256:...`, names no release).
    const tag = typeof image === 'string' && !image.includes('@') ? /:(v[^:/]+)$/.exec(image)?.[1] : undefined;
    const theirs = tag === undefined ? undefined : parseTalosVersion(tag);
    if (!theirs || !own || tag === talosVersion) continue;
    const fix = isSupportedTalosVersion(tag!)
      ? `genesis nodes assign <mac> <role> --talos-version ${tag} (or talos.version) gives the machine that version, and the installer's tag can be left to Genesis`
      : `Genesis writes configs for Talos ${SUPPORTED_RANGE}: give the installer this machine's version, or leave the image to Genesis (talos.installer_image, talos.schematic_id)`;
    const older = theirs.major * 1000 + theirs.minor < own.major * 1000 + own.minor;
    if (older) problems.push(`${where}: ${image as string} installs Talos ${tag}, older than ${talosVersion}, which this machine boots and its config is written for: that Talos cannot read it; ${fix}`);
    else {
      // Another patch release of the same minor reads the same contract; a newer minor reads an older one.
      const why = theirs.major === own.major && theirs.minor === own.minor ? `every v${own.major}.${own.minor} release reads it` : 'a newer Talos reads it, as after an upgrade';
      warnings.push(`${where} installs Talos ${tag}, not ${talosVersion}, which this machine boots and its config is written for (${why}); ${fix}`);
    }
  }
  return { problems, warnings };
}
