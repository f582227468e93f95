// A fleet plan as text, the way `kubectl diff` shows one: per machine a ---/+++ header and the
// lines that change, `-` for the inventory's value and `+` for the file's. Pure.

import { stringify } from 'yaml';
import type { FleetPlan } from './plan.ts';

/** A field as YAML lines, named as the fleet file names it (the node patch is `patch`). */
function valueLines(field: string, value: unknown): string[] {
  const name = field === 'configPatch' ? 'patch' : field;
  return stringify({ [name]: value ?? null }, { lineWidth: 0 }).replace(/\n$/, '').split('\n');
}

export function formatPlan(plan: FleetPlan, opts: { prune: boolean }): string {
  const out: string[] = [];
  for (const n of plan.nodes) {
    if (n.kind === 'prune') {
      out.push(`--- inventory/${n.mac}`, `+++ /dev/null`, `- ${n.mac}: not in the fleet file; deleted (fleet.prune)`);
      continue;
    }
    if (n.diffs.length === 0 && n.kind !== 'create') continue;
    out.push(`--- ${n.kind === 'create' ? '/dev/null' : `inventory/${n.mac}`}`, `+++ fleet/${n.mac} (${n.at})`);
    for (const d of n.diffs) {
      if (n.kind !== 'create') out.push(...valueLines(d.field, d.from).map((l) => `-${l}`));
      out.push(...valueLines(d.field, d.to).map((l) => `+${l}`));
    }
    if (n.kind === 'create' && n.diffs.length === 0) out.push(`+mac: ${n.mac}`);
    if (n.reinstall) out.push(`+state: "reinstall-requested"   # reinstall: true; it is wiped and reinstalled at its next boot`);
  }
  if (plan.unlisted.length) {
    out.push(`# ${plan.unlisted.length} machine(s) in the inventory are not in the fleet file and stay${opts.prune ? ' (waiting unassigned: prune keeps those)' : ' (fleet.prune is off)'}:`);
    for (const mac of plan.unlisted) out.push(`#   ${mac}`);
  }
  return out.length ? `${out.join('\n')}\n` : '';
}
