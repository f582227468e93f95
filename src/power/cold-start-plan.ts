// The ordered cold start's rules, pure: which machines to wake after a power cut, in what order,
// and when etcd has quorum again. The I/O (probing, magic packets, BMCs) is in cold-start.ts.
//
//   control planes that were running and are silent ──wake──▶ wait for etcd quorum ──▶ wake workers
//
// "Were running": installed, with a role. "Silent": its Talos API does not answer and no Talos
// event has come from it since Genesis started. Machines marked `manual` are never woken.

import type { Node } from '../domain/node.ts';

export type ColdStartPlan = {
  controlplanes: string[];
  workers: string[];
  /** Silent machines Genesis will not wake, and why. */
  skipped: Array<{ mac: string; reason: string }>;
};

/** `answering`: MACs whose Talos API answered in the first probe. `since`: when Genesis started (ISO). */
export function planColdStart(nodes: Node[], answering: Set<string>, since: string): ColdStartPlan {
  const plan: ColdStartPlan = { controlplanes: [], workers: [], skipped: [] };
  for (const n of [...nodes].sort((a, b) => (a.mac < b.mac ? -1 : 1))) {
    if (n.state !== 'installed' || n.role === 'unassigned') continue;
    if (answering.has(n.mac) || (n.talosSeen !== null && n.talosSeen >= since)) continue;
    if (n.power?.method === 'manual') {
      plan.skipped.push({ mac: n.mac, reason: 'manual power' });
      continue;
    }
    (n.role === 'controlplane' ? plan.controlplanes : plan.workers).push(n.mac);
  }
  return plan;
}

/**
 * etcd has quorum when more than half of its members are healthy. `members`: the longest member
 * list any control plane reported (a node that lost its data reports none); `healthy`: control
 * planes whose etcd service is running and healthy.
 */
export function hasQuorum(members: number, healthy: number): boolean {
  return members > 0 && healthy >= Math.floor(members / 2) + 1;
}
