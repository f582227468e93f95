// The cloud-init profile over real HTTP: the iPXE script with the NoCloud datasource URL, the
// datasource's documents under the boot's token, everyone it refuses, phone-home, and the
// machines that wait (assets missing, unknown or broken profile) saying why.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfigWithFleet } from '../../src/cli/fleet-config.ts';
import { nodeScriptUrl, startGenesis, TEST_TOKEN, type TestGenesis } from '../helpers/genesis-app.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test reads of API JSON
const json = async (r: Response | Promise<Response>): Promise<any> => (await r).json();

const work = mkdtempSync(path.join(tmpdir(), 'genesis-cloud-init-'));
const profilesDir = path.join(work, 'profiles');
let g: TestGenesis;
const logs: string[] = [];

function stageProfileAssets(profile: string, arch = 'amd64'): void {
  const dir = path.join(g.assetsDir, profile, arch);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'vmlinuz'), 'placeholder kernel\n');
  writeFileSync(path.join(dir, 'initrd'), 'placeholder initrd\n');
}

async function script(mac: string): Promise<string> {
  return (await fetch(nodeScriptUrl(g.url, mac))).text();
}

/** The datasource URL the install script hands the kernel. */
async function datasource(mac: string): Promise<string> {
  const s = await script(mac);
  const m = / ds=nocloud;s=(\S+)/.exec(s);
  if (!m) throw new Error(`no datasource in:\n${s}`);
  return m[1]!;
}

beforeAll(async () => {
  // A profile whose user-data cloud-init would refuse, and one with its own network-config.
  mkdirSync(path.join(profilesDir, 'broken'), { recursive: true });
  writeFileSync(path.join(profilesDir, 'broken', 'profile.yaml'), 'kind: cloud-init\n');
  writeFileSync(path.join(profilesDir, 'broken', 'user-data'), '#cloud-config\nruncmd: echo {{ mac }}\n');
  mkdirSync(path.join(profilesDir, 'plain'), { recursive: true });
  writeFileSync(path.join(profilesDir, 'plain', 'profile.yaml'), 'kind: cloud-init\ncmdline: [console=ttyS0, "ds=nocloud;s={{ datasource_url }}"]\nssh_authorized_keys: ["ssh-ed25519 AAAAC3Nz ops@lab"]\n');
  writeFileSync(path.join(profilesDir, 'plain', 'user-data'), '#cloud-config\nhostname: {{ hostname }}\nssh_authorized_keys: {{ ssh_authorized_keys }}\n');
  writeFileSync(path.join(profilesDir, 'plain', 'network-config'), 'version: 2\nethernets:\n  nic:\n    match: {macaddress: "{{ mac }}"}\n    dhcp4: true\n');
  g = await startGenesis({ GENESIS_PROFILES_DIR: profilesDir, GENESIS_PROFILES_WORKER: 'k3s', GENESIS_CLUSTER_NAME: 'lab', GENESIS_TALOS_CONFIG_TOKEN_FETCHES: '2' }, { logLines: logs });
});
afterAll(async () => {
  await g.close();
  rmSync(work, { recursive: true, force: true });
});

describe('a machine with the k3s profile', () => {
  const mac = '52:54:00:c1:00:01';

  it('waits, saying which files are missing, until the profile has its kernel and initrd', async () => {
    expect((await g.api('PUT', `/nodes/${mac}`, { role: 'controlplane', profile: 'k3s', hostname: 'cp-1' })).status).toBe(201);
    const s = await script(mac);
    expect(s).toContain("waiting for the kernel and initrd of profile k3s: assets/k3s/amd64/vmlinuz, assets/k3s/amd64/initrd missing");
    expect(s).toContain(`chain --replace --autofree ${g.url}/boot.ipxe`);
    expect((await json(g.api('GET', `/nodes/${mac}`))).waiting).toBe("waiting for the kernel and initrd of profile k3s: assets/k3s/amd64/vmlinuz, assets/k3s/amd64/initrd missing");
  });

  it('then gets the kernel, the initrd and the datasource URL with a fresh token', async () => {
    stageProfileAssets('k3s');
    const s = await script(mac);
    const dir = `${g.url}/assets/k3s/amd64`;
    expect(s).toMatch(new RegExp(`^kernel ${dir}/vmlinuz initrd=initrd ip=dhcp ds=nocloud;s=${g.url}/cloud-init/${mac}/[0-9a-f]{64}/ \\|\\| goto failed$`, 'm'));
    expect(s).toContain(`initrd --name initrd ${dir}/initrd || goto failed`);
    // Its kernel download is a step on its timeline, as a Talos kernel's is.
    expect(await (await fetch(`${dir}/vmlinuz`)).text()).toBe('placeholder kernel\n');
    const steps = (await json(g.api('GET', `/nodes/${mac}/events?limit=50`))).events as Array<{ type: string; detail: Record<string, unknown> }>;
    expect(steps.find((e) => e.type === 'asset-fetched')?.detail).toMatchObject({ path: '/assets/k3s/amd64/vmlinuz', status: 200, asset: 'asset' });
    expect((await json(g.api('GET', `/nodes/${mac}`))).waiting).toBeNull();
    // Each boot has its own token.
    expect(await datasource(mac)).not.toBe(await datasource(mac));
  });

  it('its datasource: meta-data, vendor-data, no network-config, and user-data the real cloud-init accepts', async () => {
    const ds = await datasource(mac);
    const token = ds.split('/').at(-2)!;
    const meta = await fetch(`${ds}meta-data`);
    expect(meta.status).toBe(200);
    expect(parseYaml(await meta.text())).toEqual({ 'instance-id': `genesis-525400c10001-${token.slice(0, 12)}`, 'local-hostname': 'cp-1' });
    expect((await fetch(`${ds}vendor-data`)).status).toBe(200);
    expect((await fetch(`${ds}network-config`)).status).toBe(404);
    expect((await fetch(`${ds}nonsense`)).status).toBe(404);

    const res = await fetch(`${ds}user-data`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const userData = await res.text();
    const file = path.join(work, 'user-data');
    writeFileSync(file, userData);
    const verdict = spawnSync('cloud-init', ['schema', '--config-file', file], { encoding: 'utf8' });
    expect(verdict.status, verdict.stdout + verdict.stderr).toBe(0);
    // The claim API's token, as the operator reads it, is in the document; nowhere in the log.
    const joinToken = (await json(g.api('GET', '/cluster/join-token'))).token as string;
    expect(userData).toContain(joinToken);
    expect(logs.join('\n')).not.toContain(joinToken);
    const node = await json(g.api('GET', `/nodes/${mac}`));
    expect(node.state).toBe('installing');
    const events = (await json(g.api('GET', `/nodes/${mac}/events?limit=50`))).events as Array<{ type: string; detail: Record<string, unknown> }>;
    expect(events.find((e) => e.type === 'config-served')?.detail).toMatchObject({ profile: 'k3s', file: 'user-data' });
    expect(events.find((e) => e.type === 'script-served')?.detail).toMatchObject({ plan: 'install-linux', profile: 'k3s' });
  });

  it('refuses a wrong token, another machine\'s token and a malformed one, all alike', async () => {
    const ds = await datasource(mac);
    const wrong = ds.replace(/\/[0-9a-f]{64}\//, `/${'0'.repeat(64)}/`);
    expect((await fetch(`${wrong}user-data`)).status).toBe(403);
    expect((await fetch(`${wrong}meta-data`)).status).toBe(403);
    expect((await fetch(`${g.url}/cloud-init/${mac}/short/user-data`)).status).toBe(403);
    const other = '52:54:00:c1:00:09';
    expect((await g.api('PUT', `/nodes/${other}`, { role: 'controlplane', profile: 'k3s' })).status).toBe(201);
    const othersToken = (await datasource(other)).split('/').at(-2)!;
    expect((await fetch(`${g.url}/cloud-init/${mac}/${othersToken}/user-data`)).status).toBe(403);
    // The user-data spends the token's fetches (2 here), like a Talos config.
    expect((await fetch(`${ds}user-data`)).status).toBe(200);
    expect((await fetch(`${ds}user-data`)).status).toBe(200);
    expect((await fetch(`${ds}user-data`)).status).toBe(403);
  });

  it('phone-home on final marks it installed, once; its next boot goes to its disk', async () => {
    const ds = await datasource(mac);
    // Both fetches of the token spent: the report still counts (an install outlasts its fetches).
    expect((await fetch(`${ds}user-data`)).status).toBe(200);
    expect((await fetch(`${ds}user-data`)).status).toBe(200);
    expect((await fetch(`${ds}user-data`)).status).toBe(403);
    const wrong = ds.replace(/\/[0-9a-f]{64}\//, `/${'1'.repeat(64)}/`);
    expect((await fetch(`${wrong}phone-home`, { method: 'POST', body: new URLSearchParams({ hostname: 'cp-1' }) })).status).toBe(403);
    // As cloud-init's phone_home module posts it: a form.
    const home = await fetch(`${ds}phone-home`, { method: 'POST', body: new URLSearchParams({ instance_id: 'genesis-x', hostname: 'cp-1', pub_key_ed25519: 'ssh-ed25519 AAAA' }) });
    expect(home.status).toBe(200);
    const node = await json(g.api('GET', `/nodes/${mac}`));
    expect(node.state).toBe('installed');
    const events = (await json(g.api('GET', `/nodes/${mac}/events?limit=50`))).events as Array<{ type: string; actor: string; detail: Record<string, unknown> }>;
    expect(events.find((e) => e.type === 'state-changed' && e.detail['to'] === 'installed')).toMatchObject({ actor: 'cloud-init', detail: { via: 'cloud-init phone-home', hostname: 'cp-1', instanceId: 'genesis-x' } });
    // The report revoked the token: a replay proves nothing, and the documents are gone with it.
    expect((await fetch(`${ds}phone-home`, { method: 'POST', body: new URLSearchParams({ hostname: 'cp-1' }) })).status).toBe(403);
    expect((await fetch(`${ds}meta-data`)).status).toBe(403);
    expect(await script(mac)).toContain('is installed, leaving to the local disk');
  });
});

describe('choosing the profile', () => {
  it("a worker takes profiles.worker (k3s here); a control plane the cluster's default (talos)", async () => {
    expect((await g.api('PUT', '/nodes/52:54:00:c1:00:02', { role: 'worker' })).status).toBe(201);
    expect(await script('52:54:00:c1:00:02')).toContain(' ds=nocloud;s=');
    expect((await g.api('PUT', '/nodes/52:54:00:c1:00:03', { role: 'controlplane' })).status).toBe(201);
    expect(await script('52:54:00:c1:00:03')).toContain(' talos.config=');
    // A machine's own profile wins over its role's.
    expect((await g.api('PATCH', '/nodes/52:54:00:c1:00:02', { profile: 'talos' })).status).toBe(200);
    expect(await script('52:54:00:c1:00:02')).toContain(' talos.config=');
  });

  it('a profile of its own directory: its cmdline, its keys and its network-config', async () => {
    const mac = '52:54:00:c1:00:04';
    stageProfileAssets('plain');
    expect((await g.api('PUT', `/nodes/${mac}`, { role: 'worker', profile: 'plain' })).status).toBe(201);
    const s = await script(mac);
    expect(s).toMatch(/ initrd=initrd console=ttyS0 ds=nocloud;s=\S+ \|\| goto failed/);
    const ds = await datasource(mac);
    expect(parseYaml(await (await fetch(`${ds}network-config`)).text())).toEqual({ version: 2, ethernets: { nic: { match: { macaddress: mac }, dhcp4: true } } });
    expect(parseYaml(await (await fetch(`${ds}user-data`)).text())).toEqual({ hostname: 'node-525400c10004', ssh_authorized_keys: ['ssh-ed25519 AAAAC3Nz ops@lab'] });
  });

  it('an unknown profile is refused by the API, naming the known ones', async () => {
    const r = await g.api('PUT', '/nodes/52:54:00:c1:00:05', { role: 'worker', profile: 'ubuntu' });
    expect(r.status).toBe(400);
    expect((await json(r)).message).toBe('profile ubuntu is not defined (known: talos, k3s, plain, broken; see docs/cloud-init.md)');
    expect((await g.api('PUT', '/nodes/52:54:00:c1:00:05', { role: 'worker', profile: 'Not A Name' })).status).toBe(400);
  });

  it('a fleet file naming an unknown profile is refused whole, naming it; a known one applies', async () => {
    const fleet = (profile: string) => `apiVersion: genesis.dev/v1alpha1\nkind: Fleet\nmachines:\n  - mac: "52:54:00:c1:00:07"\n    role: worker\n    profile: ${profile}\n`;
    const bad = await g.api('POST', '/fleet/diff', { documents: ['fleet.yaml'], files: { 'fleet.yaml': fleet('ubuntu') } });
    expect(bad.status).toBe(422);
    expect((await json(bad)).problems).toEqual([{ at: 'fleet.yaml:4:5', message: 'profile ubuntu is not defined (known: talos, k3s, plain, broken; see docs/cloud-init.md)' }]);
    expect((await g.api('POST', '/fleet/apply', { documents: ['fleet.yaml'], files: { 'fleet.yaml': fleet('k3s') } })).status).toBe(200);
    expect((await json(g.api('GET', '/nodes/52:54:00:c1:00:07'))).profile).toBe('k3s');
  });

  it('a fleet file defines profiles too: they apply at once, are checked like a directory\'s, and may not redefine one', async () => {
    const head = 'apiVersion: genesis.dev/v1alpha1\nkind: Fleet\n';
    const withProfile = (profile: string) => `${head}linuxProfiles:\n${profile}machines:\n  - mac: "52:54:00:c1:00:0a"\n    role: worker\n    profile: lab\n`;
    const lab = '  lab:\n    cmdline: [ip=dhcp, "ds=nocloud;s={{ datasource_url }}"]\n    vars: {greeting: "hello: world"}\n    userData: {inline: "#cloud-config\\nhostname: {{ hostname }}\\nruncmd:\\n  - [echo, \\"{{ vars.greeting }}\\"]\\n"}\n';
    const applied = await g.api('POST', '/fleet/apply', { documents: ['fleet.yaml'], files: { 'fleet.yaml': withProfile(lab) } });
    expect(applied.status, JSON.stringify(await applied.clone().json())).toBe(200);
    stageProfileAssets('lab');
    const ds = await datasource('52:54:00:c1:00:0a');
    expect(parseYaml(await (await fetch(`${ds}user-data`)).text())).toEqual({ hostname: 'node-525400c1000a', runcmd: [['echo', 'hello: world']] });
    // A profile the directory has, and one that cloud-init could never find, are refused whole.
    const twice = await g.api('POST', '/fleet/diff', { documents: ['fleet.yaml'], files: { 'fleet.yaml': withProfile(lab.replace('  lab:', '  plain:')) } });
    expect(twice.status).toBe(422);
    expect((await json(twice)).problems).toContainEqual({ at: 'linuxProfiles.plain', message: 'profile plain is also defined in profiles.dir; define it in one place' });
    const blind = await g.api('POST', '/fleet/diff', { documents: ['fleet.yaml'], files: { 'fleet.yaml': withProfile('  lab:\n    cmdline: [ip=dhcp]\n    recipe: k3s\n') } });
    expect(blind.status).toBe(422);
    expect((await json(blind)).problems).toEqual([
      { at: 'fleet.yaml:5:5', message: 'linuxProfiles.lab: cmdline must carry the datasource, as ds=nocloud;s={{ datasource_url }}: without it cloud-init never finds its documents' },
    ]);
    const typo = await g.api('POST', '/fleet/diff', { documents: ['fleet.yaml'], files: { 'fleet.yaml': withProfile('  lab:\n    userData: {inline: "#cloud-config\\nhostname: {{ hostnme }}\\n"}\n') } });
    expect((await json(typo)).problems).toEqual([{ at: 'fleet.yaml:5:5', message: 'linuxProfiles.lab: lab user-data line 2: unknown variable {{ hostnme }} (did you mean hostname?)' }]);
  });

  it('a profile whose template does not pass keeps the machine waiting, with the reason, and serves nothing', async () => {
    const mac = '52:54:00:c1:00:06';
    stageProfileAssets('broken');
    expect((await g.api('PUT', `/nodes/${mac}`, { role: 'worker', profile: 'broken' })).status).toBe(201);
    const s = await script(mac);
    expect(s).not.toContain('ds=nocloud');
    const node = await json(g.api('GET', `/nodes/${mac}`));
    expect(node.waiting).toBe("waiting: its boot profile broken cannot be used: profile broken does not load: broken user-data: cloud-init's schema: runcmd: must be array");
    // Found when Genesis read the profile at start, not at the first boot.
    expect(logs.find((l) => l.includes('a boot profile does not load'))).toContain("broken user-data: cloud-init's schema: runcmd: must be array");
  });
});

describe('GET /api/v1/bootstrap/leader, for k3s agents', () => {
  it('needs the join token, says 404 until a server has claimed, then names the leader without claiming', async () => {
    expect((await fetch(`${g.url}/api/v1/bootstrap/leader`)).status).toBe(401);
    const joinToken = (await json(g.api('GET', '/cluster/join-token'))).token as string;
    const auth = { authorization: `Bearer ${joinToken}` };
    const before = await fetch(`${g.url}/api/v1/bootstrap/leader`, { headers: auth });
    expect(before.status).toBe(404);
    expect((await json(before)).error).toBe('no_leader');
    const claim = await fetch(`${g.url}/api/v1/bootstrap/claim`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ mac: '52:54:00:c1:00:01', address: '192.0.2.31' }) });
    expect(await claim.json()).toMatchObject({ decision: 'init', leader: { ip: '192.0.2.31' } });
    expect(await json(fetch(`${g.url}/api/v1/bootstrap/leader`, { headers: auth }))).toMatchObject({ decision: 'join', leader: { mac: '52:54:00:c1:00:01', ip: '192.0.2.31' } });
    // The API token works too.
    expect((await fetch(`${g.url}/api/v1/bootstrap/leader`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })).status).toBe(200);
  });
});

describe("the fleet file's profiles section", () => {
  it('sets the role and cluster profiles Genesis starts with, as genesis.yaml would; not the directory', () => {
    const fleetFile = path.join(work, 'fleet.yaml');
    writeFileSync(fleetFile, 'apiVersion: genesis.dev/v1alpha1\nkind: Fleet\nprofiles: {controlplane: k3s, default: talos}\n');
    const dataDir = path.join(work, 'fleet-data');
    const { config } = loadConfigWithFleet({ cwd: work, env: { GENESIS_FLEET_PATH: fleetFile, GENESIS_DATA_DIR: dataDir, GENESIS_PROFILES_WORKER: 'k3s' } }, 'throw');
    expect(config.profiles).toMatchObject({ default: 'talos', controlplane: 'k3s', worker: 'k3s' });
    writeFileSync(fleetFile, 'apiVersion: genesis.dev/v1alpha1\nkind: Fleet\nprofiles: {dir: /etc}\n');
    expect(() => loadConfigWithFleet({ cwd: work, env: { GENESIS_FLEET_PATH: fleetFile, GENESIS_DATA_DIR: dataDir } }, 'throw')).toThrow("fleet.yaml:3:12: profiles.dir: unknown field");
  });
});

describe('a k3s-only homelab', () => {
  it('starts without cluster.endpoint (only Talos configs need it) and boots its machines', async () => {
    const h = await startGenesis({ GENESIS_PROFILES_DEFAULT: 'k3s', GENESIS_CLUSTER_ENDPOINT: '' });
    try {
      const dir = path.join(h.assetsDir, 'k3s', 'amd64');
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'vmlinuz'), 'k');
      writeFileSync(path.join(dir, 'initrd'), 'i');
      expect((await h.api('PUT', '/nodes/52:54:00:c1:00:0b', { role: 'controlplane' })).status).toBe(201);
      expect(await (await fetch(nodeScriptUrl(h.url, '52:54:00:c1:00:0b'))).text()).toContain(' ds=nocloud;s=');
    } finally {
      await h.close();
    }
  });
});

describe('starting with a profile setting that names no profile', () => {
  it('refuses to start, naming the setting and the known profiles', async () => {
    await expect(startGenesis({ GENESIS_PROFILES_DEFAULT: 'k3z' })).rejects.toThrow('profiles.default: no profile named k3z (known: talos, k3s; see docs/cloud-init.md)');
  });
});
