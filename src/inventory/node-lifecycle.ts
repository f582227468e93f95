// Every change to a machine's boot state, install window, conflict hold and config token, as pure
// rules: (node, event) → node' plus whether its config token must go. The store applies the
// outcome inside the transaction that read the node, as bootstrap/lock-store.ts applies the lock's
// rules; nothing here touches SQLite, so the rules are tested exhaustively without a file.
//
// The invariants every rule keeps (node-lifecycle.test.ts walks every role × state × event):
//   - a machine without a role is `discovered`, has no window, no conflict and no token;
//   - an installed machine has no open window, no token and no conflict: it is served nothing that
//     a hold would stop, so a conflict on it would only claim a hold that does not exist;
//   - a held machine (conflict) has no token;
//   - only the operator opens a window, or auto-assign at discovery.

import type { BootState, Node, Role } from '../domain/node.ts';
import { conflictHoldText, WINDOW_CLOSED_HOLD } from '../ipxe/plan.ts';
import { conflictText, windowOpen } from './install-window.ts';

/** The part of a node these rules read and write. */
export type LifecycleFields = Pick<Node, 'role' | 'state' | 'windowUntil' | 'windowIp' | 'conflict'>;

export type LifecycleEvent =
  /** A machine seen for the first time, with the role the fleet rules or auto-assign gave it. */
  | { type: 'discovered'; role: Role; ip: string | null }
  /** The operator (API, dashboard, fleet file) sets the role, the same one included. */
  | { type: 'role-set'; role: Role }
  /** The operator moves the machine to a state: reinstall, mark installed, and so on. */
  | { type: 'state-requested'; to: BootState }
  /** Its config was served under a valid token. */
  | { type: 'config-served' }
  /** Its Talos reported a finished install. */
  | { type: 'install-reported' }
  /** A second address claims the MAC inside its window, or uses its token. */
  | { type: 'address-conflict'; addresses: [string, string] }
  /** The operator says which machine is real (its address, or the next one to ask). */
  | { type: 'machine-confirmed'; ip: string | null };

export type LifecycleOutcome =
  | { ok: true; next: LifecycleFields; revokeToken: boolean }
  /** Refused: the event needs a role the machine does not have. */
  | { ok: false; reason: 'no-role' };

/** `windowEnd`: when a window opened now closes (now + the install window). */
export type LifecycleContext = { windowEnd: string };

/** A machine's state when nothing more specific is known: its role's. */
export function stateForRole(role: Role, current: BootState): BootState {
  if (role === 'unassigned') return 'discovered';
  return current === 'discovered' ? 'assigned' : current;
}

/** The fields of a machine never seen before, before its discovery is applied. */
export const UNSEEN: LifecycleFields = { role: 'unassigned', state: 'discovered', windowUntil: null, windowIp: null, conflict: null };

export function applyLifecycle(node: LifecycleFields, event: LifecycleEvent, ctx: LifecycleContext): LifecycleOutcome {
  const keep = (changes: Partial<LifecycleFields>, revokeToken = false): LifecycleOutcome => ({ ok: true, next: { ...node, ...changes }, revokeToken });
  switch (event.type) {
    case 'discovered': {
      const state = stateForRole(event.role, 'discovered');
      // Auto-assigned: its window opens now, bound to the address it was discovered from.
      if (event.role === 'unassigned') return keep({ role: event.role, state, windowUntil: null, windowIp: null, conflict: null });
      return keep({ role: event.role, state, windowUntil: ctx.windowEnd, windowIp: event.ip, conflict: null });
    }
    case 'role-set': {
      const state = stateForRole(event.role, node.state);
      // No role: nothing may be fetched with a token issued before, and no window stays open.
      if (event.role === 'unassigned') return keep({ role: event.role, state, windowUntil: null, windowIp: null, conflict: null }, true);
      // Assigning opens the window; the next address that asks for the script is bound to it.
      if (node.role === 'unassigned' && state !== 'installed') return keep({ role: event.role, state, windowUntil: ctx.windowEnd, windowIp: null, conflict: null });
      return keep({ role: event.role, state });
    }
    case 'state-requested': {
      if (node.role === 'unassigned' && event.to !== 'discovered') return { ok: false, reason: 'no-role' };
      // Installed: the config has done its job; the window closes, the token goes, and with nothing
      // left to serve the operator's word settles any conflict.
      if (event.to === 'installed') return keep({ state: event.to, windowUntil: null, conflict: null }, true);
      // A reinstall is the operator opening a new window, dismissing any conflict.
      if (event.to === 'reinstall-requested') return keep({ state: event.to, windowUntil: ctx.windowEnd, windowIp: null, conflict: null });
      return keep({ state: event.to });
    }
    case 'config-served':
      return keep({ state: node.state === 'installing' || node.state === 'installed' ? node.state : 'installing' });
    case 'install-reported':
      // Only an install Genesis handed out ends this way; a reinstall waiting for its PXE boot
      // must not be undone by the old system's events.
      if (node.state !== 'installing') return keep({});
      // A conflict raised while it installed stays in its history and its alert; it holds nothing now.
      return keep({ state: 'installed', windowUntil: null, conflict: null }, true);
    case 'address-conflict':
      // An installed machine is frozen (bootAccess): a second claimant gets nothing to hold back.
      if (node.state === 'installed') return keep({});
      return keep({ conflict: conflictText(event.addresses) }, true);
    case 'machine-confirmed':
      if (node.role === 'unassigned') return { ok: false, reason: 'no-role' };
      // Installed: confirming settles a conflict but opens no window (a reinstall does that).
      if (node.state === 'installed') return keep({ conflict: null }, true);
      return keep({ conflict: null, windowUntil: ctx.windowEnd, windowIp: event.ip }, true);
  }
}

/**
 * Has this change lifted the hold the node's `waiting` names? The boot service rewrites `waiting`
 * at each boot request, but a machine that has stopped asking (powered off, or waiting out its
 * retry) would keep showing a reason the operator has just removed: a conflict's hold once the
 * conflict is cleared, a closed window's once a window opens, and any hold once the machine has no
 * role or is installed (neither is ever held, and an installed machine's record is not touched by
 * its requests). A hold of the machine's own (assets missing, a config that cannot be rendered)
 * stays: only its next request can say that it is gone.
 */
export function holdLifted(before: LifecycleFields & Pick<Node, 'waiting'>, next: LifecycleFields, now: Date): boolean {
  const hold = before.waiting;
  if (hold === null) return false;
  if (next.role === 'unassigned' || next.state === 'installed') return true;
  if (before.conflict !== null && next.conflict === null && hold === conflictHoldText(before.conflict)) return true;
  return hold === WINDOW_CLOSED_HOLD && !windowOpen(before, now) && windowOpen(next, now);
}
