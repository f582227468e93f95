// What each consumer needs from the inventory, as narrow interfaces. A service depends on the
// smallest one that covers its calls, so a test hands it a fake (test/fakes/) instead of a SQLite
// file, and the compiler shows who can change what. `Inventory` (store.ts) implements them all.

import type { EventEmitter } from 'node:events';
import type { BootFacts, BootState, EventType, KernelLogLine, Node, NodeChanges, NodeEvent, Role, StoredKernelLogLine } from '../domain/node.ts';
import type { BootAccess } from './install-window.ts';
import type { ListCursor } from './node-store.ts';
import type { AutoAssignPolicy } from './policy.ts';

/** Who changes a node when the fleet file does (events, the dashboard's history). */
export const FLEET_ACTOR = 'fleet-file';

/** What a boot request did: the node as it now is and what the request was allowed. */
export type BootRecord = { node: Node; created: boolean; access: BootAccess };

/** Why a config fetch is refused; the requester never learns which. */
export type ConfigDenial = 'unknown-node' | 'no-token' | 'wrong-token' | 'expired' | 'used-up' | 'no-role' | 'window-closed' | 'conflict' | 'other-address' | 'not-installing';
export type ConfigTokenCheck = { ok: true; node: Node; fetchesLeft: number } | { ok: false; reason: ConfigDenial; node?: Node; tokenIp?: string };

/** One event from the node's Talos, with what the pure rules (src/talos-events) make of it. */
export type TalosEventRecord = {
  /** Talos's event id; an id already recorded for the node is a resend and changes nothing. */
  id: string;
  detail: Record<string, unknown>;
  stage?: string;
  ready?: boolean;
  addresses?: string[];
  /** Why the node counts as installed now (only applied to a node that is `installing`). */
  installed?: string;
};

/** What a fleet match rule gives a new machine: its settings, the fields the file owns, and the event's detail. */
export type DiscoveryRule = (node: Node) => { changes: NodeChanges; fields: string[]; detail: Record<string, unknown> } | undefined;

/** Reading machines. */
export interface NodeReader {
  get(mac: string): Node | undefined;
  list(filter?: { role?: Role; state?: BootState }, page?: { limit: number; after?: ListCursor }): Node[];
  countByStateAndRole(): Array<{ state: BootState; role: Role; count: number }>;
  /** The node that last booted from this address. */
  byIp(ip: string): Node | undefined;
}

/** Appending to a machine's history (script served, asset fetched, bootstrap steps, power actions). */
export interface HistoryWriter {
  /** `at`: when it happened, if not now (a step held until the machine was known). */
  record(mac: string, type: EventType, actor: string, detail: Record<string, unknown>, at?: string): void;
}

/** Observations that may share a commit with others (see InventoryDatabase.defer). */
export interface ObservationWriter {
  recordSoon(mac: string, type: EventType, actor: string, detail: Record<string, unknown>): void;
  /**
   * The known machine an observation belongs to: the MAC if it is recorded, else the node that last
   * booted from the address. It may read a commit still on its way to disk, so it attributes
   * observations and never decides an answer.
   */
  observedMac(who: { mac: string } | { ip: string }): string | undefined;
}

export interface HistoryReader {
  events(mac: string, opts?: { limit?: number; before?: number }): NodeEvent[];
}

/** Several calls as one transaction. */
export interface Atomic {
  atomically<T>(fn: () => T): T;
  /**
   * `fn` now, as a part of a transaction shared with other requests of the same moment (one
   * commit for all); settles once that has committed. For answers that may wait for the commit.
   */
  atomicallyShared<T>(fn: () => T): Promise<T>;
}

/** The boot conversation (provision/service.ts): recording requests and holding machines back. */
export interface BootRecorder extends Atomic, HistoryWriter {
  get(mac: string): Node | undefined;
  recordBoot(mac: string, facts: BootFacts, opts?: { maxNodes?: number }): BootRecord;
  setWaiting(mac: string, reason: string | null): void;
}

/** An address seen on the proxyDHCP's PXE port, and attributing downloads. */
export interface BootAddresses extends HistoryWriter {
  byIp(ip: string): Node | undefined;
  noteBootAddress(mac: string, ip: string): void;
}

/** Config tokens (provision/machine-config.ts). */
export interface ConfigTokens extends HistoryWriter, Pick<Atomic, 'atomicallyShared'> {
  issueConfigToken(mac: string, tokenSha256: string, ttlMs: number, fetches: number, ip?: string | null): { expiresAt: string };
  checkConfigToken(mac: string, tokenSha256: string, ip?: string): ConfigTokenCheck;
  consumeConfigToken(mac: string, tokenSha256: string, detail: Record<string, unknown>, ip?: string): ConfigTokenCheck;
  recordTokenConflict(mac: string, addresses: [string, string]): void;
}

/** A finished install reported with the machine's config token (cloud-init's phone-home, provision/cloud-init.ts). */
export interface TokenInstallReports {
  reportInstalledWithToken(mac: string, tokenSha256: string, ip: string | undefined, detail: Record<string, unknown>): { ok: true; node: Node } | { ok: false; reason: ConfigDenial; node?: Node };
}

/** What machines report once running (the event sink, the kernel-log receiver). */
export interface TalosReports {
  /** Whose traffic this is: the node that booted from the address, or whose Talos reported it. */
  bySource(ip: string): Node | undefined;
  byHostname(hostname: string): Node | undefined;
  applyTalosEvent(mac: string, e: TalosEventRecord): { duplicate: boolean; installed: boolean };
  appendKernelLog(mac: string, lines: KernelLogLine[], keep: number): void;
}

export interface KernelLogReader {
  kernelLog(mac: string, opts?: { after?: number; limit?: number }): StoredKernelLogLine[];
}

/** The operator's changes (API, dashboard, fleet file, power control). */
export interface NodeAdmin extends NodeReader, HistoryWriter, Atomic {
  update(mac: string, changes: NodeChanges, actor: string, opts: { create: boolean; fleet?: { fields: string[]; detail: Record<string, unknown> } }): { node: Node; created: boolean };
  setState(mac: string, to: BootState, actor: string, detail?: Record<string, unknown>): Node;
  delete(mac: string, actor: string): boolean;
  confirmMachine(mac: string, ip: string | null, actor: string): Node;
}

/** What the fleet file sets beside machines: the defaults and match rules new machines get. */
export interface DiscoverySettings {
  setAutoAssign(policy: AutoAssignPolicy): void;
  setDiscoveryRule(rule: DiscoveryRule | undefined): void;
}

/** Node changes as they commit ('change' with { event, node }; 'log' with { mac, lines }). */
export interface ChangeFeed {
  readonly changes: EventEmitter;
}

/** Readiness probes. */
export interface StorageProbe {
  check(): void;
  probeWrite(): void;
}

/** Everything: what the wiring holds and hands out piece by piece. */
export interface InventoryPorts
  extends NodeReader,
    HistoryReader,
    BootRecorder,
    BootAddresses,
    ConfigTokens,
    TokenInstallReports,
    TalosReports,
    KernelLogReader,
    NodeAdmin,
    DiscoverySettings,
    ChangeFeed,
    StorageProbe {
  close(): void;
}
