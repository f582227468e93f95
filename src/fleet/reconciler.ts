// The fleet file made real: parse, plan, check every config would render, then write the plan in
// one inventory transaction, or write nothing. It runs at start and whenever the watched file or
// directory changes (debounced; an editor's write-then-rename is one change), and on
// `genesis fleet apply` when nothing is watched. What it decided is in status() and, for tests
// and the log, the 'applied' and 'failed' events.

import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync, renameSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, settingValue } from '../config/config.ts';
import { blankNode, type Node, type Role } from '../domain/node.ts';
import type { AutoAssignPolicy } from '../inventory/policy.ts';
import { InventoryError } from '../inventory/errors.ts';
import { FLEET_ACTOR, type DiscoverySettings, type DiscoveryRule, type NodeAdmin } from '../inventory/ports.ts';
import type { LinuxProfile } from '../cloud-init/profile.ts';
import { formatPlan } from './diff-text.ts';
import { exportFleet } from './export.ts';
import { gitCommit } from './git.ts';
import { FleetError, matches, parseFleet, type Fleet, type FleetPatch, type FleetProblem, type FleetSource, type PatchSlot } from './parse.ts';
import { ownedFields, planChanges, planFleet, type FleetPlan } from './plan.ts';
import { fleetConfigFields } from './schema.ts';
import { fleetRoot, readFleetSource, sourceFromFiles } from './source.ts';

/** What the reconciler needs of the config renderer (provision/config-renderer.ts). */
export type FleetRenderer = {
  setPatchTexts(patches: Partial<Record<PatchSlot, FleetPatch>>): void;
  withPatchTexts(patches: Partial<Record<PatchSlot, FleetPatch>>): { renderProblems(node: Node, role: Role): string[] };
  patchTextsInForce(): Partial<Record<PatchSlot, FleetPatch>>;
};

export type FleetReconcilerOptions = {
  inventory: NodeAdmin & DiscoverySettings;
  renderer: FleetRenderer;
  /** The running value of a genesis.yaml key (the fleet's cluster.* and talos.* take effect at start). */
  running: (key: string) => unknown;
  /** genesis.yaml's auto_assign, in force while the fleet has no `defaults`. */
  baseAutoAssign: AutoAssignPolicy;
  /** fleet.path: a file or directory to apply and watch; empty for none. */
  path: string;
  prune: boolean;
  /**
   * Boot profiles defined outside the file: Genesis's own (talos, the built-ins) and those of
   * profiles.dir, which a profile of the file may not redefine. Absent: only talos.
   */
  profiles?: { builtIn: readonly string[]; directory: () => readonly string[] };
  /** Told the file's own profiles (linuxProfiles) each time it is applied. */
  onLinuxProfiles?: (profiles: LinuxProfile[]) => void;
  /** Where a fleet applied through the API is kept, so its patches and rules survive a restart. */
  dataDir: string;
  log: Logger;
  /** Debounce of file-change notifications (ms). */
  debounceMs?: number;
  now?: () => Date;
};

export type FleetStatus = {
  /** The watched path, else 'api' once a fleet was applied through the API, else null. */
  source: string | null;
  watching: boolean;
  prune: boolean;
  applied: { at: string; commit: string | null; sha256: string; files: string[]; changed: number } | null;
  failed: { at: string; problems: FleetProblem[] } | null;
  unlisted: string[];
  /** Settings the file gives that differ from the running ones: they apply at the next start. */
  restartNeeded: Array<{ key: string; running: unknown; file: unknown; from: string }>;
};

export type FleetResult = { plan: FleetPlan; text: string; changed: boolean; restartNeeded: FleetStatus['restartNeeded']; commit: string | null };

/**
 * The last fleet applied, kept in the data dir (its documents and patch files, and where it came
 * from): a fleet applied through the API survives a restart, and a watched file that is broken
 * when Genesis starts leaves the last good version in force instead of none.
 */
export const APPLIED_FLEET_FILE = 'fleet-applied.json';

type Stored = { origin: string; at: string; commit: string | null; documents: string[]; files: Record<string, string> };

function hashFiles(files: Record<string, string>): string {
  const h = createHash('sha256');
  for (const name of Object.keys(files).sort()) h.update(`${name}\0${files[name]}\0`);
  return h.digest('hex');
}

/** What the fleet in force at start gives: its settings as loadConfig's overlay, its patches, and a warning. */
export type FleetAtStart = { overlay: Array<{ key: string; value: unknown; from: string }>; patches: Fleet['patches']; warning?: string };

/**
 * The fleet Genesis starts with: the watched one, or the one last applied through the API. Its
 * cluster.* and talos.* settings become loadConfig's overlay (checked there, at their line). A
 * watched fleet that cannot be read or parsed: the last good version from that path, with a
 * warning; with none, the error (Genesis does not start).
 */
export function fleetAtStart(fleetPath: string, dataDir: string): FleetAtStart {
  const stored = readStored(dataDir);
  const from = (fleet: Fleet, where: (at: string) => string) => ({ overlay: fleet.settings.map((x) => ({ ...x, from: where(x.from) })), patches: fleet.patches });
  const fromStored = (s: Stored) => from(parseFleet(sourceFromFiles(s.files, s.documents)), (at) => `fleet (last applied ${s.at}) ${at}`);
  if (!fleetPath) return stored?.origin === 'api' ? fromStored(stored) : { overlay: [], patches: {} };
  try {
    const source = readFleetSource(fleetPath);
    return from(parseFleet(source), (at) => `fleet ${path.join(source.root, at)}`);
  } catch (err) {
    if (!stored || stored.origin !== fleetPath) throw err;
    const why = err instanceof FleetError ? err.message : `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    return { ...fromStored(stored), warning: `the fleet file at ${fleetPath} is not valid; the version applied ${stored.at}${stored.commit ? ` (commit ${stored.commit.slice(0, 12)})` : ''} stays in force:\n${why}` };
  }
}

function readStored(dataDir: string): Stored | undefined {
  const file = path.join(dataDir, APPLIED_FLEET_FILE);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Stored;
  } catch {
    return undefined; // a torn or foreign file is as good as none: the watched path decides
  }
}

export class FleetReconciler extends EventEmitter {
  private readonly opts: FleetReconcilerOptions;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastHash: string | undefined;
  private state: FleetStatus;

  constructor(o: FleetReconcilerOptions) {
    super();
    this.opts = o;
    this.state = { source: o.path || null, watching: false, prune: o.prune, applied: null, failed: null, unlisted: [], restartNeeded: [] };
  }

  status(): FleetStatus {
    return structuredClone(this.state);
  }

  /** Is the fleet kept in a watched path (then only that path changes it)? */
  get watched(): boolean {
    return this.opts.path !== '';
  }

  /** At start: apply the watched fleet (or the one last applied through the API), then watch. Problems are logged and kept in status(), never thrown. */
  start(): void {
    const stored = readStored(this.opts.dataDir);
    if (this.opts.path) {
      this.reconcileFromPath();
      this.watch();
      const failed = this.state.failed;
      // Broken at start: the last good version from this path stays in force (its patches, rules
      // and defaults live in memory only), and the failure stays reported until a good save.
      if (failed && stored?.origin === this.opts.path) {
        try {
          this.apply(sourceFromFiles(stored.files, stored.documents), { origin: this.opts.path, store: false, commit: stored.commit });
          this.state.failed = failed;
          this.opts.log.warn({ appliedAt: stored.at, commit: stored.commit }, 'the fleet file is not valid: the version last applied from it stays in force');
        } catch (err) {
          this.opts.log.error({ reason: (err as Error).message }, 'the version of the fleet file last applied cannot be applied either');
        }
      }
      return;
    }
    if (stored?.origin !== 'api') return;
    try {
      this.apply(sourceFromFiles(stored.files, stored.documents), { origin: 'api', store: false });
    } catch (err) {
      this.fail(err);
    }
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
    this.watcher = undefined;
    this.state.watching = false;
  }

  /** What applying `source` would do, checked as apply checks it; writes nothing. Throws FleetError. */
  plan(source: FleetSource, opts: { prune?: boolean } = {}): FleetResult {
    const fleet = parseFleet(source);
    return this.check(fleet, opts.prune ?? this.opts.prune, this.opts.path ? gitCommit(fleetRoot(this.opts.path)) ?? null : null);
  }

  /**
   * Apply `source` in one transaction (all or nothing). `origin` says where it came from (the
   * watched path, or 'api'); a fleet from the API is stored in the data dir. Throws FleetError.
   */
  apply(source: FleetSource, opts: { prune?: boolean; origin: string; store?: boolean; commit?: string | null }): FleetResult {
    const fleet = parseFleet(source);
    const commit = opts.commit !== undefined ? opts.commit : null;
    const result = this.check(fleet, opts.prune ?? this.opts.prune, commit);
    const inv = this.opts.inventory;
    const detail = (at: string) => ({ file: at, ...(commit ? { commit } : {}) });
    try {
      inv.atomically(() => {
        for (const n of result.plan.nodes) {
          if (n.kind === 'prune') inv.delete(n.mac, FLEET_ACTOR);
          else if (n.kind === 'release') inv.update(n.mac, {}, FLEET_ACTOR, { create: false, fleet: { fields: [], detail: {} } });
          else {
            inv.update(n.mac, n.changes, FLEET_ACTOR, { create: n.kind === 'create', fleet: { fields: n.fields, detail: detail(n.at) } });
            if (n.reinstall) inv.setState(n.mac, 'reinstall-requested', FLEET_ACTOR, { reason: 'role changed in the fleet file with reinstall: true', ...detail(n.at) });
          }
        }
      });
    } catch (err) {
      if (err instanceof InventoryError) throw new FleetError([{ at: '(inventory)', message: err.message }]);
      throw err;
    }
    this.opts.renderer.setPatchTexts(fleet.patches);
    this.opts.onLinuxProfiles?.(fleet.linuxProfiles);
    this.opts.inventory.setDiscoveryRule(discoveryRule(fleet, commit));
    this.opts.inventory.setAutoAssign(
      fleet.defaults ? { enabled: fleet.defaults.unlisted === 'auto-assign', mode: fleet.defaults.autoAssign.mode, controlplanes: fleet.defaults.autoAssign.controlplanes } : this.opts.baseAutoAssign,
    );
    if (opts.store ?? true) {
      try {
        this.store(source, fleet, opts.origin, commit);
      } catch (err) {
        // Applied and committed all the same; only the copy for the next start is missing.
        this.opts.log.warn({ reason: (err as NodeJS.ErrnoException).code ?? (err as Error).message }, 'the applied fleet could not be kept in the data dir; after a restart only the file itself counts');
      }
    }
    const changed = result.plan.nodes.filter((n) => n.kind === 'create' || n.kind === 'prune' || n.diffs.length).length;
    this.state = {
      ...this.state,
      source: this.opts.path || opts.origin,
      applied: { at: (this.opts.now?.() ?? new Date()).toISOString(), commit, sha256: hashFiles(fleet.files), files: Object.keys(fleet.files).sort(), changed },
      failed: null,
      unlisted: result.plan.unlisted,
      restartNeeded: result.restartNeeded,
    };
    if (changed) this.opts.log.info({ changed, commit, origin: opts.origin }, 'fleet file applied');
    for (const r of result.restartNeeded) this.opts.log.warn({ setting: r.key, from: r.from }, `${r.key} in the fleet file differs from the running value: restart Genesis to apply it`);
    this.emit('applied', result);
    return result;
  }

  /** genesis fleet export: the inventory and the settings in force, as a fleet file. */
  export(): string {
    const settings = fleetConfigFields()
      .map((f) => ({ key: f.key, value: this.opts.running(f.key), def: f.default }))
      .filter((s) => s.value !== s.def)
      .map(({ key, value }) => ({ key, value }));
    const patches = Object.fromEntries(Object.entries(this.opts.renderer.patchTextsInForce()).map(([slot, p]) => [slot, p!.text]));
    return exportFleet({ nodes: this.opts.inventory.list(), settings, patches, generatedAt: (this.opts.now?.() ?? new Date()).toISOString() });
  }


  private check(fleet: Fleet, prune: boolean, commit: string | null): FleetResult {
    const problems: FleetProblem[] = [];
    const restartNeeded: FleetStatus['restartNeeded'] = [];
    for (const s of fleet.settings) {
      let value: unknown;
      try {
        value = settingValue(s.key, s.value, s.from);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        problems.push({ at: s.from, message: err.message.replace(/^invalid configuration: /, '') });
        continue;
      }
      const running = this.opts.running(s.key);
      if (running !== value) restartNeeded.push({ key: s.key, running, file: value, from: s.from });
    }
    const nodes = this.opts.inventory.list();
    const plan = planFleet(fleet, nodes, { prune });
    problems.push(...plan.problems);
    // Every machine that will have a role must get a config from what the file is about to set.
    const renderer = this.opts.renderer.withPatchTexts(fleet.patches);
    const byMac = new Map(nodes.map((n) => [n.mac, n]));
    const planned = new Map(plan.nodes.map((n) => [n.mac, n]));
    const macs = new Set([...byMac.keys(), ...plan.nodes.map((n) => n.mac)]);
    for (const mac of macs) {
      const p = planned.get(mac);
      if (p?.kind === 'prune') continue;
      const node = { ...(byMac.get(mac) ?? blankNode(mac)), ...stripUndefined(p?.changes ?? {}) } as Node;
      if (node.role === 'unassigned') continue;
      for (const why of renderer.renderProblems(node, node.role).slice(0, 3)) problems.push({ at: p?.at || mac, message: `${mac}: its config would not render: ${why}` });
    }
    // A profile the file names must exist: a machine would wait on it at its next boot. One the
    // file defines must not also be a directory's: which one counted would depend on the order.
    const directory = this.opts.profiles?.directory() ?? [];
    for (const p of fleet.linuxProfiles) {
      if (directory.includes(p.name)) problems.push({ at: `linuxProfiles.${p.name}`, message: `profile ${p.name} is also defined in profiles.dir; define it in one place` });
    }
    const known = [...new Set([...(this.opts.profiles?.builtIn ?? ['talos']), ...directory, ...fleet.linuxProfiles.map((p) => p.name)])];
    for (const m of fleet.machines) {
      if (m.changes.profile != null && !known.includes(m.changes.profile)) problems.push({ at: m.at, message: `profile ${m.changes.profile} is not defined (known: ${known.join(', ')}; see docs/cloud-init.md)` });
    }
    // A rule a machine has yet to meet is checked on a blank machine, so it fails now and not at its first boot.
    for (const m of fleet.machines) {
      if (!m.match || !m.changes.role || m.changes.role === 'unassigned') continue;
      const sample = { ...blankNode('02:00:00:00:00:00'), ...stripUndefined(m.changes) } as Node;
      for (const why of renderer.renderProblems(sample, m.changes.role).slice(0, 3)) problems.push({ at: m.at, message: `machines matching this rule would get no config: ${why}` });
    }
    if (problems.length) throw new FleetError(problems);
    return { plan, text: formatPlan(plan, { prune }), changed: planChanges(plan), restartNeeded, commit };
  }

  private store(source: FleetSource, fleet: Fleet, origin: string, commit: string | null): void {
    const stored: Stored = { origin, at: (this.opts.now?.() ?? new Date()).toISOString(), commit, documents: source.documents.map((d) => d.name), files: fleet.files };
    const file = path.join(this.opts.dataDir, APPLIED_FLEET_FILE);
    writeFileSync(`${file}.tmp`, JSON.stringify(stored), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }

  private watch(): void {
    const root = fleetRoot(this.opts.path);
    try {
      // The directory, not the file: an editor's atomic save replaces the file's inode.
      this.watcher = watch(root, { recursive: true }, () => this.schedule());
      this.watcher.on('error', (err) => this.opts.log.error({ path: root, reason: err.message }, 'the fleet directory cannot be watched any more; restart Genesis to watch it again'));
      this.state.watching = true;
    } catch (err) {
      this.opts.log.error({ path: root, reason: (err as Error).message }, 'the fleet directory cannot be watched: changes apply at the next start');
    }
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reconcileFromPath(), this.opts.debounceMs ?? 300);
    this.timer.unref();
  }

  /** Read the watched path and apply it, unless its content is what was last tried. */
  reconcileFromPath(): void {
    let source: ReturnType<typeof readFleetSource>;
    try {
      source = readFleetSource(this.opts.path);
    } catch (err) {
      // Mid-rename or deleted: the inventory stays as it is; the next change is tried again.
      this.fail(new FleetError([{ at: this.opts.path, message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]));
      return;
    }
    let fleet: Fleet;
    try {
      fleet = parseFleet(source);
    } catch (err) {
      const hash = hashFiles(Object.fromEntries(source.documents.map((d) => [d.name, d.text])));
      if (hash === this.lastHash) return;
      this.lastHash = hash;
      this.fail(err);
      return;
    }
    const hash = hashFiles(fleet.files);
    if (hash === this.lastHash) return;
    try {
      this.apply(source, { origin: this.opts.path, commit: gitCommit(source.root) ?? null });
      this.lastHash = hash;
    } catch (err) {
      // Not remembered: a refusal that depends on the inventory (a host name another machine
      // holds, an installed machine's role) may clear without the file changing, so the next
      // change in the directory (a touch will do) tries the same content again.
      this.lastHash = undefined;
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    if (!(err instanceof FleetError)) {
      this.opts.log.error({ err }, 'the fleet file could not be applied');
      err = new FleetError([{ at: this.opts.path || 'fleet', message: (err as Error).message }]);
    }
    const problems = (err as FleetError).problems;
    this.state = { ...this.state, failed: { at: (this.opts.now?.() ?? new Date()).toISOString(), problems } };
    this.opts.log.error({ problems: problems.slice(0, 10).map((p) => `${p.at}: ${p.message}`) }, 'the fleet file was not applied; the inventory is unchanged');
    this.emit('failed', problems);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The fleet's match rules as the inventory's discovery rule: a new machine gets its rule's settings as it is recorded. */
export function discoveryRule(fleet: Fleet, commit: string | null): DiscoveryRule | undefined {
  const rules = fleet.machines.filter((m) => m.match);
  if (!rules.length) return undefined;
  return (node) => {
    const rule = rules.find((m) => matches(m.match!, node));
    if (!rule) return undefined;
    return { changes: rule.changes, fields: ownedFields(rule.changes), detail: { file: rule.at, rule: rule.match, ...(commit ? { commit } : {}) } };
  };
}


