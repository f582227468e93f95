// Power-loss safety of a recovery, as for the first bootstrap: `genesis serve` runs as a child
// over a data dir whose lock says `recovering` (the operator asked to restore a snapshot after
// every control plane lost etcd), is killed with SIGKILL at each step (elected, snapshot uploaded,
// bootstrap-sent, Bootstrap sent) and at random moments, and restarted. The fake Talos nodes live
// in this process and count what reaches them: one Bootstrap with recover_etcd per trial, never two.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SnapshotStore } from '../../src/backup/snapshot-store.ts';
import { markBootstrapped, requestRecovery, type Lock } from '../../src/bootstrap/lock.ts';
import { BootstrapLocks } from '../../src/bootstrap/lock-store.ts';
import { Inventory } from '../../src/inventory/store.ts';
import { parseSecrets } from '../../src/talos/secrets.ts';
import { fakeDatabaseBytes, startFakes, type FakeTalos } from '../helpers/fake-talos.ts';
import { FIXTURE_SECRETS, loopbackServeEnv, seedSecrets } from '../helpers/genesis-app.ts';
import { GenesisProcess } from '../helpers/genesis-process.ts';
import { until } from '../helpers/wait.ts';

const bundle = parseSecrets(readFileSync(FIXTURE_SECRETS, 'utf8'));
const CLUSTER = 'lab';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

type Lab = { dir: string; dataDir: string; fakes: FakeTalos[]; port: number; macs: string[]; sha256: string };

/**
 * Three reinstalled control planes with no etcd, a stored snapshot, and a lock at `recovering`
 * for it, as `genesis cluster recover` leaves it.
 */
async function lab(net: number): Promise<Lab> {
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-recover-crash-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = path.join(dir, 'data');
  mkdirSync(path.join(dir, 'assets'), { recursive: true });
  seedSecrets(dataDir);
  const ips = [2, 3, 4].map((h) => `127.0.${net}.${h}`);
  const macs = ips.map((_, i) => `52:54:00:03:${net.toString(16).padStart(2, '0')}:0${i + 1}`);
  const { port, fakes } = await startFakes(ips, (host, p) => ({ host, port: p, bundle, hostname: `cp-${ips.indexOf(host) + 1}` }));
  cleanup.push(() => fakes.forEach((f) => f.die()));

  const db = fakeDatabaseBytes(0, 8 * 4096);
  const bytes = Buffer.concat([db, createHash('sha256').update(db).digest()]);
  const record = await new SnapshotStore(path.join(dataDir, 'backups')).write({
    cluster: CLUSTER,
    takenAt: new Date('2026-11-30T03:00:00Z'),
    source: { mac: macs[0]!, hostname: 'cp-1', address: ips[0]!, talosVersion: 'v1.14.0' },
    chunks: (async function* () {
      yield bytes;
    })(),
  });

  const inv = Inventory.open(path.join(dataDir, 'genesis.db'));
  macs.forEach((mac, i) => {
    inv.update(mac, { role: 'controlplane', hostname: `cp-${i + 1}` }, 'test', { create: true });
    inv.recordBoot(mac, { ip: ips[i] });
    inv.setState(mac, 'installing', 'test');
  });
  inv.close();
  const sqlite = new Database(path.join(dataDir, 'genesis.db'));
  const locks = new BootstrapLocks(sqlite);
  locks.apply(CLUSTER, 'test', (l, now) => markBootstrapped(l, { now, evidence: 'the cluster before the disaster', by: macs[0]!, addr: ips[0]! }));
  const plan = { snapshot: record.name, sha256: record.sha256, size: record.size, requestedAt: Date.now(), requestedBy: 'test' };
  expect(locks.apply(CLUSTER, 'test', (l, now) => requestRecovery(l, { plan, now })).ok).toBe(true);
  sqlite.close();
  return { dir, dataDir, fakes, port, macs, sha256: record.sha256 };
}

function genesis(l: Lab, env: Record<string, string> = {}): GenesisProcess {
  const p = new GenesisProcess(['serve'], {
    ...loopbackServeEnv(l.dataDir, path.join(l.dir, 'assets')),
    GENESIS_EVENTS_SINK_PORT: '0',
    GENESIS_EVENTS_KERNEL_LOG_PORT: '0',
    GENESIS_CLUSTER_NAME: CLUSTER,
    GENESIS_LOG_LEVEL: 'info',
    GENESIS_BACKUP_ENABLED: 'false',
    GENESIS_BOOTSTRAP_TALOS_API_PORT: String(l.port),
    GENESIS_BOOTSTRAP_POLL_INTERVAL_MS: '50',
    GENESIS_BOOTSTRAP_SETTLE_MS: '0',
    GENESIS_BOOTSTRAP_LEASE_MS: '500',
    GENESIS_BOOTSTRAP_RETRY_AFTER_MS: '300',
    GENESIS_BOOTSTRAP_RPC_TIMEOUT_MS: '2000',
    ...env,
  });
  cleanup.push(() => p.kill('SIGKILL'));
  return p;
}

function lockIn(l: Lab): Lock {
  const db = new Database(path.join(l.dataDir, 'genesis.db'), { readonly: true, fileMustExist: true });
  try {
    return new BootstrapLocks(db).get(CLUSTER);
  } finally {
    db.close();
  }
}

/** Bootstrap calls with recover_etcd that reached any node. */
const recoverCalls = (l: Lab) => l.fakes.reduce((n, f) => n + f.bootstrapRequests.filter((r) => r.recoverEtcd).length, 0);
const plainCalls = (l: Lab) => l.fakes.reduce((n, f) => n + f.bootstrapRequests.filter((r) => !r.recoverEtcd).length, 0);

async function runToRecovered(l: Lab): Promise<Lock> {
  const g = genesis(l);
  const lock = await until(() => {
    const lk = lockIn(l);
    return lk.state === 'bootstrapped' ? lk : undefined;
  }, 'the restarted Genesis to finish the recovery');
  g.kill('SIGTERM');
  await g.exit();
  return lock;
}

/** The one node that restored etcd restored exactly the stored snapshot, and it is the lock's holder. */
function expectRestoredOnce(l: Lab, done: Lock): void {
  expect(recoverCalls(l)).toBe(1);
  expect(plainCalls(l)).toBe(0);
  const restored = l.fakes.filter((f) => f.restoredFrom !== null);
  expect(restored).toHaveLength(1);
  expect(restored[0]!.restoredFrom).toBe(l.sha256);
  expect(l.fakes[l.macs.indexOf(done.holder!)]).toBe(restored[0]);
  expect(done.recovery).toBeNull();
}

describe('Genesis killed with SIGKILL during a recovery', () => {
  for (const [point, net] of [
    ['after-elect', 80],
    ['after-recover-upload', 81],
    ['after-mark-sent', 82],
    ['after-bootstrap-rpc', 83],
  ] as const) {
    it(`restarts after dying ${point.replaceAll('-', ' ')} and etcd is restored exactly once`, async () => {
      const l = await lab(net);
      const doomed = genesis(l, { GENESIS_FAILPOINT: point });
      expect(await doomed.exit()).toBeNull();
      expect(doomed.child.signalCode).toBe('SIGKILL');
      const atDeath = lockIn(l);
      expect(atDeath.state).toBe({ 'after-elect': 'recovering', 'after-recover-upload': 'recovering', 'after-mark-sent': 'bootstrap-sent', 'after-bootstrap-rpc': 'bootstrap-sent' }[point]);
      expect(atDeath.recovery?.sha256).toBe(l.sha256);
      expect(recoverCalls(l)).toBe(point === 'after-bootstrap-rpc' ? 1 : 0);
      expect(l.fakes.reduce((n, f) => n + f.recoverUploads, 0)).toBe(point === 'after-elect' ? 0 : 1);
      const done = await runToRecovered(l);
      expectRestoredOnce(l, done);
      // Once bootstrap-sent was written, the holder could not change.
      if (point === 'after-mark-sent' || point === 'after-bootstrap-rpc') expect(done).toMatchObject({ holder: atDeath.holder, epoch: atDeath.epoch });
    });
  }

  it('at random moments, again and again: one Bootstrap with recover_etcd per trial', { timeout: 600_000 }, async () => {
    let seed = Number(process.env.GENESIS_CRASH_SEED ?? 20261201);
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const rounds = Number(process.env.GENESIS_CRASH_ROUNDS ?? 6);
    const perTrial: number[] = [];
    const states: string[] = [];
    for (let r = 0; r < rounds; r++) {
      const l = await lab(90 + r);
      const kills = 1 + Math.floor(random() * 3);
      for (let k = 0; k < kills; k++) {
        const g = genesis(l);
        const at = Math.floor(random() * 250);
        await g.ready();
        const timer = setTimeout(() => g.kill('SIGKILL'), at);
        await g.exit();
        clearTimeout(timer);
        states.push(lockIn(l).state);
        expect(recoverCalls(l), `round ${r}, kill ${k} at ${at} ms`).toBeLessThanOrEqual(1);
      }
      const done = await runToRecovered(l);
      perTrial.push(recoverCalls(l));
      expectRestoredOnce(l, done);
      for (const c of cleanup.splice(0).reverse()) await c();
    }
    // The figure: Bootstrap calls per recovery trial (goal: 1 in every trial), and where the kills landed.
    console.info(`recover_etcd Bootstrap calls per trial: ${perTrial.join(', ')}; lock state at each kill: ${states.join(', ')}`);
  });

  it('a snapshot file that changed after the request is not restored: the upload is cancelled, no Bootstrap is sent', async () => {
    const l = await lab(97);
    const file = path.join(l.dataDir, 'backups', `${lockIn(l).recovery!.snapshot}.db`);
    const bytes = readFileSync(file);
    bytes[5000]! ^= 0x10;
    writeFileSync(file, bytes);
    const g = genesis(l);
    const line = await g.waitFor((x) => x.msg === 'snapshot upload for the recovery failed');
    expect(String(line.err)).toMatch(/^the snapshot file changed since the recovery was asked for \(sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\)$/);
    g.kill('SIGKILL');
    await g.exit();
    // Whatever a node kept of the cancelled upload, no Bootstrap was sent to restore it.
    expect(recoverCalls(l)).toBe(0);
    expect(l.fakes.every((f) => f.restoredFrom === null)).toBe(true);
    expect(lockIn(l).state).toBe('recovering');
  });
});
