// The fleet file, parsed and checked: YAML, then the schema (schema.ts), then the rules a schema
// cannot say. Pure: the files come in as text through a FleetSource, so the server can re-check
// what the CLI sends and tests need no disk. Every problem names its file, line and column.

import { createRequire } from 'node:module';
import path from 'node:path';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type Ajv2020Type from 'ajv/dist/2020.js';
import { isAlias, isMap, isNode, isPair, isScalar, LineCounter, parseDocument, stringify, type Document } from 'yaml';
import { normalizeMac } from '../domain/mac.ts';
import type { NodeChanges } from '../domain/node.ts';
import { ChangeError, checkNodeChanges } from '../inventory/changes.ts';
import { parsePatch, PatchError } from '../talos/patch.ts';
import { parseYamlAsTalos } from '../talos/yaml-in.ts';
import { FLEET_CONFIG_SECTIONS, FLEET_SCHEMA, fleetConfigFields } from './schema.ts';
import { parseProfile, ProfileError, type LinuxProfile } from '../cloud-init/profile.ts';
import { sampleProblems } from '../cloud-init/documents.ts';
import { closest } from '../text/closest.ts';

const require = createRequire(import.meta.url);
const Ajv2020 = (require('ajv/dist/2020.js') as { default: typeof Ajv2020Type.default }).default;

/** One thing wrong, where it is (`fleet.yaml:12:5`) and what to do about it. */
export type FleetProblem = { at: string; message: string };

export class FleetError extends Error {
  readonly problems: FleetProblem[];
  constructor(problems: FleetProblem[]) {
    const shown = problems.slice(0, 10).map((p) => `${p.at}: ${p.message}`);
    if (problems.length > 10) shown.push(`… and ${problems.length - 10} more`);
    super(shown.join('\n'));
    this.problems = problems;
  }
}

/**
 * The files of a fleet: its YAML documents (a file, or every *.yaml/*.yml of a directory, in
 * name order) and any patch file they reference, by name relative to the fleet's root.
 */
export type FleetSource = {
  /** The fleet documents, in the order they are read. */
  documents: Array<{ name: string; text: string }>;
  /** A referenced patch file's text; throws (any error) when it cannot be read. */
  readRelative(name: string): string;
};

export type PatchSlot = 'cluster' | 'controlplane' | 'worker';
export const PATCH_SLOTS: readonly PatchSlot[] = ['cluster', 'controlplane', 'worker'];

/** A patch as the renderer takes it: its text and where it came from. */
export type FleetPatch = { text: string; label: string };

export type MatchRule = { macPrefix?: string; arch?: string; manufacturer?: string; product?: string; serial?: string };

export type FleetMachine = {
  /** Where the entry is (file:line:col), for messages and events. */
  at: string;
  mac?: string;
  match?: MatchRule;
  /** The settings it gives, the node patch as `configPatch` text. */
  changes: NodeChanges;
  reinstall: boolean;
};

export type FleetDefaults = { unlisted: 'wait' | 'auto-assign'; autoAssign: { mode: 'all' | 'workers'; controlplanes: number } };

type RawTemplate = { file?: string; inline?: string };
type RawLinuxProfile = {
  kernel?: string;
  initrd?: string;
  cmdline?: string[];
  recipe?: string;
  sshAuthorizedKeys?: string[];
  vars?: Record<string, string>;
  userData?: RawTemplate;
  networkConfig?: RawTemplate;
  vendorData?: RawTemplate;
};

export type Fleet = {
  /** Every file read (fleet documents and patch files), by name: what the CLI sends to the server. */
  files: Record<string, string>;
  /** genesis.yaml keys (`cluster.name`, `talos.version`, …) the fleet sets, and where. */
  settings: Array<{ key: string; value: unknown; from: string }>;
  patches: Partial<Record<PatchSlot, FleetPatch>>;
  /** Boot profiles besides Talos the file defines (its linuxProfiles section). */
  linuxProfiles: LinuxProfile[];
  /** Absent: genesis.yaml's auto_assign settings stay in force. */
  defaults?: FleetDefaults;
  machines: FleetMachine[];
};

let validator: ValidateFunction | undefined;
function validate(): ValidateFunction {
  // verbose: each error carries its schema, whose fields give an unknown one's "did you mean".
  validator ??= new Ajv2020({ strict: false, allErrors: true, verbose: true }).compile(FLEET_SCHEMA);
  return validator;
}

type Located = { doc: Document; name: string; lines: LineCounter; text: string };

function position(l: Located, offset: number | undefined): string {
  if (offset === undefined) return l.name;
  const { line, col } = l.lines.linePos(offset);
  return `${l.name}:${line}:${col}`;
}

/** The position of the node at `p` (a key for a missing or unknown property: its parent). */
function at(l: Located, p: Array<string | number>, key?: string): string {
  let node = l.doc.getIn(p, true) as unknown;
  if (key !== undefined && isMap(node)) {
    const pair = node.items.find((i) => isPair(i) && isScalar(i.key) && i.key.value === key);
    if (pair && isScalar(pair.key)) return position(l, pair.key.range?.[0]);
  }
  for (let n = p.length; (node === undefined || node === null) && n > 0; n--) node = l.doc.getIn(p.slice(0, n - 1), true);
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return position(l, range?.[0] ?? 0);
}

/**
 * The node at `p` as the file writes it, for a patch given as a mapping or list: read again as
 * Talos reads YAML, `0644` must stay octal and a label `01` stay "01", which the value read here
 * (YAML 1.2) and written back would not. A block node's lines are taken whole, less its first
 * line's indentation; a flow node (`{…}`) as it stands. Undefined where the node is not
 * self-contained (an alias, or anchors from outside it): the value written back is used then.
 */
function writtenText(l: Located, p: Array<string | number>): string | undefined {
  const node = l.doc.getIn(p, true);
  if (!isNode(node) || isAlias(node) || !node.range) return undefined;
  const [start, , end] = node.range;
  const lineStart = l.text.lastIndexOf('\n', start - 1) + 1;
  const indent = start - lineStart;
  const block = /^ *$/.test(l.text.slice(lineStart, start));
  // A block node's lines, less the indentation of its first (a comment may stand further left).
  const text = block ? l.text.slice(lineStart, end).replace(new RegExp(`^ {0,${indent}}`, 'gm'), '') : l.text.slice(start, end);
  try {
    parseYamlAsTalos(text);
    return text;
  } catch {
    return undefined;
  }
}

const pointerPath = (instancePath: string): Array<string | number> =>
  instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));

const dotted = (p: Array<string | number>) => p.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('') || '(top level)';

/** ajv's errors as a person reads them; a `oneOf` failure says the two forms once, not each branch's complaint. */
function schemaProblems(l: Located, errors: ErrorObject[]): FleetProblem[] {
  const out = new Map<string, FleetProblem>();
  const oneOfPaths = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  for (const e of errors) {
    const p = pointerPath(e.instancePath);
    if (e.keyword !== 'oneOf' && [...oneOfPaths].some((o) => e.instancePath === o || e.instancePath.startsWith(`${o}/`))) continue;
    let problem: FleetProblem;
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = (e.params as { additionalProperty: string }).additionalProperty;
        const meant = closest(key, Object.keys((e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {}));
        problem = { at: at(l, p, key), message: `${dotted([...p, key])}: unknown field${meant ? ` (did you mean ${meant}?)` : ''}` };
        break;
      }
      case 'required': {
        const key = (e.params as { missingProperty: string }).missingProperty;
        problem = { at: at(l, p), message: `${dotted(p)}: ${key} is required` };
        break;
      }
      case 'oneOf':
        problem = { at: at(l, p), message: `${dotted(p)}: give either {file: <path>} or {inline: <patch>}` };
        break;
      case 'enum':
        problem = { at: at(l, p), message: `${dotted(p)}: must be one of ${((e.params as { allowedValues: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(', ')}` };
        break;
      case 'const':
        problem = { at: at(l, p), message: `${dotted(p)}: must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}` };
        break;
      default:
        problem = { at: at(l, p), message: `${dotted(p)}: ${e.message ?? 'is invalid'}` };
    }
    out.set(`${problem.at} ${problem.message}`, problem);
  }
  return [...out.values()];
}

/** A patch file name must stay inside the fleet's directory: the fleet names files, it does not reach out. */
function patchFileName(from: string, file: string): string | undefined {
  if (path.isAbsolute(file) || file.includes('\0')) return undefined;
  const joined = path.posix.normalize(path.posix.join(path.posix.dirname(from), file.replace(/\\/g, '/')));
  if (joined.startsWith('../') || joined === '..') return undefined;
  return joined;
}

type RawPatch = { file?: string; inline?: unknown };

/** A file a fleet entry names (`file:`), inside the fleet's directory: its name and text, or a problem. */
function readFleetFile(l: Located, p: Array<string | number>, file: string, source: FleetSource, files: Record<string, string>, problems: FleetProblem[]): { name: string; text: string } | undefined {
  const where = at(l, p);
  const name = patchFileName(l.name, file);
  if (!name) {
    problems.push({ at: where, message: `${dotted(p)}.file: ${JSON.stringify(file)} must be a relative path inside the fleet's directory` });
    return undefined;
  }
  try {
    const text = files[name] ?? source.readRelative(name);
    files[name] = text;
    return { name, text };
  } catch (err) {
    problems.push({ at: where, message: `${dotted(p)}.file: cannot read ${name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
    return undefined;
  }
}

function resolvePatch(l: Located, p: Array<string | number>, raw: RawPatch, source: FleetSource, files: Record<string, string>, problems: FleetProblem[]): FleetPatch | undefined {
  const where = at(l, p);
  let text: string;
  let label: string;
  if (raw.file !== undefined) {
    const read = readFleetFile(l, p, raw.file, source, files, problems);
    if (!read) return undefined;
    text = read.text;
    label = read.name;
  } else {
    const inline = raw.inline;
    text = typeof inline === 'string' ? inline : (writtenText(l, [...p, 'inline']) ?? stringify(inline));
    label = `${where} (inline)`;
  }
  try {
    parsePatch(text, label);
  } catch (err) {
    if (!(err instanceof PatchError)) throw err;
    problems.push({ at: where, message: err.message });
    return undefined;
  }
  return { text, label };
}

/** A profile the file defines: its templates read, then checked as a profile directory would be. */
function resolveLinuxProfile(l: Located, name: string, raw: RawLinuxProfile, source: FleetSource, files: Record<string, string>, problems: FleetProblem[]): LinuxProfile | undefined {
  const p = ['linuxProfiles', name];
  const where = at(l, p);
  const template = (key: 'userData' | 'networkConfig' | 'vendorData'): string | undefined | null => {
    const t = raw[key];
    if (!t) return undefined;
    if (t.inline !== undefined) return t.inline;
    return readFleetFile(l, [...p, key], t.file!, source, files, problems)?.text ?? null;
  };
  const userData = template('userData');
  const networkConfig = template('networkConfig');
  const vendorData = template('vendorData');
  if (userData === null || networkConfig === null || vendorData === null) return undefined;
  const { userData: _u, networkConfig: _n, vendorData: _v, sshAuthorizedKeys, ...rest } = raw;
  const profileYaml = stringify({ kind: 'cloud-init', ...rest, ...(sshAuthorizedKeys ? { ssh_authorized_keys: sshAuthorizedKeys } : {}) });
  try {
    const profile = parseProfile(name, { profileYaml, ...(userData !== undefined ? { userData } : {}), ...(networkConfig !== undefined ? { networkConfig } : {}), ...(vendorData !== undefined ? { vendorData } : {}) }, dotted(p), dotted(p));
    const problems = sampleProblems(profile);
    if (problems.length) throw new ProfileError(problems.map((m) => `${dotted(p)}: ${m}`));
    return profile;
  } catch (err) {
    if (!(err instanceof ProfileError)) throw err;
    for (const message of err.problems) problems.push({ at: where, message });
    return undefined;
  }
}

function normalizePrefix(prefix: string): string {
  return prefix.toLowerCase().replace(/-/g, ':');
}

/** Parse and check a fleet: every problem at once, or the resolved fleet. Throws FleetError. */
export function parseFleet(source: FleetSource): Fleet {
  const problems: FleetProblem[] = [];
  const files: Record<string, string> = {};
  const fleet: Fleet = { files, settings: [], patches: {}, linuxProfiles: [], machines: [] };
  if (source.documents.length === 0) throw new FleetError([{ at: '(fleet)', message: 'no fleet file: the directory holds no *.yaml or *.yml file' }]);
  const seenSections = new Map<string, string>();
  const seenMacs = new Map<string, string>();
  const configFields = new Map(fleetConfigFields().map((f) => [f.key, f]));

  for (const { name, text } of source.documents) {
    files[name] = text;
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    const l: Located = { doc, name, lines, text };
    if (doc.errors.length) {
      for (const e of doc.errors.slice(0, 5)) problems.push({ at: position(l, e.pos[0]), message: `not valid YAML: ${e.message.split('\n')[0]}` });
      continue;
    }
    const data = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (!validate()(data)) {
      problems.push(...schemaProblems(l, validate().errors ?? []));
      continue;
    }
    const f = data as {
      cluster?: Record<string, unknown>;
      talos?: Record<string, unknown>;
      profiles?: Record<string, unknown>;
      linuxProfiles?: Record<string, RawLinuxProfile>;
      patches?: Partial<Record<PatchSlot, RawPatch>>;
      defaults?: { unlisted?: FleetDefaults['unlisted']; autoAssign?: Partial<FleetDefaults['autoAssign']> };
      machines?: Array<Record<string, unknown>>;
    };
    // A section set in two files would make the result depend on file order: refused.
    const claim = (section: string, p: Array<string | number>) => {
      const before = seenSections.get(section);
      if (before) problems.push({ at: at(l, p), message: `${section} is also set in ${before}; set it in one file` });
      else seenSections.set(section, at(l, p));
    };
    for (const section of FLEET_CONFIG_SECTIONS) {
      for (const [k, value] of Object.entries(f[section] ?? {})) {
        const key = `${section}.${k}`;
        if (!configFields.has(key)) continue;
        const where = at(l, [section], k);
        const before = seenSections.get(key);
        if (before) problems.push({ at: where, message: `${key} is also set in ${before}; set it in one file` });
        else seenSections.set(key, where);
        fleet.settings.push({ key, value, from: where });
      }
    }
    for (const slot of PATCH_SLOTS) {
      const raw = f.patches?.[slot];
      if (!raw) continue;
      claim(`patches.${slot}`, ['patches', slot]);
      const patch = resolvePatch(l, ['patches', slot], raw, source, files, problems);
      if (patch) fleet.patches[slot] = patch;
    }
    for (const [name, raw] of Object.entries(f.linuxProfiles ?? {})) {
      claim(`linuxProfiles.${name}`, ['linuxProfiles', name]);
      const profile = resolveLinuxProfile(l, name, raw, source, files, problems);
      if (profile) fleet.linuxProfiles.push(profile);
    }
    if (f.defaults) {
      claim('defaults', ['defaults']);
      fleet.defaults = {
        unlisted: f.defaults.unlisted ?? 'wait',
        autoAssign: { mode: f.defaults.autoAssign?.mode ?? 'workers', controlplanes: f.defaults.autoAssign?.controlplanes ?? 3 },
      };
    }
    for (const [i, m] of (f.machines ?? []).entries()) {
      const p = ['machines', i];
      const where = at(l, p);
      const { mac: rawMac, match: rawMatch, patch, reinstall, ...settings } = m as {
        mac?: string;
        match?: MatchRule;
        patch?: RawPatch;
        reinstall?: boolean;
      } & NodeChanges;
      const machine: FleetMachine = { at: where, changes: { ...settings }, reinstall: reinstall === true };
      if ((rawMac === undefined) === (rawMatch === undefined)) {
        problems.push({ at: where, message: `${dotted(p)}: give mac (one machine) or match (a rule), not ${rawMac === undefined ? 'neither' : 'both'}` });
        continue;
      }
      if (rawMac !== undefined) {
        const mac = normalizeMac(rawMac);
        if (!mac) {
          problems.push({ at: at(l, [...p, 'mac']), message: `${dotted(p)}.mac: ${JSON.stringify(rawMac)} is not a unicast MAC address` });
          continue;
        }
        const dup = seenMacs.get(mac);
        if (dup) problems.push({ at: where, message: `${dotted(p)}: ${mac} is listed twice (also at ${dup})` });
        seenMacs.set(mac, where);
        machine.mac = mac;
      } else {
        machine.match = { ...rawMatch!, ...(rawMatch!.macPrefix ? { macPrefix: normalizePrefix(rawMatch!.macPrefix) } : {}) };
        // A rule covers many machines: a name or the bootstrap choice belongs to one.
        for (const single of ['hostname', 'bootstrap', 'network'] as const) {
          if (settings[single] !== undefined) problems.push({ at: at(l, p, single), message: `${dotted(p)}.${single}: belongs to one machine; a match rule cannot set it` });
        }
      }
      if (patch) {
        const resolved = resolvePatch(l, [...p, 'patch'], patch, source, files, problems);
        if (resolved) machine.changes.configPatch = resolved.text;
      }
      try {
        checkNodeChanges(machine.changes);
      } catch (err) {
        if (!(err instanceof ChangeError)) throw err;
        problems.push({ at: where, message: `${dotted(p)}: ${err.message}` });
        continue;
      }
      if (machine.reinstall && !machine.changes.role) problems.push({ at: at(l, p, 'reinstall'), message: `${dotted(p)}.reinstall: goes with a role (it lets a role change reach an installed machine)` });
      fleet.machines.push(machine);
    }
  }

  const bootstrap = fleet.machines.filter((m) => m.changes.bootstrap === true);
  if (bootstrap.length > 1) problems.push({ at: bootstrap[1]!.at, message: `bootstrap: true is set on ${bootstrap.length} machines (${bootstrap.map((m) => m.at).join(', ')}); one control plane bootstraps etcd` });
  for (const m of bootstrap) if (m.changes.role !== 'controlplane') problems.push({ at: m.at, message: 'bootstrap: true needs role: controlplane (only a control plane bootstraps etcd)' });
  const hostnames = new Map<string, string>();
  for (const m of fleet.machines) {
    const h = m.changes.hostname;
    if (!h) continue;
    if (hostnames.has(h)) problems.push({ at: m.at, message: `hostname ${h} is also given at ${hostnames.get(h)}` });
    hostnames.set(h, m.at);
  }
  if (problems.length) throw new FleetError(problems);
  return fleet;
}

/** Does a machine's facts meet a match rule? Every field given must match; strings ignore case. */
export function matches(rule: MatchRule, facts: { mac: string; arch: string | null; manufacturer: string | null; product: string | null; serial: string | null }): boolean {
  const same = (want: string | undefined, got: string | null) => want === undefined || (got !== null && got.toLowerCase() === want.toLowerCase());
  if (rule.macPrefix !== undefined && !facts.mac.startsWith(rule.macPrefix)) return false;
  return same(rule.arch, facts.arch) && same(rule.manufacturer, facts.manufacturer) && same(rule.product, facts.product) && same(rule.serial, facts.serial);
}
