// One machine's whole boot path through the inventory, as Genesis's handlers drive it: first
// request, assignment, scripts, the config token and config, boot-step events, Talos events with
// the addresses Talos reports, kernel logs, the lookups by address and host name, the event and
// kernel-log reads, and the node list a page at a time. For tests and benches that look at the
// statements it runs (their plans, whether SQLite compiles them again).

import type { Inventory } from '../../src/inventory/store.ts';

/** `count` machines seen booting, each from an address in 192.0.2.0/24: a fleet to plan against. */
export function bootFleet(inv: Inventory, count: number): void {
  for (let i = 0; i < count; i++) inv.recordBoot(`52:54:00:01:${String(Math.floor(i / 100)).padStart(2, '0')}:${String(i % 100).padStart(2, '0')}`, { arch: 'amd64', firmware: 'uefi', ip: `192.0.2.${i % 250}` });
}

/**
 * The boot path for `mac` at `ip`; its Talos reports 192.0.2.252. `noise` boot-step events
 * (more than the ring's prune interval reaches the prune).
 */
export function driveBootPath(inv: Inventory, m: { mac: string; ip: string; hostname: string; noise?: number }): void {
  const { mac, ip, hostname } = m;
  const H = 'c'.repeat(64);
  inv.recordBoot(mac, { arch: 'amd64', firmware: 'uefi', ip });
  inv.update(mac, { role: 'worker', hostname }, 'api', { create: false });
  inv.get(mac);
  inv.recordBoot(mac, { ip });
  inv.setWaiting(mac, 'no Talos assets');
  inv.setWaiting(mac, null);
  inv.noteBootAddress(mac, ip);
  inv.issueConfigToken(mac, H, 60_000, 3, ip);
  inv.checkConfigToken(mac, H, ip);
  inv.consumeConfigToken(mac, H, { via: 'http' }, ip);
  for (let j = 0; j < (m.noise ?? 1); j++) inv.record(mac, 'asset-fetched', 'boot', { path: '/assets/talos/v1.14.0/amd64/vmlinuz' });
  inv.byIp(ip);
  inv.observedMac({ ip });
  inv.observedMac({ mac });
  inv.bySource(ip);
  inv.bySource('192.0.2.252'); // not where it booted: found through the addresses Talos reported
  inv.byHostname(hostname);
  inv.applyTalosEvent(mac, { id: 'e-1', detail: { stage: 'installing' }, stage: 'installing', addresses: ['192.0.2.252'] });
  inv.applyTalosEvent(mac, { id: 'e-1', detail: {} });
  inv.applyTalosEvent(mac, { id: 'e-2', detail: {}, installed: 'sequence install finished' });
  inv.appendKernelLog(mac, [{ talosTime: null, level: 'info', facility: 'kern', msg: 'hello', fields: {} }], 100);
  inv.events(mac, { limit: 20 });
  inv.kernelLog(mac, { limit: 20 });
  inv.kernelLog(mac, { after: 0, limit: 20 });
  inv.list({ role: 'controlplane', state: 'installed' });
  // The node list, a page at a time (the API, the CLI, the dashboard).
  const first = inv.list({}, { limit: 50 });
  inv.list({}, { limit: 50, after: { firstSeen: first.at(-1)!.firstSeen, mac: first.at(-1)!.mac } });
}
