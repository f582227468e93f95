// ConfigRenderer turns an inventory record into its Talos machine config: the pure rendering lives
// in src/talos; this adds the cluster's secrets, the patches (genesis.yaml's files or the fleet
// file's text) and the node's own patch, and remembers verdicts for the boot path. It needs no
// inventory, so `genesis config render` uses it alone.

import { createHash } from 'node:crypto';
import type { Node } from '../domain/node.ts';
import type { Role } from '../talos/documents.ts';
import { parsePatch, PatchError, type Patch } from '../talos/patch.ts';
import { redactDocuments } from '../talos/redact.ts';
import { renderConfig, RenderError, toYaml, type ClusterSettings, type NodeInput, type RenderedConfig } from '../talos/render.ts';
import { forgetCompiledSchemas } from '../talos/schema.ts';
import { SecretsError } from '../talos/secrets.ts';
import type { SecretsStore } from '../talos/secrets-store.ts';
import { PATCH_SLOTS, type PatchFileSet, type PatchSlot } from './patch-files.ts';

/** A patch given as text (the fleet file's), in place of a genesis.yaml patch file: its text and where it came from. */
export type PatchText = { text: string; label: string };
export type PatchTexts = Partial<Record<Role, PatchText>> & { cluster?: PatchText };

export type RendererOptions = {
  secrets: SecretsStore;
  cluster: ClusterSettings;
  /** genesis.yaml's patch files, read at start and on change (patch-files.ts). */
  patchFiles: PatchFileSet;
  defaultTalosVersion: string;
};

/** What goes to a machine: its config's text, digest and warnings. */
export type ServedConfig = Readonly<Pick<RenderedConfig, 'yaml' | 'sha256' | 'warnings'>>;

/**
 * Served configs remembered at most, oldest forgotten first: a config is 3 to 8 KB of YAML, so
 * this is at most about 9 MB, and a storm of a thousand machines still fetches each config from
 * its script's render.
 */
const SERVED_KEPT = 1024;

/**
 * Does the config carry this MAC anywhere, in any case, with colons, dashes or no separator at
 * all? Only a config that does not may be served to another machine with the same other inputs.
 */
function writesMac(config: ServedConfig, mac: string): boolean {
  const text = `${config.yaml}\n${config.warnings.join('\n')}`.toLowerCase();
  const hex = mac.toLowerCase().split(/[:-]/);
  return [hex.join(':'), hex.join('-'), hex.join('')].some((form) => text.includes(form));
}

export class ConfigRenderer {
  private readonly opts: RendererOptions;
  /** Render verdicts by their inputs: the boot path asks on every install-script request. */
  private readonly verdicts = new Map<string, string | undefined>();
  /**
   * Served configs by every input of the render (the cluster settings, the node's settings and
   * patch, the patches in force, the secrets file as loaded): the install script's check renders
   * a machine's config, and the config fetch that follows is served from it. Rendering is pure,
   * so the same inputs give the same bytes.
   */
  private readonly served = new Map<string, ServedConfig>();
  /** The cluster settings as they enter the served-config key: fixed for this renderer, so written out once. */
  private readonly clusterKey: string;
  /** The fleet file's patches: each one given replaces the genesis.yaml patch file of its slot. */
  private patchTexts: PatchTexts = {};
  /**
   * The same, parsed (or the reason they do not parse) and hashed once when they are set: the
   * boot path asks for a verdict on every install-script request, and they change only on apply.
   */
  private givenPatches: Partial<Record<'cluster' | Role, { patch: Patch | PatchError; sha256: string }>> = {};

  /** Armed by releaseWhenIdle(), restarted by every render. */
  private idleRelease: NodeJS.Timeout | undefined;

  constructor(o: RendererOptions, patchTexts: PatchTexts = {}) {
    this.opts = o;
    this.clusterKey = JSON.stringify(o.cluster);
    this.setPatchTexts(patchTexts);
  }

  /** The fleet file sets its patches here when it is applied; the next render uses them. */
  setPatchTexts(patches: PatchTexts): void {
    this.patchTexts = { ...patches };
    this.givenPatches = {};
    for (const slot of PATCH_SLOTS) {
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
    for (const slot of PATCH_SLOTS) {
      const given = this.patchTexts[slot];
      const file = this.opts.patchFiles.slot(slot);
      if (given) out[slot] = given;
      // An unreadable file is left out: its render problem says so.
      else if (file?.text != null) out[slot] = { text: file.text, label: file.file };
    }
    return out;
  }

  /** This renderer, or with a placeholder endpoint when none is set: checks run before the cluster is configured. */
  private withEndpoint(): ConfigRenderer {
    return this.opts.cluster.endpoint || this.opts.cluster.vip ? this : new ConfigRenderer({ ...this.opts, cluster: { ...this.opts.cluster, endpoint: PLACEHOLDER_ENDPOINT } }, this.patchTexts);
  }

  /**
   * Lets go of what rendering holds: the served configs (they carry the cluster's keys, so they
   * are not kept in memory longer than they serve), the verdicts, and Talos's loaded schemas and
   * compiled validators. Rendering is pure, so the next render gives the same bytes; it pays
   * for loading and compiling again (tens of milliseconds per document kind).
   */
  release(): void {
    this.served.clear();
    this.verdicts.clear();
    forgetCompiledSchemas();
  }

  /**
   * release() once `ms` have passed without a render. A homelab Genesis renders in bursts (the
   * machines of a cold boot, one reinstall) and idles between them, holding nothing for them.
   */
  releaseWhenIdle(ms: number): void {
    clearTimeout(this.idleRelease);
    this.idleRelease = setTimeout(() => this.release(), ms);
    // Never what keeps the process up.
    this.idleRelease.unref();
  }

  /** Stops the idle release (at shutdown). */
  close(): void {
    clearTimeout(this.idleRelease);
    this.idleRelease = undefined;
  }

  /** The number of served configs held (for tests). */
  get servedHeld(): number {
    return this.served.size;
  }

  /** The same renderer with other patches: the fleet checks its machines against what it is about to set. */
  withPatchTexts(patches: PatchTexts): ConfigRenderer {
    return new ConfigRenderer(this.opts, patches);
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
      this.renderServed(node);
    } catch (err) {
      if (!(err instanceof RenderError)) throw err;
      // Its problems, without the config's label: the machine's console and WAITING column already
      // say whose config it is, and the console keeps only the first 200 characters.
      const text = err.problems.length ? err.problems.join('; ') : err.message;
      verdict = text.length > 300 ? `${text.slice(0, 297)}...` : text;
    }
    if (this.verdicts.size >= 1000) this.verdicts.clear();
    this.verdicts.set(key, verdict);
    return verdict;
  }

  /** The patches' contents (as last read: patch-files.ts sees changes) and the secrets file's identity. */
  private inputsStamp(): string {
    return `${this.patchStamp()}|${this.opts.secrets.recentStamp()}`;
  }

  private patchStamp(): string {
    return PATCH_SLOTS.map((slot) => {
      const given = this.givenPatches[slot];
      if (given) return `text:${given.sha256}`;
      return this.opts.patchFiles.slot(slot)?.sha256 ?? '-';
    }).join('|');
  }

  /**
   * The node's config as served (render()'s text, digest and warnings), rendered once per set of
   * inputs. Throws RenderError like render().
   *
   * A config that does not write its machine's MAC (one without a static address or a VIP, which
   * bind the NIC by it) is the same bytes for every machine with the same other inputs, and is
   * remembered for all of them: the workers an auto-assigned cold boot brings up without a
   * hostname of their own are rendered once, not once each. That holds because a MAC enters a
   * config only as written text (test/unit/talos-render.test.ts renders every per-node setting
   * for two MACs and checks it), and the written text is looked for in every form it takes.
   */
  renderServed(node: Node): ServedConfig {
    const role = node.role === 'unassigned' ? null : node.role;
    // The bundle as it is now: current() looks at the file (a broken one throws in render() below).
    let secretsStamp: string | undefined;
    try {
      this.opts.secrets.current();
      secretsStamp = this.opts.secrets.loadedStamp;
    } catch (err) {
      if (!(err instanceof SecretsError)) throw err;
    }
    const input = role && secretsStamp !== undefined ? this.nodeInput(node, role) : undefined;
    const patchStamp = this.patchStamp();
    const keyFor = (nodeInput: NodeInput) => JSON.stringify([this.clusterKey, nodeInput, node.configPatch ?? null, patchStamp, secretsStamp]);
    // Its own key, and the key any machine with the same other inputs shares.
    const keys = input && { own: keyFor(input), anyMac: keyFor({ ...input, mac: '' }) };
    const hit = keys && (this.served.get(keys.own) ?? this.served.get(keys.anyMac));
    if (hit) return hit;
    const rendered = this.render(node);
    const out: ServedConfig = Object.freeze({ yaml: rendered.yaml, sha256: rendered.sha256, warnings: Object.freeze([...rendered.warnings]) as string[] });
    if (keys) {
      if (this.served.size >= SERVED_KEPT) this.served.delete(this.served.keys().next().value!);
      this.served.set(writesMac(out, node.mac) ? keys.own : keys.anyMac, out);
    }
    return out;
  }

  /** Cluster patch, then the role's patch, then the node's own. */
  patchesFor(role: Role, nodePatch: string | null | undefined): Patch[] {
    const slot = (name: PatchSlot): Patch | undefined => {
      const given = this.givenPatches[name];
      if (given) {
        if (given.patch instanceof PatchError) throw given.patch;
        return given.patch;
      }
      const file = this.opts.patchFiles.slot(name);
      if (file?.error) throw file.error;
      return file?.patch ?? undefined;
    };
    const out: Array<Patch | undefined> = [slot('cluster'), slot(role)];
    if (nodePatch) out.push(parsePatch(nodePatch, 'node configPatch'));
    return out.filter((p): p is Patch => p !== undefined);
  }

  nodeInput(node: Node, role: Role): NodeInput {
    return {
      mac: node.mac,
      role,
      talosVersion: node.talosVersion ?? this.opts.defaultTalosVersion,
      hostname: node.hostname,
      installDisk: node.installDisk,
      diskSelector: node.diskSelector,
      labels: node.labels,
      network: node.network,
    };
  }

  /** Render a node's config; throws RenderError with the reason (never the config itself). */
  render(node: Node, opts: { role?: Role; configPatch?: string | null } = {}): RenderedConfig {
    // A render restarts the idle countdown (one that has fired is armed again).
    this.idleRelease?.refresh();
    const role = opts.role ?? (node.role === 'unassigned' ? undefined : node.role);
    if (!role) throw new RenderError(`node ${node.mac} has no role; assign one first`);
    let secrets;
    try {
      secrets = this.opts.secrets.current();
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
    return renderConfig({ cluster: this.opts.cluster, secrets, node: this.nodeInput(node, role), patches });
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
