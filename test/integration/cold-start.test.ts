// The ordered cold start after a power cut, against fake Talos apids that "power on" when their
// magic packet arrives at a UDP listener on loopback: silent control planes are woken first,
// workers only once etcd has quorum, a machine that came back by itself is left alone, and one
// marked manual is never woken.

import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { markBootstrapped } from '../../src/bootstrap/lock.ts';
import { BootstrapLocks } from '../../src/bootstrap/lock-store.ts';
import { Inventory } from '../../src/inventory/store.ts';
import type { ColdStartStatus } from '../../src/power/cold-start.ts';
import { parseSecrets } from '../../src/talos/secrets.ts';
import { startFakes } from '../helpers/fake-talos.ts';
import { FIXTURE_SECRETS, seedSecrets, startGenesis, type TestGenesis } from '../helpers/genesis-app.ts';
import { until } from '../helpers/wait.ts';

const bundle = parseSecrets(readFileSync(FIXTURE_SECRETS, 'utf8'));
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const status = async (g: TestGenesis) => (await (await g.api('GET', '/power/cold-start')).json()) as ColdStartStatus;

describe('ordered cold start', () => {
  it('wakes silent control planes, waits for etcd quorum, then wakes the silent workers; never a manual one', async () => {
    // cp-1..3, then w-1 (silent), w-2 (came back by itself), w-3 (silent, manual power).
    const names = ['cp-1', 'cp-2', 'cp-3', 'w-1', 'w-2', 'w-3'];
    const ips = names.map((_, i) => `127.0.75.${i + 2}`);
    const macs = names.map((_, i) => `52:54:00:00:75:0${i + 1}`);
    const { port, fakes } = await startFakes(ips, (host, p) => {
      const i = ips.indexOf(host);
      return { host, port: p, bundle, hostname: names[i], etcdMembers: i < 3 ? ['cp-1', 'cp-2', 'cp-3'] : [] };
    });
    cleanup.push(() => fakes.forEach((f) => f.die()));

    // Before the power cut: all installed, the cluster bootstrapped.
    const dataDir = path.join(mkdtempSync(path.join(tmpdir(), 'genesis-cold-')), 'data');
    mkdirSync(dataDir, { recursive: true });
    seedSecrets(dataDir);
    const inv = Inventory.open(path.join(dataDir, 'genesis.db'));
    names.forEach((name, i) => {
      inv.update(macs[i]!, { role: i < 3 ? 'controlplane' : 'worker', hostname: name, network: { address: `${ips[i]}/8` }, ...(name === 'w-3' ? { power: { method: 'manual' } } : {}) }, 'test', { create: true });
      inv.setState(macs[i]!, 'installed', 'test');
    });
    inv.close();
    const db = new Database(path.join(dataDir, 'genesis.db'));
    new BootstrapLocks(db).apply('lab', 'test', (l, now) => markBootstrapped(l, { now, evidence: 'before the power cut', by: macs[0]!, addr: ips[0]! }));
    db.close();

    // The power cut: everything is down except w-2, whose firmware powers it on after AC loss.
    fakes.forEach((f, i) => i !== 4 && f.die());

    const woken: string[] = [];
    const listener = createSocket('udp4');
    listener.on('message', (msg) => woken.push([...msg.subarray(6, 12)].map((b) => b.toString(16).padStart(2, '0')).join(':')));
    await new Promise<void>((resolve) => listener.bind(0, '127.0.0.1', resolve));
    cleanup.push(() => listener.close());

    const g = await startGenesis(
      {
        GENESIS_CLUSTER_NAME: 'lab',
        GENESIS_BACKUP_ENABLED: 'false',
        GENESIS_BOOTSTRAP_TALOS_API_PORT: String(port),
        GENESIS_BOOTSTRAP_POLL_INTERVAL_MS: '50',
        GENESIS_BOOTSTRAP_RPC_TIMEOUT_MS: '2000',
        GENESIS_POWER_COLD_START: 'true',
        GENESIS_POWER_COLD_START_DELAY: '0',
        GENESIS_POWER_WOL_ADDRESS: '127.0.0.1',
        GENESIS_POWER_WOL_PORT: String(listener.address().port),
      },
      { dataDir },
    );
    cleanup.push(() => g.close());

    // Control planes first, in MAC order.
    await until(() => woken.length >= 3 || undefined, 'the control planes to be woken');
    expect(woken).toEqual(macs.slice(0, 3));
    // One control plane back is not a quorum of three: the workers wait.
    await fakes[0]!.listen();
    await until(async () => {
      const s = await status(g);
      return s.phase === 'waiting-for-quorum' && s.quorum?.healthy === 1 ? s : undefined;
    }, 'one healthy etcd member of three');
    expect(woken).toEqual(macs.slice(0, 3));
    // A second one makes quorum: the silent worker is woken; the one that came back and the manual one are not.
    await fakes[1]!.listen();
    const done = await until(async () => {
      const s = await status(g);
      return s.phase === 'done' ? s : undefined;
    }, 'the cold start to finish');
    expect(woken).toEqual([...macs.slice(0, 3), macs[3]]);
    expect(done.plan).toEqual({ controlplanes: macs.slice(0, 3), workers: [macs[3]], skipped: [{ mac: macs[5], reason: 'manual power' }] });
    expect(done.quorum).toEqual({ members: 3, healthy: 2 });
    expect(done.message).toBe('woke 3 control plane(s), then 1 worker(s) once etcd had quorum');

    // Each wake is on the machine's timeline, by the cold start.
    for (const mac of [...macs.slice(0, 4)]) {
      const events = (await (await g.api('GET', `/nodes/${mac}/events`)).json()) as { events: Array<{ type: string; actor: string; detail: Record<string, unknown> }> };
      expect(events.events.find((e) => e.type === 'power')).toMatchObject({ actor: 'cold-start', detail: { action: 'on', method: 'wol' } });
    }
    const manual = (await (await g.api('GET', `/nodes/${macs[5]}/events`)).json()) as { events: Array<{ type: string }> };
    expect(manual.events.some((e) => e.type === 'power')).toBe(false);
  });

  it('is off unless asked for, and does nothing for a cluster that was never bootstrapped', async () => {
    const off = await startGenesis({ GENESIS_BACKUP_ENABLED: 'false' });
    cleanup.push(() => off.close());
    expect(await status(off)).toEqual({ phase: 'off', at: null, plan: null, quorum: null, message: 'off (power.cold_start: false)' });
    const fresh = await startGenesis({ GENESIS_BACKUP_ENABLED: 'false', GENESIS_POWER_COLD_START: 'true', GENESIS_POWER_COLD_START_DELAY: '0' });
    cleanup.push(() => fresh.close());
    const s = await until(async () => {
      const x = await status(fresh);
      return x.phase === 'done' ? x : undefined;
    }, 'the cold start to look');
    expect(s.message).toBe('the cluster was never bootstrapped: nothing to bring back');
  });
});
