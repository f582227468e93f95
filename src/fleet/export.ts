// The inventory as a fleet file, so a homelab set up by clicks moves to git in one step. Applying
// what this writes changes nothing (tested): every value it lists is the inventory's own, and the
// only effect is that the file then owns the fields it names.

import { Document, YAMLMap, YAMLSeq } from 'yaml';
import type { Node } from '../domain/node.ts';
import type { FleetDefaults, PatchSlot } from './parse.ts';
import { FLEET_API_VERSION, FLEET_KIND } from './schema.ts';

export type ExportInput = {
  nodes: Node[];
  /** genesis.yaml keys (cluster.*, talos.*) whose running value is not the default. */
  settings: Array<{ key: string; value: unknown }>;
  /** The patches in force, as text. */
  patches: Partial<Record<PatchSlot, string>>;
  defaults?: FleetDefaults;
  /** When and from where, for the header comment. */
  generatedAt: string;
};

/** A node's settings as a fleet entry: only what is set (defaults left out), in the schema's order. */
export function machineEntry(n: Node): Record<string, unknown> | undefined {
  const e: Record<string, unknown> = {};
  if (n.role !== 'unassigned') e['role'] = n.role;
  if (n.hostname) e['hostname'] = n.hostname;
  if (n.installDisk) e['installDisk'] = n.installDisk;
  if (n.diskSelector) e['diskSelector'] = n.diskSelector;
  if (Object.keys(n.labels).length) e['labels'] = n.labels;
  if (n.talosVersion) e['talosVersion'] = n.talosVersion;
  if (n.profile) e['profile'] = n.profile;
  if (n.localBoot !== 'exit') e['localBoot'] = n.localBoot;
  if (n.network) e['network'] = n.network;
  if (n.bootstrap) e['bootstrap'] = true;
  if (n.power) e['power'] = n.power;
  if (n.configPatch) e['patch'] = { inline: n.configPatch };
  return Object.keys(e).length ? { mac: n.mac, ...e } : undefined;
}

export function exportFleet(input: ExportInput): string {
  const doc = new Document({ apiVersion: FLEET_API_VERSION, kind: FLEET_KIND });
  doc.commentBefore = ` Genesis fleet, exported ${input.generatedAt}. Keep it in git and point fleet.path at it.\n Reference: docs/fleet.md. Secrets are not here: they stay in Genesis's data dir.`;
  const root = doc.contents as YAMLMap;
  for (const section of ['cluster', 'talos']) {
    const entries = input.settings.filter((s) => s.key.startsWith(`${section}.`));
    if (entries.length) root.set(section, doc.createNode(Object.fromEntries(entries.map((s) => [s.key.slice(section.length + 1), s.value]))));
  }
  const patches = Object.entries(input.patches).filter(([, t]) => t);
  if (patches.length) root.set('patches', doc.createNode(Object.fromEntries(patches.map(([slot, text]) => [slot, { inline: text }]))));
  if (input.defaults) root.set('defaults', doc.createNode(input.defaults));
  const machines = new YAMLSeq();
  const waiting: string[] = [];
  for (const n of [...input.nodes].sort((a, b) => a.mac.localeCompare(b.mac))) {
    const entry = machineEntry(n);
    if (entry) machines.items.push(doc.createNode(entry));
    else waiting.push(` ${n.mac}: discovered ${n.firstSeen.slice(0, 10)}, no settings${n.arch ? `, ${n.arch}` : ''}${n.product ? `, ${n.product}` : ''}`);
  }
  root.set('machines', machines);
  if (waiting.length) doc.comment = ` Machines that booted and wait unassigned (add an entry to give one a role):\n${waiting.join('\n')}`;
  return doc.toString({ lineWidth: 0 });
}
