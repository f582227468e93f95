// Install scripts share commits (the inventory's writeShared): a burst of machines asking at once
// costs one fsync, and each script is answered only once its token is on disk. Genesis killed with
// SIGKILL in the middle of such a burst: every machine that was answered finds its token there
// after the restart and gets its config with it. A real `genesis serve`, a real data dir, real
// HTTP clients each on their own address.

import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../src/inventory/store.ts';
import { loopbackServeEnv, seedSecrets, stageTalosPlaceholders } from '../helpers/genesis-app.ts';
import { GenesisProcess } from '../helpers/genesis-process.ts';
import { getFrom } from '../helpers/http-from.ts';

const cleanup: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

const MACHINES = 80;
const mac = (n: number) => `52:54:00:0e:00:${n.toString(16).padStart(2, '0')}`;
const ip = (n: number) => `127.0.14.${n}`;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** GET from machine n's own address: the status and body, or undefined when the connection broke. */
async function get(port: number, n: number, p: string): Promise<{ status: number; body: string } | undefined> {
  const res = await getFrom(port, ip(n), p);
  return res && { status: res.status, body: res.body.toString('utf8') };
}

describe('Genesis killed while machines ask for their install scripts', () => {
  it('every machine that got its script finds its token on disk, and its config with it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-decisions-crash-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const dataDir = path.join(dir, 'data');
    const assetsDir = path.join(dir, 'assets');
    stageTalosPlaceholders(assetsDir, ['v1.14.0'], ['amd64']);
    seedSecrets(dataDir);
    const dbFile = path.join(dataDir, 'genesis.db');
    const inv = Inventory.open(dbFile);
    for (let n = 1; n <= MACHINES; n++) inv.update(mac(n), { role: 'worker', talosVersion: 'v1.14.0' }, 'test', { create: true });
    inv.close();

    const start = () => {
      const p = new GenesisProcess(['serve'], { ...loopbackServeEnv(dataDir, assetsDir), GENESIS_BOOTSTRAP_ENABLED: 'false', GENESIS_EVENTS_ENABLED: 'false' });
      cleanup.push(() => p.kill('SIGKILL'));
      return p;
    };

    // Twenty machines at a time ask for their script; Genesis is killed the moment the 30th answer arrives.
    const first = start();
    const { http: h1 } = await first.ready();
    const answered = new Map<number, string>();
    const wave = async (from: number) => {
      await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const n = from + i;
          const res = await get(h1.port, n, `/ipxe/node?mac=${mac(n)}&buildarch=x86_64&platform=efi`);
          if (res?.status !== 200) return;
          const url = /\/talos\/config\/[^/\s]+\/([0-9a-f]{64})/.exec(res.body);
          expect(url, res.body).not.toBeNull();
          answered.set(n, url![1]!);
          if (answered.size === 30) first.kill('SIGKILL');
        }),
      );
    };
    for (let from = 1; from <= MACHINES && answered.size < 30; from += 20) await wave(from);
    await first.exit();
    expect(answered.size).toBeGreaterThanOrEqual(30);

    const db = new Database(dbFile, { readonly: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const stored = new Map((db.prepare('SELECT mac, token_sha256 FROM config_tokens').all() as Array<{ mac: string; token_sha256: string }>).map((r) => [r.mac, r.token_sha256]));
      for (const [n, token] of answered) expect(stored.get(mac(n)), `machine ${n} was answered; its token must be on disk`).toBe(sha256(token));
    } finally {
      db.close();
    }

    // Restarted: each answered machine fetches its config with the token it was given.
    const second = start();
    const { http: h2 } = await second.ready();
    for (const [n, token] of answered) {
      const res = await get(h2.port, n, `/talos/config/${mac(n)}/${token}`);
      expect(res?.status, `machine ${n}'s config after the restart`).toBe(200);
      expect(res!.body).toContain('machine:');
    }
    second.kill('SIGTERM');
    expect(await second.exit()).toBe(0);
  });
});
