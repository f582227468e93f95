// Recovery from an etcd snapshot, end to end against three fake Talos apids (mTLS, EtcdSnapshot,
// EtcdRecover as a client stream, Bootstrap with recover_etcd): a snapshot is taken from the
// healthy cluster, every control plane loses etcd, and `genesis cluster recover` restores it on
// exactly one of them, once. And everything that must refuse does.

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterStatus } from '../../src/bootstrap/orchestrator.ts';
import { parseSecrets } from '../../src/talos/secrets.ts';
import { startFakes } from '../helpers/fake-talos.ts';
import { FIXTURE_SECRETS, startGenesis, TEST_TOKEN, type TestGenesis } from '../helpers/genesis-app.ts';
import { BIN } from '../helpers/genesis-process.ts';
import { run } from '../helpers/run.ts';
import { until } from '../helpers/wait.ts';

const bundle = parseSecrets(readFileSync(FIXTURE_SECRETS, 'utf8'));
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const cli = (g: TestGenesis, args: string[]) =>
  run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, GENESIS_URL: g.url, GENESIS_API_TOKEN: TEST_TOKEN, GENESIS_DATA_DIR: g.dataDir } });

const cluster = async (g: TestGenesis) => (await (await g.api('GET', '/cluster')).json()) as ClusterStatus;

describe('genesis cluster recover', () => {
  it('restores the snapshot on one control plane, once, after every control plane lost etcd', async () => {
    const ips = [2, 3, 4].map((h) => `127.0.70.${h}`);
    const { port, fakes } = await startFakes(ips, (host, p) => ({ host, port: p, bundle, hostname: `cp-${ips.indexOf(host) + 1}`, etcdMembers: ['cp-1', 'cp-2', 'cp-3'] }));
    cleanup.push(() => fakes.forEach((f) => f.die()));
    const g = await startGenesis({
      GENESIS_CLUSTER_NAME: 'lab',
      GENESIS_BACKUP_ENABLED: 'false',
      GENESIS_BOOTSTRAP_TALOS_API_PORT: String(port),
      GENESIS_BOOTSTRAP_POLL_INTERVAL_MS: '50',
      GENESIS_BOOTSTRAP_SETTLE_MS: '0',
      GENESIS_BOOTSTRAP_RETRY_AFTER_MS: '300',
      GENESIS_BOOTSTRAP_RPC_TIMEOUT_MS: '2000',
    });
    cleanup.push(() => g.close());
    const macs = ips.map((_, i) => `52:54:00:00:70:0${i + 1}`);
    for (const [i, mac] of macs.entries()) {
      expect((await g.api('PUT', `/nodes/${mac}`, { role: 'controlplane', hostname: `cp-${i + 1}`, network: { address: `${ips[i]}/8` } })).status).toBe(201);
      expect((await g.api('POST', `/nodes/${mac}/installed`)).status).toBe(200);
    }
    // The running cluster is adopted, and a snapshot taken from it.
    await until(async () => (await cluster(g)).state === 'bootstrapped' || undefined, 'the existing cluster to be found');
    const taken = await g.api('POST', '/backups');
    expect(taken.status).toBe(201);
    const { snapshot } = (await taken.json()) as { snapshot: { name: string; sha256: string } };
    const file = path.join(g.dataDir, 'backups', `${snapshot.name}.db`);

    // While etcd runs anywhere, a recovery would start a second cluster: refused.
    const early = await cli(g, ['cluster', 'recover', '--from', snapshot.name, '--confirm', 'lab']);
    expect(early.code, early.stdout).toBe(1);
    expect(early.stderr).toMatch(/^genesis cluster recover: control plane\(s\) 52:54:00:00:70:01 \(127\.0\.70\.2\), .* still report etcd members; recovery is for when no control plane has etcd/);
    const wrong = await g.api('POST', '/cluster/recover', { snapshot: snapshot.name, confirm: 'other' });
    expect(wrong.status).toBe(400);
    // One answer that serves both the CLI and the API: the name, and the command.
    expect(((await wrong.json()) as { message: string }).message).toContain('--confirm lab');
    expect(await (await g.api('POST', '/cluster/recover', { snapshot: 'etcd-lab-20200101T000000Z', confirm: 'lab' })).json()).toEqual({
      error: 'not_found',
      message: 'no snapshot named "etcd-lab-20200101T000000Z" (genesis backup list shows them)',
    });
    expect((await g.api('POST', '/cluster/recover', { snapshot: '../../secrets', confirm: 'lab' })).status).toBe(404);
    expect((await cli(g, ['cluster', 'recover', '--confirm', 'lab'])).stderr).toBe('genesis cluster recover: recover needs --from <snapshot> (genesis backup list shows them)\n');

    // The disaster: every control plane lost etcd.
    for (const f of fakes) f.members = [];
    const before = (await cluster(g)).epoch;
    const asked = await cli(g, ['cluster', 'recover', '--from', snapshot.name, '--confirm', 'lab']);
    expect(asked.stderr).toBe('');
    expect(asked.stdout).toContain('state     recovering');
    expect(asked.stdout).toContain(`recovery  from ${snapshot.name}`);
    // A second request while it runs is refused, whatever it names.
    const second = await g.api('POST', '/cluster/recover', { snapshot: snapshot.name, confirm: 'lab' });
    if (second.status !== 409) expect(await second.json()).toBeUndefined();

    const done = await until(async () => {
      const s = await cluster(g);
      return s.state === 'bootstrapped' ? s : undefined;
    }, 'the recovery to finish');
    expect(done.epoch).toBeGreaterThan(before);
    expect(done.recovery).toBeNull();
    expect(done.history[0]!.note).toMatch(new RegExp(`^recovered from ${snapshot.name}: `));
    expect(done.history.map((h) => h.to).slice(0, 4).reverse()).toEqual(['recovering', 'recovering', 'bootstrap-sent', 'bootstrapped']);

    // Exactly one Bootstrap, with recover_etcd, to the holder, which restored exactly the bytes stored.
    const recovering = fakes.flatMap((f) => f.bootstrapRequests.filter((r) => r.recoverEtcd));
    expect(recovering).toEqual([{ recoverEtcd: true, recoverSkipHashCheck: false }]);
    expect(fakes.reduce((n, f) => n + f.bootstrapCalls, 0)).toBe(1);
    const holder = fakes[macs.indexOf(done.holder!.mac)]!;
    expect(holder.restoredFrom).toBe(createHash('sha256').update(readFileSync(file)).digest('hex'));
    expect(holder.restoredFrom).toBe(snapshot.sha256);
    expect(fakes.filter((f) => f.recoverUploads > 0)).toEqual([holder]);
    const events = (await (await g.api('GET', `/nodes/${done.holder!.mac}/events`)).json()) as { events: Array<{ type: string; detail: Record<string, unknown> }> };
    expect(events.events.map((e) => e.type)).toEqual(expect.arrayContaining(['etcd-recover-uploaded', 'bootstrap-sent', 'bootstrapped']));
    expect(events.events.find((e) => e.type === 'bootstrap-sent')!.detail).toMatchObject({ recoverFrom: snapshot.name });

    // Recovered: etcd runs again, so another recovery is refused.
    expect((await g.api('POST', '/cluster/recover', { snapshot: snapshot.name, confirm: 'lab' })).status).toBe(409);
  });

  it('refuses a damaged snapshot before touching the lock', async () => {
    const ips = ['127.0.71.2'];
    const { port, fakes } = await startFakes(ips, (host, p) => ({ host, port: p, bundle, hostname: 'cp-1', etcdMembers: ['cp-1'] }));
    cleanup.push(() => fakes.forEach((f) => f.die()));
    const g = await startGenesis({ GENESIS_CLUSTER_NAME: 'lab', GENESIS_BACKUP_ENABLED: 'false', GENESIS_BOOTSTRAP_TALOS_API_PORT: String(port), GENESIS_BOOTSTRAP_POLL_INTERVAL_MS: '50', GENESIS_BOOTSTRAP_SETTLE_MS: '0' });
    cleanup.push(() => g.close());
    expect((await g.api('PUT', '/nodes/52:54:00:00:71:01', { role: 'controlplane', hostname: 'cp-1', network: { address: '127.0.71.2/8' } })).status).toBe(201);
    await until(async () => (await cluster(g)).state === 'bootstrapped' || undefined, 'the existing cluster to be found');
    const { snapshot } = (await (await g.api('POST', '/backups')).json()) as { snapshot: { name: string } };
    fakes[0]!.members = [];
    const file = path.join(g.dataDir, 'backups', `${snapshot.name}.db`);
    const bytes = readFileSync(file);
    bytes[100]! ^= 1;
    writeFileSync(file, bytes);
    const res = await g.api('POST', '/cluster/recover', { snapshot: snapshot.name, confirm: 'lab' });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { error: string; message: string })).toMatchObject({ error: 'snapshot_damaged', message: expect.stringMatching(new RegExp(`^${snapshot.name} is damaged: sha256 is`)) });
    expect((await cluster(g)).state).toBe('bootstrapped');
    expect(fakes[0]!.recoverUploads).toBe(0);
  });

  it('refuses while a control plane does not answer: silence is not proof that it has no etcd', async () => {
    const ips = ['127.0.72.2', '127.0.72.3'];
    const { port, fakes } = await startFakes(ips, (host, p) => ({ host, port: p, bundle, hostname: `cp-${ips.indexOf(host) + 1}`, etcdMembers: ['cp-1', 'cp-2'] }));
    cleanup.push(() => fakes.forEach((f) => f.die()));
    const g = await startGenesis({ GENESIS_CLUSTER_NAME: 'lab', GENESIS_BACKUP_ENABLED: 'false', GENESIS_BOOTSTRAP_TALOS_API_PORT: String(port), GENESIS_BOOTSTRAP_POLL_INTERVAL_MS: '50', GENESIS_BOOTSTRAP_SETTLE_MS: '0', GENESIS_BOOTSTRAP_RPC_TIMEOUT_MS: '2000' });
    cleanup.push(() => g.close());
    for (const [i, ip] of ips.entries()) expect((await g.api('PUT', `/nodes/52:54:00:00:72:0${i + 1}`, { role: 'controlplane', network: { address: `${ip}/8` } })).status).toBe(201);
    await until(async () => (await cluster(g)).state === 'bootstrapped' || undefined, 'the existing cluster to be found');
    const { snapshot } = (await (await g.api('POST', '/backups')).json()) as { snapshot: { name: string } };
    fakes[0]!.members = [];
    fakes[1]!.die();
    const res = await g.api('POST', '/cluster/recover', { snapshot: snapshot.name, confirm: 'lab' });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { message: string }).message).toMatch(/^control plane\(s\) 52:54:00:00:72:02 \(127\.0\.72\.3\): .* did not answer, so Genesis cannot tell they have no etcd; power them on, or delete the ones that are gone/);
    expect((await cluster(g)).state).toBe('bootstrapped');
  });
});
