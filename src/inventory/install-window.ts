// The install window: when, and to which address, a machine's config may be handed out. Pure
// rules, applied by the store inside the transaction that records a boot request, so the checks
// and what they write cannot be raced.
//
// Anyone on the LAN can claim any MAC (they are printed on stickers). Over PXE nothing proves
// which machine is real, so Genesis narrows what a claim can get:
//   - a config exists to be fetched only inside a window, opened by the operator (assignment,
//     reinstall, confirming a conflict) or by auto-assign at discovery, closed when the node is
//     installed or when it expires;
//   - the first address that asks for the machine's script inside the window is bound to it, and
//     the config token to that address;
//   - a second address asking for the same MAC inside the window is a conflict: nothing more is
//     served to either side until the operator says which machine is real;
//   - an installed machine, or one outside its window, is changed by no unauthenticated request.

import type { Node } from '../domain/node.ts';

/** What a boot request (from `ip`) may do to the node's record, and whether it may get an installer. */
export type BootAccess =
  /** No role: nothing secret is served, so its facts and address are simply recorded. */
  | { kind: 'untracked' }
  /** Installed: the request changes nothing (lastIp drives event attribution and talosconfig). */
  | { kind: 'frozen' }
  /** Assigned, window open, no address bound yet: this one is bound. */
  | { kind: 'bind' }
  /** Assigned, window open, the bound address. */
  | { kind: 'bound' }
  /** Assigned, window open, another address than the bound one: a new conflict. */
  | { kind: 'conflict'; addresses: [string, string] }
  /** A conflict is already recorded: nothing is served until the operator resolves it. */
  | { kind: 'held' }
  /** Assigned, but no window is open. */
  | { kind: 'closed' };

export function windowOpen(node: Pick<Node, 'windowUntil'>, now: Date): boolean {
  return node.windowUntil !== null && Date.parse(node.windowUntil) > now.getTime();
}

export function bootAccess(node: Node, ip: string | undefined, now: Date): BootAccess {
  if (node.role === 'unassigned') return { kind: 'untracked' };
  if (node.state === 'installed') return { kind: 'frozen' };
  if (node.conflict) return { kind: 'held' };
  if (!windowOpen(node, now) || ip === undefined) return { kind: 'closed' };
  if (node.windowIp === null) return { kind: 'bind' };
  if (node.windowIp === ip) return { kind: 'bound' };
  return { kind: 'conflict', addresses: [node.windowIp, ip] };
}

/** Does this access let the request update the node's facts and last address? */
export function mayRecordFacts(a: BootAccess): boolean {
  return a.kind === 'untracked' || a.kind === 'bind' || a.kind === 'bound';
}

/** May a machine with this access be sent the installer (and so a config token)? */
export function mayInstall(a: BootAccess): boolean {
  return a.kind === 'bind' || a.kind === 'bound';
}

/** The conflict text kept on the node and shown to the operator. */
export function conflictText(addresses: [string, string]): string {
  return `two machines claim this MAC inside its install window: ${addresses[0]} and ${addresses[1]}`;
}

/** May a config token issued to `issuedTo` be used from `ip`? */
export function tokenAddressMatches(issuedTo: string | null, ip: string | undefined): boolean {
  return issuedTo === null || issuedTo === ip;
}
