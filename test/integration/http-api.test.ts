// The inventory API over real HTTP: auth, validation, error shape, concurrency, persistence,
// a full database, and the `genesis nodes` CLI as a real process.

import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/genesis-process.ts';
import { nodeScriptUrl, startGenesis, TEST_TOKEN, type TestGenesis } from '../helpers/genesis-app.ts';
import { run } from '../helpers/run.ts';

const started: TestGenesis[] = [];
async function genesis(env: Record<string, string> = {}, dirs: { dataDir?: string } = {}): Promise<TestGenesis> {
  const g = await startGenesis(env, dirs);
  started.push(g);
  return g;
}
afterEach(async () => {
  for (const g of started.splice(0)) await g.close();
});

const MAC = '52:54:00:bb:00:01';

async function errorOf(r: Response): Promise<{ status: number; error: string; message: string }> {
  const body = (await r.json()) as { error: string; message: string };
  expect(typeof body.message).toBe('string');
  expect(body.message.length).toBeGreaterThan(0);
  return { status: r.status, error: body.error, message: body.message };
}

describe('authentication', () => {
  it('the API needs the bearer token; boot endpoints do not', async () => {
    const g = await genesis();
    const none = await fetch(`${g.url}/api/v1/nodes`);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await errorOf(none)).toMatchObject({ status: 401, error: 'unauthorized' });
    for (const auth of [`Bearer ${TEST_TOKEN}x`, `Basic ${TEST_TOKEN}`, 'Bearer', `bearer  ${TEST_TOKEN.slice(1)}`]) {
      const r = await fetch(`${g.url}/api/v1/nodes`, { headers: { authorization: auth } });
      expect(await errorOf(r)).toMatchObject({ status: 401, error: 'unauthorized' });
    }
    // A refused write changes nothing.
    const put = await fetch(`${g.url}/api/v1/nodes/${MAC}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"role":"worker"}' });
    expect(put.status).toBe(401);
    expect((await g.api('GET', `/nodes/${MAC}`)).status).toBe(404);
    expect((await fetch(`${g.url}/boot.ipxe`)).status).toBe(200);
  });

  it('without GENESIS_API_TOKEN a token is generated once: only its hash and a 0600 CLI copy are stored', async () => {
    const g = await genesis({ GENESIS_API_TOKEN: '' });
    const token = g.app.apiToken!.plaintext!;
    expect(token).toMatch(/^gns_[A-Za-z0-9_-]{43}$/);
    const fs = await import('node:fs');
    const hashFile = fs.readFileSync(path.join(g.dataDir, 'api-token.sha256'), 'utf8');
    expect(hashFile).not.toContain(token);
    expect(fs.statSync(path.join(g.dataDir, 'admin.token')).mode & 0o777).toBe(0o600);
    expect((await fetch(`${g.url}/api/v1/nodes`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    // A restart keeps the same token and does not show it again.
    const dataDir = g.dataDir;
    await g.app.close();
    started.splice(started.indexOf(g), 1);
    const again = await genesis({ GENESIS_API_TOKEN: '' }, { dataDir });
    expect(again.app.apiToken!.plaintext).toBeUndefined();
    expect((await fetch(`${again.url}/api/v1/nodes`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  });
});

describe('validation and errors', () => {
  it.each([
    ['unknown field', 'PUT', `/nodes/${MAC}`, { role: 'worker', colour: 'red' }, 400, 'invalid_request', /colour|additional/],
    ['wrong type', 'PUT', `/nodes/${MAC}`, { role: 'worker', hostname: 5 }, 400, 'invalid_request', /hostname/],
    ['bad role', 'PUT', `/nodes/${MAC}`, { role: 'master' }, 400, 'invalid_request', /role/],
    ['bad hostname', 'PUT', `/nodes/${MAC}`, { hostname: 'Not Valid' }, 400, 'invalid_request', /RFC 1123/],
    ['bad disk', 'PUT', `/nodes/${MAC}`, { installDisk: 'sda; rm -rf /' }, 400, 'invalid_request', /installDisk/],
    ['bad label', 'PUT', `/nodes/${MAC}`, { labels: { 'a b': 'c' } }, 400, 'invalid_request', /label key/],
    ['labels not strings', 'PUT', `/nodes/${MAC}`, { labels: { a: 1 } }, 400, 'invalid_request', /labels/],
    ['bad version', 'PUT', `/nodes/${MAC}`, { talosVersion: '../../etc' }, 400, 'invalid_request', /talosVersion/],
    ['array body', 'PUT', `/nodes/${MAC}`, [], 400, 'invalid_request', /object/],
    ['bad MAC', 'GET', '/nodes/not-a-mac', undefined, 400, 'invalid_mac', /not a MAC address/],
    ['bad MAC on write', 'PUT', '/nodes/zz', { role: 'worker' }, 400, 'invalid_mac', /not a MAC/],
    ['unknown node', 'GET', `/nodes/${MAC}`, undefined, 404, 'not_found', /no node/],
    ['PATCH unknown node', 'PATCH', `/nodes/${MAC}`, { role: 'worker' }, 404, 'not_found', /no node/],
    ['DELETE unknown node', 'DELETE', `/nodes/${MAC}`, undefined, 404, 'not_found', /no node/],
    ['reinstall unknown', 'POST', `/nodes/${MAC}/reinstall`, undefined, 404, 'not_found', /no node/],
    ['bad filter', 'GET', '/nodes?role=boss', undefined, 400, 'invalid_request', /role/],
    ['unknown filter', 'GET', '/nodes?colour=red', undefined, 400, 'invalid_request', /colour|additional/],
    ['bad events limit', 'GET', `/nodes/${MAC}/events?limit=-1`, undefined, 400, 'invalid_request', /limit/],
    ['unknown route', 'GET', '/nothing', undefined, 404, 'not_found', /no route/],
  ])('%s → %i %s', async (_name, method, p, body, status, error, message) => {
    const g = await genesis();
    const e = await errorOf(await g.api(method, p, body));
    expect(e).toMatchObject({ status, error });
    expect(e.message).toMatch(message);
  });

  it('malformed JSON, a wrong content type and an oversized body are 4xx with the same error shape', async () => {
    const g = await genesis();
    expect(await errorOf(await g.api('PUT', `/nodes/${MAC}`, '{"role":'))).toMatchObject({ status: 400 });
    const text = await g.api('PUT', `/nodes/${MAC}`, 'role=worker', { 'content-type': 'text/plain' });
    expect(await errorOf(text)).toMatchObject({ status: 415 });
    const big = await g.api('PUT', `/nodes/${MAC}`, JSON.stringify({ labels: { a: 'x'.repeat(100_000) } }));
    expect(await errorOf(big)).toMatchObject({ status: 413 });
    expect((await g.api('GET', `/nodes/${MAC}`)).status).toBe(404);
  });

  it('a hostname clash is 409 and changes nothing', async () => {
    const g = await genesis();
    await g.api('PUT', `/nodes/${MAC}`, { role: 'worker', hostname: 'w-1' });
    await g.api('PUT', '/nodes/52:54:00:bb:00:02', { role: 'worker' });
    expect(await errorOf(await g.api('PATCH', '/nodes/52:54:00:bb:00:02', { hostname: 'w-1', role: 'controlplane' }))).toMatchObject({ status: 409, error: 'conflict' });
    expect(await (await g.api('GET', '/nodes/52-54-00-BB-00-02')).json()).toMatchObject({ role: 'worker', hostname: null });
  });

  it('reinstall of a machine without a role is 409', async () => {
    const g = await genesis();
    await fetch(nodeScriptUrl(g.url, MAC)).then((r) => r.text());
    expect(await errorOf(await g.api('POST', `/nodes/${MAC}/reinstall`))).toMatchObject({ status: 409, error: 'conflict' });
  });

  it('a full database answers 503 storage_unavailable and keeps what it had', async () => {
    const g = await genesis();
    expect((await g.api('PUT', `/nodes/${MAC}`, { role: 'worker', hostname: 'kept' })).status).toBe(201);
    const db = g.app.database!.connection;
    // SQLite's own page limit stands in for a full disk: the same SQLITE_FULL error, no root needed.
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    const macs = Array.from({ length: 300 }, (_, i) => `52:54:00:cc:${String(Math.floor(i / 100)).padStart(2, '0')}:${String(i % 100).padStart(2, '0')}`);
    let full: Response | undefined;
    for (const m of macs) {
      const r = await g.api('PUT', `/nodes/${m}`, { role: 'worker', labels: { note: 'x'.repeat(60) } });
      if (r.status !== 201) {
        full = r;
        break;
      }
      await r.arrayBuffer();
    }
    expect(full).toBeDefined();
    expect(full!.headers.get('retry-after')).toBe('10');
    expect(await errorOf(full!)).toMatchObject({ status: 503, error: 'storage_unavailable' });
    // Fill what room is left in part-used pages, with records as small as a first boot's, until
    // not even one more fits: then a new machine cannot be recorded either.
    for (let i = 0; i < 300; i++) {
      const r = await g.api('PUT', `/nodes/52:54:00:ee:${String(Math.floor(i / 100)).padStart(2, '0')}:${String(i % 100).padStart(2, '0')}`, {});
      await r.arrayBuffer();
      if (r.status === 503) break;
    }
    const script = await fetch(nodeScriptUrl(g.url, '52:54:00:dd:00:01'));
    expect(script.status).toBe(503);
    expect(script.headers.get('retry-after')).toBe('10');
    expect(await script.text()).not.toMatch(/at .*\.ts:\d+/);
    expect(await (await g.api('GET', `/nodes/${MAC}`)).json()).toMatchObject({ role: 'worker', hostname: 'kept' });
  });
});

describe('the API end to end', () => {
  it('create, list with filters, update, events, delete', async () => {
    const g = await genesis();
    const put = await g.api('PUT', `/nodes/${MAC}`, { role: 'controlplane', hostname: 'cp-1', installDisk: '/dev/nvme0n1', labels: { zone: 'a' }, talosVersion: 'v1.12.0' });
    expect(put.status).toBe(201);
    expect((await g.api('PUT', `/nodes/${MAC}`, { hostname: 'cp-1' })).status).toBe(200);
    await g.api('PUT', '/nodes/52:54:00:bb:00:02', { role: 'worker' });
    const cps = (await (await g.api('GET', '/nodes?role=controlplane')).json()) as { nodes: Array<{ mac: string }> };
    expect(cps.nodes.map((n) => n.mac)).toEqual([MAC]);
    const patched = await (await g.api('PATCH', `/nodes/${MAC}`, { labels: { zone: 'b' }, talosVersion: null })).json();
    expect(patched).toMatchObject({ labels: { zone: 'b' }, talosVersion: null, installDisk: '/dev/nvme0n1', hostname: 'cp-1' });
    const { events } = (await (await g.api('GET', `/nodes/${MAC}/events?limit=2`, undefined, { 'x-genesis-actor': 'alice' })).json()) as { events: Array<{ type: string }> };
    expect(events).toHaveLength(2);
    expect((await g.api('DELETE', `/nodes/${MAC}`, undefined, { 'x-genesis-actor': 'alice' })).status).toBe(204);
    const after = (await (await g.api('GET', `/nodes/${MAC}/events?limit=1`)).json()) as { events: Array<{ type: string; actor: string }> };
    expect(after.events[0]).toMatchObject({ type: 'deleted', actor: 'api:alice' });
  });

  it('lists a page at a time in the order machines were first seen; next is the cursor, null at the end', async () => {
    const g = await genesis();
    const macs = Array.from({ length: 7 }, (_, i) => `52:54:00:bb:01:0${i}`);
    // First seen in this order, not MAC order (ties within a millisecond go by MAC).
    const order = [macs[3]!, macs[0]!, macs[6]!, macs[1]!, macs[5]!, macs[2]!, macs[4]!];
    for (const m of order) expect((await g.api('PUT', `/nodes/${m}`, { role: 'worker' })).status).toBe(201);
    const seen: string[] = [];
    let pages = 0;
    for (let after: string | null = null; ; ) {
      const page = (await (await g.api('GET', `/nodes?limit=3${after ? `&after=${after}` : ''}`)).json()) as { nodes: Array<{ mac: string }>; next: string | null };
      pages++;
      seen.push(...page.nodes.map((n) => n.mac));
      expect(page.nodes.length).toBeLessThanOrEqual(3);
      if (!page.next) break;
      after = page.next;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual((await (await g.api('GET', '/nodes')).json() as { nodes: Array<{ mac: string }> }).nodes.map((n) => n.mac));
    expect(new Set(seen).size).toBe(7);
    expect((await (await g.api('GET', '/nodes')).json()) as { next: string | null }).toMatchObject({ next: null });
    // A filter pages too; a cursor the API did not give, or a limit out of range, is 400.
    expect(((await (await g.api('GET', '/nodes?role=worker&limit=7')).json()) as { next: string | null }).next).toBeNull();
    expect(await errorOf(await g.api('GET', '/nodes?after=bm90LWEtY3Vyc29y'))).toMatchObject({ status: 400, error: 'invalid_request' });
    expect((await g.api('GET', '/nodes?limit=0')).status).toBe(400);
    expect((await g.api('GET', '/nodes?limit=10001')).status).toBe(400);
  });

  it('data survives a restart', async () => {
    const g = await genesis();
    await g.api('PUT', `/nodes/${MAC}`, { role: 'worker', hostname: 'w-1' });
    await fetch(nodeScriptUrl(g.url, MAC, { platform: 'pcbios' })).then((r) => r.text());
    const dataDir = g.dataDir;
    await g.app.close();
    started.splice(started.indexOf(g), 1);
    const again = await genesis({}, { dataDir });
    expect(await (await again.api('GET', `/nodes/${MAC}`)).json()).toMatchObject({ role: 'worker', hostname: 'w-1', firmware: 'bios', state: 'assigned' });
    rmSync(path.dirname(dataDir), { recursive: true, force: true });
  });

  it('/readyz reports the inventory and the asset directory', async () => {
    const g = await genesis();
    const ok = await fetch(`${g.url}/readyz`);
    expect(await ok.json()).toEqual({ status: 'ready', checks: { inventory: 'ok', storage: 'ok', assets: 'ok' } });
    rmSync(g.assetsDir, { recursive: true, force: true });
    const bad = await fetch(`${g.url}/readyz`);
    expect(bad.status).toBe(503);
    expect(await bad.json()).toMatchObject({ status: 'not ready', checks: { inventory: 'ok', assets: expect.stringContaining('ENOENT') } });
    expect((await fetch(`${g.url}/healthz`)).status).toBe(200);
  });
});

describe('boot storms', () => {
  it('200 machines asking at once (each twice) get one row each and their own script', async () => {
    // All 200 come from 127.0.0.1 here; on a LAN each has its own address and its own discovery budget.
    const g = await genesis({ GENESIS_INVENTORY_DISCOVERY_PER_MINUTE: '1000' });
    const macs = Array.from({ length: 200 }, (_, i) => `52:54:01:00:${String(Math.floor(i / 100)).padStart(2, '0')}:${String(i % 100).padStart(2, '0')}`);
    const answers = await Promise.all([...macs, ...macs].map(async (mac) => ({ mac, res: await fetch(nodeScriptUrl(g.url, mac)) })));
    for (const { mac, res } of answers) {
      expect(res.status).toBe(200);
      const body = await res.text();
      expect(body).toContain(`machine ${mac} is recorded`);
      expect(body.match(/52:54:01:00:\d\d:\d\d/g)!.every((m) => m === mac)).toBe(true);
    }
    const { nodes } = (await (await g.api('GET', '/nodes')).json()) as { nodes: Array<{ mac: string }> };
    expect(nodes.map((n) => n.mac).sort()).toEqual([...macs].sort());
    const db = g.app.database!.connection;
    expect(db.prepare("SELECT count(*) AS n FROM node_events WHERE type = 'discovered'").get()).toEqual({ n: 200 });
  });

  it('auto-assign under 20 simultaneous first boots yields exactly 3 control planes', async () => {
    const g = await genesis({ GENESIS_AUTO_ASSIGN_ENABLED: 'true', GENESIS_AUTO_ASSIGN_CONTROLPLANES: '3' });
    const macs = Array.from({ length: 20 }, (_, i) => `52:54:02:00:00:${String(i).padStart(2, '0')}`);
    const scripts = await Promise.all(macs.map((mac) => fetch(nodeScriptUrl(g.url, mac)).then((r) => r.text())));
    expect(scripts.filter((s) => s.includes(' as controlplane\n'))).toHaveLength(3);
    expect(scripts.filter((s) => s.includes(' as worker\n'))).toHaveLength(17);
    const cps = (await (await g.api('GET', '/nodes?role=controlplane')).json()) as { nodes: unknown[] };
    expect(cps.nodes).toHaveLength(3);
  });
});

describe('genesis nodes (CLI, a real process)', () => {
  it('assign, list, show, reinstall, installed, unassign, delete', async () => {
    const g = await genesis();
    await fetch(nodeScriptUrl(g.url, MAC)).then((r) => r.text());
    const env = { ...process.env, GENESIS_URL: g.url, GENESIS_API_TOKEN: TEST_TOKEN, GENESIS_DATA_DIR: g.dataDir };
    const cli = (...args: string[]) => run(process.execPath, [BIN, 'nodes', ...args], { env, timeoutMs: 30_000 });

    const assign = await cli('assign', '52-54-00-BB-00-01', 'controlplane', '--hostname', 'cp-1', '--disk', '/dev/sda', '--label', 'zone=a');
    expect(assign).toMatchObject({ code: 0 });
    expect(assign.stdout).toContain(`${MAC}  role=controlplane  state=assigned  hostname=cp-1`);
    const list = await cli('list', '--role', 'controlplane');
    expect(list.stdout.split('\n')[0]).toMatch(/^MAC\s+ROLE\s+STATE/);
    expect(list.stdout).toMatch(new RegExp(`${MAC}\\s+controlplane\\s+assigned\\s+-\\s+cp-1\\s+amd64\\s+uefi`));
    const json = JSON.parse((await cli('list', '--json')).stdout) as { nodes: Array<{ labels: Record<string, string> }> };
    expect(json.nodes[0]!.labels).toEqual({ zone: 'a' });
    expect((await cli('show', MAC)).stdout).toMatch(/events \(newest first\):\n.*state-changed/);
    expect((await cli('installed', MAC)).stdout).toContain('state=installed');
    expect((await cli('reinstall', MAC)).stdout).toContain('state=reinstall-requested');
    expect((await cli('unassign', MAC)).stdout).toContain('role=unassigned  state=discovered');
    expect((await cli('delete', MAC)).stdout).toBe(`deleted ${MAC}\n`);

    const missing = await cli('show', MAC);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`genesis nodes show: no node with MAC ${MAC}\n`);
    const badRole = await cli('assign', MAC, 'boss');
    expect(badRole).toMatchObject({ code: 2, stderr: 'genesis nodes assign: assign needs a role: controlplane or worker\n' });
    const noToken = await run(process.execPath, [BIN, 'nodes', 'list'], { env: { ...env, GENESIS_API_TOKEN: '' }, timeoutMs: 30_000 });
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toMatch(/needs Authorization: Bearer <token> \(no API token: .*admin\.token does not exist; set GENESIS_API_TOKEN \(genesis token show prints it where Genesis runs\)/);
    const wrongToken = await run(process.execPath, [BIN, 'nodes', 'list'], { env: { ...env, GENESIS_API_TOKEN: 'not-the-token-0123456789' }, timeoutMs: 30_000 });
    expect(wrongToken.code).toBe(1);
    expect(wrongToken.stderr).toMatch(/\(the token was refused: GENESIS_API_TOKEN or the token file holds another Genesis's token\)/);
    const down = await run(process.execPath, [BIN, 'nodes', 'list'], { env: { ...env, GENESIS_URL: 'http://127.0.0.1:9' }, timeoutMs: 30_000 });
    expect(down).toMatchObject({ code: 1 });
    expect(down.stderr).toMatch(/^genesis nodes list: cannot reach Genesis at http:\/\/127\.0\.0\.1:9: /);
  });
});
