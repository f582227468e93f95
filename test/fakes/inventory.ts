// Inventory fakes, as matchbox keeps its testfakes: a store with fixed content that behaves by the
// same rules (the install window, the lifecycle), one that is full, and one whose disk is broken.
// They implement the narrow interfaces in src/inventory/ports.ts, so a service under test never
// needs a SQLite file, and a failure the file would only give under a full disk is one line here.

import { blankNode, type BootFacts, type EventType, type Node } from '../../src/domain/node.ts';
import { InventoryError } from '../../src/inventory/errors.ts';
import { bootAccess, mayRecordFacts } from '../../src/inventory/install-window.ts';
import { applyLifecycle } from '../../src/inventory/node-lifecycle.ts';
import type { BootRecord, BootRecorder, NodeReader } from '../../src/inventory/ports.ts';

export type RecordedEvent = { mac: string; type: EventType; actor: string; detail: Record<string, unknown>; at?: string };

/** Machines in memory; boot requests follow the real install-window rules. Nothing is auto-assigned. */
export class FixedInventory implements BootRecorder, Pick<NodeReader, 'get' | 'list'> {
  readonly nodes = new Map<string, Node>();
  readonly events: RecordedEvent[] = [];
  readonly now: () => Date;

  constructor(nodes: Array<Partial<Node> & { mac: string }> = [], now: () => Date = () => new Date()) {
    this.now = now;
    for (const n of nodes) this.nodes.set(n.mac, blankNode(n.mac, n));
  }

  atomically<T>(fn: () => T): T {
    return fn();
  }

  atomicallyShared<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  get(mac: string): Node | undefined {
    const n = this.nodes.get(mac);
    return n && { ...n };
  }

  byIp(ip: string): Node | undefined {
    const n = [...this.nodes.values()].find((x) => x.lastIp === ip);
    return n && { ...n };
  }

  observedMac(who: { mac: string } | { ip: string }): string | undefined {
    return 'mac' in who ? (this.nodes.has(who.mac) ? who.mac : undefined) : this.byIp(who.ip)?.mac;
  }

  /** The PXE-port addresses seen, in order (the real store checks them against the window). */
  readonly bootAddresses: Array<{ mac: string; ip: string }> = [];
  noteBootAddress(mac: string, ip: string): void {
    this.bootAddresses.push({ mac, ip });
  }

  list(filter: { role?: Node['role']; state?: Node['state'] } = {}): Node[] {
    return [...this.nodes.values()].filter((n) => (!filter.role || n.role === filter.role) && (!filter.state || n.state === filter.state)).map((n) => ({ ...n }));
  }

  record(mac: string, type: EventType, actor: string, detail: Record<string, unknown>, at?: string): void {
    this.events.push({ mac, type, actor, detail, ...(at ? { at } : {}) });
  }

  /** No group commit here: recorded at once, which is what a reader after the flush sees. */
  recordSoon(mac: string, type: EventType, actor: string, detail: Record<string, unknown>): void {
    this.record(mac, type, actor, detail);
  }

  recordBoot(mac: string, facts: BootFacts, opts: { maxNodes?: number } = {}): BootRecord {
    const before = this.nodes.get(mac);
    if (!before) {
      if (opts.maxNodes !== undefined && this.nodes.size >= opts.maxNodes) throw new InventoryError('full', `the inventory holds ${this.nodes.size} machines, its limit (inventory.max_nodes)`);
      const node = blankNode(mac, { arch: facts.arch ?? null, firmware: facts.firmware ?? null, lastIp: facts.ip ?? null, serial: facts.serial ?? null, manufacturer: facts.manufacturer ?? null, product: facts.product ?? null, uuid: facts.uuid ?? null });
      this.nodes.set(mac, node);
      this.record(mac, 'discovered', 'boot', { ...facts });
      return { node: { ...node }, created: true, access: bootAccess(node, facts.ip, this.now()) };
    }
    const access = bootAccess(before, facts.ip, this.now());
    if (access.kind === 'conflict') {
      const held = applyLifecycle(before, { type: 'address-conflict', addresses: access.addresses }, { windowEnd: before.windowUntil ?? '' });
      if (held.ok) this.nodes.set(mac, { ...before, ...held.next });
      this.record(mac, 'conflict', 'boot', { addresses: access.addresses });
    } else if (mayRecordFacts(access)) {
      this.nodes.set(mac, { ...before, lastIp: facts.ip ?? before.lastIp, windowIp: access.kind === 'bind' ? (facts.ip ?? null) : before.windowIp });
    }
    return { node: this.get(mac)!, created: false, access };
  }

  setWaiting(mac: string, reason: string | null): void {
    const n = this.nodes.get(mac);
    if (!n || n.waiting === reason) return;
    this.nodes.set(mac, { ...n, waiting: reason });
    this.record(mac, 'boot-waiting', 'boot', { reason });
  }
}

/** Holds `limit` machines already: a new MAC is refused as the real store refuses it. */
export function fullInventory(known: Array<Partial<Node> & { mac: string }> = []): { inventory: FixedInventory; maxNodes: number } {
  const inventory = new FixedInventory(known);
  return { inventory, maxNodes: inventory.nodes.size };
}

/** Every call fails as a broken disk makes the real store fail: a storage error, nothing changed. */
export class BrokenInventory implements BootRecorder {
  private fail(): never {
    throw new InventoryError('storage_unavailable', 'disk I/O error', 'SQLITE_IOERR');
  }
  atomically<T>(): T {
    return this.fail();
  }
  atomicallyShared<T>(): Promise<T> {
    return Promise.reject(new InventoryError('storage_unavailable', 'disk I/O error', 'SQLITE_IOERR'));
  }
  get(): Node | undefined {
    return this.fail();
  }
  record(): void {
    this.fail();
  }
  recordSoon(): void {
    this.fail();
  }
  recordBoot(): BootRecord {
    return this.fail();
  }
  setWaiting(): void {
    this.fail();
  }
  byIp(): Node | undefined {
    return this.fail();
  }
  observedMac(): string | undefined {
    return this.fail();
  }
  noteBootAddress(): void {
    this.fail();
  }
}
