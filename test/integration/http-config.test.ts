// Machine configs over real HTTP: the tokenised URL in the install script, the config it
// returns, and everyone it must refuse.

import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { contractFor } from '../../src/talos/contract.ts';
import { renderConfig } from '../../src/talos/render.ts';
import { schemaProblems } from '../../src/talos/schema.ts';
import { parseSecrets } from '../../src/talos/secrets.ts';
import { FIXTURE_SECRETS, nodeScriptUrl, startGenesis, TEST_ENDPOINT, TEST_TOKEN, type TestGenesis } from '../helpers/genesis-app.ts';

const secrets = parseSecrets(readFileSync(FIXTURE_SECRETS, 'utf8'));
const SECRET_VALUES = [
  secrets.certs.os.key,
  secrets.certs.k8s.key,
  secrets.certs.etcd.key,
  secrets.certs.k8saggregator.key,
  secrets.certs.k8sserviceaccount.key,
  secrets.trustdinfo.token,
  secrets.secrets.bootstraptoken,
  secrets.cluster.secret,
  secrets.secrets.secretboxencryptionsecret!,
];

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test reads of API JSON
const json = async (r: Response | Promise<Response>): Promise<any> => (await r).json();

let g: TestGenesis;
const logs: string[] = [];

/** Assign a node and fetch its install script; returns the talos.config= URL in it. */
async function installUrl(mac: string, body: Record<string, unknown> = { role: 'worker' }): Promise<string> {
  expect((await g.api('PUT', `/nodes/${mac}`, body)).status).toBeLessThan(300);
  const script = await (await fetch(nodeScriptUrl(g.url, mac))).text();
  const m = / talos\.config=(\S+)/.exec(script);
  if (!m) throw new Error(`no talos.config in:\n${script}`);
  return m[1]!;
}

beforeAll(async () => {
  g = await startGenesis({ GENESIS_TALOS_CONFIG_TOKEN_FETCHES: '3', GENESIS_CLUSTER_NAME: 'lab' }, { logLines: logs });
});
afterAll(async () => {
  await g.close();
});

describe('the config URL', () => {
  it('is per node and tokenised: /talos/config/<mac>/<64 hex>', async () => {
    const url = await installUrl('52:54:00:00:01:01');
    expect(url).toMatch(new RegExp(`^${g.url}/talos/config/52:54:00:00:01:01/[0-9a-f]{64}$`));
    // Another node's URL names that node and carries a different token.
    const other = await installUrl('52:54:00:00:01:02');
    expect(other).toMatch(new RegExp(`^${g.url}/talos/config/52:54:00:00:01:02/[0-9a-f]{64}$`));
    expect(other.split('/').at(-1)).not.toBe(url.split('/').at(-1));
  });

  it('serves the node a schema-valid config equal to what the generator renders for its settings', async () => {
    const mac = '52:54:00:00:02:01';
    const url = await installUrl(mac, { role: 'controlplane', hostname: 'cp-a', installDisk: '/dev/nvme0n1', labels: { rack: 'r1' } });
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const text = await res.text();
    const docs = parseAllDocuments(text).map((d) => d.toJS());
    expect(schemaProblems(contractFor('v1.14.0'), docs)).toEqual([]);
    const expected = renderConfig({
      cluster: {
        name: 'lab', endpoint: TEST_ENDPOINT, vip: '', kubernetesVersion: '1.36.3', dnsDomain: 'cluster.local', podSubnets: ['10.244.0.0/16'],
        serviceSubnets: ['10.96.0.0/12'], cni: { name: 'flannel' }, allowSchedulingOnControlPlanes: false, installDisk: '/dev/sda',
        installerImage: 'ghcr.io/siderolabs/installer', schematicId: '',
        telemetry: { eventSink: `127.0.0.1:${g.eventPorts!.sink}`, kernelLog: `tcp://127.0.0.1:${g.eventPorts!.kernelLog}/` },
      },
      secrets,
      node: { mac, role: 'controlplane', talosVersion: 'v1.14.0', hostname: 'cp-a', installDisk: '/dev/nvme0n1', labels: { rack: 'r1' } },
      patches: [],
    });
    expect(text).toBe(expected.yaml);
    expect(docs[0].machine.type).toBe('controlplane');

    // Serving moved the node to installing and left an event with the config's digest.
    const node = await json(g.api('GET', `/nodes/${mac}`));
    expect(node.state).toBe('installing');
    const { events } = await json(g.api('GET', `/nodes/${mac}/events`));
    const served = events.find((e: { type: string }) => e.type === 'config-served');
    expect(served.detail).toMatchObject({ role: 'controlplane', talosVersion: 'v1.14.0', sha256: expected.sha256, fetchesLeft: 2 });
  });

  it('allows a few fetches (Talos retries), then 403', async () => {
    const url = await installUrl('52:54:00:00:03:01');
    for (let i = 0; i < 3; i++) expect((await fetch(url)).status).toBe(200);
    const res = await fetch(url);
    expect(res.status).toBe(403);
    expect(await res.text()).toBe('forbidden\n');
    const { events } = await json(g.api('GET', '/nodes/52:54:00:00:03:01/events?limit=1'));
    expect(events[0]).toMatchObject({ type: 'config-denied', detail: { reason: 'used-up' } });
  });

  it("refuses another node's token, a wrong token, an unknown MAC and a URL without token, all alike", async () => {
    const a = await installUrl('52:54:00:00:04:01');
    await installUrl('52:54:00:00:04:02');
    const token = a.split('/').at(-1)!;
    const attempts = [
      `${g.url}/talos/config/52:54:00:00:04:02/${token}`,
      `${g.url}/talos/config/52:54:00:00:04:01/${'0'.repeat(64)}`,
      `${g.url}/talos/config/52:54:00:00:99:99/${token}`,
      `${g.url}/talos/config/52:54:00:00:04:01`,
      `${g.url}/talos/config/not-a-mac/${token}`,
      `${g.url}/talos/config/52:54:00:00:04:01/${token.slice(0, 10)}`,
    ];
    for (const u of attempts) {
      const res = await fetch(u);
      expect([u, res.status, await res.text()]).toEqual([u, 403, 'forbidden\n']);
    }
    const { events } = await json(g.api('GET', '/nodes/52:54:00:00:04:02/events?limit=1'));
    expect(events[0]).toMatchObject({ type: 'config-denied', detail: { reason: 'wrong-token' } });
    // The rightful owner still gets its config.
    expect((await fetch(a)).status).toBe(200);
  });

  it('a newer script replaces the token; installed and unassigned revoke it', async () => {
    const mac = '52:54:00:00:05:01';
    const first = await installUrl(mac);
    const second = await installUrl(mac);
    expect((await fetch(first)).status).toBe(403);
    expect((await fetch(second)).status).toBe(200);
    await g.api('POST', `/nodes/${mac}/installed`);
    expect((await fetch(second)).status).toBe(403);

    const other = '52:54:00:00:05:02';
    const url = await installUrl(other);
    await g.api('PATCH', `/nodes/${other}`, { role: 'unassigned' });
    expect((await fetch(url)).status).toBe(403);
  });

  it('never logs key material, tokens or config URLs', async () => {
    const url = await installUrl('52:54:00:00:06:01');
    await fetch(url);
    const all = logs.join('');
    expect(all).toContain('machine config served');
    for (const s of [...SECRET_VALUES, url.split('/').at(-1)!, TEST_TOKEN]) expect(all).not.toContain(s);
  });
});

describe('API', () => {
  it('shows a node its config with keys and tokens masked', async () => {
    await g.api('PUT', '/nodes/52:54:00:00:07:01', { role: 'controlplane' });
    const res = await g.api('GET', '/nodes/52:54:00:00:07:01/config');
    expect(res.status).toBe(200);
    const text = await res.text();
    for (const s of SECRET_VALUES) expect(text).not.toContain(s);
    expect(parseAllDocuments(text)[0]!.toJS().machine.ca.key).toBe('(redacted)');
    expect((await g.api('GET', '/nodes/52:54:00:00:07:99/config')).status).toBe(404);
    await g.api('PUT', '/nodes/52:54:00:00:07:02', {});
    expect(await json(g.api('GET', '/nodes/52:54:00:00:07:02/config'))).toMatchObject({ error: 'no_role' });
    // Listing nodes shows no config material either.
    const list = await (await g.api('GET', '/nodes')).text();
    for (const s of SECRET_VALUES) expect(list).not.toContain(s);
  });

  it('stores a node patch that yields a valid config, and refuses one that does not', async () => {
    const ok = await g.api('PUT', '/nodes/52:54:00:00:08:01', { role: 'worker', configPatch: 'machine:\n  sysctls:\n    vm.max_map_count: "262144"\n' });
    expect(ok.status).toBe(201);
    // Talos 1.14 (the default) reads sysctls from a SysctlConfig document: the answer says where the patch landed.
    expect((await json(ok)).warnings).toEqual(['machine.sysctls → SysctlConfig (where Talos v1.14 reads it)']);
    const text = await (await g.api('GET', '/nodes/52:54:00:00:08:01/config')).text();
    expect(text.split('\n')[0]).toBe('# warning: machine.sysctls → SysctlConfig (where Talos v1.14 reads it)');
    const sysctl = parseAllDocuments(text).map((d) => d.toJS()).find((d) => d.kind === 'SysctlConfig');
    expect(sysctl.params).toEqual({ 'vm.max_map_count': '262144' });

    const bad = await g.api('PATCH', '/nodes/52:54:00:00:08:01', { configPatch: 'machine:\n  install:\n    disk: [1, 2]\n' });
    expect(bad.status).toBe(400);
    expect((await json(bad)).message).toMatch(/^configPatch: v1alpha1 config \/machine\/install\/disk: must be string/);
    const yaml = await g.api('PATCH', '/nodes/52:54:00:00:08:01', { configPatch: 'machine: [' });
    expect((await json(yaml)).message).toMatch(/^configPatch: not valid YAML/);
    // Nothing changed: the good patch is still there.
    expect((await json(g.api('GET', '/nodes/52:54:00:00:08:01'))).configPatch).toContain('vm.max_map_count');
  });

  it('refuses a Talos version Genesis cannot render, naming the range, and checks patches against the node\'s own version', async () => {
    const old = await g.api('PUT', '/nodes/52:54:00:00:08:02', { role: 'worker', talosVersion: 'v1.8.0' });
    expect(old.status).toBe(400);
    expect(await json(old)).toEqual({ error: 'invalid_request', message: 'talosVersion v1.8.0: Genesis renders machine configs for Talos v1.11 to v1.14' });
    expect((await g.api('GET', '/nodes/52:54:00:00:08:02')).status).toBe(404);

    // A 1.14 document is fine for a node on the default (1.14) ...
    const kubelet = 'apiVersion: v1alpha1\nkind: KubeletConfig\nclusterDNS:\n  - 192.0.2.53\n';
    expect((await g.api('PUT', '/nodes/52:54:00:00:08:03', { role: 'worker', configPatch: kubelet })).status).toBe(201);
    // ... but moving the node to 1.13, where that kind does not exist, would break its config: refused.
    const down = await g.api('PATCH', '/nodes/52:54:00:00:08:03', { talosVersion: 'v1.13.9' });
    expect(down.status).toBe(400);
    expect((await json(down)).message).toBe('configPatch: KubeletConfig document: Talos v1.13 has no document kind "KubeletConfig" (it is new in Talos v1.14)');
    expect((await json(g.api('GET', '/nodes/52:54:00:00:08:03'))).talosVersion).toBeNull();
    // The same patch on a node that is on 1.13 from the start is refused too.
    const on13 = await g.api('PUT', '/nodes/52:54:00:00:08:04', { role: 'worker', talosVersion: 'v1.13.9', configPatch: kubelet });
    expect(on13.status).toBe(400);
  });

  it('checks static network settings', async () => {
    const res = await g.api('PUT', '/nodes/52:54:00:00:09:01', { role: 'worker', network: { address: '192.0.2.40', gateway: '192.0.2.1' } });
    expect(await json(res)).toEqual({ error: 'invalid_request', message: 'network.address "192.0.2.40" must be an IPv4 address with prefix length, e.g. 192.0.2.10/24' });
    const ok = await g.api('PUT', '/nodes/52:54:00:00:09:01', { role: 'worker', network: { address: '192.0.2.40/24', gateway: '192.0.2.1', nameservers: ['192.0.2.1'] } });
    expect((await json(ok)).network).toEqual({ address: '192.0.2.40/24', gateway: '192.0.2.1', nameservers: ['192.0.2.1'] });
  });

  it('talosconfig: authenticated, endpoints are the control planes', async () => {
    expect((await fetch(`${g.url}/api/v1/talosconfig`)).status).toBe(401);
    await g.api('PUT', '/nodes/52:54:00:00:0a:01', { role: 'controlplane', network: { address: '192.0.2.31/24' } });
    const res = await g.api('GET', '/talosconfig');
    expect(res.status).toBe(200);
    const doc = parseYaml(await res.text());
    expect(doc.context).toBe('lab');
    expect(doc.contexts.lab.endpoints).toContain('192.0.2.31');
    expect(doc.contexts.lab.ca).toBe(secrets.certs.os.crt);
  });

  it('kubeconfig: authenticated, never cached, a fresh admin certificate from the Kubernetes CA each time', async () => {
    expect((await fetch(`${g.url}/api/v1/kubeconfig`)).status).toBe(401);
    const [a, b] = await Promise.all([g.api('GET', '/kubeconfig'), g.api('GET', '/kubeconfig')]);
    expect(a.status).toBe(200);
    expect(a.headers.get('cache-control')).toBe('no-store');
    expect(a.headers.get('content-disposition')).toBe('attachment; filename="kubeconfig"');
    const [docA, docB] = [parseYaml(await a.text()), parseYaml(await b.text())];
    expect(docA.clusters[0].cluster['certificate-authority-data']).toBe(secrets.certs.k8s.crt);
    expect(docA.users[0].user['client-key-data']).not.toBe(docB.users[0].user['client-key-data']);
  });
});

describe('kubeconfig without a cluster endpoint', () => {
  it('is a 409 that says which setting to make, not a 500', async () => {
    const h = await startGenesis({ GENESIS_CLUSTER_ENDPOINT: '' });
    try {
      const res = await h.api('GET', '/kubeconfig');
      expect(res.status).toBe(409);
      expect(await res.json()).toEqual({ error: 'cluster_endpoint_unset', message: expect.stringContaining('set the Kubernetes API address') });
    } finally {
      await h.close();
    }
  });
});

describe('a config that cannot be rendered', () => {
  it('is never served: 503 for the node to retry, and an event says why', async () => {
    const h = await startGenesis({ GENESIS_TALOS_PATCHES_WORKER: path.join(g.dataDir, 'missing-worker-patch.yaml') }).catch((e: Error) => e);
    // A patch file that cannot be read stops the start with a clear line.
    expect(String(h)).toMatch(/invalid configuration: talos\.patches\.worker \(.*missing-worker-patch\.yaml\): cannot read: ENOENT/);

    const mac = '52:54:00:00:0b:01';
    const url = await installUrl(mac, { role: 'worker', talosVersion: 'v1.14.0' });
    // The secrets file breaks after the script was served: the config cannot be rendered.
    const file = path.join(g.dataDir, 'secrets.yaml');
    const good = readFileSync(file, 'utf8');
    writeFileSync(file, 'cluster: {}\n');
    try {
      const res = await fetch(url);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('10');
      const { events } = await json(g.api('GET', `/nodes/${mac}/events?limit=1`));
      expect(events[0].type).toBe('config-failed');
      expect(events[0].detail.reason).toMatch(/the secrets bundle changed on disk and cannot be used: .*secrets\.yaml: secrets bundle: .* is missing/);
      expect((await json(g.api('GET', `/nodes/${mac}`))).state).toBe('assigned');
    } finally {
      writeFileSync(file, good);
    }
    // Fixed on disk: the same URL now works, no fetch was spent on the failure.
    expect((await fetch(url)).status).toBe(200);
  });
});
