// Talos machine events as Genesis understands them: decoding the Any a node publishes into one
// typed event, and the pure rules for what an event means for the node (its stage and readiness,
// whether its install finished, what an operator must see). No sockets and no SQLite here.

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type protobuf from 'protobufjs';

const PROTO_FILE = fileURLToPath(new URL('./proto/machine-events.proto', import.meta.url));

/** Talos's machine stages (MachineStatusEvent.MachineStage), lower case. */
export const TALOS_STAGES = ['unknown', 'booting', 'installing', 'maintenance', 'running', 'rebooting', 'shutting_down', 'resetting', 'upgrading'] as const;
export type TalosStage = (typeof TALOS_STAGES)[number];

export type TalosEvent =
  | { kind: 'sequence'; sequence: string; action: 'noop' | 'start' | 'stop'; error?: string }
  | { kind: 'phase'; phase: string; action: 'start' | 'stop' }
  | { kind: 'task'; task: string; action: 'start' | 'stop' }
  | { kind: 'service'; service: string; action: string; message: string; healthy?: boolean }
  | { kind: 'config-load-error'; error: string }
  | { kind: 'config-validation-error'; error: string }
  | { kind: 'addresses'; hostname: string; addresses: string[] }
  | { kind: 'machine-status'; stage: TalosStage; ready: boolean; unmet: Array<{ name: string; reason: string }> }
  /** A message type Genesis does not read (Talos adds new ones); kept by name only. */
  | { kind: 'other'; type: string };

export class EventDecodeError extends Error {}

let root: protobuf.Root | undefined;
/** The message types, protobufjs loaded with them on the first event (not at start: see sink-grpc.ts). */
function types(): protobuf.Root {
  root ??= (createRequire(import.meta.url)('protobufjs') as typeof protobuf).loadSync(PROTO_FILE);
  return root;
}

const TYPE_PREFIX = 'type.googleapis.com/';

// Strings from the wire are shown on a dashboard and stored: bound them.
const clip = (s: unknown, max = 2000): string => {
  const text = typeof s === 'string' ? s : '';
  return text.length > max ? text.slice(0, max) + '…' : text;
};
const lower = (v: unknown): string => String(v ?? '').toLowerCase();

/** One published event: the Any's type URL and bytes, as Talos sends them. */
export function decodeTalosEvent(typeUrl: string, value: Uint8Array): TalosEvent {
  const name = typeUrl.startsWith(TYPE_PREFIX) ? typeUrl.slice(TYPE_PREFIX.length) : typeUrl;
  if (!/^machine\.[A-Za-z]+$/.test(name)) return { kind: 'other', type: clip(name, 200) };
  let type: protobuf.Type;
  try {
    type = types().lookupType(name);
  } catch {
    return { kind: 'other', type: name };
  }
  let m: Record<string, unknown>;
  try {
    m = type.toObject(type.decode(value), { enums: String, defaults: true, arrays: true }) as Record<string, unknown>;
  } catch (err) {
    throw new EventDecodeError(`${name}: ${(err as Error).message}`);
  }
  switch (name) {
    case 'machine.SequenceEvent': {
      const error = m['error'] as { message?: string } | null | undefined;
      return {
        kind: 'sequence',
        sequence: clip(m['sequence'], 200),
        action: lower(m['action']) as 'noop' | 'start' | 'stop',
        ...(error?.message ? { error: clip(error.message) } : {}),
      };
    }
    case 'machine.PhaseEvent':
      return { kind: 'phase', phase: clip(m['phase'], 200), action: lower(m['action']) as 'start' | 'stop' };
    case 'machine.TaskEvent':
      return { kind: 'task', task: clip(m['task'], 200), action: lower(m['action']) as 'start' | 'stop' };
    case 'machine.ServiceStateEvent': {
      const health = m['health'] as { unknown?: boolean; healthy?: boolean } | null | undefined;
      return {
        kind: 'service',
        service: clip(m['service'], 200),
        action: lower(m['action']),
        message: clip(m['message']),
        ...(health && !health.unknown ? { healthy: !!health.healthy } : {}),
      };
    }
    case 'machine.ConfigLoadErrorEvent':
      return { kind: 'config-load-error', error: clip(m['error']) };
    case 'machine.ConfigValidationErrorEvent':
      return { kind: 'config-validation-error', error: clip(m['error']) };
    case 'machine.AddressEvent':
      return {
        kind: 'addresses',
        hostname: clip(m['hostname'], 253),
        addresses: ((m['addresses'] as unknown[]) ?? []).slice(0, 32).map((a) => clip(a, 64)),
      };
    case 'machine.MachineStatusEvent': {
      const status = (m['status'] as { ready?: boolean; unmetConditions?: Array<{ name?: string; reason?: string }> } | null) ?? {};
      const stage = lower(m['stage']);
      return {
        kind: 'machine-status',
        stage: (TALOS_STAGES as readonly string[]).includes(stage) ? (stage as TalosStage) : 'unknown',
        ready: !!status.ready,
        unmet: (status.unmetConditions ?? []).slice(0, 16).map((c) => ({ name: clip(c.name, 200), reason: clip(c.reason, 500) })),
      };
    }
    default:
      return { kind: 'other', type: name };
  }
}

/** What Genesis knows of a node when one of its events arrives. */
export type NodeView = { state: string };

/** What an event changes on the node, besides being recorded on its timeline. */
export type EventEffect = {
  stage?: TalosStage;
  ready?: boolean;
  /** Set when this event shows the install finished: the node is marked installed. */
  installed?: string;
  /** Worth a warning in Genesis's own log: the node cannot go on without an operator. */
  problem?: string;
};

/**
 * The rules. Install detection only moves a node that is `installing` (it fetched its config
 * from us): a node an operator sent back to reinstall keeps that request even while its old
 * install still runs and reports, and replayed events never move a node backwards.
 *
 * Installed means Talos runs from its disk: the `boot` sequence starts only there (a network
 * boot runs `initialize` and `install`), and the `running` stage is reached only after it.
 * `booting` and `rebooting` are not evidence: both also happen around a failed install.
 */
export function eventEffect(event: TalosEvent, node: NodeView): EventEffect {
  const installing = node.state === 'installing';
  switch (event.kind) {
    case 'sequence':
      if (event.error) return { problem: `Talos sequence ${event.sequence} failed: ${event.error}` };
      if (installing && event.sequence === 'boot' && event.action === 'start') return { installed: 'the boot sequence started (Talos runs from its disk)' };
      return {};
    case 'machine-status':
      return {
        stage: event.stage,
        ready: event.ready,
        ...(installing && event.stage === 'running' ? { installed: 'Talos reached the running stage' } : {}),
      };
    case 'config-load-error':
      return { problem: `Talos could not load its machine config: ${event.error}` };
    case 'config-validation-error':
      return { problem: `Talos rejected its machine config: ${event.error}` };
    case 'service':
      return event.action === 'failed' ? { problem: `Talos service ${event.service} failed: ${event.message}` } : {};
    default:
      return {};
  }
}

/** A short name for timelines and lists: "stage installing", "sequence boot start". */
export function eventSummary(e: TalosEvent): string {
  switch (e.kind) {
    case 'sequence':
      return `sequence ${e.sequence} ${e.action}${e.error ? ' (failed)' : ''}`;
    case 'phase':
      return `phase ${e.phase} ${e.action}`;
    case 'task':
      return `task ${e.task} ${e.action}`;
    case 'service':
      return `service ${e.service} ${e.action}`;
    case 'config-load-error':
      return 'config load error';
    case 'config-validation-error':
      return 'config validation error';
    case 'addresses':
      return `addresses ${e.addresses.join(', ')}`;
    case 'machine-status':
      return `stage ${e.stage}${e.ready ? ' (ready)' : ''}`;
    case 'other':
      return e.type;
  }
}
