// The boot-step observer against the inventory fake: attribution, the steps of a first boot held
// until the machine is known, the bounds on what is held, and that a failing store never fails
// the transfer or answer being reported. Then the timeline built from what it records.

import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { NodeEvent } from '../../src/domain/node.ts';
import type { ProxyAnswer } from '../../src/dhcp/proxy.ts';
import { buildTimeline } from '../../src/inventory/timeline.ts';
import { BootSteps } from '../../src/provision/boot-steps.ts';
import type { TransferSummary } from '../../src/tftp/server.ts';
import { BrokenInventory, FixedInventory } from '../fakes/inventory.ts';

const MAC = '52:54:00:00:0b:01';
const IP = '192.0.2.31';

function observer(inventory = new FixedInventory(), over: { holdMs?: number; maxHeld?: number } = {}) {
  let t = Date.parse('2026-12-02T10:00:00Z');
  const steps = new BootSteps({ inventory, log: pino({ level: 'silent' }), now: () => t, ...over });
  return { steps, inventory, advance: (ms: number) => (t += ms), at: () => new Date(t).toISOString() };
}

const offer = (mac: string): ProxyAnswer => ({ kind: 'reply', packet: undefined as never, to: 'sender', mac, client: 'pxe', arch: 7, bootfile: 'snponly.efi' });
const transfer = (file = 'snponly.efi', outcome: TransferSummary['outcome'] = 'ok'): TransferSummary => ({ client: `${IP}:2000`, file, size: 100, bytes: 100, blksize: 1468, windowsize: 1, durationMs: 12, retransmits: 0, outcome });

describe('BootSteps', () => {
  it("records a known machine's steps at once: DHCP by MAC, TFTP and assets by address", () => {
    const o = observer(new FixedInventory([{ mac: MAC, role: 'worker', lastIp: IP }]));
    o.steps.dhcp(offer(MAC), 'pxe', IP);
    o.steps.tftp(transfer(), IP);
    o.steps.asset(IP, 'kernel', { path: '/assets/talos/v1.14.0/amd64/vmlinuz', status: 200 });
    expect(o.inventory.events.map((e) => [e.type, e.detail])).toEqual([
      ['dhcp-offered', { client: 'pxe', arch: 7, bootfile: 'snponly.efi', port: 'pxe' }],
      ['tftp-served', { file: 'snponly.efi', bytes: 100, durationMs: 12, blksize: 1468, windowsize: 1, retransmits: 0 }],
      ['asset-fetched', { path: '/assets/talos/v1.14.0/amd64/vmlinuz', status: 200, asset: 'kernel' }],
    ]);
    expect(o.inventory.bootAddresses).toEqual([{ mac: MAC, ip: IP }]);
    expect(o.steps.heldCount).toBe(0);
  });

  it("a first boot: steps before the machine is known are written at discovery, with their own times, in order", () => {
    const o = observer();
    o.steps.dhcp(offer(MAC), 'dhcp', '0.0.0.0');
    const dhcpAt = o.at();
    o.advance(800);
    o.steps.tftp(transfer(), IP);
    const tftpAt = o.at();
    expect(o.inventory.events).toEqual([]);
    o.advance(400);
    o.inventory.recordBoot(MAC, { ip: IP });
    o.steps.discovered(MAC, IP);
    expect(o.inventory.events.map((e) => [e.type, e.at])).toEqual([
      ['discovered', undefined],
      ['dhcp-offered', dhcpAt],
      ['tftp-served', tftpAt],
    ]);
    expect(o.steps.heldCount).toBe(0);
  });

  it('held steps expire, and a stranger that never boots leaves nothing recorded', () => {
    const o = observer(new FixedInventory(), { holdMs: 60_000 });
    o.steps.tftp(transfer(), IP);
    o.advance(60_000);
    o.steps.discovered(MAC, IP);
    expect(o.inventory.events).toEqual([]);
  });

  it('what is held is bounded: the oldest address goes first', () => {
    const o = observer(new FixedInventory(), { maxHeld: 3 });
    for (let i = 1; i <= 5; i++) o.steps.tftp({ ...transfer(), client: `192.0.2.${i}:2000` }, `192.0.2.${i}`);
    expect(o.steps.heldCount).toBe(3);
    o.steps.discovered(MAC, '192.0.2.1');
    o.steps.discovered('52:54:00:00:0b:05', '192.0.2.5');
    expect(o.inventory.events.map((e) => e.mac)).toEqual(['52:54:00:00:0b:05']);
  });

  it('failed transfers are counted, not recorded; an iPXE loop holds the known machine with the advice', () => {
    const o = observer(new FixedInventory([{ mac: MAC, role: 'worker', lastIp: IP }]));
    o.steps.tftp(transfer('snponly.efi', 'timeout'), IP);
    expect(o.inventory.events).toEqual([]);
    for (let i = 0; i < 3; i++) o.steps.tftp(transfer('undionly.kpxe'), IP);
    expect(o.inventory.get(MAC)?.waiting).toMatch(/loading iPXE again and again/);
  });

  it('a broken store never fails the step being reported', () => {
    const steps = new BootSteps({ inventory: new BrokenInventory(), log: pino({ level: 'silent' }) });
    expect(() => {
      steps.dhcp(offer(MAC), 'pxe', IP);
      steps.tftp(transfer(), IP);
      steps.asset(IP, 'initramfs', { path: '/x', status: 200 });
      steps.discovered(MAC, IP);
    }).not.toThrow();
  });
});

describe('buildTimeline', () => {
  const ev = (id: number, at: string, type: NodeEvent['type'], detail: Record<string, unknown> = {}): NodeEvent => ({ id, mac: MAC, at, type, actor: 'boot', detail });

  it('orders by time, then id, and names assets by what was recorded, never by guessing from the path', () => {
    const steps = buildTimeline([
      ev(1, '2026-12-02T10:00:02.000Z', 'discovered'),
      ev(2, '2026-12-02T10:00:00.000Z', 'dhcp-offered'),
      ev(3, '2026-12-02T10:00:01.000Z', 'tftp-served'),
      ev(4, '2026-12-02T10:00:03.000Z', 'asset-fetched', { path: '/assets/talos/v1.14.0/amd64/vmlinuz', asset: 'kernel' }),
      ev(5, '2026-12-02T10:00:03.000Z', 'asset-fetched', { path: '/assets/talos/v1.14.0/amd64/vmlinuz' }),
    ]);
    expect(steps.map((s) => [s.step, s.sinceStartMs, s.sincePreviousMs])).toEqual([
      ['dhcp', 0, null],
      ['tftp', 1000, 1000],
      ['discovered', 2000, 1000],
      ['kernel', 3000, 1000],
      ['asset', 3000, 0],
    ]);
  });
});
