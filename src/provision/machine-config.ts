// Machine configs for nodes. ConfigRenderer turns an inventory record into its config (the
// pure rendering lives in src/talos; this reads the secrets file and patch files). It needs no
// inventory, so `genesis config render` uses it alone. MachineConfigService adds the serving
// side: the single-node token written into the install script, its check when Talos fetches,
// and the record of what happened.

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { LogThrottle } from '../logging/throttle.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { splitList, type Config } from '../config/config.ts';
import type { Node } from '../domain/node.ts';
import type { ConfigDenial, ConfigTokens } from '../inventory/ports.ts';
import type { Cni, Role } from '../talos/documents.ts';
import { parsePatch, PatchError, type Patch } from '../talos/patch.ts';
import { redactDocuments } from '../talos/redact.ts';
import { renderConfig, RenderError, toYaml, type ClusterSettings, type NodeInput, type RenderedConfig, type Telemetry } from '../talos/render.ts';
import { SecretsError } from '../talos/secrets.ts';
import type { SecretsStore } from '../talos/secrets-store.ts';

/**
 * Where nodes report to, at the advertised address: the ports actually bound when Genesis runs
 * (they may be 0 in the config), the configured ones for an offline render.
 */
export function telemetryEndpoints(c: Config, ports = { eventSink: c.events.sink_port, kernelLog: c.events.kernel_log_port }): Telemetry | undefined {
  if (!c.events.enabled || !ports.eventSink || !ports.kernelLog) return undefined;
  return { eventSink: `${c.advertise_addr}:${ports.eventSink}`, kernelLog: `tcp://${c.advertise_addr}:${ports.kernelLog}/` };
}

/** The Talos kernel arguments that point the network-booted kernel at the same endpoints. */
export function telemetryKernelArgs(t: Telemetry | undefined): string[] {
  return t ? [`talos.events.sink=${t.eventSink}`, `talos.logging.kernel=${t.kernelLog}`] : [];
}

export function clusterSettings(c: Config, telemetry: Telemetry | undefined = telemetryEndpoints(c)): ClusterSettings {
  const cni: Cni = c.cluster.cni === 'custom' ? { name: 'custom', urls: splitList(c.cluster.cni_urls) } : { name: c.cluster.cni };
  return {
    name: c.cluster.name,
    endpoint: c.cluster.endpoint,
    vip: c.cluster.vip,
    kubernetesVersion: c.cluster.kubernetes_version,
    dnsDomain: c.cluster.dns_domain,
    podSubnets: splitList(c.cluster.pod_subnets),
    serviceSubnets: splitList(c.cluster.service_subnets),
    cni,
    allowSchedulingOnControlPlanes: c.cluster.allow_scheduling_on_controlplanes,
    installDisk: c.talos.install_disk,
    installerImage: c.talos.installer_image,
    schematicId: c.talos.schematic_id,
    ...(telemetry ? { telemetry } : {}),
  };
}

export type PatchFiles = { cluster: string; controlplane: string; worker: string };

/** A patch given as text (the fleet file's), in place of a genesis.yaml patch file: its text and where it came from. */
export type PatchText = { text: string; label: string };
export type PatchTexts = Partial<Record<Role, PatchText>> & { cluster?: PatchText };

export type RendererOptions = {
  secrets: SecretsStore;
  cluster: ClusterSettings;
  patchFiles: PatchFiles;
  defaultTalosVersion: string;
};

export type MachineConfigOptions = {
  inventory: ConfigTokens;
  renderer: ConfigRenderer;
  defaultTalosVersion: string;
  tokenTtlMs: number;
  tokenFetches: number;
  metrics?: Metrics;
  log: Logger;
};

/**
 * What a config request comes to, in the provisioning's terms (http/talos.ts says it in HTTP).
 * `denied`: the requester learns nothing more than that; the reason is for the log and metrics.
 */
export type ConfigOutcome = { outcome: 'served'; yaml: string } | { outcome: 'denied'; reason: ConfigDenial | 'bad-request' } | { outcome: 'unrenderable'; reason: string };

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** A patch file from genesis.yaml, read on each render so an edit applies without a restart. */
export function readPatchFile(file: string, label: string): Patch | undefined {
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PatchError(`${label} (${file}): cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parsePatch(text, `${label} (${file})`);
}

export class ConfigRenderer {
  private readonly o: RendererOptions;
  /** Render verdicts by their inputs: the boot path asks on every install-script request. */
  private readonly verdicts = new Map<string, string | undefined>();
  /** The fleet file's patches: each one given replaces the genesis.yaml patch file of its slot. */
  private patchTexts: PatchTexts = {};
  /**
   * The same, parsed (or the reason they do not parse) and hashed once when they are set: the
   * boot path asks for a verdict on every install-script request, and they change only on apply.
   */
  private givenPatches: Partial<Record<'cluster' | Role, { patch: Patch | PatchError; sha256: string }>> = {};

  constructor(o: RendererOptions, patchTexts: PatchTexts = {}) {
    this.o = o;
    this.setPatchTexts(patchTexts);
  }

  /** The fleet file sets its patches here when it is applied; the next render uses them. */
  setPatchTexts(patches: PatchTexts): void {
    this.patchTexts = { ...patches };
    this.givenPatches = {};
    for (const slot of ['cluster', 'controlplane', 'worker'] as const) {
      const given = patches[slot];
      if (!given) continue;
      let patch: Patch | PatchError;
      try {
        patch = parsePatch(given.text, `fleet patches.${slot} (${given.label})`);
      } catch (err) {
        if (!(err instanceof PatchError)) throw err;
        patch = err;
      }
      this.givenPatches[slot] = { patch, sha256: createHash('sha256').update(given.text).digest('hex') };
    }
  }

  /** The patches in force, as text (the fleet's, else the files'), for `genesis fleet export`. */
  patchTextsInForce(): PatchTexts {
    const out: PatchTexts = {};
    for (const slot of ['cluster', 'controlplane', 'worker'] as const) {
      const given = this.patchTexts[slot];
      const file = this.o.patchFiles[slot];
      if (given) out[slot] = given;
      else if (file) {
        try {
          out[slot] = { text: readFileSync(file, 'utf8'), label: file };
        } catch {
          // unreadable: its render problem says so
        }
      }
    }
    return out;
  }

  /** This renderer, or with a placeholder endpoint when none is set: checks run before the cluster is configured. */
  private withEndpoint(): ConfigRenderer {
    return this.o.cluster.endpoint || this.o.cluster.vip ? this : new ConfigRenderer({ ...this.o, cluster: { ...this.o.cluster, endpoint: PLACEHOLDER_ENDPOINT } }, this.patchTexts);
  }

  /** The same renderer with other patches: the fleet checks its machines against what it is about to set. */
  withPatchTexts(patches: PatchTexts): ConfigRenderer {
    return new ConfigRenderer(this.o, patches);
  }

  /**
   * Why this node's config cannot be rendered now (one line), or undefined when it can. Remembered
   * until an input changes (the node's settings, a patch file, the secrets file), so a machine
   * asking for its script does not render, patch and validate its whole config each time.
   */
  problem(node: Node): string | undefined {
    const role = node.role === 'unassigned' ? null : node.role;
    const key = JSON.stringify([role && this.nodeInput(node, role), node.configPatch, this.inputsStamp()]);
    if (this.verdicts.has(key)) return this.verdicts.get(key);
    let verdict: string | undefined;
    try {
      this.render(node);
    } catch (err) {
      if (!(err instanceof RenderError)) throw err;
      verdict = err.message.length > 300 ? `${err.message.slice(0, 297)}...` : err.message;
    }
    if (this.verdicts.size >= 1000) this.verdicts.clear();
    this.verdicts.set(key, verdict);
    return verdict;
  }

  /**
   * The patch files' contents (small, and an edit within one clock tick can keep size and mtime)
   * and the secrets file's identity.
   */
  private inputsStamp(): string {
    const files = (['cluster', 'controlplane', 'worker'] as const).map((slot) => {
      const given = this.givenPatches[slot];
      if (given) return `text:${given.sha256}`;
      const f = this.o.patchFiles[slot];
      if (!f) return '-';
      try {
        return createHash('sha256').update(readFileSync(f)).digest('hex');
      } catch (err) {
        return `unreadable:${(err as NodeJS.ErrnoException).code ?? ''}`;
      }
    });
    return `${files.join('|')}|${this.o.secrets.statStamp()}`;
  }

  /** Cluster patch, then the role's patch, then the node's own. */
  patchesFor(role: Role, nodePatch: string | null | undefined): Patch[] {
    const f = this.o.patchFiles;
    const slot = (name: 'cluster' | Role) => {
      const given = this.givenPatches[name];
      if (!given) return readPatchFile(f[name], `talos.patches.${name}`);
      if (given.patch instanceof PatchError) throw given.patch;
      return given.patch;
    };
    const out: Array<Patch | undefined> = [slot('cluster'), slot(role)];
    if (nodePatch) out.push(parsePatch(nodePatch, 'node configPatch'));
    return out.filter((p): p is Patch => p !== undefined);
  }

  nodeInput(node: Node, role: Role): NodeInput {
    return {
      mac: node.mac,
      role,
      talosVersion: node.talosVersion ?? this.o.defaultTalosVersion,
      hostname: node.hostname,
      installDisk: node.installDisk,
      diskSelector: node.diskSelector,
      labels: node.labels,
      network: node.network,
    };
  }

  /** Render a node's config; throws RenderError with the reason (never the config itself). */
  render(node: Node, opts: { role?: Role; configPatch?: string | null } = {}): RenderedConfig {
    const role = opts.role ?? (node.role === 'unassigned' ? undefined : node.role);
    if (!role) throw new RenderError(`node ${node.mac} has no role; assign one first`);
    let secrets;
    try {
      secrets = this.o.secrets.current();
    } catch (err) {
      if (err instanceof SecretsError) throw new RenderError(err.message);
      throw err;
    }
    let patches: Patch[];
    try {
      patches = this.patchesFor(role, opts.configPatch === undefined ? node.configPatch : opts.configPatch);
    } catch (err) {
      if (err instanceof PatchError) throw new RenderError(`patch failed: ${err.message}`);
      throw err;
    }
    return renderConfig({ cluster: this.o.cluster, secrets, node: this.nodeInput(node, role), patches });
  }

  /** The config with keys and tokens masked, for the API; its warnings as comments on top. */
  redacted(node: Node): string {
    const rendered = this.render(node);
    return rendered.warnings.map((w) => `# warning: ${w.replace(/\n/g, ' ')}\n`).join('') + toYaml(redactDocuments(rendered.documents));
  }

  /**
   * Would this node patch produce a valid config for the node's effective Talos version? Returns
   * the problems (empty when it would) and the warnings its config would carry. When the cluster
   * settings are incomplete (no endpoint yet) the patch is still checked, against a config rendered
   * with a placeholder endpoint; only when even that base config cannot be rendered (a broken
   * cluster patch file, say) is the patch checked for syntax alone: the node then waits, with why.
   */
  checkNodePatch(node: Node, role: Role, configPatch: string): { problems: string[]; warnings: string[] } {
    try {
      parsePatch(configPatch, 'configPatch');
    } catch (err) {
      if (err instanceof PatchError) return { problems: [err.message], warnings: [] };
      throw err;
    }
    const renderer = this.withEndpoint();
    try {
      renderer.render(node, { role, configPatch: null });
    } catch (err) {
      if (err instanceof RenderError) return { problems: [], warnings: [] };
      throw err;
    }
    try {
      return { problems: [], warnings: renderer.render(node, { role, configPatch }).warnings };
    } catch (err) {
      if (err instanceof RenderError) return { problems: err.problems.length ? err.problems : [err.message], warnings: [] };
      throw err;
    }
  }

  /**
   * Why this node, with this role, would get no config (empty when it would): the fleet file's
   * check before it applies. An unset endpoint is not a reason (placeholder, as for checkNodePatch).
   */
  renderProblems(node: Node, role: Role): string[] {
    const renderer = this.withEndpoint();
    try {
      renderer.render(node, { role });
      return [];
    } catch (err) {
      if (err instanceof RenderError) return err.problems.length ? err.problems : [err.message];
      throw err;
    }
  }
}

/** Stands in for an unset cluster.endpoint when a node patch is checked before the cluster is configured. */
const PLACEHOLDER_ENDPOINT = 'https://endpoint.invalid:6443';

export class MachineConfigService {
  readonly renderer: ConfigRenderer;
  private readonly o: MachineConfigOptions;
  private readonly throttle: LogThrottle;
  private readonly lastEvent = new Map<string, number>();

  constructor(o: MachineConfigOptions) {
    this.o = o;
    this.renderer = o.renderer;
    this.throttle = new LogThrottle(o.log);
  }

  /** A fresh token for a node's install script, bound to the address the script goes to; only its hash is stored. Hex: safe in iPXE and on a kernel command line. */
  issueToken(mac: string, ip?: string): string {
    const token = randomBytes(32).toString('hex');
    this.o.inventory.issueConfigToken(mac, sha256(token), this.o.tokenTtlMs, this.o.tokenFetches, ip ?? null);
    return token;
  }

  /** A config request with the node's MAC and token: its config, a denial, or a config that cannot be rendered yet. */
  serve(mac: string | undefined, token: string, ip: string | undefined): ConfigOutcome {
    const deny = (reason: ConfigDenial | 'bad-request', node?: Node): ConfigOutcome => {
      // The requester learns nothing; the operator gets the reason (never the token), summarised
      // when it repeats, so bad-token floods neither fill the log nor push a node's history out.
      this.o.metrics?.refused('config', reason);
      this.o.metrics?.configOutcome('refused');
      this.throttle.note(`config-${reason}`, ip ?? 'unknown', { mac }, 'machine config refused');
      if (node && this.eventDue(`${node.mac} ${reason}`)) this.o.inventory.record(node.mac, 'config-denied', 'boot', { reason, ip });
      return { outcome: 'denied', reason };
    };
    if (!mac || !/^[0-9a-f]{64}$/.test(token)) return deny('bad-request');
    const hash = sha256(token);
    const check = this.o.inventory.checkConfigToken(mac, hash, ip);
    if (!check.ok) {
      if (check.reason === 'other-address' && check.tokenIp && ip) {
        // The right token from the wrong address: it was copied off the wire. Hold both sides.
        this.o.inventory.recordTokenConflict(mac, [check.tokenIp, ip]);
        this.o.log.warn({ mac, addresses: [check.tokenIp, ip] }, 'a config token was used from another address than its script went to: both held until the operator confirms one');
      }
      return deny(check.reason, check.node);
    }

    let rendered: RenderedConfig;
    try {
      rendered = this.o.renderer.render(check.node);
    } catch (err) {
      if (!(err instanceof RenderError)) throw err;
      this.o.log.error({ mac, ip, problems: err.problems.length ? err.problems : undefined, reason: err.message }, 'machine config not served: it cannot be rendered');
      this.o.inventory.record(mac, 'config-failed', 'boot', { reason: err.message, problems: err.problems.slice(0, 20) });
      this.o.metrics?.configOutcome('failed');
      return { outcome: 'unrenderable', reason: err.message };
    }
    const spent = this.o.inventory.consumeConfigToken(
      mac,
      hash,
      {
        ip,
        role: check.node.role,
        talosVersion: check.node.talosVersion ?? this.o.defaultTalosVersion,
        sha256: rendered.sha256,
        // Deprecated fields and moved settings, on the node's timeline where the operator looks.
        ...(rendered.warnings.length ? { warnings: rendered.warnings } : {}),
      },
      ip,
    );
    if (!spent.ok) return deny(spent.reason, spent.node);
    this.o.log.info({ mac, ip, role: check.node.role, sha256: rendered.sha256, fetchesLeft: spent.fetchesLeft }, 'machine config served');
    this.o.metrics?.configOutcome('served');
    return { outcome: 'served', yaml: rendered.yaml };
  }

  /** At most one recorded event per key a minute: refusals repeat, the node's history must not fill with them. */
  private eventDue(key: string): boolean {
    const now = Date.now();
    const last = this.lastEvent.get(key);
    if (last !== undefined && now - last < 60_000) return false;
    if (this.lastEvent.size >= 10_000) this.lastEvent.clear();
    this.lastEvent.set(key, now);
    return true;
  }
}
