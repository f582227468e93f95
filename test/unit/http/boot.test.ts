// The firmware's boot routes (http/boot.ts) through inject(), with the real boot conversation over
// the inventory fake: each outcome in HTTP, and the request rules.

import { describe, expect, it } from 'vitest';
import type { Node } from '../../../src/domain/node.ts';
import { bootRoutes } from '../../../src/http/boot.ts';
import { plainBootService } from '../../helpers/boot-service.ts';
import { FixedInventory } from '../../fakes/inventory.ts';
import { routeGroup } from '../../helpers/inject.ts';
import { TimeSlices } from '../../../src/scheduling/time-slices.ts';

const MAC = '52:54:00:12:34:56';
const later = () => new Date(Date.now() + 3600_000).toISOString();

async function app(nodes: Array<Partial<Node> & { mac: string }> = [], slices = new TimeSlices({ sliceMs: 10 })) {
  const inventory = new FixedInventory(nodes);
  const boot = plainBootService(inventory, 'cd'.repeat(32));
  return { a: await routeGroup((r) => bootRoutes(r, boot, slices)), inventory };
}

describe('boot routes', () => {
  it('/boot.ipxe: the entry script, never cached', async () => {
    const { a } = await app();
    const res = await a.inject('/boot.ipxe');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toMatch(/^#!ipxe\n[\s\S]*chain --replace --autofree http:\/\/192\.0\.2\.1:8080\/ipxe\/node\?mac=\$\{mac:hexhyp\}/);
  });

  it('/ipxe/node: a script for an assigned machine (200), an iPXE script saying why for no MAC (400)', async () => {
    const { a } = await app([{ mac: MAC, role: 'worker', state: 'assigned', arch: 'amd64', firmware: 'uefi', windowUntil: later() }]);
    const ok = await a.inject(`/ipxe/node?mac=${MAC}&buildarch=x86_64&platform=efi`);
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['cache-control']).toBe('no-store');
    expect(ok.body).toContain(`talos.config=http://192.0.2.1:8080/talos/config/${MAC}/${'cd'.repeat(32)}`);
    const none = await a.inject('/ipxe/node?buildarch=x86_64');
    expect(none.statusCode).toBe(400);
    expect(none.body).toBe('#!ipxe\necho Genesis: the request carried no valid MAC address\nexit 1\n');
  });

  it('/ipxe/node: an installed machine set to http404 gets 404, which sends iPXE on to its disk', async () => {
    const { a } = await app([{ mac: MAC, role: 'worker', state: 'installed', localBoot: 'http404' }]);
    const res = await a.inject(`/ipxe/node?mac=${MAC}`);
    expect(res.statusCode).toBe(404);
    expect(res.body).toBe('installed: boot from local disk\n');
  });

  it('/ipxe/node: a field longer than any firmware sends is refused before it is recorded', async () => {
    const { a, inventory } = await app();
    const res = await a.inject(`/ipxe/node?mac=${MAC}&product=${'x'.repeat(257)}`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'invalid_request' });
    expect(inventory.nodes.size).toBe(0);
  });

  it('/ipxe/node runs its turn in a later slice: /boot.ipxe asked after a burst of them is answered first', async () => {
    const turns: Array<() => void> = [];
    const slices = new TimeSlices({ sliceMs: 10, later: (fn) => turns.push(fn) });
    const macs = ['52:54:00:00:0a:01', '52:54:00:00:0a:02', '52:54:00:00:0a:03'];
    const { a, inventory } = await app([], slices);
    const scripts = macs.map((mac) => a.inject(`/ipxe/node?mac=${mac}&buildarch=x86_64&platform=efi`));
    const entry = await a.inject('/boot.ipxe');
    expect(entry.statusCode).toBe(200);
    // Answered while every machine's turn still waits: none is recorded yet.
    expect(slices.waiting).toBe(3);
    expect(macs.map((mac) => inventory.get(mac))).toEqual([undefined, undefined, undefined]);
    turns.shift()!();
    const answers = await Promise.all(scripts);
    expect(answers.map((r) => r.statusCode)).toEqual([200, 200, 200]);
    expect(macs.map((mac) => inventory.get(mac)?.mac)).toEqual(macs);
  });
});
