// Scheduled and on-demand etcd snapshots against the fake Talos apid (mTLS, EtcdSnapshot as a
// server stream with etcd's appended hash): what lands on disk, what the CLI, API, timeline and
// metrics say, and that a node dying mid-stream, a full disk or no healthy etcd never cost the
// snapshots already taken.

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSecrets } from '../../src/talos/secrets.ts';
import { fakeDatabaseBytes, FakeTalos, type FakeTalosOptions } from '../helpers/fake-talos.ts';
import { FIXTURE_SECRETS, startGenesis, TEST_TOKEN, type TestGenesis } from '../helpers/genesis-app.ts';
import { BIN } from '../helpers/genesis-process.ts';
import { run } from '../helpers/run.ts';
import { until } from '../helpers/wait.ts';

const bundle = parseSecrets(readFileSync(FIXTURE_SECRETS, 'utf8'));
const MAC = '52:54:00:00:40:01';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** One control plane (a fake apid on 127.0.40.<n>) registered with its static address, and a Genesis that reaches it. */
async function lab(n: number, fake: Partial<FakeTalosOptions>, env: Record<string, string> = {}): Promise<{ g: TestGenesis; talos: FakeTalos; backups: string }> {
  const host = `127.0.40.${n}`;
  const talos = await FakeTalos.start({ host, port: 0, bundle, hostname: 'cp-1', etcdMembers: ['cp-1'], ...fake });
  cleanup.push(() => talos.die());
  const backups = env.GENESIS_BACKUP_DIR ?? path.join(mkdtempSync(path.join(tmpdir(), 'genesis-backups-')), 'snapshots');
  const g = await startGenesis({
    GENESIS_CLUSTER_NAME: 'lab',
    GENESIS_BOOTSTRAP_TALOS_API_PORT: String(talos.port),
    GENESIS_BOOTSTRAP_POLL_INTERVAL_MS: '50',
    GENESIS_BOOTSTRAP_SETTLE_MS: '0',
    GENESIS_BOOTSTRAP_RPC_TIMEOUT_MS: '2000',
    GENESIS_BACKUP_DIR: backups,
    ...env,
  });
  cleanup.push(() => g.close());
  expect((await g.api('PUT', `/nodes/${MAC}`, { role: 'controlplane', hostname: 'cp-1', network: { address: `${host}/8` } })).status).toBeLessThan(300);
  return { g, talos, backups };
}

const genesis = (g: TestGenesis, args: string[]) =>
  run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, GENESIS_URL: g.url, GENESIS_API_TOKEN: TEST_TOKEN, GENESIS_DATA_DIR: g.dataDir } });

/** The bytes the fake streams for `pages` pages: the database, then its sha256. */
function expectedSnapshot(pages: number): Buffer {
  const db = fakeDatabaseBytes(0, pages * 4096);
  return Buffer.concat([db, createHash('sha256').update(db).digest()]);
}

async function metric(g: TestGenesis, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${g.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line ? Number(line.split(' ').pop()) : undefined;
}

describe('etcd snapshots', () => {
  it('backup now stores the stream byte for byte with its sha256; list, verify, timeline and metrics agree', async () => {
    const { g, talos, backups } = await lab(2, { snapshot: { pages: 40, chunkSize: 5000 } }, { GENESIS_BACKUP_ENABLED: 'false' });
    expect(await metric(g, 'genesis_etcd_backup_last_success_timestamp_seconds')).toBeUndefined();

    const now = await genesis(g, ['backup', 'now']);
    expect(now.stderr).toBe('');
    expect(now.stdout).toMatch(/^stored etcd-lab-\d{8}T\d{6}Z \(0\.2 MiB, sha256 [0-9a-f]{64}\) from cp-1\n$/);
    const name = /stored (\S+)/.exec(now.stdout)![1]!;
    const want = expectedSnapshot(40);
    expect(readFileSync(path.join(backups, `${name}.db`)).equals(want)).toBe(true);
    const meta = JSON.parse(readFileSync(path.join(backups, `${name}.json`), 'utf8'));
    expect(meta).toMatchObject({
      name,
      cluster: 'lab',
      size: want.length,
      sha256: createHash('sha256').update(want).digest('hex'),
      etcdIntegrity: 'hash-ok',
      source: { mac: MAC, hostname: 'cp-1', address: '127.0.40.2', talosVersion: 'v1.13.9' },
    });
    expect(talos.snapshotCalls).toBe(1);
    expect(await (await g.api('GET', `/backups/${name}`)).json()).toEqual(meta);
    expect((await g.api('GET', '/backups/..%2F..%2Fsecrets')).status).toBe(404);

    const list = await genesis(g, ['backup', 'list']);
    expect(list.stdout).toContain('schedule  off (backup.enabled: false)');
    expect(list.stdout).toContain(`${name}  ${meta.takenAt}`);
    expect(await genesis(g, ['backup', 'verify', name])).toMatchObject({ code: 0, stdout: `${name}: OK (${want.length} bytes, sha256 ${meta.sha256}, etcd hash ok)\n` });

    const events = (await (await g.api('GET', `/nodes/${MAC}/events`)).json()) as { events: Array<{ type: string; actor: string; detail: Record<string, unknown> }> };
    expect(events.events.find((e) => e.type === 'etcd-snapshot')).toMatchObject({ actor: 'api:cli', detail: { name, size: want.length } });
    expect(await metric(g, 'genesis_etcd_backup_last_size_bytes')).toBe(want.length);
    expect(await metric(g, 'genesis_etcd_backup_last_success_timestamp_seconds')).toBe(Date.parse(meta.takenAt) / 1000);
    expect((await (await fetch(`${g.url}/metrics`)).text()).match(/^genesis_etcd_backup_runs_total\{result="ok"\} 1$/m)).not.toBeNull();

    // A flipped byte on disk is found, and the exit code says so.
    const file = path.join(backups, `${name}.db`);
    const bytes = readFileSync(file);
    bytes[1000]! ^= 0x40;
    writeFileSync(file, bytes);
    const damaged = await genesis(g, ['backup', 'verify', name]);
    expect(damaged.code).toBe(1);
    expect(damaged.stdout).toMatch(new RegExp(`^${name}: DAMAGED: sha256 is [0-9a-f]{64}, ${meta.sha256} when taken; etcd's appended sha256 does not match the database\\n$`));
    expect((await genesis(g, ['backup', 'verify', 'nope'])).stderr).toBe('genesis backup verify: no snapshot named "nope"\n');
  });

  it('a node that dies mid-stream fails the run cleanly: no partial file, the earlier snapshot untouched', async () => {
    const { g, talos, backups } = await lab(3, { snapshot: { pages: 64, chunkSize: 8192 } }, { GENESIS_BACKUP_ENABLED: 'false' });
    const first = await g.api('POST', '/backups');
    expect(first.status).toBe(201);
    const good = ((await first.json()) as { snapshot: { name: string } }).snapshot.name;
    const before = readFileSync(path.join(backups, `${good}.db`));

    talos.opts.snapshot = { pages: 64, chunkSize: 8192, dieAfterBytes: 100_000 };
    const res = await g.api('POST', '/backups');
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: string; message: string };
    expect(body.error).toBe('backup_failed');
    expect(body.message).toMatch(/^EtcdSnapshot: /);
    expect(readdirSync(backups).sort()).toEqual([`${good}.db`, `${good}.json`]);
    expect(readFileSync(path.join(backups, `${good}.db`)).equals(before)).toBe(true);
    expect(((await (await g.api('GET', '/backups')).json()) as { status: unknown }).status).toMatchObject({ failures: 1, lastFailure: { error: body.message }, lastSuccess: { name: good } });
    const events = (await (await g.api('GET', `/nodes/${MAC}/events`)).json()) as { events: Array<{ type: string }> };
    expect(events.events.map((e) => e.type)).toContain('etcd-snapshot-failed');
  });

  it('a stream whose etcd hash does not match is refused, not stored', async () => {
    const { g, backups } = await lab(4, { snapshot: { pages: 8, corrupt: true } }, { GENESIS_BACKUP_ENABLED: 'false' });
    const res = await g.api('POST', '/backups');
    expect(res.status).toBe(502);
    expect(((await res.json()) as { message: string }).message).toMatch(/failed etcd's own sha256 check/);
    expect(readdirSync(backups)).toEqual([]);
  });

  it('with no healthy etcd anywhere the answer is 409 with each control plane\'s reason', async () => {
    const { g, talos } = await lab(5, { etcdMembers: [] }, { GENESIS_BACKUP_ENABLED: 'false' });
    const res = await g.api('POST', '/backups');
    expect(res.status).toBe(409);
    expect(await res.json()).toEqual({ error: 'backup_unavailable', message: `no control plane has a healthy etcd to snapshot: ${MAC} (127.0.40.5): etcd Preparing, not healthy` });
    expect(talos.snapshotCalls).toBe(0);
  });

  it('a full disk discards the snapshot with a clear reason and keeps the earlier ones', async (ctx) => {
    const mnt = mkdtempSync(path.join(tmpdir(), 'genesis-full-'));
    const mount = await run('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', mnt]);
    if (mount.code !== 0) ctx.skip(`cannot mount a small tmpfs here (${mount.stderr.trim()}): needs root`);
    cleanup.push(() => run('umount', ['-l', mnt]));
    const backups = path.join(mnt, 'snapshots');
    mkdirSync(backups);
    const { g, talos } = await lab(6, { snapshot: { pages: 16 } }, { GENESIS_BACKUP_ENABLED: 'false', GENESIS_BACKUP_DIR: backups });
    const first = await g.api('POST', '/backups');
    expect(first.status).toBe(201);
    const good = ((await first.json()) as { snapshot: { name: string } }).snapshot.name;

    talos.opts.snapshot = { pages: 128 }; // 512 KiB: more than the 256 KiB file system holds
    const res = await g.api('POST', '/backups');
    expect(res.status).toBe(502);
    expect(((await res.json()) as { message: string }).message).toBe(`the disk holding ${backups} is full (ENOSPC); the snapshot was discarded and the earlier ones are untouched`);
    expect(readdirSync(backups).sort()).toEqual([`${good}.db`, `${good}.json`]);
    expect(await genesis(g, ['backup', 'verify', good])).toMatchObject({ code: 0 });
  });

  it('the schedule takes the first snapshot once the cluster is bootstrapped, then waits an interval', async () => {
    const { g, talos } = await lab(7, { snapshot: { pages: 4 } });
    // The existing etcd is adopted as bootstrapped, and the schedule (no snapshot on disk yet) runs at once.
    const status = await until(async () => {
      const s = (await (await g.api('GET', '/backups')).json()) as { status: { lastSuccess: { name: string } | null; nextAt: string | null; running: boolean } };
      // The files land a moment before the run ends and the next one is scheduled.
      return s.status.lastSuccess && !s.status.running ? s.status : undefined;
    }, 'the first scheduled snapshot');
    expect(Date.parse(status.nextAt!) - Date.parse((status.lastSuccess as unknown as { takenAt: string }).takenAt)).toBeGreaterThanOrEqual(24 * 3600_000 - 60_000);
    expect(talos.snapshotCalls).toBe(1);
    const events = (await (await g.api('GET', `/nodes/${MAC}/events`)).json()) as { events: Array<{ type: string; actor: string }> };
    expect(events.events.find((e) => e.type === 'etcd-snapshot')?.actor).toBe('schedule');
  });

  it('with a passphrase file, the secrets bundle lies encrypted beside each snapshot and opens with openssl alone', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-pass-'));
    const passFile = path.join(dir, 'passphrase');
    writeFileSync(passFile, 'correct horse battery staple\nsecond line is ignored\n', { mode: 0o600 });
    const { g, backups } = await lab(9, { snapshot: { pages: 4 } }, { GENESIS_BACKUP_ENABLED: 'false', GENESIS_BACKUP_SECRETS_PASSPHRASE_FILE: passFile });
    const res = await g.api('POST', '/backups');
    expect(res.status).toBe(201);
    const { snapshot } = (await res.json()) as { snapshot: { name: string; secretsFile: string } };
    expect(snapshot.secretsFile).toBe(`${snapshot.name}.secrets.enc`);
    const enc = path.join(backups, snapshot.secretsFile);
    expect(statSync(enc).mode & 0o777).toBe(0o600);
    // Not readable as it is…
    expect(readFileSync(enc).includes(Buffer.from(bundle.certs.k8s.key))).toBe(false);
    // …and openssl, with nothing from Genesis but the documented command, gets the bundle back.
    const out = await run('openssl', ['enc', '-d', '-aes-256-cbc', '-pbkdf2', '-iter', '600000', '-md', 'sha256', '-in', enc, '-pass', `file:${passFile}`]);
    expect(out.code, out.stderr).toBe(0);
    expect(parseSecrets(out.stdout)).toEqual(bundle);
    const wrong = path.join(dir, 'wrong');
    writeFileSync(wrong, 'not the passphrase at all\n');
    const refused = await run('openssl', ['enc', '-d', '-aes-256-cbc', '-pbkdf2', '-iter', '600000', '-md', 'sha256', '-in', enc, '-pass', `file:${wrong}`]);
    expect(refused.code === 0 && refused.stdout.includes('certs:')).toBe(false);
    expect(((await (await g.api('GET', '/backups')).json()) as { status: { secrets: string } }).status.secrets).toMatch(/^encrypted beside each snapshot/);
  });

  it('without a passphrase the status says the bundle is the operator\'s to keep; a short one stops the start', async () => {
    const { g } = await lab(10, {}, { GENESIS_BACKUP_ENABLED: 'false' });
    expect(((await (await g.api('GET', '/backups')).json()) as { status: { secrets: string } }).status.secrets).toMatch(/^not backed up by Genesis: set backup.secrets_passphrase_file, or keep `genesis secrets export` safe yourself/);
    const short = path.join(mkdtempSync(path.join(tmpdir(), 'genesis-pass-')), 'short');
    writeFileSync(short, 'hunter2\n');
    const failed = await startGenesis({ GENESIS_BACKUP_SECRETS_PASSPHRASE_FILE: short }).catch((e: Error) => e);
    expect(String(failed)).toContain(`invalid configuration: backup.secrets_passphrase_file (${short}): the first line must be a passphrase of 12 characters or more`);
  });

  it('is behind the API token', async () => {
    const { g } = await lab(8, {}, { GENESIS_BACKUP_ENABLED: 'false' });
    expect((await fetch(`${g.url}/api/v1/backups`)).status).toBe(401);
    expect((await fetch(`${g.url}/api/v1/backups`, { method: 'POST' })).status).toBe(401);
  });
});
