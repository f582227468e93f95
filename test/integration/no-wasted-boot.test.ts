// No machine is sent an installer whose config cannot be served. For each cause (no endpoint, a
// broken patch, an unsupported version, missing assets) the machine gets a wait script saying why,
// the reason is on its record and timeline, and it installs at its next request once the operator
// fixes the cause. Real HTTP against a real Genesis and a real SQLite file.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { DB_FILE } from '../../src/inventory/store.ts';
import { nodeScriptUrl, stageTalosPlaceholders, startGenesis, TEST_TOKEN, type TestGenesis } from '../helpers/genesis-app.ts';
import { BIN } from '../helpers/genesis-process.ts';
import { run } from '../helpers/run.ts';

const MAC = '52:54:00:0f:00:01';
const running: TestGenesis[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const g of running.splice(0)) await g.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function start(env: Record<string, string> = {}, d: { dataDir?: string; assetsDir?: string } = {}): Promise<TestGenesis> {
  const g = await startGenesis(env, d);
  running.push(g);
  return g;
}
const script = async (g: TestGenesis) => (await fetch(nodeScriptUrl(g.url, MAC))).text();
const node = async (g: TestGenesis) => (await (await g.api('GET', `/nodes/${MAC}`)).json()) as { state: string; waiting: string | null };
const events = async (g: TestGenesis) => ((await (await g.api('GET', `/nodes/${MAC}/events`)).json()) as { events: Array<{ type: string; detail: Record<string, unknown> }> }).events;

function expectWaiting(s: string, why: string): void {
  expect(s).not.toContain('talos.config=');
  expect(s).not.toMatch(/^kernel /m);
  expect(s).toContain(why);
  expect(s).toMatch(/^chain --replace --autofree http:\/\/127\.0\.0\.1:\d+\/boot\.ipxe$/m);
}

describe('a machine whose config cannot be served waits, and installs once the cause is fixed', () => {
  it('no cluster endpoint: waits; after genesis.yaml/env gains one and Genesis restarts, installs', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'genesis-nwb-'));
    dirs.push(work);
    const dataDir = path.join(work, 'data');
    const assetsDir = path.join(work, 'assets');
    stageTalosPlaceholders(assetsDir);
    const g = await start({ GENESIS_CLUSTER_ENDPOINT: '' }, { dataDir, assetsDir });
    expect((await g.api('PUT', `/nodes/${MAC}`, { role: 'worker' })).status).toBe(201);

    const first = await script(g);
    expectWaiting(first, 'waits: its machine config cannot be rendered: cluster.endpoint is not set');
    // Asked again: same answer, one record of it.
    expectWaiting(await script(g), 'cluster.endpoint is not set');
    const n = await node(g);
    expect(n.state).toBe('assigned');
    expect(n.waiting).toMatch(/^waiting: its machine config cannot be rendered: cluster\.endpoint is not set/);
    expect((await events(g)).filter((e) => e.type === 'boot-waiting')).toHaveLength(1);
    // No token was issued, so no config URL exists for anyone to fetch.
    expect((await events(g)).some((e) => e.type === 'script-served')).toBe(false);

    await g.close();
    running.splice(running.indexOf(g), 1);
    const fixed = await start({}, { dataDir, assetsDir });
    const s = await script(fixed);
    expect(s).toMatch(/^kernel http:\/\/127\.0\.0\.1:\d+\/assets\/talos\/v1\.14\.0\/amd64\/vmlinuz /m);
    expect(s).toMatch(/talos\.config=http:\/\/127\.0\.0\.1:\d+\/talos\/config\/52:54:00:0f:00:01\/[0-9a-f]{64}/);
    expect((await node(fixed)).waiting).toBeNull();
    // Newest first: released, after being held with the reason.
    const waits = (await events(fixed)).filter((e) => e.type === 'boot-waiting');
    expect(waits.map((e) => e.detail['reason'])).toEqual([null, expect.stringMatching(/cluster\.endpoint is not set/)]);
  });

  it('a broken cluster patch file: waits with the reason; fixing the file is enough (no restart)', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'genesis-nwb-'));
    dirs.push(work);
    const patch = path.join(work, 'cluster.yaml');
    writeFileSync(patch, 'machine:\n  kubelet:\n    extraArgs:\n      max-pods: "150"\n');
    const g = await start({ GENESIS_TALOS_PATCHES_CLUSTER: patch });
    await g.api('PUT', `/nodes/${MAC}`, { role: 'worker' });
    expect(await script(g)).toContain('talos.config=');

    // The operator edits the file and gets it wrong.
    writeFileSync(patch, 'machine:\n  kubelet:\n    extraArgz:\n      max-pods: "150"\n');
    expectWaiting(await script(g), 'waits: its machine config cannot be rendered:');
    expect((await node(g)).waiting).toContain('unknown field "extraArgz"');
    // A token issued by the earlier script is no way around it: the config is refused while it cannot render.

    writeFileSync(patch, 'machine:\n  kubelet:\n    extraArgs:\n      max-pods: "150"\n');
    expect(await script(g)).toContain('talos.config=');
    expect((await node(g)).waiting).toBeNull();
  });

  it('a node patch that breaks with a cluster change: waits; fixing the node patch through the API installs', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'genesis-nwb-'));
    dirs.push(work);
    const patch = path.join(work, 'cluster.yaml');
    writeFileSync(patch, 'apiVersion: v1alpha1\nkind: SysctlConfig\nparams:\n  vm.swappiness: "10"\n');
    const g = await start({ GENESIS_TALOS_PATCHES_CLUSTER: patch });
    // Valid when stored: the cluster patch did not set the key yet.
    writeFileSync(patch, 'machine:\n  sysctls:\n    net.core.somaxconn: "1024"\n');
    expect((await g.api('PUT', `/nodes/${MAC}`, { role: 'worker', configPatch: 'machine:\n  sysctls:\n    vm.swappiness: "60"\n' })).status).toBe(201);
    // Now the cluster patch sets the same key in the document: two values for one setting.
    writeFileSync(patch, 'apiVersion: v1alpha1\nkind: SysctlConfig\nparams:\n  vm.swappiness: "10"\n');
    expectWaiting(await script(g), 'waits: its machine config cannot be rendered:');
    expect((await node(g)).waiting).toContain('vm.swappiness');
    expect((await g.api('PATCH', `/nodes/${MAC}`, { configPatch: null })).status).toBe(200);
    expect(await script(g)).toContain('talos.config=');
  });

  it('an unsupported Talos version on a record (from an older Genesis): waits saying so; setting a supported one installs', async () => {
    const g = await start();
    await g.api('PUT', `/nodes/${MAC}`, { role: 'worker' });
    // The API refuses such a version now; a record from before could still hold one.
    const db = new Database(path.join(g.dataDir, DB_FILE));
    db.prepare('UPDATE nodes SET talos_version = ? WHERE mac = ?').run('v1.8.0', MAC);
    db.close();
    const s = await script(g);
    expectWaiting(s, 'cannot boot 52:54:00:0f:00:01: Talos v1.8.0: Genesis writes configs for v1.11 to v1.14');
    expect((await node(g)).waiting).toBe('cannot boot: Talos v1.8.0: Genesis writes configs for v1.11 to v1.14');
    expect((await g.api('PATCH', `/nodes/${MAC}`, { talosVersion: 'v1.13.9' })).status).toBe(200);
    expect(await script(g)).toMatch(/\/assets\/talos\/v1\.13\.9\/amd64\/vmlinuz /);
  });

  it('missing assets: waits naming the command; once they are there, installs', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'genesis-nwb-'));
    dirs.push(work);
    const assetsDir = path.join(work, 'assets');
    mkdirSync(assetsDir, { recursive: true });
    const g = await start({}, { assetsDir });
    await g.api('PUT', `/nodes/${MAC}`, { role: 'worker' });
    expectWaiting(await script(g), 'genesis assets fetch --talos v1.14.0 --arch amd64');
    expect((await node(g)).waiting).toBe('waiting for the Talos v1.14.0 amd64 kernel and initramfs (genesis assets fetch --talos v1.14.0 --arch amd64)');
    stageTalosPlaceholders(assetsDir, ['v1.14.0'], ['amd64']);
    expect(await script(g)).toContain('talos.config=');
  });

  it('genesis nodes list and genesis doctor name the machine and the reason', async () => {
    const g = await start({ GENESIS_CLUSTER_ENDPOINT: '' });
    await g.api('PUT', `/nodes/${MAC}`, { role: 'worker', hostname: 'w-9' });
    await script(g);
    const env = { PATH: process.env.PATH, GENESIS_URL: g.url, GENESIS_API_TOKEN: TEST_TOKEN, GENESIS_DATA_DIR: g.dataDir };
    const list = await run(process.execPath, [BIN, 'nodes', 'list'], { env });
    expect(list.code).toBe(0);
    const [header, row] = list.stdout.split('\n');
    expect(header).toMatch(/ WAITING$/);
    expect(row).toMatch(/^52:54:00:0f:00:01 .* waiting: its machine config cannot be rendered: cluster\.endpoint is not set/);

    const doctor = await run(process.execPath, [BIN, 'doctor', '--json'], {
      env: { ...env, GENESIS_ASSETS_DIR: g.assetsDir, GENESIS_ADVERTISE_ADDR: '127.0.0.1', GENESIS_HTTP_PORT: '0', GENESIS_TFTP_ENABLED: 'false', GENESIS_EVENTS_SINK_PORT: '0', GENESIS_EVENTS_KERNEL_LOG_PORT: '0' },
    });
    const results = (JSON.parse(doctor.stdout) as { results: Array<{ id: string; status: string; title: string; detail?: string }> }).results;
    expect(results.find((r) => r.id === 'cluster-endpoint')).toMatchObject({ status: 'fail' });
    expect(results.find((r) => r.id === `held-${MAC}`)).toMatchObject({
      status: 'warn',
      title: `${MAC} (w-9) is assigned but not installing`,
      detail: expect.stringMatching(/^waiting: its machine config cannot be rendered: cluster\.endpoint is not set/),
    });
  });
});
