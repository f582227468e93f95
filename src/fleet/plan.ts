// What applying a fleet to the inventory would do, node by node, as a pure function: the
// reconciler writes it, `genesis fleet diff` prints it, and tests drive it without a database.
//
// The rules: a machine is listed by its MAC, else by the first match rule its facts meet; the
// fields its entry sets are the file's (owned), the rest stay the API's. A field the file stops
// setting keeps its value and goes back to the API. A role change never reaches a machine that is
// installing or installed unless the entry also says `reinstall: true`. Unlisted machines are
// reported, and with prune deleted, except ones still waiting unassigned (they are how new
// machines show up, and a match rule or an operator may yet claim them).

import { blankNode, type Node, type NodeChanges } from '../domain/node.ts';
import { matches, type Fleet, type FleetMachine, type FleetProblem } from './parse.ts';
import { parseYamlAsTalos } from '../talos/yaml-in.ts';

export type FieldDiff = { field: keyof NodeChanges; from: unknown; to: unknown };

export type NodePlan = {
  mac: string;
  /** create: not in the inventory yet; update: values and/or ownership change; release: no longer listed; prune: deleted. */
  kind: 'create' | 'update' | 'release' | 'prune';
  /** The entry that lists it (file:line:col); empty for release and prune. */
  at: string;
  /** The values that change (only those). */
  changes: NodeChanges;
  diffs: FieldDiff[];
  /** The fields the file owns after this (sorted). */
  fields: string[];
  /** A role change reaches an installed machine: it is reinstalled at its next boot. */
  reinstall: boolean;
};

export type FleetPlan = {
  nodes: NodePlan[];
  /** Machines the file does not list and that stay (prune off, or still waiting unassigned). */
  unlisted: string[];
  problems: FleetProblem[];
};

const CHANGE_FIELDS: ReadonlyArray<keyof NodeChanges> = [
  'role',
  'hostname',
  'installDisk',
  'diskSelector',
  'labels',
  'talosVersion',
  'profile',
  'localBoot',
  'network',
  'configPatch',
  'bootstrap',
  'power',
];

/** Deep equality for JSON values, key order ignored. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => sameValue(v, bb[i]));
  }
  const ka = Object.keys(a as object).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b as object).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * Two patches are the same when they mean the same documents, read as Talos reads them: comments
 * and layout do not count; how a number or boolean is written does (a label `01` is not `1`).
 */
export function samePatch(a: string | null, b: string | null): boolean {
  if (a === b) return true;
  const read = (t: string | null) => {
    if (!t) return { values: [], texts: [] };
    try {
      const { values, texts } = parseYamlAsTalos(t);
      const written = [...texts].flatMap(([value, byKey]) => [...byKey].flatMap(([key, ways]) => [...ways].map((w) => `${String(value)}\0${key}\0${w}`)));
      return { values: values.filter((d) => d !== null && d !== undefined), texts: written.sort() };
    } catch {
      return { values: [t], texts: [] };
    }
  };
  const [ra, rb] = [read(a), read(b)];
  return sameValue(ra.values, rb.values) && sameValue(ra.texts, rb.texts);
}

/** A field's value now; a machine not in the inventory yet has a blank record's. */
function current(node: Node | undefined, mac: string, field: keyof NodeChanges): unknown {
  return (node ?? blankNode(mac))[field];
}

/** The fields an entry owns: what it sets, and the install disk's two forms together. */
export function ownedFields(changes: NodeChanges): string[] {
  const fields = new Set(CHANGE_FIELDS.filter((f) => changes[f] !== undefined) as string[]);
  if (fields.has('installDisk') || fields.has('diskSelector')) fields.add('installDisk').add('diskSelector');
  return [...fields].sort();
}

/** The entry for a machine: its MAC's, else the first rule it matches. */
export function entryFor(fleet: Fleet, node: Pick<Node, 'mac' | 'arch' | 'manufacturer' | 'product' | 'serial'>): FleetMachine | undefined {
  return fleet.machines.find((m) => m.mac === node.mac) ?? fleet.machines.find((m) => m.match && matches(m.match, node));
}

export function planFleet(fleet: Fleet, nodes: Node[], opts: { prune: boolean }): FleetPlan {
  const byMac = new Map(nodes.map((n) => [n.mac, n]));
  const plan: FleetPlan = { nodes: [], unlisted: [], problems: [] };
  const listed = new Set<string>();
  // Host names after the apply, to find one the file gives that another machine keeps.
  const holders = new Map<string, string[]>();
  const holds = (hostname: string | null | undefined, mac: string) => {
    if (hostname) holders.set(hostname, [...(holders.get(hostname) ?? []), mac]);
  };

  const consider = (mac: string, node: Node | undefined, entry: FleetMachine) => {
    listed.add(mac);
    const diffs: FieldDiff[] = [];
    const changes: NodeChanges = {};
    for (const field of CHANGE_FIELDS) {
      const to = entry.changes[field];
      if (to === undefined) continue;
      const from = current(node, mac, field);
      const same = field === 'configPatch' ? samePatch(from as string | null, to as string | null) : sameValue(from ?? null, to ?? null);
      if (same) continue;
      diffs.push({ field, from, to });
      (changes as Record<string, unknown>)[field] = to;
    }
    const fields = ownedFields(entry.changes);
    const roleChange = changes.role !== undefined && node !== undefined && node.role !== 'unassigned';
    const installed = node !== undefined && (node.state === 'installed' || node.state === 'installing');
    if (roleChange && installed && !entry.reinstall) {
      plan.problems.push({
        at: entry.at,
        message: `${mac} is ${node.state} as a ${node.role}: its role changes to ${changes.role} only with reinstall: true in the same entry (it is then wiped and reinstalled at its next boot)`,
      });
    }
    holds(entry.changes.hostname !== undefined ? entry.changes.hostname : node?.hostname, mac);
    const sameOwnership = node !== undefined && sameValue([...node.fleetFields].sort(), fields);
    if (!node) plan.nodes.push({ mac, kind: 'create', at: entry.at, changes, diffs, fields, reinstall: false });
    else if (diffs.length || !sameOwnership) plan.nodes.push({ mac, kind: 'update', at: entry.at, changes, diffs, fields, reinstall: roleChange && installed && entry.reinstall });
  };

  for (const entry of fleet.machines) if (entry.mac) consider(entry.mac, byMac.get(entry.mac), entry);
  for (const node of nodes) {
    if (listed.has(node.mac)) continue;
    const entry = entryFor(fleet, node);
    if (entry) {
      consider(node.mac, node, entry);
      continue;
    }
    const waiting = node.role === 'unassigned' && node.state === 'discovered';
    if (opts.prune && !waiting) {
      plan.nodes.push({ mac: node.mac, kind: 'prune', at: '', changes: {}, diffs: [], fields: [], reinstall: false });
      continue;
    }
    plan.unlisted.push(node.mac);
    holds(node.hostname, node.mac);
    if (node.fleetFields.length) plan.nodes.push({ mac: node.mac, kind: 'release', at: '', changes: {}, diffs: [], fields: [], reinstall: false });
  }
  // A host name the file gives must not be held by another machine that keeps it.
  for (const p of plan.nodes) {
    const h = p.changes.hostname;
    const others = h ? (holders.get(h) ?? []).filter((m) => m !== p.mac) : [];
    if (others.length) plan.problems.push({ at: p.at, message: `hostname ${h} is held by ${others.join(', ')}, which keeps it` });
  }
  return plan;
}

/** Does applying the plan change any value (ownership alone does not count)? */
export function planChanges(plan: FleetPlan): boolean {
  return plan.nodes.some((n) => n.kind === 'create' || n.kind === 'prune' || n.diffs.length > 0);
}
