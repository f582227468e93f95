// Whether a change the operator asks for (API, dashboard) can be stored: `bootstrap: true` only on
// a control plane, and a node patch must render for the version the node will install. Pure but
// for the renderer it is given, so the rule is unit-tested with a stub (node-change-check.test.ts).

import { blankNode, type Node, type NodeChanges } from '../domain/node.ts';
import type { ConfigRenderer } from './config-renderer.ts';

export type NodeChangeCheck = { ok: true; warnings: string[] } | { ok: false; code: 'invalid_request' | 'invalid_config_patch'; message: string };

/** The boot profiles a node may name (`talos` always among them). */
export type KnownProfiles = () => readonly string[];

export function checkNodeChange(
  mac: string,
  current: Node | undefined,
  changes: NodeChanges,
  renderer: Pick<ConfigRenderer, 'checkNodePatch'>,
  profiles: KnownProfiles = () => ['talos'],
): NodeChangeCheck {
  if (changes.profile != null && !profiles().includes(changes.profile)) {
    return { ok: false, code: 'invalid_request', message: `profile ${changes.profile} is not defined (known: ${profiles().join(', ')}; see docs/cloud-init.md)` };
  }
  if (changes.bootstrap && (changes.role ?? current?.role) !== 'controlplane') {
    return { ok: false, code: 'invalid_request', message: 'bootstrap: true is for control planes: etcd is bootstrapped on one of them' };
  }
  // The patch is checked against the version the node will install (its own, or the default it
  // falls back to): a new patch, and the stored one when the version changes under it.
  const patch = changes.configPatch !== undefined ? changes.configPatch : current?.configPatch;
  if (patch == null || (changes.configPatch === undefined && changes.talosVersion === undefined)) return { ok: true, warnings: [] };
  const role = changes.role && changes.role !== 'unassigned' ? changes.role : current && current.role !== 'unassigned' ? current.role : 'worker';
  // A PUT may create the node: check its patch against a blank record.
  const base = current ?? blankNode(mac);
  const proposed = { ...base, ...Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)) } as Node;
  const { problems, warnings } = renderer.checkNodePatch(proposed, role, patch);
  if (problems.length) {
    const text = problems.slice(0, 5).join('; ');
    return { ok: false, code: 'invalid_config_patch', message: text.startsWith('configPatch') ? text : `configPatch: ${text}` };
  }
  return { ok: true, warnings };
}
