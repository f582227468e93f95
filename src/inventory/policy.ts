// The auto-assign policy as a pure rule. The store applies it inside the same write transaction
// that creates the node, so the counts it sees cannot change under it.

import type { Role } from './model.ts';

export type AutoAssignPolicy = {
  enabled: boolean;
  /** The first this-many machines become control planes; every later one a worker. */
  controlplanes: number;
};

/** Role for a machine seen for the first time, given how many control planes exist already. */
export function roleForNewMachine(policy: AutoAssignPolicy, existingControlplanes: number): Role {
  if (!policy.enabled) return 'unassigned';
  return existingControlplanes < policy.controlplanes ? 'controlplane' : 'worker';
}
