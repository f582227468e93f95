// A node's story, oldest first: each recorded step (DHCP offer, TFTP download, boot script,
// kernel, initramfs, config, Talos's own events, state changes, bootstrap) with the time since the first step and
// since the previous one, so "where did the 40 seconds go" has an answer. Pure.

import type { NodeEvent } from '../domain/node.ts';

export type TimelineStep = {
  at: string;
  step: string;
  actor: string;
  detail: Record<string, unknown>;
  sinceStartMs: number;
  /** null for the first step. */
  sincePreviousMs: number | null;
};

function stepName(e: NodeEvent): string {
  switch (e.type) {
    case 'dhcp-offered':
      return 'dhcp';
    case 'tftp-served':
      return 'tftp';
    case 'script-served':
      return 'script';
    case 'asset-fetched':
      // Which file it was is recorded with the step (provision/boot-steps.ts); older records say 'asset'.
      return typeof e.detail['asset'] === 'string' ? e.detail['asset'] : 'asset';
    case 'config-served':
      return 'config';
    case 'state-changed':
      return `state ${String(e.detail['from'])} -> ${String(e.detail['to'])}`;
    case 'talos-event':
      return `talos ${String(e.detail['summary'] ?? e.detail['kind'])}`;
    default:
      return e.type;
  }
}

/**
 * `events` in any order; returns them oldest first with durations. By time, then by id: the steps a
 * machine took before it was known are written when it is, with their own earlier times.
 */
export function buildTimeline(events: NodeEvent[]): TimelineStep[] {
  const sorted = [...events].sort((a, b) => a.at.localeCompare(b.at) || a.id - b.id);
  const start = sorted.length ? Date.parse(sorted[0]!.at) : 0;
  let previous: number | null = null;
  return sorted.map((e) => {
    const t = Date.parse(e.at);
    const step: TimelineStep = { at: e.at, step: stepName(e), actor: e.actor, detail: e.detail, sinceStartMs: t - start, sincePreviousMs: previous === null ? null : t - previous };
    previous = t;
    return step;
  });
}
