// Boot steps share commits (the inventory's group commit); Genesis killed with SIGKILL in the
// middle of a burst of downloads may lose the steps still waiting, never more, and never records
// one that did not happen: every download on record reached its machine whole. Steps committed
// before the kill are all there after it; a graceful stop commits everything it saw. A real
// `genesis serve` process, a real data dir, real HTTP clients each on their own address.

import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../src/inventory/store.ts';
import { loopbackServeEnv, seedSecrets, TEST_TOKEN } from '../helpers/genesis-app.ts';
import { GenesisProcess } from '../helpers/genesis-process.ts';
import { getFrom } from '../helpers/http-from.ts';

const cleanup: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

const MACHINES = 60;
const mac = (n: number) => `52:54:00:0d:00:${n.toString(16).padStart(2, '0')}`;
const ip = (n: number) => `127.0.13.${n}`;
const kernel = randomBytes(256 * 1024);
const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Machine n downloads the kernel from its own address; true when it arrived whole. */
async function download(port: number, n: number): Promise<boolean> {
  const res = await getFrom(port, ip(n), '/assets/talos/v1.14.0/amd64/vmlinuz');
  return res?.status === 200 && digest(res.body) === digest(kernel);
}

describe('Genesis killed while machines download', () => {
  it('keeps every committed step, records none that did not happen, and commits all it saw on a graceful stop', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-steps-crash-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const dataDir = path.join(dir, 'data');
    const assets = path.join(dir, 'assets', 'talos', 'v1.14.0', 'amd64');
    mkdirSync(assets, { recursive: true });
    writeFileSync(path.join(assets, 'vmlinuz'), kernel);
    writeFileSync(path.join(assets, 'initramfs.xz'), Buffer.alloc(16));
    seedSecrets(dataDir);
    const dbFile = path.join(dataDir, 'genesis.db');
    const inv = Inventory.open(dbFile);
    for (let n = 1; n <= MACHINES; n++) inv.recordBoot(mac(n), { ip: ip(n) });
    inv.close();

    const start = () => {
      const p = new GenesisProcess(['serve'], {
        ...loopbackServeEnv(dataDir, path.join(dir, 'assets')),
        GENESIS_BOOTSTRAP_ENABLED: 'false',
        GENESIS_EVENTS_ENABLED: 'false',
      });
      cleanup.push(() => p.kill('SIGKILL'));
      return p;
    };
    const recorded = (): number[] => {
      const db = new Database(dbFile, { readonly: true });
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        const rows = db.prepare("SELECT mac FROM node_events WHERE type = 'asset-fetched'").all() as Array<{ mac: string }>;
        return rows.map((r) => Number.parseInt(r.mac.slice(-2), 16)).sort((a, b) => a - b);
      } finally {
        db.close();
      }
    };

    // 1. Machines 1-5 download, and their steps are read back through the API: committed.
    const first = start();
    const { http: h1 } = await first.ready();
    for (let n = 1; n <= 5; n++) expect(await download(h1.port, n)).toBe(true);
    for (let n = 1; n <= 5; n++) {
      const r = await fetch(`http://127.0.0.1:${h1.port}/api/v1/nodes/${mac(n)}/events?limit=5`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
      const { events } = (await r.json()) as { events: Array<{ type: string }> };
      expect(events.map((e) => e.type)).toContain('asset-fetched');
    }

    // 2. Machines 6-45 download ten at a time; Genesis is killed the moment the 20th arrives.
    const whole = new Set<number>([1, 2, 3, 4, 5]);
    let arrived = 0;
    const wave = async (from: number) => {
      await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const n = from + i;
          if (await download(h1.port, n)) {
            whole.add(n);
            if (++arrived === 20) first.kill('SIGKILL');
          }
        }),
      );
    };
    for (let from = 6; from <= 45 && arrived < 20; from += 10) await wave(from);
    await first.exit();

    const afterKill = recorded();
    expect(afterKill.filter((n) => !whole.has(n)), 'steps on record for downloads that never arrived whole').toEqual([]);
    expect(new Set(afterKill).size, 'a step recorded twice').toBe(afterKill.length);
    for (let n = 1; n <= 5; n++) expect(afterKill, `machine ${n}'s committed step`).toContain(n);

    // 3. Restarted, machines 46-60 download; a graceful stop commits every step it saw.
    const second = start();
    const { http: h2 } = await second.ready();
    const late = await Promise.all(Array.from({ length: 15 }, (_, i) => download(h2.port, 46 + i)));
    expect(late.every(Boolean)).toBe(true);
    second.kill('SIGTERM');
    expect(await second.exit()).toBe(0);
    const afterStop = recorded();
    for (let n = 46; n <= 60; n++) expect(afterStop, `machine ${n}'s step after a graceful stop`).toContain(n);
    expect(afterStop.filter((n) => n < 46)).toEqual(afterKill);
  });
});
