// The inventory: the machines, their config tokens, their history and kernel logs, in one SQLite
// file (database.ts). This class is the one place that applies the rules (node-lifecycle.ts for
// state, window and token; install-window.ts for what a boot request may do) to the stores beside
// it, each call in one transaction. Consumers depend on the narrow interfaces in ports.ts, not on
// this class; only the wiring (app.ts, the CLI's local reads) and the tests construct it.

import { createHash, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { blankNode, type BootFacts, type BootState, type EventType, type KernelLogLine, type Node, type NodeChanges, type NodeEvent, type Role, type StoredKernelLogLine } from '../domain/node.ts';
import { ConfigTokenStore, type ConfigTokenRow } from './config-token-store.ts';
import { DB_FILE, InventoryDatabase, type DatabaseOptions } from './database.ts';
import { InventoryError } from './errors.ts';
import { EventLog } from './event-log.ts';
import { bootAccess, mayRecordFacts, tokenAddressMatches, windowOpen } from './install-window.ts';
import { KernelLogStore } from './kernel-log-store.ts';
import { applyLifecycle, holdLifted, UNSEEN, type LifecycleEvent, type LifecycleFields } from './node-lifecycle.ts';
import { NodeStore, type ListCursor } from './node-store.ts';
import { roleForNewMachine, type AutoAssignPolicy } from './policy.ts';
import { FLEET_ACTOR, type BootRecord, type ConfigDenial, type ConfigTokenCheck, type DiscoveryRule, type InventoryPorts, type TalosEventRecord } from './ports.ts';

// For the wiring and the local readers, which open the file: its name and the errors opening it raises.
export { DB_FILE, InventoryError };

export type InventoryOptions = DatabaseOptions & {
  autoAssign?: AutoAssignPolicy;
  /** Events kept per MAC; older ones are pruned in the transaction that appends. */
  eventRetention?: number;
  now?: () => Date;
  /** How long an install window stays open once opened (ms). Default 4 hours. */
  installWindowMs?: number;
  /**
   * Settings for a machine booting for the first time, decided by the fleet file's match rules
   * (src/fleet): applied in the transaction that records it, before the auto-assign policy.
   */
  discoveryRule?: DiscoveryRule;
};

type Announced = Omit<NodeEvent, 'id'>;

export class Inventory implements InventoryPorts {
  private readonly database: InventoryDatabase<Announced>;
  private readonly nodes: NodeStore;
  private readonly tokens: ConfigTokenStore;
  private readonly history: EventLog;
  private readonly kernelLogs: KernelLogStore;
  private autoAssign: AutoAssignPolicy;
  private discoveryRule: DiscoveryRule | undefined;
  private readonly now: () => Date;
  private readonly installWindowMs: number;

  /**
   * Node changes as they commit, for live views: 'change' with { event, node } (node undefined
   * once deleted), and 'log' with { mac, lines }. Only this process's writes; another Genesis on
   * the same file is not seen.
   */
  readonly changes = new EventEmitter();

  /** Over an open database: the wiring shares it with the bootstrap lock's store. */
  constructor(database: InventoryDatabase, opts: Omit<InventoryOptions, keyof DatabaseOptions> = {}) {
    this.database = database as InventoryDatabase<Announced>;
    this.nodes = new NodeStore(database);
    this.tokens = new ConfigTokenStore(database);
    this.history = new EventLog(this.database, opts.eventRetention ?? 1000);
    this.kernelLogs = new KernelLogStore(database);
    this.autoAssign = opts.autoAssign ?? { enabled: false, controlplanes: 3 };
    this.discoveryRule = opts.discoveryRule;
    this.now = opts.now ?? (() => new Date());
    this.installWindowMs = opts.installWindowMs ?? 4 * 3600_000;
    this.database.onCommit = (done) => {
      if (!this.changes.listenerCount('change')) return;
      for (const event of done) this.changes.emit('change', { event, node: this.nodes.get(event.mac) });
    };
  }

  /** Open (or create) the file and bring its schema up to date (`genesis serve`). */
  static open(file: string, opts: InventoryOptions = {}): Inventory {
    return new Inventory(InventoryDatabase.open(file, opts), opts);
  }

  /** For diagnostics and local commands: read what is there, never migrate or write. */
  static openReadOnly(file: string, opts: InventoryOptions = {}): Inventory {
    return new Inventory(InventoryDatabase.openReadOnly(file, opts), opts);
  }

  /** The fleet file sets these when it changes (its defaults and match rules); new machines see them at once. */
  setAutoAssign(policy: AutoAssignPolicy): void {
    this.autoAssign = policy;
  }

  setDiscoveryRule(rule: DiscoveryRule | undefined): void {
    this.discoveryRule = rule;
  }

  close(): void {
    this.database.close();
  }

  /** For readiness probes: the file is open and answers a query. */
  check(): void {
    this.database.read(() => this.nodes.count());
  }

  /** For readiness probes: a real (one-row, durable) write commits. Throws the storage error when it cannot. */
  probeWrite(): void {
    this.database.write(() => this.database.sql('INSERT INTO write_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at').run(this.stamp()));
  }

  private stamp(): string {
    return this.now().toISOString();
  }

  private windowEnd(): string {
    return new Date(this.now().getTime() + this.installWindowMs).toISOString();
  }

  /**
   * Runs `fn`, which may call any writing method, as one transaction: one commit (one fsync)
   * instead of one per call. Changes are announced once it has committed.
   */
  atomically<T>(fn: () => T): T {
    return this.database.write(fn);
  }

  /** `fn` as one part of a commit shared with the other requests of this turn of the event loop (see InventoryDatabase.writeShared). */
  atomicallyShared<T>(fn: () => T): Promise<T> {
    return this.database.writeShared(fn);
  }

  get(mac: string): Node | undefined {
    return this.database.read(() => this.nodes.get(mac));
  }

  list(filter: { role?: Role; state?: BootState } = {}, page?: { limit: number; after?: ListCursor }): Node[] {
    return this.database.read(() => this.nodes.list(filter, page));
  }

  /** How many machines are in each state and role (only the pairs that have any). */
  countByStateAndRole(): Array<{ state: BootState; role: Role; count: number }> {
    return this.database.read(() => this.nodes.countByStateAndRole());
  }

  /** The node that last booted from this IP, if any (to attribute asset downloads). */
  byIp(ip: string): Node | undefined {
    return this.database.read(() => this.nodes.byIp(ip));
  }

  /**
   * Whose traffic this is (Talos events, kernel logs): the node that last booted from the
   * address, else the one whose Talos reported it among its addresses (an installed node can
   * come back from its disk with another lease).
   */
  bySource(ip: string): Node | undefined {
    return this.database.read(() => this.nodes.byIp(ip) ?? this.nodes.byTalosAddress(ip));
  }

  byHostname(hostname: string): Node | undefined {
    return this.database.read(() => this.nodes.byHostname(hostname));
  }

  /**
   * Inside a write: apply one lifecycle rule to the node as read in this transaction, writing what
   * it changes (the token revoked with it) and a `state-changed` event when the state moved.
   */
  private transition(before: Node, event: LifecycleEvent, actor: string, detail: Record<string, unknown> = {}): Node {
    const outcome = applyLifecycle(before, event, { windowEnd: this.windowEnd() });
    if (!outcome.ok) throw new InventoryError('conflict', `node ${before.mac} has no role; assign one first`);
    const next = outcome.next;
    const moved = next.state !== before.state;
    const at = this.stamp();
    if (lifecycleDiffers(before, next)) this.nodes.writeLifecycle(before.mac, next, moved ? at : undefined);
    if (outcome.revokeToken) this.tokens.revoke(before.mac);
    // A conflict settled by another change than a confirm (which records its own, with the address):
    // the audit trail says it went, and by whose change, before the change itself.
    if (before.conflict !== null && next.conflict === null && event.type !== 'machine-confirmed') this.history.append(before.mac, at, 'conflict-resolved', actor, { was: before.conflict, by: event.type });
    if (moved) this.history.append(before.mac, at, 'state-changed', actor, { from: before.state, to: next.state, ...detail });
    const lifted = holdLifted(before, next, this.now());
    if (lifted) {
      this.nodes.writeWaiting(before.mac, null);
      this.history.append(before.mac, at, 'boot-waiting', actor, { reason: null });
    }
    // The row as writeLifecycle left it: no read back.
    return { ...before, ...next, ...(lifted ? { waiting: null } : {}), updatedAt: moved ? at : before.updatedAt };
  }

  private existing(mac: string): Node {
    const node = this.nodes.get(mac);
    if (!node) throw new InventoryError('not_found', `no node with MAC ${mac}`);
    return node;
  }

  /**
   * Record one Talos event and apply its effect, in one transaction. A resent event (same id)
   * is recognised and changes nothing. Installed: the node's config token is revoked with it.
   */
  applyTalosEvent(mac: string, e: TalosEventRecord): { duplicate: boolean; installed: boolean } {
    return this.database.write(() => {
      const before = this.existing(mac);
      if (!this.history.firstSight(mac, e.id)) return { duplicate: true, installed: false };
      this.nodes.writeTalosReport(mac, this.stamp(), e);
      this.history.append(mac, this.stamp(), 'talos-event', 'talos', { id: e.id, ...e.detail });
      if (!e.installed) return { duplicate: false, installed: false };
      const after = this.transition(before, { type: 'install-reported' }, 'talos', { reason: e.installed });
      return { duplicate: false, installed: after.state === 'installed' && before.state !== 'installed' };
    });
  }

  /** Append kernel messages to the node's ring, keeping the newest `keep` lines. */
  appendKernelLog(mac: string, lines: KernelLogLine[], keep: number): void {
    if (!lines.length) return;
    this.database.write(() => this.kernelLogs.append(mac, this.stamp(), lines, keep));
    this.changes.emit('log', { mac, lines: lines.length });
  }

  kernelLog(mac: string, opts: { after?: number; limit?: number } = {}): StoredKernelLogLine[] {
    return this.database.read(() => this.kernelLogs.read(mac, opts));
  }

  /**
   * Record a boot request, in one transaction with the install-window rules (install-window.ts):
   * a new MAC is created (and auto-assigned by policy) unless the inventory holds `maxNodes`
   * already; a known one has its facts and address updated only when the request may change it.
   * A second address inside the window records a conflict and revokes the config token.
   */
  recordBoot(mac: string, facts: BootFacts, opts: { maxNodes?: number } = {}): BootRecord {
    return this.database.write(() => {
      const at = this.stamp();
      const before = this.nodes.get(mac);
      if (!before) {
        const total = this.nodes.count();
        if (opts.maxNodes !== undefined && total >= opts.maxNodes) throw new InventoryError('full', `the inventory holds ${total} machines, its limit (inventory.max_nodes)`);
        // A fleet file's match rule decides before the auto-assign policy does.
        const ruled = this.discoveryRule?.(blankNode(mac, { ...factFields(facts) }));
        const role = ruled ? 'unassigned' : roleForNewMachine(this.autoAssign, this.nodes.count({ role: 'controlplane' }), mac);
        const outcome = applyLifecycle(UNSEEN, { type: 'discovered', role, ip: facts.ip ?? null }, { windowEnd: this.windowEnd() });
        const life = outcome.ok ? outcome.next : UNSEEN;
        this.nodes.insertSeen(mac, at, facts, life);
        this.history.append(mac, at, 'discovered', 'boot', { ...facts });
        if (life.state !== UNSEEN.state) this.history.append(mac, at, 'state-changed', 'policy', { from: UNSEEN.state, to: life.state, role });
        if (ruled) this.update(mac, ruled.changes, FLEET_ACTOR, { create: false, fleet: { fields: ruled.fields, detail: ruled.detail } });
        const node = this.existing(mac);
        return { node, created: true, access: bootAccess(node, facts.ip, this.now()) };
      }
      const access = bootAccess(before, facts.ip, this.now());
      if (access.kind === 'conflict') {
        this.holdForConflict(before, access.addresses, {});
        return { node: this.existing(mac), created: false, access };
      }
      if (mayRecordFacts(access)) return { node: this.nodes.recordFacts(mac, at, facts, access.kind === 'bind') ?? this.existing(mac), created: false, access };
      // Installed, held or outside its window: an unauthenticated request changes nothing.
      return { node: before, created: false, access };
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
    this.database.write(() => {
      const now = this.existing(mac);
      const again = bootAccess(now, ip, this.now());
      if (again.kind === 'bind') this.nodes.bindWindow(mac, ip);
      else if (again.kind === 'conflict') this.holdForConflict(now, again.addresses, { via: 'dhcp' });
    });
  }

  /**
   * Inside a write: record the conflict on the node (its token goes with it), and say so in its
   * history; unless the rules raise none (a machine installed since its token was checked).
   */
  private holdForConflict(node: Node, addresses: [string, string], detail: Record<string, unknown>): void {
    if (this.transition(node, { type: 'address-conflict', addresses }, 'boot').conflict === null) return;
    this.history.append(node.mac, this.stamp(), 'conflict', 'boot', { addresses, ...detail });
  }

  /**
   * The operator says which machine is real: the conflict is cleared and a new window opens,
   * bound to `ip` (or to the next address that asks, when `ip` is null); an installed machine gets
   * no window (node-lifecycle.ts). The conflict's hold goes with it (holdLifted).
   */
  confirmMachine(mac: string, ip: string | null, actor: string): Node {
    return this.database.write(() => {
      const before = this.existing(mac);
      // The cause before its effects in the history (a refused transition rolls it all back).
      this.history.append(mac, this.stamp(), 'conflict-resolved', actor, { was: before.conflict, ip });
      this.transition(before, { type: 'machine-confirmed', ip }, actor);
      this.nodes.writeConfirmed(mac, ip, this.stamp());
      return this.existing(mac);
    });
  }

  /**
   * Hold a machine back from installing, with the reason (null: no longer held). Written, with a
   * `boot-waiting` event, only when the reason changes: a waiting machine asks every few seconds.
   */
  setWaiting(mac: string, reason: string | null): void {
    this.database.write(() => {
      const before = this.nodes.get(mac);
      if (!before || before.waiting === reason) return;
      this.nodes.writeWaiting(mac, reason);
      this.history.append(mac, this.stamp(), 'boot-waiting', 'boot', { reason });
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
    return this.database.write(() => {
      const at = this.stamp();
      let before = this.nodes.get(mac);
      const created = !before;
      if (!before) {
        if (!opts.create) throw new InventoryError('not_found', `no node with MAC ${mac}`);
        this.nodes.insertBlank(mac, at);
        before = this.existing(mac);
      }
      if (changes.hostname) {
        const holder = this.nodes.hostnameHolder(changes.hostname, mac);
        if (holder) throw new InventoryError('conflict', `hostname ${changes.hostname} is already used by ${holder}`);
      }
      this.nodes.writeSettings(mac, changes, at);
      if (opts.fleet) {
        // The fleet file: its fields are recorded as owned; an adoption that changes no value is no event.
        this.nodes.writeFleetFields(mac, opts.fleet.fields);
        if (created || Object.keys(requested).length) this.history.append(mac, at, 'fleet-change', actor, { created, changes: redactChanges(requested), ...opts.fleet.detail });
      } else {
        this.history.append(mac, at, 'api-change', actor, { created, changes: redactChanges(requested) });
      }
      this.transition(before, { type: 'role-set', role: changes.role ?? before.role }, actor);
      return { node: this.existing(mac), created };
    });
  }

  /** Move a node to another boot state (reinstall, installed, installing), with an event. */
  setState(mac: string, to: BootState, actor: string, detail: Record<string, unknown> = {}): Node {
    return this.database.write(() => {
      this.transition(this.existing(mac), { type: 'state-requested', to }, actor, detail);
      return this.existing(mac);
    });
  }

  delete(mac: string, actor: string): boolean {
    return this.database.write(() => {
      const gone = this.nodes.remove(mac);
      this.tokens.revoke(mac);
      // A machine that comes back is a new story: its old kernel log and event ids go too.
      this.kernelLogs.forget(mac);
      this.history.forgetTalosIds(mac);
      if (gone) this.history.append(mac, this.stamp(), 'deleted', actor, {});
      return gone;
    });
  }

  /** Store a new config token for a node (its hash only), bound to the address its script went to, replacing any earlier one. */
  issueConfigToken(mac: string, tokenSha256: string, ttlMs: number, fetches: number, ip: string | null = null): { expiresAt: string } {
    return this.database.write(() => this.tokens.issue(mac, tokenSha256, this.now(), ttlMs, fetches, ip));
  }

  /** Inside a read or write: the node and its token row, when `tokenSha256` is that token's hash. */
  private presented(mac: string, tokenSha256: string): { ok: true; node: Node; token: ConfigTokenRow } | { ok: false; reason: 'unknown-node' | 'no-token' | 'wrong-token'; node?: Node } {
    const node = this.nodes.get(mac);
    if (!node) return { ok: false, reason: 'unknown-node' };
    const token = this.tokens.find(mac);
    if (!token) return { ok: false, reason: 'no-token', node };
    if (!sameHash(token.tokenSha256, tokenSha256)) return { ok: false, reason: 'wrong-token', node };
    return { ok: true, node, token };
  }

  /** May this token fetch this node's config now? Reads only; `consumeConfigToken` spends a fetch. */
  checkConfigToken(mac: string, tokenSha256: string, ip?: string): ConfigTokenCheck {
    return this.database.read(() => {
      const found = this.presented(mac, tokenSha256);
      if (!found.ok) return found;
      const { node, token } = found;
      if (Date.parse(token.expiresAt) <= this.now().getTime()) return { ok: false, reason: 'expired', node };
      if (token.fetchesLeft <= 0) return { ok: false, reason: 'used-up', node };
      if (node.role === 'unassigned') return { ok: false, reason: 'no-role', node };
      if (node.conflict) return { ok: false, reason: 'conflict', node };
      if (!windowOpen(node, this.now())) return { ok: false, reason: 'window-closed', node };
      if (!tokenAddressMatches(token.ip, ip)) return { ok: false, reason: 'other-address', node, tokenIp: token.ip ?? undefined };
      return { ok: true, node, fetchesLeft: token.fetchesLeft };
    });
  }

  /**
   * A finished install reported with the token of the machine's boot (cloud-init's phone-home).
   * The token proves the report even once its fetches or lifetime are spent (an install takes as
   * long as it takes), but only from the address it was issued to and only while the machine is
   * installing; the report revokes it, so it proves nothing twice.
   */
  reportInstalledWithToken(mac: string, tokenSha256: string, ip: string | undefined, detail: Record<string, unknown>): { ok: true; node: Node } | { ok: false; reason: ConfigDenial; node?: Node } {
    return this.database.write(() => {
      const found = this.presented(mac, tokenSha256);
      if (!found.ok) return found;
      const { node, token } = found;
      if (!tokenAddressMatches(token.ip, ip)) return { ok: false, reason: 'other-address', node };
      if (node.state !== 'installing') return { ok: false, reason: 'not-installing', node };
      const after = this.transition(node, { type: 'install-reported' }, 'cloud-init', detail);
      return { ok: true, node: after };
    });
  }

  /**
   * A valid token used from another address than its script went to: someone copied it (it is
   * in plain HTTP). Both claimants are held until the operator confirms the real machine.
   */
  recordTokenConflict(mac: string, addresses: [string, string]): void {
    this.database.write(() => {
      const before = this.nodes.get(mac);
      if (!before || before.conflict) return;
      this.holdForConflict(before, addresses, { via: 'config-token' });
    });
  }

  /**
   * Spend one fetch of the token and record the config as served, in one transaction: the check
   * is repeated inside it, so two simultaneous fetches cannot both spend the last one. The node
   * moves to `installing` (unless it already is, or is installed).
   */
  consumeConfigToken(mac: string, tokenSha256: string, detail: Record<string, unknown>, ip?: string): ConfigTokenCheck {
    return this.database.write(() => {
      const check = this.checkConfigToken(mac, tokenSha256, ip);
      if (!check.ok) return check;
      this.tokens.spend(mac);
      this.history.append(mac, this.stamp(), 'config-served', 'boot', { ...detail, fetchesLeft: check.fetchesLeft - 1 });
      const node = this.transition(check.node, { type: 'config-served' }, 'boot');
      return { ok: true, node, fetchesLeft: check.fetchesLeft - 1 };
    });
  }

  /** Append an event on its own (script served, asset fetched); same retention as all others. */
  record(mac: string, type: EventType, actor: string, detail: Record<string, unknown>, at?: string): void {
    this.database.write(() => this.history.append(mac, at ?? this.stamp(), type, actor, detail));
  }

  /**
   * Append an observation (a boot step seen on the wire) in the next commit, shared with others
   * (the database's group commit): it is stamped now, so its time is true whenever it commits.
   */
  recordSoon(mac: string, type: EventType, actor: string, detail: Record<string, unknown>): void {
    const at = this.stamp();
    this.database.defer(() => this.history.append(mac, at, type, actor, detail));
  }

  observedMac(who: { mac: string } | { ip: string }): string | undefined {
    return this.database.peek(() => ('mac' in who ? (this.nodes.has(who.mac) ? who.mac : undefined) : this.nodes.macByIp(who.ip)));
  }

  /** Newest first; what recordSoon() queued before this call is committed first, so it is seen. */
  events(mac: string, opts: { limit?: number; before?: number } = {}): NodeEvent[] {
    this.database.flush();
    return this.database.read(() => this.history.list(mac, opts));
  }
}

/** Two hex SHA-256 digests compared in constant time (a token's hash against the stored one). */
function sameHash(stored: string, given: string): boolean {
  const a = Buffer.from(stored, 'hex');
  const b = Buffer.from(given, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

function lifecycleDiffers(a: LifecycleFields, b: LifecycleFields): boolean {
  return a.role !== b.role || a.state !== b.state || a.windowUntil !== b.windowUntil || a.windowIp !== b.windowIp || a.conflict !== b.conflict;
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


