// The bootstrap orchestrator end to end inside one Genesis: control planes boot through real HTTP
// (curl from their own loopback address), fake Talos nodes answer over real gRPC and mTLS, and
// the lock lives in the real SQLite file. Each test counts the Bootstrap calls the fakes received.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { BootstrapLocks } from '../../src/bootstrap/lock-store.ts';
import { parseSecrets } from '../../src/talos/secrets.ts';
import { FakeTalos, startFakes, type FakeTalosOptions } from '../helpers/fake-talos.ts';
import { FIXTURE_SECRETS, nodeScriptUrl, startGenesis, type TestGenesis } from '../helpers/genesis-app.ts';
import { run } from '../helpers/run.ts';
import { until } from '../helpers/wait.ts';

const bundle = parseSecrets(readFileSync(FIXTURE_SECRETS, 'utf8'));

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test reads of API JSON
type Json = any;

const FAST = {
  GENESIS_BOOTSTRAP_POLL_INTERVAL_MS: '50',
  GENESIS_BOOTSTRAP_SETTLE_MS: '0',
  GENESIS_BOOTSTRAP_LEASE_MS: '2000',
  GENESIS_BOOTSTRAP_RETRY_AFTER_MS: '600000',
  GENESIS_BOOTSTRAP_RPC_TIMEOUT_MS: '2000',
  GENESIS_CLUSTER_NAME: 'lab',
};

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

type Lab = { g: TestGenesis; fakes: FakeTalos[]; macs: string[]; ips: string[]; port: number };

/**
 * `n` control planes on 127.0.<net>.2.. with fake apids on one port, and a Genesis that reaches
 * them there. The nodes are registered and boot (script + config over HTTP) before `start`.
 */
async function lab(net: number, n: number, make: (i: number) => Partial<FakeTalosOptions> = () => ({}), env: Record<string, string> = {}): Promise<Lab> {
  const ips = Array.from({ length: n }, (_, i) => `127.0.${net}.${i + 2}`);
  const macs = ips.map((_, i) => `52:54:00:00:${net.toString(16).padStart(2, '0')}:${(i + 1).toString(16).padStart(2, '0')}`);
  const { port, fakes } = await startFakes(ips, (host, p) => ({ host, port: p, bundle, hostname: `cp-${ips.indexOf(host) + 1}`, ...make(ips.indexOf(host)) }));
  cleanup.push(() => fakes.forEach((f) => f.die()));
  const g = await startGenesis({ ...FAST, GENESIS_BOOTSTRAP_TALOS_API_PORT: String(port), ...env });
  cleanup.push(() => g.close());
  return { g, fakes, macs, ips, port };
}

/** The node boots as a machine would: its script, then its config, both from its own address. */
async function bootControlPlane(l: Lab, i: number, extra: Record<string, unknown> = {}): Promise<void> {
  const { g } = l;
  expect((await g.api('PUT', `/nodes/${l.macs[i]}`, { role: 'controlplane', hostname: `cp-${i + 1}`, ...extra })).status).toBeLessThan(300);
  const script = await run('curl', ['-sf', '--interface', l.ips[i]!, nodeScriptUrl(g.url, l.macs[i]!)]);
  const url = / talos\.config=(\S+)/.exec(script.stdout)?.[1];
  if (!url) throw new Error(`no config URL for ${l.macs[i]}: ${script.stdout}${script.stderr}`);
  const config = await run('curl', ['-sf', '-o', '/dev/null', '-w', '%{http_code}', '--interface', l.ips[i]!, url]);
  expect(config.stdout).toBe('200');
}

const cluster = async (g: TestGenesis): Promise<Json> => (await g.api('GET', '/cluster')).json();
const calls = (fakes: FakeTalos[]) => fakes.reduce((n, f) => n + f.bootstrapCalls, 0);
const bootstrapped = (g: TestGenesis) => until(async () => ((await cluster(g)).state === 'bootstrapped' ? cluster(g) : undefined), 'the lock to be bootstrapped');
/** Wait for `n` more orchestrator rounds: "nothing more happened" is checked after real work, not a sleep. */
async function rounds(g: TestGenesis, n: number): Promise<Json> {
  const start = (await cluster(g)).orchestrator.rounds as number;
  return until(async () => {
    const s = await cluster(g);
    return s.orchestrator.rounds >= start + n ? s : undefined;
  }, `${n} orchestrator rounds`);
}

describe('bootstrap orchestrator', () => {
  it('bootstraps exactly one of three control planes that boot together, and shows it', async () => {
    const l = await lab(4, 3, () => ({}), { GENESIS_BOOTSTRAP_SETTLE_MS: '300' });
    await Promise.all([0, 1, 2].map((i) => bootControlPlane(l, i)));
    const s = await bootstrapped(l.g);
    expect(calls(l.fakes)).toBe(1);
    const holder = l.fakes.findIndex((f) => f.bootstrapCalls === 1);
    expect(s).toMatchObject({ cluster: 'lab', state: 'bootstrapped', epoch: 1, holder: { mac: l.macs[holder], ip: l.ips[holder], hostname: `cp-${holder + 1}` } });
    expect(s.history.map((h: Json) => h.to).reverse()).toEqual(['elected', 'bootstrap-sent', 'bootstrapped']);
    expect(s.controlplanes).toHaveLength(3);
    const events = ((await (await l.g.api('GET', `/nodes/${l.macs[holder]}/events`)).json()) as Json).events.map((e: Json) => e.type);
    expect(events).toEqual(expect.arrayContaining(['bootstrap-elected', 'bootstrap-sent', 'bootstrapped']));
    // Bootstrapped is final: more rounds, no more calls.
    await rounds(l.g, 5);
    expect(calls(l.fakes)).toBe(1);
  });

  it('bootstraps the operator-chosen node, and waits for it rather than take another', async () => {
    const l = await lab(5, 3);
    l.fakes[2]!.die();
    // Chosen before any node boots; the chosen one has not even booted when the others answer.
    expect((await l.g.api('PUT', `/nodes/${l.macs[2]}`, { role: 'controlplane', bootstrap: true })).status).toBe(201);
    await bootControlPlane(l, 0);
    await bootControlPlane(l, 1);
    await bootControlPlane(l, 2, { bootstrap: true });
    const waiting = await rounds(l.g, 5);
    expect(waiting.state).toBe('unclaimed');
    expect(waiting.orchestrator.waiting).toContain('bootstrap: true');
    expect(calls(l.fakes)).toBe(0);
    await l.fakes[2]!.listen();
    const s = await bootstrapped(l.g);
    expect(s.holder.mac).toBe(l.macs[2]);
    expect(l.fakes.map((f) => f.bootstrapCalls)).toEqual([0, 0, 1]);
  });

  it('elects another node with a higher epoch when the elected one dies before the call', async () => {
    // Each node reads the lock as Genesis committed it: whichever is elected first (epoch 1)
    // dies on the next Version call, which is Genesis's last look before sending.
    let dbFile = '';
    const electedFirst = (host: string) => {
      const db = new Database(dbFile, { readonly: true });
      try {
        const lock = new BootstrapLocks(db).get('lab');
        return lock.state === 'elected' && lock.epoch === 1 && lock.holderAddr === host;
      } finally {
        db.close();
      }
    };
    const l = await lab(6, 3, () => ({ dieOnVersion: (f) => electedFirst(f.address) }));
    dbFile = path.join(l.g.dataDir, 'genesis.db');
    for (const i of [0, 1, 2]) await bootControlPlane(l, i);
    const s = await bootstrapped(l.g);
    const elected = s.history.filter((h: Json) => h.to === 'elected').map((h: Json) => [h.holder, h.epoch]).reverse();
    expect(elected).toHaveLength(2);
    const [first, second] = elected;
    expect(first[1]).toBe(1);
    expect(second[1]).toBe(2);
    expect(second[0]).not.toBe(first[0]);
    expect(l.fakes[l.macs.indexOf(first[0])]!.alive).toBe(false);
    expect(l.fakes[l.macs.indexOf(first[0])]!.bootstrapCalls).toBe(0);
    expect(calls(l.fakes)).toBe(1);
    expect(s).toMatchObject({ epoch: 2, holder: { mac: second[0] } });
  });

  it('never calls a second node when the elected one dies after the call', async () => {
    const l = await lab(7, 3, (i) => (i === 0 ? { bootstrap: ['die'] } : {}));
    for (const i of [0, 1, 2]) await bootControlPlane(l, i);
    await until(() => l.fakes[0]!.bootstrapCalls === 1 && !l.fakes[0]!.alive, 'the holder to receive Bootstrap and die');
    const s = await rounds(l.g, 10);
    expect(s).toMatchObject({ state: 'bootstrap-sent', holder: { mac: l.macs[0] }, epoch: 1 });
    expect(s.orchestrator.waiting).toContain('waiting for it');
    expect(calls(l.fakes)).toBe(1);
    // The holder comes back with the etcd it started: that settles it, still one call.
    await l.fakes[0]!.listen();
    expect((await bootstrapped(l.g)).holder.mac).toBe(l.macs[0]);
    expect(calls(l.fakes)).toBe(1);
  });

  it('records an existing cluster instead of bootstrapping when Genesis lost its data', async () => {
    const l = await lab(8, 3, () => ({ etcdMembers: ['cp-1', 'cp-2', 'cp-3'] }));
    for (const i of [0, 1, 2]) await bootControlPlane(l, i);
    const s = await bootstrapped(l.g);
    expect(calls(l.fakes)).toBe(0);
    expect(s.history[0].note).toContain('found an existing cluster');
    expect(s.epoch).toBe(0);
  });

  it('retries the same node while Talos says not yet, and counts AlreadyExists as done', async () => {
    const l = await lab(9, 1, () => ({ bootstrap: ['not-yet', 'not-yet', 'already'] }));
    await bootControlPlane(l, 0);
    const s = await bootstrapped(l.g);
    expect(l.fakes[0]!.bootstrapCalls).toBe(3);
    expect(s.history[0].note).toContain('etcd data directory is not empty');
    const events = ((await (await l.g.api('GET', `/nodes/${l.macs[0]}/events`)).json()) as Json).events.map((e: Json) => e.type);
    expect(events.filter((t: string) => t === 'bootstrap-deferred')).toHaveLength(2);
  });

  it('refuses a reset while etcd has members, and allows it once the cluster is gone', async () => {
    const l = await lab(10, 2);
    for (const i of [0, 1]) await bootControlPlane(l, i);
    await bootstrapped(l.g);
    expect((await l.g.api('POST', '/cluster/reset', { confirm: 'wrong' })).status).toBe(400);
    const refused = await l.g.api('POST', '/cluster/reset', { confirm: 'lab' });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ error: 'reset_refused', message: expect.stringContaining('etcd members') });
    expect((await cluster(l.g)).state).toBe('bootstrapped');
    // The operator wiped the nodes (talosctl reset): no etcd anywhere.
    for (const f of l.fakes) f.members = [];
    await l.g.api('POST', `/nodes/${l.macs[0]}/installed`);
    const reset = await l.g.api('POST', '/cluster/reset', { confirm: 'lab' }, { 'x-genesis-actor': 'alice' });
    expect(reset.status).toBe(200);
    expect(((await reset.json()) as Json).history[0]).toMatchObject({ from: 'bootstrapped', to: 'unclaimed', actor: 'api:alice', epoch: 1 });
    // And a new cluster is bootstrapped with a higher epoch.
    const again = await bootstrapped(l.g);
    expect(again.epoch).toBe(2);
    expect(calls(l.fakes)).toBe(2);
  });

  it('needs the API token for the cluster state', async () => {
    const l = await lab(11, 1);
    expect((await fetch(`${l.g.url}/api/v1/cluster`)).status).toBe(401);
    expect((await fetch(`${l.g.url}/api/v1/cluster/join-token`)).status).toBe(401);
  });
});

describe('claim API', () => {
  it('answers init to the first node and join to the rest, with the join token only', async () => {
    const g = await startGenesis({ ...FAST, GENESIS_BOOTSTRAP_ENABLED: 'false' });
    cleanup.push(() => g.close());
    const { token } = (await (await g.api('GET', '/cluster/join-token')).json()) as { token: string };
    expect(token).toMatch(/^gjt_[A-Za-z0-9_-]{43}$/);
    const claimAs = (auth: string | undefined, body: unknown) =>
      fetch(`${g.url}/api/v1/bootstrap/claim`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
        body: JSON.stringify(body),
      });
    expect((await claimAs(undefined, { mac: '52:54:00:00:0c:01' })).status).toBe(401);
    expect((await claimAs('gjt_wrong', { mac: '52:54:00:00:0c:01' })).status).toBe(401);
    expect((await claimAs(token, { mac: 'not-a-mac' })).status).toBe(400);
    expect((await claimAs(token, { mac: '52:54:00:00:0c:01', extra: 1 })).status).toBe(400);
    expect((await claimAs(token, { mac: '52:54:00:00:0c:01' })).status).toBe(200);
    const again = await (await claimAs(token, { mac: '52-54-00-00-0C-01' })).json();
    expect(again).toEqual({ decision: 'init', leader: { mac: '52:54:00:00:0c:01', ip: '127.0.0.1' }, epoch: 1 });
    expect(await (await claimAs(token, { mac: '52:54:00:00:0c:02' })).json()).toEqual({ decision: 'join', leader: { mac: '52:54:00:00:0c:01', ip: '127.0.0.1' }, epoch: 1 });
    const s = await cluster(g);
    expect(s).toMatchObject({ state: 'bootstrap-sent', holder: { mac: '52:54:00:00:0c:01' }, epoch: 1 });
    expect(s.history).toHaveLength(1);
  });

  it("the leader's address is the one the winner reports, not the request's source (NAT, proxies)", async () => {
    const g = await startGenesis({ ...FAST, GENESIS_BOOTSTRAP_ENABLED: 'false' });
    cleanup.push(() => g.close());
    const { token } = (await (await g.api('GET', '/cluster/join-token')).json()) as { token: string };
    const claim = (body: unknown) =>
      fetch(`${g.url}/api/v1/bootstrap/claim`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
    const bad = await claim({ mac: '52:54:00:00:0c:11', address: '192.0.2.300' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: 'invalid_request', message: 'address "192.0.2.300" is not an IP address' });
    // The refusal claimed nothing: the first valid claim is still init.
    expect(await (await claim({ mac: '52:54:00:00:0c:11', address: '192.0.2.11' })).json()).toEqual({ decision: 'init', leader: { mac: '52:54:00:00:0c:11', ip: '192.0.2.11' }, epoch: 1 });
    expect(await (await claim({ mac: '52:54:00:00:0c:12', address: '192.0.2.12' })).json()).toEqual({ decision: 'join', leader: { mac: '52:54:00:00:0c:11', ip: '192.0.2.11' }, epoch: 1 });
    const events = (await (await g.api('GET', '/nodes/52:54:00:00:0c:11/events')).json()) as { events: Array<{ type: string; detail: Record<string, unknown> }> };
    expect(events.events.find((e) => e.type === 'bootstrap-claimed')?.detail).toMatchObject({ decision: 'init', ip: '127.0.0.1', address: '192.0.2.11' });
  });
});
