// The auto-assign policy as a pure rule. The store applies it inside the same write transaction
// that creates the node, so the counts it sees cannot change under it.

import type { Role } from '../domain/node.ts';

/**
 * `all`: every new machine (anyone on the LAN can become a control plane and receive the cluster's
 * CA keys). `workers`: new machines become workers only; control planes are the operator's choice.
 * `listed`: only the MACs listed ahead of time are assigned (control planes first, as `all`).
 */
export type AutoAssignMode = 'all' | 'workers' | 'listed';

export type AutoAssignPolicy = {
  enabled: boolean;
  /** The first this-many machines become control planes; every later one a worker. */
  controlplanes: number;
  mode?: AutoAssignMode;
  /** For `listed`: the MACs (normalised, aa:bb:...) that may be assigned. */
  macs?: readonly string[];
};

/** Role for a machine seen for the first time, given how many control planes exist already. */
export function roleForNewMachine(policy: AutoAssignPolicy, existingControlplanes: number, mac = ''): Role {
  if (!policy.enabled) return 'unassigned';
  const mode = policy.mode ?? 'all';
  if (mode === 'workers') return 'worker';
  if (mode === 'listed' && !(policy.macs ?? []).includes(mac)) return 'unassigned';
  return existingControlplanes < policy.controlplanes ? 'controlplane' : 'worker';
}
