// The inventory on disk: one SQLite file (better-sqlite3) in the data dir. Every write is one
// transaction started with BEGIN IMMEDIATE, so concurrent writers (requests in this process, or a
// second Genesis sharing the data dir) queue on the write lock instead of interleaving, and
// readers never see half a change.

import { createHash, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import Database from 'better-sqlite3';
import { LATEST_SCHEMA, MIGRATIONS } from './migrations.ts';
import {
  blankNode,
  type BootFacts,
  type BootState,
  type EventType,
  type KernelLogLine,
  type Node,
  type NodeChanges,
  type NodeEvent,
  type Role,
  type StoredKernelLogLine,
} from '../domain/node.ts';
import { bootAccess, conflictText, mayRecordFacts, tokenAddressMatches, windowOpen, type BootAccess } from './install-window.ts';
import { roleForNewMachine, type AutoAssignPolicy } from './policy.ts';

/** The inventory's file name inside the data dir. */
export const DB_FILE = 'genesis.db';

/** Where a page of the node list ends: the last node's first-seen time and MAC. */
export type ListCursor = { firstSeen: string; mac: string };

export class InventoryError extends Error {
  readonly code: 'not_found' | 'conflict' | 'schema_too_new' | 'schema_too_old' | 'full';
  constructor(code: InventoryError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

type TokenRow = { mac: string; token_sha256: string; issued_at: string; expires_at: string; fetches_left: number; ip: string | null };

/** What a boot request did: the node as it now is and what the request was allowed, or why no node was created. */
export type BootRecord = { node: Node; created: boolean; access: BootAccess };

/** Why a config fetch is refused; the requester never learns which. */
export type ConfigDenial = 'unknown-node' | 'no-token' | 'wrong-token' | 'expired' | 'used-up' | 'no-role' | 'window-closed' | 'conflict' | 'other-address';
export type ConfigTokenCheck = { ok: true; node: Node; fetchesLeft: number } | { ok: false; reason: ConfigDenial; node?: Node; tokenIp?: string };

export type InventoryOptions = {
  autoAssign?: AutoAssignPolicy;
  /** Events kept per MAC; older ones are pruned in the transaction that appends. */
  eventRetention?: number;
  busyTimeoutMs?: number;
  now?: () => Date;
  /** How long an install window stays open once opened (ms). Default 4 hours. */
  installWindowMs?: number;
  /**
   * Settings for a machine booting for the first time, decided by the fleet file's match rules
   * (src/fleet): applied in the transaction that records it, before the auto-assign policy.
   */
  discoveryRule?: DiscoveryRule;
  /** Called with every statement run, values filled in (better-sqlite3's `verbose`); for tests and debugging. Never log it: it carries token hashes. */
  trace?: (sql: string) => void;
};

/** What a fleet match rule gives a new machine: its settings, the fields the file owns, and the event's detail. */
export type DiscoveryRule = (node: Node) => { changes: NodeChanges; fields: string[]; detail: Record<string, unknown> } | undefined;

type Row = {
  mac: string;
  role: string;
  state: string;
  hostname: string | null;
  arch: string | null;
  firmware: string | null;
  uuid: string | null;
  serial: string | null;
  manufacturer: string | null;
  product: string | null;
  last_ip: string | null;
  install_disk: string | null;
  disk_selector: string | null;
  labels: string;
  talos_version: string | null;
  local_boot: string;
  network: string | null;
  config_patch: string | null;
  bootstrap: number;
  power: string | null;
  talos_stage: string | null;
  talos_ready: number | null;
  talos_addresses: string;
  talos_seen: string | null;
  waiting: string | null;
  window_until: string | null;
  window_ip: string | null;
  conflict: string | null;
  fleet_fields: string;
  first_seen: string;
  last_seen: string | null;
  updated_at: string;
};

function toNode(r: Row): Node {
  return {
    mac: r.mac,
    role: r.role as Node['role'],
    state: r.state as BootState,
    hostname: r.hostname,
    arch: r.arch as Node['arch'],
    firmware: r.firmware as Node['firmware'],
    uuid: r.uuid,
    serial: r.serial,
    manufacturer: r.manufacturer,
    product: r.product,
    lastIp: r.last_ip,
    installDisk: r.install_disk,
    diskSelector: r.disk_selector === null ? null : (JSON.parse(r.disk_selector) as Record<string, string>),
    labels: JSON.parse(r.labels) as Record<string, string>,
    talosVersion: r.talos_version,
    localBoot: r.local_boot as Node['localBoot'],
    network: r.network === null ? null : (JSON.parse(r.network) as Node['network']),
    configPatch: r.config_patch,
    bootstrap: r.bootstrap === 1,
    power: r.power === null ? null : (JSON.parse(r.power) as Node['power']),
    talosStage: r.talos_stage,
    talosReady: r.talos_ready === null ? null : r.talos_ready === 1,
    talosAddresses: JSON.parse(r.talos_addresses) as string[],
    talosSeen: r.talos_seen,
    waiting: r.waiting,
    windowUntil: r.window_until,
    windowIp: r.window_ip,
    conflict: r.conflict,
    fleetFields: JSON.parse(r.fleet_fields) as string[],
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
    updatedAt: r.updated_at,
  };
}

/** One event from the node's Talos, with what the pure rules (src/events) make of it. */
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

/** The state a node's role implies when nothing more specific is known. */
function stateForRole(role: Role, current: BootState): BootState {
  if (role === 'unassigned') return 'discovered';
  return current === 'discovered' ? 'assigned' : current;
}

export class Inventory {
  readonly db: Database.Database;
  private autoAssign: AutoAssignPolicy;
  private discoveryRule: DiscoveryRule | undefined;
  private readonly retention: number;
  private readonly now: () => Date;
  private readonly installWindowMs: number;
  /** Prepared once per SQL text: boot requests hit the same few statements over and over. */
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(db: Database.Database, opts: InventoryOptions) {
    this.db = db;
    this.autoAssign = opts.autoAssign ?? { enabled: false, controlplanes: 3 };
    this.discoveryRule = opts.discoveryRule;
    this.retention = opts.eventRetention ?? 1000;
    this.now = opts.now ?? (() => new Date());
    this.installWindowMs = opts.installWindowMs ?? 4 * 3600_000;
  }

  /** Open (or create) the database file and bring its schema up to date. */
  static open(file: string, opts: InventoryOptions = {}): Inventory {
    const db = new Database(file, opts.trace ? { verbose: (sql) => opts.trace!(String(sql)) } : {});
    try {
      db.pragma(`busy_timeout = ${Math.trunc(opts.busyTimeoutMs ?? 5000)}`);
      db.pragma('journal_mode = WAL');
      // WAL with synchronous=NORMAL can lose the last commits on power loss but never corrupts;
      // the inventory must not lose an assignment, so keep FULL.
      db.pragma('synchronous = FULL');
      migrate(db);
    } catch (err) {
      db.close();
      throw err;
    }
    return new Inventory(db, opts);
  }

  /**
   * For diagnostics (`genesis doctor`): read what is there, never migrate or write. A file at an
   * older schema than this Genesis knows is reported rather than upgraded (serve upgrades it).
   */
  static openReadOnly(file: string, opts: InventoryOptions = {}): Inventory {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      db.pragma(`busy_timeout = ${Math.trunc(opts.busyTimeoutMs ?? 5000)}`);
      const current = db.pragma('user_version', { simple: true }) as number;
      if (current > LATEST_SCHEMA) {
        throw new InventoryError('schema_too_new', `inventory ${file} has schema version ${current}, newer than this Genesis knows (${LATEST_SCHEMA}); run a newer Genesis or restore a backup`);
      }
      if (current < LATEST_SCHEMA) {
        throw new InventoryError('schema_too_old', `inventory ${file} has schema version ${current}; genesis serve upgrades it to ${LATEST_SCHEMA} at its next start`);
      }
    } catch (err) {
      db.close();
      throw err;
    }
    return new Inventory(db, opts);
  }

  /** The fleet file sets these when it changes (its defaults and match rules); new machines see them at once. */
  setAutoAssign(policy: AutoAssignPolicy): void {
    this.autoAssign = policy;
  }

  setDiscoveryRule(rule: DiscoveryRule | undefined): void {
    this.discoveryRule = rule;
  }

  close(): void {
    this.db.close();
  }

  /** For readiness probes: the file is open and answers a query. */
  check(): void {
    this.sql('SELECT count(*) FROM nodes').get();
  }

  /** For readiness probes: a real (one-row, durable) write commits. Throws the storage error when it cannot. */
  probeWrite(): void {
    this.write(() => this.sql('INSERT INTO write_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at').run(this.stamp()));
  }

  private stamp(): string {
    return this.now().toISOString();
  }

  private sql(text: string): Database.Statement {
    let st = this.statements.get(text);
    if (!st) {
      st = this.db.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  /**
   * Node changes as they commit, for live views: 'change' with { event, node } (node undefined
   * once deleted). Only this process's writes; another Genesis on the same file is not seen.
   */
  readonly changes = new EventEmitter();
  /** Events written by the running transaction, announced only once it has committed. */
  private pending: Array<Omit<NodeEvent, 'id'>> = [];

  /**
   * Runs `fn`, which may call any writing method, as one transaction: one commit (one fsync)
   * instead of one per call. Changes are announced once it has committed.
   */
  atomically<T>(fn: () => T): T {
    return this.write(fn);
  }

  private write<T>(fn: () => T): T {
    if (this.db.inTransaction) {
      // Inside atomically(): a savepoint. What it wrote is announced by the outer transaction,
      // and forgotten with it if this part is rolled back.
      const mark = this.pending.length;
      try {
        return this.db.transaction(fn)();
      } catch (err) {
        this.pending.length = mark;
        throw err;
      }
    }
    let result: T;
    try {
      result = this.db.transaction(fn).immediate();
    } catch (err) {
      this.pending = [];
      throw err;
    }
    const done = this.pending;
    this.pending = [];
    if (this.changes.listenerCount('change')) for (const event of done) this.changes.emit('change', { event, node: this.get(event.mac) });
    return result;
  }

  private row(mac: string): Row | undefined {
    return this.sql('SELECT * FROM nodes WHERE mac = ?').get(mac) as Row | undefined;
  }

  get(mac: string): Node | undefined {
    const r = this.row(mac);
    return r && toNode(r);
  }

  /**
   * Nodes in the order they were first seen (then by MAC). With `page`: at most `limit` of them,
   * after the node at `after` (the cursor's first-seen time and MAC), so a long fleet is read a page
   * at a time along the `nodes_listing` index.
   */
  list(filter: { role?: Role; state?: BootState } = {}, page?: { limit: number; after?: ListCursor }): Node[] {
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (page?.after) {
      where.push('(first_seen, mac) > (?, ?)');
      args.push(page.after.firstSeen, page.after.mac);
    }
    if (filter.role) {
      where.push('role = ?');
      args.push(filter.role);
    }
    if (filter.state) {
      where.push('state = ?');
      args.push(filter.state);
    }
    const sql = `SELECT * FROM nodes ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY first_seen, mac${page ? ' LIMIT ?' : ''}`;
    if (page) args.push(page.limit);
    return (this.sql(sql).all(...args) as Row[]).map(toNode);
  }

  /** How many machines are in each state and role (only the pairs that have any). */
  countByStateAndRole(): Array<{ state: BootState; role: Role; count: number }> {
    return this.sql('SELECT state, role, count(*) AS count FROM nodes GROUP BY state, role').all() as Array<{ state: BootState; role: Role; count: number }>;
  }

  /** The node that last booted from this IP, if any (to attribute asset downloads). */
  byIp(ip: string): Node | undefined {
    const r = this.sql('SELECT * FROM nodes WHERE last_ip = ? ORDER BY last_seen DESC LIMIT 1').get(ip) as Row | undefined;
    return r && toNode(r);
  }

  /**
   * Whose traffic this is (Talos events, kernel logs): the node that last booted from the
   * address, else the one whose Talos reported it among its addresses (an installed node can
   * come back from its disk with another lease).
   */
  bySource(ip: string): Node | undefined {
    const booted = this.byIp(ip);
    if (booted) return booted;
    const r = this.sql('SELECT nodes.* FROM node_addresses JOIN nodes USING (mac) WHERE node_addresses.ip = ? ORDER BY nodes.last_seen DESC LIMIT 1').get(ip) as Row | undefined;
    return r && toNode(r);
  }

  byHostname(hostname: string): Node | undefined {
    const r = this.sql('SELECT * FROM nodes WHERE hostname = ?').get(hostname) as Row | undefined;
    return r && toNode(r);
  }

  /**
   * Record one Talos event and apply its effect, in one transaction. A resent event (same id)
   * is recognised and changes nothing. Installed: the node's config token is revoked with it.
   */
  applyTalosEvent(mac: string, e: TalosEventRecord): { duplicate: boolean; installed: boolean } {
    return this.write(() => {
      const before = this.row(mac);
      if (!before) throw new InventoryError('not_found', `no node with MAC ${mac}`);
      const fresh = this.sql('INSERT INTO talos_event_ids (mac, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING').run(mac, e.id).changes > 0;
      if (!fresh) return { duplicate: true, installed: false };
      this.keepNewest('talos_event_ids', 'seq', mac, this.retention);
      const at = this.stamp();
      this.sql(
        `UPDATE nodes SET talos_seen = @at, talos_stage = coalesce(@stage, talos_stage), talos_ready = coalesce(@ready, talos_ready),
           talos_addresses = coalesce(@addresses, talos_addresses) WHERE mac = @mac`,
      ).run({
        mac,
        at,
        stage: e.stage ?? null,
        ready: e.ready === undefined ? null : e.ready ? 1 : 0,
        addresses: e.addresses ? JSON.stringify(e.addresses) : null,
      });
      this.event(mac, 'talos-event', 'talos', { id: e.id, ...e.detail });
      const installed = !!e.installed && before.state === 'installing';
      if (installed) {
        this.sql('UPDATE nodes SET state = ?, updated_at = ?, window_until = NULL WHERE mac = ?').run('installed', at, mac);
        this.sql('DELETE FROM config_tokens WHERE mac = ?').run(mac);
        this.event(mac, 'state-changed', 'talos', { from: before.state, to: 'installed', reason: e.installed });
      }
      return { duplicate: false, installed };
    });
  }

  /** Append kernel messages to the node's ring, keeping the newest `keep` lines. */
  appendKernelLog(mac: string, lines: KernelLogLine[], keep: number): void {
    if (!lines.length) return;
    this.write(() => {
      const at = this.stamp();
      const insert = this.sql('INSERT INTO kernel_logs (mac, received_at, talos_time, level, facility, msg, fields) VALUES (?, ?, ?, ?, ?, ?, ?)');
      for (const l of lines) insert.run(mac, at, l.talosTime, l.level, l.facility, l.msg, JSON.stringify(l.fields));
      this.keepNewest('kernel_logs', 'id', mac, keep);
    });
    this.changes.emit('log', { mac, lines: lines.length });
  }

  /**
   * Oldest first: the newest `limit` lines; or, with `after` (a line id), the first `limit` lines
   * after it, so a reader tailing the log pages forward without skipping any.
   */
  kernelLog(mac: string, opts: { after?: number; limit?: number } = {}): StoredKernelLogLine[] {
    const limit = opts.limit ?? 500;
    const rows = (
      opts.after === undefined
        ? this.sql('SELECT * FROM kernel_logs WHERE mac = ? ORDER BY id DESC LIMIT ?').all(mac, limit).reverse()
        : this.sql('SELECT * FROM kernel_logs WHERE mac = ? AND id > ? ORDER BY id LIMIT ?').all(mac, opts.after, limit)
    ) as Array<{
      id: number;
      received_at: string;
      talos_time: string | null;
      level: string | null;
      facility: string | null;
      msg: string;
      fields: string;
    }>;
    return rows.map((r) => ({
      id: r.id,
      receivedAt: r.received_at,
      talosTime: r.talos_time,
      level: r.level,
      facility: r.facility,
      msg: r.msg,
      fields: JSON.parse(r.fields) as Record<string, unknown>,
    }));
  }

  /**
   * A machine asked for its boot script: create it on first sight (applying the auto-assign
   * policy in the same transaction), otherwise refresh what it reports about itself.
   */
  /**
   * Record a boot request, in one transaction with the install-window rules (install-window.ts):
   * a new MAC is created (and auto-assigned by policy) unless the inventory holds `maxNodes`
   * already; a known one has its facts and address updated only when the request may change it.
   * A second address inside the window records a conflict and revokes the config token.
   */
  recordBoot(mac: string, facts: BootFacts, opts: { maxNodes?: number } = {}): BootRecord {
    return this.write(() => {
      const at = this.stamp();
      const existing = this.row(mac);
      if (!existing) {
        const total = (this.sql('SELECT count(*) AS n FROM nodes').get() as { n: number }).n;
        if (opts.maxNodes !== undefined && total >= opts.maxNodes) throw new InventoryError('full', `the inventory holds ${total} machines, its limit (inventory.max_nodes)`);
        const cps = (this.sql("SELECT count(*) AS n FROM nodes WHERE role = 'controlplane'").get() as { n: number }).n;
        // A fleet file's match rule decides before the auto-assign policy does.
        const ruled = this.discoveryRule?.(blankNode(mac, { ...factFields(facts) }));
        const role = ruled ? 'unassigned' : roleForNewMachine(this.autoAssign, cps, mac);
        const state = stateForRole(role, 'discovered');
        // Auto-assigned: its window opens now, bound to the address it was discovered from.
        const window = role === 'unassigned' ? { until: null, ip: null } : { until: this.windowEnd(), ip: facts.ip ?? null };
        this.sql(
          `INSERT INTO nodes (mac, role, state, arch, firmware, uuid, serial, manufacturer, product, last_ip, first_seen, last_seen, updated_at, window_until, window_ip)
           VALUES (@mac, @role, @state, @arch, @firmware, @uuid, @serial, @manufacturer, @product, @ip, @at, @at, @at, @until, @wip)`,
        ).run({ mac, role, state, at, ...factParams(facts), until: window.until, wip: window.ip });
        this.event(mac, 'discovered', 'boot', { ...facts });
        if (role !== 'unassigned') this.event(mac, 'state-changed', 'policy', { from: 'discovered', to: state, role });
        if (ruled) this.update(mac, ruled.changes, FLEET_ACTOR, { create: false, fleet: { fields: ruled.fields, detail: ruled.detail } });
        const node = toNode(this.row(mac)!);
        return { node, created: true, access: bootAccess(node, facts.ip, this.now()) };
      }
      const before = toNode(existing);
      const access = bootAccess(before, facts.ip, this.now());
      if (access.kind === 'conflict') {
        this.holdForConflict(mac, access.addresses, {});
      } else if (mayRecordFacts(access)) {
        this.sql(
          `UPDATE nodes SET arch = coalesce(@arch, arch), firmware = coalesce(@firmware, firmware), uuid = coalesce(@uuid, uuid),
             serial = coalesce(@serial, serial), manufacturer = coalesce(@manufacturer, manufacturer),
             product = coalesce(@product, product), last_ip = coalesce(@ip, last_ip), last_seen = @at,
             window_ip = CASE WHEN @bind THEN @ip ELSE window_ip END
           WHERE mac = @mac`,
        ).run({ mac, at, ...factParams(facts), bind: access.kind === 'bind' ? 1 : 0 });
      }
      // Installed, held or outside its window: an unauthenticated request changes nothing.
      return { node: toNode(this.row(mac)!), created: false, access };
    });
  }

  /**
   * An address seen for a MAC outside the boot script (the proxyDHCP's PXE port): inside an open
   * window it binds an unbound window, and a different address than the bound one is a conflict.
   * Otherwise nothing is written.
   */
  noteBootAddress(mac: string, ip: string): void {
    const node = this.get(mac);
    if (!node) return;
    const access = bootAccess(node, ip, this.now());
    if (access.kind !== 'bind' && access.kind !== 'conflict') return;
    this.write(() => {
      const again = bootAccess(toNode(this.row(mac)!), ip, this.now());
      if (again.kind === 'bind') this.sql('UPDATE nodes SET window_ip = ? WHERE mac = ? AND window_ip IS NULL').run(ip, mac);
      else if (again.kind === 'conflict') this.holdForConflict(mac, again.addresses, { via: 'dhcp' });
    });
  }

  /** Inside a write: record the conflict on the node, revoke its token, and say so in its history. */
  private holdForConflict(mac: string, addresses: [string, string], detail: Record<string, unknown>): void {
    this.sql('UPDATE nodes SET conflict = ? WHERE mac = ?').run(conflictText(addresses), mac);
    this.sql('DELETE FROM config_tokens WHERE mac = ?').run(mac);
    this.event(mac, 'conflict', 'boot', { addresses, ...detail });
  }

  private windowEnd(): string {
    return new Date(this.now().getTime() + this.installWindowMs).toISOString();
  }

  /**
   * The operator says which machine is real: the conflict is cleared and a new window opens,
   * bound to `ip` (or to the next address that asks, when `ip` is null).
   */
  confirmMachine(mac: string, ip: string | null, actor: string): Node {
    return this.write(() => {
      const before = this.row(mac);
      if (!before) throw new InventoryError('not_found', `no node with MAC ${mac}`);
      if (before.role === 'unassigned') throw new InventoryError('conflict', `node ${mac} has no role; assign one first`);
      this.sql('UPDATE nodes SET conflict = NULL, window_until = ?, window_ip = ?, last_ip = coalesce(?, last_ip), updated_at = ? WHERE mac = ?').run(
        this.windowEnd(),
        ip,
        ip,
        this.stamp(),
        mac,
      );
      this.sql('DELETE FROM config_tokens WHERE mac = ?').run(mac);
      this.event(mac, 'conflict-resolved', actor, { was: before.conflict, ip });
      return toNode(this.row(mac)!);
    });
  }

  /**
   * Hold a machine back from installing, with the reason (null: no longer held). Written, with a
   * `boot-waiting` event, only when the reason changes: a waiting machine asks every few seconds.
   */
  setWaiting(mac: string, reason: string | null): void {
    this.write(() => {
      const before = this.row(mac);
      if (!before || before.waiting === reason) return;
      this.sql('UPDATE nodes SET waiting = ? WHERE mac = ?').run(reason, mac);
      this.event(mac, 'boot-waiting', 'boot', { reason });
    });
  }

  /**
   * Create or change a node from the API. `create: false` refuses unknown MACs (PATCH);
   * `create: true` registers a machine before it ever boots (PUT).
   */
  update(
    mac: string,
    requested: NodeChanges,
    actor: string,
    opts: { create: boolean; fleet?: { fields: string[]; detail: Record<string, unknown> } },
  ): { node: Node; created: boolean } {
    // A node installs to one disk: naming a path drops the selector and the other way round.
    const changes: NodeChanges = { ...requested };
    if (changes.installDisk != null) changes.diskSelector ??= null;
    if (changes.diskSelector != null) changes.installDisk ??= null;
    return this.write(() => {
      const at = this.stamp();
      let before = this.row(mac);
      const created = !before;
      if (!before) {
        if (!opts.create) throw new InventoryError('not_found', `no node with MAC ${mac}`);
        this.sql('INSERT INTO nodes (mac, first_seen, updated_at) VALUES (?, ?, ?)').run(mac, at, at);
        before = this.row(mac)!;
      }
      if (changes.hostname) {
        const clash = this.sql('SELECT mac FROM nodes WHERE hostname = ? AND mac != ?').get(changes.hostname, mac) as { mac: string } | undefined;
        if (clash) throw new InventoryError('conflict', `hostname ${changes.hostname} is already used by ${clash.mac}`);
      }
      const role = changes.role ?? (before.role as Role);
      const state = stateForRole(role, before.state as BootState);
      const set = (col: string, v: unknown) => (v === undefined ? `${col} = ${col}` : `${col} = @${col}`);
      this.db
        .prepare(
          `UPDATE nodes SET role = @role, state = @state, ${set('hostname', changes.hostname)}, ${set('install_disk', changes.installDisk)},
             ${set('disk_selector', changes.diskSelector)}, ${set('labels', changes.labels)}, ${set('talos_version', changes.talosVersion)},
             ${set('local_boot', changes.localBoot)}, ${set('network', changes.network)}, ${set('config_patch', changes.configPatch)},
             ${set('bootstrap', changes.bootstrap)}, ${set('power', changes.power)}, updated_at = @at
           WHERE mac = @mac`,
        )
        .run({
          mac,
          role,
          state,
          at,
          hostname: changes.hostname ?? null,
          install_disk: changes.installDisk ?? null,
          disk_selector: changes.diskSelector ? JSON.stringify(changes.diskSelector) : null,
          labels: JSON.stringify(changes.labels ?? {}),
          talos_version: changes.talosVersion ?? null,
          local_boot: changes.localBoot ?? 'exit',
          network: changes.network ? JSON.stringify(changes.network) : null,
          config_patch: changes.configPatch ?? null,
          bootstrap: changes.bootstrap ? 1 : 0,
          power: changes.power ? JSON.stringify(changes.power) : null,
        });
      // A node without a role must not be able to fetch a config with a token issued before.
      if (role === 'unassigned') {
        this.sql('DELETE FROM config_tokens WHERE mac = ?').run(mac);
        this.sql('UPDATE nodes SET window_until = NULL, window_ip = NULL, conflict = NULL WHERE mac = ?').run(mac);
      } else if (before.role === 'unassigned' && state !== 'installed') {
        // Assigning opens the install window; the next address that asks for the script is bound to it.
        this.sql('UPDATE nodes SET window_until = ?, window_ip = NULL, conflict = NULL WHERE mac = ?').run(this.windowEnd(), mac);
      }
      if (opts.fleet) {
        // The fleet file: its fields are recorded as owned; an adoption that changes no value is no event.
        this.sql('UPDATE nodes SET fleet_fields = ? WHERE mac = ?').run(JSON.stringify([...opts.fleet.fields].sort()), mac);
        if (created || Object.keys(requested).length) this.event(mac, 'fleet-change', actor, { created, changes: redactChanges(requested), ...opts.fleet.detail });
      } else {
        this.event(mac, 'api-change', actor, { created, changes: redactChanges(requested) });
      }
      if (state !== before.state) this.event(mac, 'state-changed', actor, { from: before.state, to: state });
      return { node: toNode(this.row(mac)!), created };
    });
  }

  /** Move a node to another boot state (reinstall, installed, installing), with an event. */
  setState(mac: string, to: BootState, actor: string, detail: Record<string, unknown> = {}): Node {
    return this.write(() => {
      const before = this.row(mac);
      if (!before) throw new InventoryError('not_found', `no node with MAC ${mac}`);
      if (before.role === 'unassigned' && to !== 'discovered') {
        throw new InventoryError('conflict', `node ${mac} has no role; assign one first`);
      }
      if (before.state !== to) {
        this.sql('UPDATE nodes SET state = ?, updated_at = ? WHERE mac = ?').run(to, this.stamp(), mac);
        this.event(mac, 'state-changed', actor, { from: before.state, to, ...detail });
      }
      // Installed: the config has done its job; nobody may fetch it with the old token, and the window closes.
      if (to === 'installed') {
        this.sql('DELETE FROM config_tokens WHERE mac = ?').run(mac);
        this.sql('UPDATE nodes SET window_until = NULL WHERE mac = ?').run(mac);
      }
      // A reinstall is the operator opening a new window (and dismissing any conflict).
      if (to === 'reinstall-requested') this.sql('UPDATE nodes SET window_until = ?, window_ip = NULL, conflict = NULL WHERE mac = ?').run(this.windowEnd(), mac);
      return toNode(this.row(mac)!);
    });
  }

  delete(mac: string, actor: string): boolean {
    return this.write(() => {
      const gone = this.sql('DELETE FROM nodes WHERE mac = ?').run(mac).changes > 0;
      this.sql('DELETE FROM config_tokens WHERE mac = ?').run(mac);
      // A machine that comes back is a new story: its old kernel log and event ids go too.
      this.sql('DELETE FROM kernel_logs WHERE mac = ?').run(mac);
      this.sql('DELETE FROM talos_event_ids WHERE mac = ?').run(mac);
      if (gone) this.event(mac, 'deleted', actor, {});
      return gone;
    });
  }

  /** Store a new config token for a node (its hash only), bound to the address its script went to, replacing any earlier one. */
  issueConfigToken(mac: string, tokenSha256: string, ttlMs: number, fetches: number, ip: string | null = null): { expiresAt: string } {
    return this.write(() => {
      const now = this.now();
      const expiresAt = new Date(now.getTime() + ttlMs).toISOString();
      this.sql(
        `INSERT INTO config_tokens (mac, token_sha256, issued_at, expires_at, fetches_left, ip) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (mac) DO UPDATE SET token_sha256 = excluded.token_sha256, issued_at = excluded.issued_at,
           expires_at = excluded.expires_at, fetches_left = excluded.fetches_left, ip = excluded.ip`,
      ).run(mac, tokenSha256, now.toISOString(), expiresAt, fetches, ip);
      return { expiresAt };
    });
  }

  /** May this token fetch this node's config now? Reads only; `consumeConfigToken` spends a fetch. */
  checkConfigToken(mac: string, tokenSha256: string, ip?: string): ConfigTokenCheck {
    const node = this.get(mac);
    if (!node) return { ok: false, reason: 'unknown-node' };
    const row = this.sql('SELECT * FROM config_tokens WHERE mac = ?').get(mac) as TokenRow | undefined;
    if (!row) return { ok: false, reason: 'no-token', node };
    const a = Buffer.from(row.token_sha256, 'hex');
    const b = Buffer.from(tokenSha256, 'hex');
    if (a.length !== b.length || !timingSafeEqual(a, b)) return { ok: false, reason: 'wrong-token', node };
    if (Date.parse(row.expires_at) <= this.now().getTime()) return { ok: false, reason: 'expired', node };
    if (row.fetches_left <= 0) return { ok: false, reason: 'used-up', node };
    if (node.role === 'unassigned') return { ok: false, reason: 'no-role', node };
    if (node.conflict) return { ok: false, reason: 'conflict', node };
    if (!windowOpen(node, this.now())) return { ok: false, reason: 'window-closed', node };
    if (!tokenAddressMatches(row.ip, ip)) return { ok: false, reason: 'other-address', node, tokenIp: row.ip ?? undefined };
    return { ok: true, node, fetchesLeft: row.fetches_left };
  }

  /**
   * A valid token used from another address than its script went to: someone copied it (it is
   * in plain HTTP). Both claimants are held until the operator confirms the real machine.
   */
  recordTokenConflict(mac: string, addresses: [string, string]): void {
    this.write(() => {
      const before = this.row(mac);
      if (!before || before.conflict) return;
      this.holdForConflict(mac, addresses, { via: 'config-token' });
    });
  }

  /**
   * Spend one fetch of the token and record the config as served, in one transaction: the check
   * is repeated inside it, so two simultaneous fetches cannot both spend the last one. The node
   * moves to `installing` (unless it already is, or is installed).
   */
  consumeConfigToken(mac: string, tokenSha256: string, detail: Record<string, unknown>, ip?: string): ConfigTokenCheck {
    return this.write(() => {
      const check = this.checkConfigToken(mac, tokenSha256, ip);
      if (!check.ok) return check;
      this.sql('UPDATE config_tokens SET fetches_left = fetches_left - 1 WHERE mac = ?').run(mac);
      const before = check.node.state;
      this.event(mac, 'config-served', 'boot', { ...detail, fetchesLeft: check.fetchesLeft - 1 });
      if (before !== 'installing' && before !== 'installed') {
        this.sql('UPDATE nodes SET state = ?, updated_at = ? WHERE mac = ?').run('installing', this.stamp(), mac);
        this.event(mac, 'state-changed', 'boot', { from: before, to: 'installing' });
      }
      return { ok: true, node: toNode(this.row(mac)!), fetchesLeft: check.fetchesLeft - 1 };
    });
  }

  /** Append an event on its own (script served, asset fetched); same retention as all others. */
  record(mac: string, type: EventType, actor: string, detail: Record<string, unknown>): void {
    this.write(() => this.event(mac, type, actor, detail));
  }

  events(mac: string, opts: { limit?: number; before?: number } = {}): NodeEvent[] {
    const rows = this.sql('SELECT * FROM node_events WHERE mac = ? AND id < ? ORDER BY id DESC LIMIT ?').all(
      mac,
      opts.before ?? Number.MAX_SAFE_INTEGER,
      opts.limit ?? 100,
    ) as Array<Omit<NodeEvent, 'detail'> & { detail: string }>;
    return rows.map((r) => ({ ...r, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  }

  private event(mac: string, type: EventType, actor: string, detail: Record<string, unknown>): void {
    const at = this.stamp();
    // What machines send (actor boot/talos) is noise that floods can produce; everything else is
    // the operator's or Genesis's own doing, kept apart and never pruned to make room for noise.
    const audit = actor === 'boot' || actor === 'talos' ? 0 : 1;
    this.sql('INSERT INTO node_events (mac, at, type, actor, detail, audit) VALUES (?, ?, ?, ?, ?, ?)').run(mac, at, type, actor, JSON.stringify(detail), audit);
    this.pending.push({ mac, at, type, actor, detail });
    if (!audit) this.keepNewest('node_events', 'id', mac, this.retention, 'audit = 0');
  }

  /** The per-MAC rings (events, event ids seen, kernel log): drop all but the newest `keep` rows (of those `where` selects). */
  private keepNewest(table: 'node_events' | 'talos_event_ids' | 'kernel_logs', order: 'id' | 'seq', mac: string, keep: number, where = '1'): void {
    this.sql(
      `DELETE FROM ${table} WHERE mac = @mac AND ${where} AND ${order} <= (SELECT ${order} FROM ${table} WHERE mac = @mac AND ${where} ORDER BY ${order} DESC LIMIT 1 OFFSET @keep)`,
    ).run({ mac, keep });
  }
}

/** What an api-change event keeps of a change: a config patch only as its digest and size (it may carry secrets). */
function redactChanges(c: NodeChanges): Record<string, unknown> {
  const out: Record<string, unknown> = { ...c };
  if (typeof c.configPatch === 'string') out['configPatch'] = { sha256: createHash('sha256').update(c.configPatch).digest('hex'), bytes: Buffer.byteLength(c.configPatch) };
  return out;
}

/** The facts as Node fields, for the fleet's match rules. */
function factFields(f: BootFacts): Partial<Node> {
  return { arch: f.arch ?? null, firmware: f.firmware ?? null, uuid: f.uuid ?? null, serial: f.serial ?? null, manufacturer: f.manufacturer ?? null, product: f.product ?? null, lastIp: f.ip ?? null };
}

/** Who changes a node when the fleet file does (events, the dashboard's history). */
export const FLEET_ACTOR = 'fleet-file';

function factParams(f: BootFacts) {
  return {
    arch: f.arch ?? null,
    firmware: f.firmware ?? null,
    uuid: f.uuid ?? null,
    serial: f.serial ?? null,
    manufacturer: f.manufacturer ?? null,
    product: f.product ?? null,
    ip: f.ip ?? null,
  };
}

function migrate(db: Database.Database): void {
  // The version is read inside the write transaction: two processes opening a fresh file at once
  // must not both run step 1.
  db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > LATEST_SCHEMA) {
      throw new InventoryError(
        'schema_too_new',
        `inventory ${db.name} has schema version ${current}, newer than this Genesis knows (${LATEST_SCHEMA}); run a newer Genesis or restore a backup`,
      );
    }
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }
  }).immediate();
}
