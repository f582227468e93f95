// The fleet file with a running Genesis: the watched directory (an editor's atomic rename, a
// broken file, a git commit in the events), the API refusing what the file owns, `genesis fleet`
// as a real process (export, apply of the export as a no-op, diff's exit codes), and `genesis
// serve` taking the file's cluster settings or refusing to start on a broken file.

import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FleetProblem } from '../../src/fleet/parse.ts';
import { seedSecrets, stageTalosPlaceholders, startGenesis, TEST_TOKEN, type TestGenesis } from '../helpers/genesis-app.ts';
import { BIN, GenesisProcess } from '../helpers/genesis-process.ts';
import { run } from '../helpers/run.ts';

const HEADER = 'apiVersion: genesis.dev/v1alpha1\nkind: Fleet\n';
const A = '52:54:00:0f:00:01';
const B = '52:54:00:0f:00:02';
const SHA = '0123456789abcdef0123456789abcdef01234567';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});
function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
async function genesis(env: Record<string, string> = {}): Promise<TestGenesis> {
  const g = await startGenesis(env);
  cleanup.push(() => g.close());
  return g;
}

/** As an editor saves: write a temporary file beside it, then rename it over the old one. */
function saveAtomically(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.swp`);
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** A Genesis watching a new fleet directory whose fleet.yaml lists no machine yet. */
async function watchingEmptyFleet(name: string): Promise<{ file: string; g: TestGenesis }> {
  const dir = tempDir(`genesis-fleet-${name}-`);
  const file = path.join(dir, 'fleet.yaml');
  writeFileSync(file, `${HEADER}machines: []\n`);
  return { file, g: await genesis({ GENESIS_FLEET_PATH: dir }) };
}

const node = async (g: TestGenesis, mac: string) => (await (await g.api('GET', `/nodes/${mac}`)).json()) as Record<string, unknown>;

describe('a watched fleet directory', () => {
  it('is applied at start and on every save; what it sets the API cannot change; a broken save changes nothing', async () => {
    const dir = tempDir('genesis-fleet-dir-');
    // A git checkout: the commit goes into each event.
    mkdirSync(path.join(dir, '.git/refs/heads'), { recursive: true });
    writeFileSync(path.join(dir, '.git/HEAD'), 'ref: refs/heads/main\n');
    writeFileSync(path.join(dir, '.git/refs/heads/main'), `${SHA}\n`);
    const file = path.join(dir, 'fleet.yaml');
    writeFileSync(file, `${HEADER}machines:\n  - mac: ${A}\n    role: worker\n`);
    const g = await genesis({ GENESIS_FLEET_PATH: dir });
    const fleet = g.app.fleet!;

    expect(await node(g, A)).toMatchObject({ role: 'worker', fleetFields: ['role'] });
    const status = (await (await g.api('GET', '/fleet')).json()) as Record<string, unknown>;
    expect(status).toMatchObject({ source: dir, watching: true, applied: { commit: SHA, changed: 1 }, failed: null });

    // Fields the file does not set stay the API's; the ones it sets are refused, naming the file.
    expect((await g.api('PATCH', `/nodes/${A}`, { hostname: 'w-api' })).status).toBe(200);
    const refused = await g.api('PATCH', `/nodes/${A}`, { role: 'controlplane' });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toEqual({ error: 'owned_by_fleet_file', message: `role of ${A} is set by the fleet file (${dir}); change it there`, fields: ['role'] });
    // The same value again is no change (the dashboard sends its whole form).
    expect((await g.api('PATCH', `/nodes/${A}`, { role: 'worker', hostname: 'w-api' })).status).toBe(200);
    expect((await g.api('DELETE', `/nodes/${A}`)).status).toBe(409);
    // And apply through the API would fight the watched file.
    expect(await (await g.api('POST', '/fleet/apply', { documents: ['f.yaml'], files: { 'f.yaml': HEADER } })).json()).toMatchObject({ error: 'fleet_watched' });

    // An editor's save: new machine, changed role (not installed yet, so no reinstall needed).
    let applied = once(fleet, 'applied');
    saveAtomically(file, `${HEADER}machines:\n  - mac: ${A}\n    role: controlplane\n    hostname: cp-1\n  - mac: ${B}\n    role: worker\n    labels: {zone: b}\n`);
    await applied;
    expect(await node(g, A)).toMatchObject({ role: 'controlplane', hostname: 'cp-1', fleetFields: ['hostname', 'role'] });
    expect(await node(g, B)).toMatchObject({ role: 'worker', labels: { zone: 'b' } });
    const events = (await (await g.api('GET', `/nodes/${A}/events`)).json()) as { events: Array<{ type: string; actor: string; detail: Record<string, unknown> }> };
    expect(events.events.find((e) => e.type === 'fleet-change' && (e.detail['changes'] as Record<string, unknown>)['role'] === 'controlplane')).toMatchObject({
      actor: 'fleet-file',
      detail: { file: 'fleet.yaml:4:5', commit: SHA },
    });

    // A broken save: reported with file:line:col, nothing changes.
    const before = await (await g.api('GET', '/nodes')).text();
    let failed = once(fleet, 'failed');
    saveAtomically(file, `${HEADER}machines:\n  - mac: ${A}\n    role: controlplane\n    hostname: Bad_Name\n  - mac: ${B}\n    role: controlplane\n`);
    const [problems] = (await failed) as [FleetProblem[]];
    expect(problems).toEqual([{ at: 'fleet.yaml:4:5', message: 'machines[0]: hostname "Bad_Name" is not a valid lower-case RFC 1123 host name' }]);
    expect(await (await g.api('GET', '/nodes')).text()).toBe(before);
    expect(((await (await g.api('GET', '/fleet')).json()) as { failed: unknown }).failed).toMatchObject({ problems });

    // A config that would not render: the same.
    failed = once(fleet, 'failed');
    saveAtomically(file, `${HEADER}machines:\n  - mac: ${A}\n    role: controlplane\n    hostname: cp-1\n  - mac: ${B}\n    role: worker\n    patch:\n      inline:\n        machine: {install: {disk: [1, 2]}}\n`);
    const [unrenderable] = (await failed) as [FleetProblem[]];
    expect(unrenderable[0]).toMatchObject({ at: 'fleet.yaml:7:5', message: expect.stringContaining(`${B}: its config would not render`) });
    expect(await (await g.api('GET', '/nodes')).text()).toBe(before);

    // Fixed: applied; B's entry gone, so its fields are the API's again (and, prune off, it stays).
    applied = once(fleet, 'applied');
    saveAtomically(file, `${HEADER}machines:\n  - mac: ${A}\n    role: controlplane\n    hostname: cp-1\n`);
    await applied;
    expect(await node(g, B)).toMatchObject({ role: 'worker', fleetFields: [] });
    expect((await g.api('PATCH', `/nodes/${B}`, { role: 'controlplane' })).status).toBe(200);
    expect(((await (await g.api('GET', '/fleet')).json()) as { unlisted: string[] }).unlisted).toEqual([B]);
  });

  it('API edits racing a save: the file wins, and once it owns the field every edit is refused', async () => {
    const { file, g } = await watchingEmptyFleet('race');
    expect((await g.api('PUT', `/nodes/${A}`, { role: 'worker' })).status).toBe(201);
    let done = false;
    const applied = once(g.app.fleet!, 'applied').then(() => (done = true));
    const answers: Array<{ role: string; status: number }> = [];
    const edit = async (i: number) => {
      const role = i % 2 ? 'worker' : 'controlplane';
      answers.push({ role, status: (await g.api('PATCH', `/nodes/${A}`, { role })).status });
    };
    // An operator (or a script) keeps flipping the role while the file that sets it is saved.
    const edits = (async () => {
      for (let i = 0; i < 2000 && !done; i++) await edit(i);
      for (let i = 0; i < 20; i++) await edit(i);
    })();
    saveAtomically(file, `${HEADER}machines:\n  - mac: ${A}\n    role: worker\n`);
    await applied;
    await edits;
    expect(await node(g, A)).toMatchObject({ role: 'worker', fleetFields: ['role'] });
    // Every edit was answered 200 until the file owned the role; from then on a change is 409 and
    // the file's own value (worker) is no change, 200. Never a change accepted after the file won.
    const owned = answers.findIndex((a) => a.status === 409);
    expect(owned).toBeGreaterThanOrEqual(0);
    expect(answers.slice(0, owned).every((a) => a.status === 200)).toBe(true);
    expect(answers.slice(owned).map((a) => a.status)).toEqual(answers.slice(owned).map((a) => (a.role === 'worker' ? 200 : 409)));
    expect(await (await g.api('PATCH', `/nodes/${A}`, { role: 'controlplane' })).json()).toMatchObject({ error: 'owned_by_fleet_file' });
  });

  it('a refusal that depends on the inventory is tried again when the file is touched', async () => {
    const { file, g } = await watchingEmptyFleet('retry');
    expect((await g.api('PUT', `/nodes/${B}`, { hostname: 'nas' })).status).toBe(201);
    const failed = once(g.app.fleet!, 'failed');
    saveAtomically(file, `${HEADER}machines:\n  - mac: ${A}\n    role: worker\n    hostname: nas\n`);
    const [problems] = (await failed) as [FleetProblem[]];
    expect(problems).toEqual([{ at: 'fleet.yaml:4:5', message: `hostname nas is held by ${B}, which keeps it` }]);
    expect((await g.api('PATCH', `/nodes/${B}`, { hostname: null })).status).toBe(200);
    const applied = once(g.app.fleet!, 'applied');
    const now = new Date();
    utimesSync(file, now, now);
    await applied;
    expect(await node(g, A)).toMatchObject({ hostname: 'nas', role: 'worker' });
  });

  it('with fleet.prune, machines the file drops are deleted', async () => {
    const dir = tempDir('genesis-fleet-prune-');
    const file = path.join(dir, 'fleet.yaml');
    writeFileSync(file, `${HEADER}machines:\n  - mac: ${A}\n    role: worker\n  - mac: ${B}\n    role: worker\n`);
    const g = await genesis({ GENESIS_FLEET_PATH: file, GENESIS_FLEET_PRUNE: 'true' });
    expect((await g.api('GET', `/nodes/${B}`)).status).toBe(200);
    const applied = once(g.app.fleet!, 'applied');
    saveAtomically(file, `${HEADER}machines:\n  - mac: ${A}\n    role: worker\n`);
    await applied;
    expect((await g.api('GET', `/nodes/${B}`)).status).toBe(404);
    expect((await g.api('GET', `/nodes/${A}`)).status).toBe(200);
  });
});

describe('genesis fleet, as a real process', () => {
  const cli = (g: TestGenesis, args: string[], cwd?: string) =>
    run(process.execPath, [BIN, 'fleet', ...args, '--url', g.url], { cwd, env: { PATH: process.env.PATH, GENESIS_API_TOKEN: TEST_TOKEN, GENESIS_ADVERTISE_ADDR: '127.0.0.1' } });

  it('export, then apply of the export: no change; diff: 0 for none, 1 for changes, 2 for a broken file', async () => {
    const g = await genesis({ GENESIS_CLUSTER_NAME: 'clicked' });
    const work = tempDir('genesis-fleet-cli-');
    // A homelab set up by clicks.
    expect((await g.api('PUT', `/nodes/${A}`, { role: 'controlplane', hostname: 'cp-1', bootstrap: true, labels: { zone: 'a' } })).status).toBe(201);
    expect((await g.api('PUT', `/nodes/${B}`, { role: 'worker', configPatch: 'machine:\n  sysctls:\n    vm.max_map_count: "262144"\n', installDisk: '/dev/nvme0n1' })).status).toBe(201);
    const before = await (await g.api('GET', '/nodes')).json();

    const exported = await cli(g, ['export', '-f', path.join(work, 'fleet.yaml')]);
    expect(exported.code, exported.stderr).toBe(0);
    const text = readFileSync(path.join(work, 'fleet.yaml'), 'utf8');
    expect(text).toContain('name: clicked');
    expect(text).toContain(`- mac: ${B}`);
    // Secrets stay in the data dir: nothing of the bundle, the API token or a join token is exported.
    const bundle = readFileSync(path.join(g.dataDir, 'secrets.yaml'), 'utf8');
    const secretValues = [...bundle.matchAll(/(?:key|secret|token|crt): ([A-Za-z0-9+/=.]{16,})/g)].map((m) => m[1]!);
    expect(secretValues.length).toBeGreaterThan(5);
    for (const v of [...secretValues, TEST_TOKEN]) expect(text).not.toContain(v);
    // Never over an existing file.
    expect((await cli(g, ['export', '-f', path.join(work, 'fleet.yaml')])).code).toBe(1);

    const diff0 = await cli(g, ['diff', '-f', 'fleet.yaml'], work);
    expect(diff0).toMatchObject({ code: 0, stdout: 'no changes\n' });
    const apply0 = await cli(g, ['apply', '-f', 'fleet.yaml'], work);
    expect(apply0).toMatchObject({ code: 0, stdout: 'no changes: the inventory already matches the fleet file\n' });
    const after = (await (await g.api('GET', '/nodes')).json()) as { nodes: Array<Record<string, unknown>> };
    expect(after.nodes.map((n) => ({ ...n, fleetFields: [], updatedAt: null }))).toEqual((before as { nodes: Array<Record<string, unknown>> }).nodes.map((n) => ({ ...n, fleetFields: [], updatedAt: null })));
    expect(after.nodes.find((n) => n['mac'] === A)!['fleetFields']).toEqual(['bootstrap', 'hostname', 'labels', 'role']);

    // A change in the file: diff shows it kubectl-style and exits 1; apply makes it.
    writeFileSync(path.join(work, 'fleet.yaml'), text.replace('zone: a', 'zone: c'));
    const diff1 = await cli(g, ['diff', '-f', 'fleet.yaml'], work);
    expect(diff1.code).toBe(1);
    expect(diff1.stdout).toContain(`--- inventory/${A}\n+++ fleet/${A} (fleet.yaml:`);
    expect(diff1.stdout).toContain('-labels:\n-  zone: a\n+labels:\n+  zone: c\n');
    expect((await cli(g, ['apply', '-f', 'fleet.yaml'], work)).code).toBe(0);
    expect(await node(g, A)).toMatchObject({ labels: { zone: 'c' } });

    // A broken file never reaches the server: file:line:col, exit 2 for diff.
    writeFileSync(path.join(work, 'broken.yaml'), `${HEADER}machines:\n  - mac: ${A}\n    role: chief\n`);
    const broken = await cli(g, ['diff', '-f', 'broken.yaml'], work);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toBe('genesis fleet diff: broken.yaml:5:11: machines[0].role: must be one of "unassigned", "controlplane", "worker"\n');
    // One the server refuses (a role change of an installed machine) names the machine, and changes nothing.
    expect((await g.api('POST', `/nodes/${B}/installed`)).status).toBe(200);
    writeFileSync(path.join(work, 'fleet.yaml'), text.replace('role: worker', 'role: controlplane'));
    const refused = await cli(g, ['apply', '-f', 'fleet.yaml'], work);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${B} is installed as a worker: its role changes to controlplane only with reinstall: true`);
    expect(await node(g, B)).toMatchObject({ role: 'worker', state: 'installed' });
  });
});

describe('a fleet applied through the API', () => {
  it('stays in force across a restart: its rules, defaults and patches are kept in the data dir', async () => {
    const first = await startGenesis();
    const dataDir = first.dataDir;
    const fleet = `${HEADER}patches:\n  worker: {inline: {machine: {sysctls: {fleet.patch: "1"}}}}\nmachines:\n  - match: {macPrefix: "52:54:00:0f:0a"}\n    role: worker\n`;
    const applied = await first.api('POST', '/fleet/apply', { documents: ['fleet.yaml'], files: { 'fleet.yaml': fleet } });
    expect(applied.status).toBe(200);
    await first.app.close();
    const again = await startGenesis({}, { dataDir });
    cleanup.push(async () => {
      await again.close();
      rmSync(path.dirname(dataDir), { recursive: true, force: true });
    });
    expect(await (await again.api('GET', '/fleet')).json()).toMatchObject({ source: 'api', applied: { files: ['fleet.yaml'] }, failed: null });
    // The rule: a new machine with that prefix is a worker from its first request.
    expect((await fetch(`${again.url}/ipxe/node?mac=52:54:00:0f:0a:01&buildarch=x86_64&platform=efi`)).status).toBe(200);
    expect(await node(again, '52:54:00:0f:0a:01')).toMatchObject({ role: 'worker', fleetFields: ['role'] });
    // The worker patch is in its config.
    const config = await (await again.api('GET', '/nodes/52:54:00:0f:0a:01/config')).text();
    expect(config).toContain('fleet.patch: "1"');
  });
});

describe('the commands that judge or render what serve runs with', () => {
  it('config render and doctor count the cluster endpoint and the patches set only in the fleet file', async () => {
    const dir = tempDir('genesis-fleet-render-');
    const dataDir = path.join(dir, 'data');
    seedSecrets(dataDir);
    writeFileSync(path.join(dir, 'fleet.yaml'), `${HEADER}cluster:\n  endpoint: https://192.0.2.10:6443\npatches:\n  worker: {inline: {machine: {sysctls: {from.fleet: "1"}}}}\n`);
    const env = { PATH: process.env.PATH, GENESIS_DATA_DIR: dataDir, GENESIS_ASSETS_DIR: path.join(dir, 'assets'), GENESIS_ADVERTISE_ADDR: '127.0.0.1', GENESIS_FLEET_PATH: path.join(dir, 'fleet.yaml') };
    const render = await run(process.execPath, [BIN, 'config', 'render', '--role', 'worker'], { env, cwd: dir });
    expect(render.code, render.stderr).toBe(0);
    expect(render.stdout).toContain('endpoint: https://192.0.2.10:6443');
    expect(render.stdout).toContain('from.fleet: "1"');
    const doctor = await run(process.execPath, [BIN, 'doctor'], { env, cwd: dir });
    expect(doctor.stdout).toContain('ok    the Kubernetes API endpoint is https://192.0.2.10:6443');
    expect(doctor.stdout).toContain(`ok    the fleet file ${path.join(dir, 'fleet.yaml')} is valid (0 entries)`);
  });
});

describe('genesis serve with a fleet file', () => {
  function serveEnv(dir: string, fleetPath: string): NodeJS.ProcessEnv {
    const dataDir = path.join(dir, 'data');
    seedSecrets(dataDir);
    stageTalosPlaceholders(path.join(dir, 'assets'));
    return {
      GENESIS_DATA_DIR: dataDir,
      GENESIS_ASSETS_DIR: path.join(dir, 'assets'),
      GENESIS_ADVERTISE_ADDR: '127.0.0.1',
      GENESIS_HTTP_HOST: '127.0.0.1',
      GENESIS_HTTP_PORT: '0',
      GENESIS_TFTP_ENABLED: 'false',
      GENESIS_EVENTS_HOST: '127.0.0.1',
      GENESIS_API_TOKEN: TEST_TOKEN,
      GENESIS_CLUSTER_NAME: 'from-env',
      GENESIS_FLEET_PATH: fleetPath,
    };
  }

  it('refuses to start on a broken file, at its line', async () => {
    const dir = tempDir('genesis-fleet-serve-');
    writeFileSync(path.join(dir, 'fleet.yaml'), `${HEADER}cluster:\n  name: Not A Name\n`);
    const out = await run(process.execPath, [BIN, 'serve'], { env: { PATH: process.env.PATH, ...serveEnv(dir, path.join(dir, 'fleet.yaml')) } });
    expect(out.code).toBe(2);
    expect(out.stderr).toContain(`cluster.name (fleet ${path.join(dir, 'fleet.yaml')}:4:3): must be a lower-case DNS name`);
  });

  it("the file's cluster settings win over the environment, and a change later asks for a restart", async () => {
    const dir = tempDir('genesis-fleet-serve-');
    const file = path.join(dir, 'fleet.yaml');
    writeFileSync(file, `${HEADER}cluster:\n  name: from-fleet\nmachines:\n  - mac: ${A}\n    role: worker\n`);
    const p = new GenesisProcess(['serve'], serveEnv(dir, file));
    cleanup.push(async () => {
      p.kill();
      await p.exit();
    });
    const { http } = await p.ready();
    const api = (route: string) => fetch(`http://127.0.0.1:${http.port}/api/v1${route}`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    expect(await (await api('/cluster')).json()).toMatchObject({ cluster: 'from-fleet' });
    expect(await (await api(`/nodes/${A}`)).json()).toMatchObject({ role: 'worker' });
    saveAtomically(file, `${HEADER}cluster:\n  name: renamed\nmachines:\n  - mac: ${A}\n    role: worker\n`);
    const line = await p.waitFor((l) => l.msg === 'cluster.name in the fleet file differs from the running value: restart Genesis to apply it');
    expect(line).toMatchObject({ setting: 'cluster.name', from: 'fleet.yaml:4:3' });
    expect(await (await api('/fleet')).json()).toMatchObject({ restartNeeded: [{ key: 'cluster.name', running: 'from-fleet', file: 'renamed' }] });
  });

  it('a file broken while Genesis was down: it starts with the version last applied, and says so', async () => {
    const dir = tempDir('genesis-fleet-serve-');
    const file = path.join(dir, 'fleet.yaml');
    const env = { ...serveEnv(dir, file), GENESIS_CLUSTER_ENDPOINT: 'https://192.0.2.10:6443' };
    writeFileSync(file, `${HEADER}cluster:\n  name: last-good\npatches:\n  worker: {inline: {machine: {sysctls: {last.good: "1"}}}}\nmachines:\n  - mac: ${A}\n    role: worker\n`);
    const first = new GenesisProcess(['serve'], env);
    await first.ready();
    first.kill();
    await first.exit();
    writeFileSync(file, `${HEADER}cluster:\n  name: last-good\nmachines:\n  - mac: ${A}\n    role: wizard\n`);
    const p = new GenesisProcess(['serve'], env);
    cleanup.push(async () => {
      p.kill();
      await p.exit();
    });
    const { http } = await p.ready();
    expect(p.stderr).toContain(`genesis: the fleet file at ${file} is not valid; the version applied `);
    expect(p.stderr).toContain('fleet.yaml:7:11: machines[0].role: must be one of');
    const api = (route: string) => fetch(`http://127.0.0.1:${http.port}/api/v1${route}`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    expect(await (await api('/cluster')).json()).toMatchObject({ cluster: 'last-good' });
    const status = (await (await api('/fleet')).json()) as { failed: { problems: FleetProblem[] } | null; applied: unknown };
    expect(status.failed?.problems[0]).toMatchObject({ at: 'fleet.yaml:7:11' });
    expect(status.applied).not.toBeNull();
    // Its patch is still in force.
    expect(await (await api(`/nodes/${A}/config`)).text()).toContain('last.good: "1"');
  });
});
