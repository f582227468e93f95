// The machines themselves: one row per MAC, read as domain `Node`s. This file maps rows and runs
// the statements; which values a change may write is decided by the callers' rules
// (node-lifecycle.ts, install-window.ts), inside the transaction store.ts opens.

import type { BootFacts, BootState, Node, NodeChanges, Role } from '../domain/node.ts';
import type { InventoryDatabase } from './database.ts';
import type { LifecycleFields } from './node-lifecycle.ts';

/** Where a page of the node list ends: the last node's first-seen time and MAC. */
export type ListCursor = { firstSeen: string; mac: string };

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
  profile: string | null;
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
    profile: r.profile,
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

export class NodeStore {
  private readonly db: InventoryDatabase;
  constructor(db: InventoryDatabase) {
    this.db = db;
  }

  get(mac: string): Node | undefined {
    const r = this.db.sql('SELECT * FROM nodes WHERE mac = ?').get(mac) as Row | undefined;
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
      where.push('role = +?');
      args.push(filter.role);
    }
    if (filter.state) {
      where.push('state = +?');
      args.push(filter.state);
    }
    const sql = `SELECT * FROM nodes ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY first_seen, mac${page ? ' LIMIT +?' : ''}`;
    if (page) args.push(page.limit);
    return (this.db.sql(sql).all(...args) as Row[]).map(toNode);
  }

  count(filter: { role?: Role } = {}): number {
    const row = filter.role ? this.db.sql('SELECT count(*) AS n FROM nodes WHERE role = ?').get(filter.role) : this.db.sql('SELECT count(*) AS n FROM nodes').get();
    return (row as { n: number }).n;
  }

  countByStateAndRole(): Array<{ state: BootState; role: Role; count: number }> {
    return this.db.sql('SELECT state, role, count(*) AS count FROM nodes GROUP BY state, role').all() as Array<{ state: BootState; role: Role; count: number }>;
  }

  byIp(ip: string): Node | undefined {
    const r = this.db.sql('SELECT * FROM nodes WHERE last_ip = +? ORDER BY last_seen DESC LIMIT 1').get(ip) as Row | undefined;
    return r && toNode(r);
  }

  /** The MAC alone of the node that last booted from this address: no node record is built. */
  macByIp(ip: string): string | undefined {
    return (this.db.sql('SELECT mac FROM nodes WHERE last_ip = +? ORDER BY last_seen DESC LIMIT 1').get(ip) as { mac: string } | undefined)?.mac;
  }

  has(mac: string): boolean {
    return this.db.sql('SELECT 1 FROM nodes WHERE mac = ?').get(mac) !== undefined;
  }

  /** The node whose Talos reported this address among its own. */
  byTalosAddress(ip: string): Node | undefined {
    const r = this.db.sql('SELECT nodes.* FROM node_addresses JOIN nodes USING (mac) WHERE node_addresses.ip = +? ORDER BY nodes.last_seen DESC LIMIT 1').get(ip) as Row | undefined;
    return r && toNode(r);
  }

  byHostname(hostname: string): Node | undefined {
    const r = this.db.sql('SELECT * FROM nodes WHERE hostname = ?').get(hostname) as Row | undefined;
    return r && toNode(r);
  }

  /** The MAC of another machine holding this host name. */
  hostnameHolder(hostname: string, except: string): string | undefined {
    return (this.db.sql('SELECT mac FROM nodes WHERE hostname = ? AND mac != ?').get(hostname, except) as { mac: string } | undefined)?.mac;
  }

  /** Inside a write: a machine seen booting for the first time, with its facts and lifecycle fields. */
  insertSeen(mac: string, at: string, facts: BootFacts, life: LifecycleFields): void {
    this.db
      .sql(
        `INSERT INTO nodes (mac, role, state, arch, firmware, uuid, serial, manufacturer, product, last_ip, first_seen, last_seen, updated_at, window_until, window_ip)
         VALUES (@mac, @role, @state, @arch, @firmware, @uuid, @serial, @manufacturer, @product, @ip, @at, @at, @at, @until, @wip)`,
      )
      .run({ mac, role: life.role, state: life.state, at, ...factParams(facts), until: life.windowUntil, wip: life.windowIp });
  }

  /** Inside a write: a machine registered before it boots (all defaults). */
  insertBlank(mac: string, at: string): void {
    this.db.sql('INSERT INTO nodes (mac, first_seen, updated_at) VALUES (?, ?, ?)').run(mac, at, at);
  }

  /**
   * Inside a write: what a booting machine reports about itself; `bindIp` also binds its window to
   * the address. The node as it now is (RETURNING: the boot path reads no row twice).
   */
  recordFacts(mac: string, at: string, facts: BootFacts, bindIp: boolean): Node | undefined {
    const r = this.db
      .sql(
        `UPDATE nodes SET arch = coalesce(@arch, arch), firmware = coalesce(@firmware, firmware), uuid = coalesce(@uuid, uuid),
           serial = coalesce(@serial, serial), manufacturer = coalesce(@manufacturer, manufacturer),
           product = coalesce(@product, product), last_ip = coalesce(@ip, last_ip), last_seen = @at,
           window_ip = CASE WHEN @bind THEN @ip ELSE window_ip END
         WHERE mac = @mac RETURNING *`,
      )
      .get({ mac, at, ...factParams(facts), bind: bindIp ? 1 : 0 }) as Row | undefined;
    return r && toNode(r);
  }

  /** Inside a write: bind an open, unbound window to the address. */
  bindWindow(mac: string, ip: string): void {
    this.db.sql('UPDATE nodes SET window_ip = ? WHERE mac = ? AND window_ip IS NULL').run(ip, mac);
  }

  /** Inside a write: the lifecycle fields as the rules decided them; `updatedAt` when the state changed. */
  writeLifecycle(mac: string, life: LifecycleFields, updatedAt: string | undefined): void {
    this.db
      .sql('UPDATE nodes SET role = @role, state = @state, window_until = @until, window_ip = @wip, conflict = @conflict, updated_at = coalesce(@at, updated_at) WHERE mac = @mac')
      .run({ mac, role: life.role, state: life.state, until: life.windowUntil, wip: life.windowIp, conflict: life.conflict, at: updatedAt ?? null });
  }

  /** Inside a write: the operator's settings; absent fields keep their value, null clears. */
  writeSettings(mac: string, changes: NodeChanges, at: string): void {
    const set = (col: string, v: unknown) => (v === undefined ? `${col} = ${col}` : `${col} = @${col}`);
    // The text varies with which fields are set: prepared per shape, and the shapes are few.
    this.db
      .sql(
        `UPDATE nodes SET ${set('hostname', changes.hostname)}, ${set('install_disk', changes.installDisk)},
           ${set('disk_selector', changes.diskSelector)}, ${set('labels', changes.labels)}, ${set('talos_version', changes.talosVersion)}, ${set('profile', changes.profile)},
           ${set('local_boot', changes.localBoot)}, ${set('network', changes.network)}, ${set('config_patch', changes.configPatch)},
           ${set('bootstrap', changes.bootstrap)}, ${set('power', changes.power)}, updated_at = @at
         WHERE mac = @mac`,
      )
      .run({
        mac,
        at,
        hostname: changes.hostname ?? null,
        install_disk: changes.installDisk ?? null,
        disk_selector: changes.diskSelector ? JSON.stringify(changes.diskSelector) : null,
        labels: JSON.stringify(changes.labels ?? {}),
        talos_version: changes.talosVersion ?? null,
        profile: changes.profile ?? null,
        local_boot: changes.localBoot ?? 'exit',
        network: changes.network ? JSON.stringify(changes.network) : null,
        config_patch: changes.configPatch ?? null,
        bootstrap: changes.bootstrap ? 1 : 0,
        power: changes.power ? JSON.stringify(changes.power) : null,
      });
  }

  /** Inside a write: the settings the fleet file owns. */
  writeFleetFields(mac: string, fields: string[]): void {
    this.db.sql('UPDATE nodes SET fleet_fields = ? WHERE mac = ?').run(JSON.stringify([...fields].sort()), mac);
  }

  /** Inside a write. */
  writeWaiting(mac: string, reason: string | null): void {
    this.db.sql('UPDATE nodes SET waiting = ? WHERE mac = ?').run(reason, mac);
  }

  /** Inside a write: the operator confirmed the machine, at this address (null: the next to ask). */
  writeConfirmed(mac: string, ip: string | null, at: string): void {
    this.db.sql('UPDATE nodes SET last_ip = coalesce(?, last_ip), updated_at = ? WHERE mac = ?').run(ip, at, mac);
  }

  /** Inside a write: what its Talos last said (absent: unchanged). */
  writeTalosReport(mac: string, at: string, report: { stage?: string; ready?: boolean; addresses?: string[] }): void {
    this.db
      .sql(
        `UPDATE nodes SET talos_seen = @at, talos_stage = coalesce(@stage, talos_stage), talos_ready = coalesce(@ready, talos_ready),
           talos_addresses = coalesce(@addresses, talos_addresses) WHERE mac = @mac`,
      )
      .run({
        mac,
        at,
        stage: report.stage ?? null,
        ready: report.ready === undefined ? null : report.ready ? 1 : 0,
        addresses: report.addresses ? JSON.stringify(report.addresses) : null,
      });
  }

  /** Inside a write: true when there was such a machine. */
  remove(mac: string): boolean {
    return this.db.sql('DELETE FROM nodes WHERE mac = ?').run(mac).changes > 0;
  }
}

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
