// A second host on the LAN, without credentials, against a running Genesis: each finding of the
// security review reproduced as an attack, and what Genesis does about it asserted. Real curl
// from two source addresses (127.0.13.x), real HTTP, a real SQLite file.

import { mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import dgram from 'node:dgram';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeScriptUrl, startGenesis, TEST_TOKEN, type TestGenesis } from '../helpers/genesis-app.ts';
import { run } from '../helpers/run.ts';
import { until } from '../helpers/wait.ts';
import { encodeRequest } from '../../src/tftp/packet.ts';

const REAL = '127.0.13.2';
const ATTACKER = '127.0.13.66';
const running: TestGenesis[] = [];
afterEach(async () => {
  for (const g of running.splice(0)) await g.close();
});
async function start(env: Record<string, string> = {}, dirs: Parameters<typeof startGenesis>[1] = {}): Promise<TestGenesis> {
  const g = await startGenesis(env, dirs);
  running.push(g);
  return g;
}

/** curl from a source address: the body, or '' with the status on failure. */
async function curlFrom(ip: string, url: string): Promise<{ status: number; body: string }> {
  const r = await run('curl', ['-s', '--interface', ip, '-w', '\n%{http_code}', url]);
  const at = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(at + 1)), body: r.stdout.slice(0, at) };
}

/** A plain GET from a source address (for floods: no process per request). */
function getFrom(ip: string, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { localAddress: ip, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

const configUrlIn = (script: string) => / talos\.config=(\S+)/.exec(script)?.[1];
const json = async (r: Response | Promise<Response>) => (await r).json() as Promise<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('1. a MAC is not a credential', () => {
  it('a second address asking for an assigned machine gets nothing, and holds both sides until the operator confirms', async () => {
    const g = await start();
    const mac = '52:54:00:0d:00:01';
    await g.api('PUT', `/nodes/${mac}`, { role: 'controlplane' });

    // The real machine boots first: its script carries a config URL bound to its address.
    const real = await curlFrom(REAL, nodeScriptUrl(g.url, mac));
    const realConfig = configUrlIn(real.body)!;
    expect(realConfig).toBeDefined();

    // The attacker, knowing the MAC, asks for the same script from another address.
    const stolen = await curlFrom(ATTACKER, nodeScriptUrl(g.url, mac));
    expect(stolen.status).toBe(200);
    expect(configUrlIn(stolen.body)).toBeUndefined();
    expect(stolen.body).toContain('is held: another machine claims the same MAC');

    // Nothing further for either side: the real machine's token is revoked too.
    expect((await curlFrom(REAL, realConfig)).status).toBe(403);
    expect(configUrlIn((await curlFrom(REAL, nodeScriptUrl(g.url, mac))).body)).toBeUndefined();
    const node = await json(g.api('GET', `/nodes/${mac}`));
    expect(node.conflict).toBe(`two machines claim this MAC inside its install window: ${REAL} and ${ATTACKER}`);
    expect(node.lastIp).toBe(REAL);
    const events = (await json(g.api('GET', `/nodes/${mac}/events`))).events as Array<{ type: string; detail: Record<string, unknown> }>;
    expect(events.find((e) => e.type === 'conflict')?.detail).toEqual({ addresses: [REAL, ATTACKER] });
    const metrics = await (await fetch(`${g.url}/metrics`)).text();
    expect(metrics).toMatch(/^genesis_refused_total\{protocol="boot",reason="conflict"\} 1$/m);

    // Both lists say why it waits (the dashboard and the CLI's WAITING column read this).
    expect(node.waiting).toBe(`held: ${node.conflict}; confirm the real machine (genesis nodes confirm <mac> <address>)`);

    // The operator confirms the real one: the hold goes with the conflict, before the machine asks
    // again; it installs; the attacker is held again.
    const confirmed = await g.api('POST', `/nodes/${mac}/confirm`, { ip: REAL });
    expect(confirmed.status).toBe(200);
    expect(await confirmed.json()).toMatchObject({ conflict: null, waiting: null });
    expect(await json(g.api('GET', `/nodes/${mac}`))).toMatchObject({ conflict: null, waiting: null });
    const again = configUrlIn((await curlFrom(REAL, nodeScriptUrl(g.url, mac))).body)!;
    const served = await curlFrom(REAL, again);
    expect(served.status).toBe(200);
    expect(served.body).toContain('type: controlplane');
    expect(configUrlIn((await curlFrom(ATTACKER, nodeScriptUrl(g.url, mac))).body)).toBeUndefined();
  });

  it('a config URL copied off the wire and fetched from another address is refused, and holds the machine', async () => {
    const g = await start();
    const mac = '52:54:00:0d:00:02';
    await g.api('PUT', `/nodes/${mac}`, { role: 'worker' });
    const url = configUrlIn((await curlFrom(REAL, nodeScriptUrl(g.url, mac))).body)!;
    expect((await curlFrom(ATTACKER, url)).status).toBe(403);
    // The token now works for nobody: the real machine waits for the operator too.
    expect((await curlFrom(REAL, url)).status).toBe(403);
    expect((await json(g.api('GET', `/nodes/${mac}`))).conflict).toContain(`${REAL} and ${ATTACKER}`);

    // The operator marks it installed (it installed from the config served before): nothing is
    // served to an installed machine, so it is no longer shown as held, and its history says why.
    const installed = await g.api('POST', `/nodes/${mac}/installed`);
    expect(installed.status).toBe(200);
    expect(await installed.json()).toMatchObject({ state: 'installed', conflict: null, waiting: null });
    const events = (await json(g.api('GET', `/nodes/${mac}/events`))).events as Array<{ type: string; detail: Record<string, unknown> }>;
    expect(events.find((e) => e.type === 'conflict-resolved')?.detail).toEqual({ was: expect.stringContaining(`${REAL} and ${ATTACKER}`), by: 'state-requested' });
    const s = await curlFrom(ATTACKER, nodeScriptUrl(g.url, mac));
    expect(s.body).toContain('is installed');
    expect((await json(g.api('GET', `/nodes/${mac}`))).conflict).toBeNull();
  });

  it('an installed machine is not changed by any unauthenticated request', async () => {
    const g = await start();
    const mac = '52:54:00:0d:00:03';
    await g.api('PUT', `/nodes/${mac}`, { role: 'worker' });
    await curlFrom(REAL, nodeScriptUrl(g.url, mac));
    await g.api('POST', `/nodes/${mac}/installed`);
    const before = await json(g.api('GET', `/nodes/${mac}`));
    const eventsBefore = (await json(g.api('GET', `/nodes/${mac}/events`))).events.length;
    for (let i = 0; i < 5; i++) {
      const s = await curlFrom(ATTACKER, nodeScriptUrl(g.url, mac, { buildarch: 'arm64', serial: 'EVIL' }));
      expect(s.body).toContain('is installed');
    }
    const after = await json(g.api('GET', `/nodes/${mac}`));
    expect(after).toEqual(before);
    expect((await json(g.api('GET', `/nodes/${mac}/events`))).events.length).toBe(eventsBefore);
  });

  it('outside its install window a machine gets no installer; a reinstall opens a new one', async () => {
    const g = await start({ GENESIS_TALOS_INSTALL_WINDOW: '60' });
    const mac = '52:54:00:0d:00:04';
    await g.api('PUT', `/nodes/${mac}`, { role: 'worker' });
    // The window closes (as an hour passing would): Genesis's own clock is not faked, its record is.
    g.app.database!.connection.prepare('UPDATE nodes SET window_until = ? WHERE mac = ?').run('2000-01-01T00:00:00.000Z', mac);
    const s = await curlFrom(REAL, nodeScriptUrl(g.url, mac));
    expect(configUrlIn(s.body)).toBeUndefined();
    expect(s.body).toContain(`has no open install window. On Genesis: genesis nodes reinstall ${mac}`);
    expect((await json(g.api('GET', `/nodes/${mac}`))).waiting).toBe('waiting: its install window is closed (genesis nodes reinstall opens a new one)');
    await g.api('POST', `/nodes/${mac}/reinstall`);
    expect(configUrlIn((await curlFrom(REAL, nodeScriptUrl(g.url, mac))).body)).toBeDefined();
  });

  it('auto-assign: `workers` makes no control plane of a stranger; `listed` assigns only listed MACs', async () => {
    const w = await start({ GENESIS_AUTO_ASSIGN_ENABLED: 'true', GENESIS_AUTO_ASSIGN_MODE: 'workers' });
    expect((await curlFrom(ATTACKER, nodeScriptUrl(w.url, '02:00:00:00:66:01'))).body).toContain('as worker');
    const listed = await start({ GENESIS_AUTO_ASSIGN_ENABLED: 'true', GENESIS_AUTO_ASSIGN_MODE: 'listed', GENESIS_AUTO_ASSIGN_MACS: '52:54:00:0d:00:10' });
    expect((await curlFrom(ATTACKER, nodeScriptUrl(listed.url, '02:00:00:00:66:02'))).body).toContain('has no role yet');
    expect((await curlFrom(REAL, nodeScriptUrl(listed.url, '52:54:00:0d:00:10'))).body).toContain('as controlplane');
  });
});

describe('3. a config patch cannot reach an object prototype', () => {
  it('a JSON patch through __proto__ is refused and pollutes nothing', async () => {
    const g = await start();
    const res = await g.api('PUT', '/nodes/52:54:00:0d:03:01', { role: 'worker', configPatch: '- op: add\n  path: /__proto__/installDisk\n  value: /dev/pwned\n' });
    expect(res.status).toBe(400);
    expect((await json(res)).message).toContain('"__proto__" is not a config field');
    expect(({} as Record<string, unknown>)['installDisk']).toBeUndefined();
    const list = await g.api('GET', '/nodes');
    expect(list.status).toBe(200);
    for (const n of (await json(list)).nodes) expect(n.installDisk).not.toBe('/dev/pwned');
    const yamlKey = await g.api('PUT', '/nodes/52:54:00:0d:03:02', { role: 'worker', configPatch: 'machine:\n  __proto__:\n    installDisk: /dev/pwned\n' });
    expect(yamlKey.status).toBe(400);
    expect(({} as Record<string, unknown>)['installDisk']).toBeUndefined();
    expect((await fetch(`${g.url}/readyz`)).status).toBe(200);
  });
});

describe('6. a flood of bad requests is not a flood of log', () => {
  it('500 TFTP requests with 65 KB filenames make a few short log lines, and are all counted', async () => {
    const logLines: string[] = [];
    const g = await start({}, { logLines });
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, ATTACKER, r));
    const name = 'x'.repeat(65_000);
    let sent = 0;
    let badPaths = 0;
    g.app.tftp!.on('refused', (r: { reason: string }) => r.reason.startsWith('bad-path') && badPaths++);
    const refusedCount = () => badPaths;
    // Each answer (an error packet) comes back before the next is sent: a socket buffer holds only
    // a few 65 KB datagrams, and this is about what Genesis does with each, not about UDP drops.
    for (let i = 0; i < 500; i++) {
      // Path traversal with a huge name: refused as a bad path.
      const pkt = encodeRequest('rrq', `../${name}${i}`, 'octet');
      sent += pkt.length;
      const answer = once(sock, 'message');
      sock.send(pkt, g.tftpPort!, '127.0.0.1');
      await answer;
    }
    await until(() => refusedCount() === 500 || undefined, 'every request refused').catch((e) => { throw new Error(`${e.message}: ${badPaths} refused as bad paths`); });
    sock.close();
    const warn = logLines.filter((l) => JSON.parse(l).level >= 40 && JSON.parse(l).msg.startsWith('tftp request refused'));
    const bytes = logLines.reduce((n, l) => n + l.length, 0);
    // 32.8 MB in made 196.6 MB of log before; now one warn summary, lines of a few hundred bytes.
    expect(sent).toBeGreaterThan(32_000_000);
    expect(warn).toHaveLength(1);
    expect(bytes).toBeLessThan(1_000_000);
    for (const l of logLines) expect(l.length).toBeLessThan(1000);
    expect(await (await fetch(`${g.url}/metrics`)).text()).toMatch(/genesis_tftp_requests_total|genesis_refused_total/);
  });
});

describe('7 and 8. floods change no history and grow no inventory', () => {
  it("1,100 bad-token config fetches leave the node's audit trail and history in place", async () => {
    const g = await start();
    const mac = '52:54:00:0d:07:01';
    await g.api('PUT', `/nodes/${mac}`, { role: 'worker', hostname: 'w-7' });
    for (let i = 0; i < 1100; i++) await getFrom(ATTACKER, `${g.url}/talos/config/${mac}/${'0'.repeat(63)}${i % 10}`);
    const events = (await json(g.api('GET', `/nodes/${mac}/events?limit=1000`))).events as Array<{ type: string }>;
    expect(events.filter((e) => e.type === 'api-change')).toHaveLength(1);
    // Refusals repeat: recorded at most once a minute per reason.
    expect(events.filter((e) => e.type === 'config-denied').length).toBeLessThanOrEqual(2);
    const metrics = await (await fetch(`${g.url}/metrics`)).text();
    expect(metrics).toMatch(/^genesis_refused_total\{protocol="config",reason="no-token"\} 1100$/m);
  });

  it('made-up MACs: per address at most inventory.discovery_per_minute, in total at most inventory.max_nodes', async () => {
    const g = await start({ GENESIS_INVENTORY_DISCOVERY_PER_MINUTE: '10', GENESIS_INVENTORY_MAX_NODES: '25' });
    await g.api('PUT', '/nodes/52:54:00:0d:08:01', { role: 'worker' });
    await g.api('PUT', '/nodes/52:54:00:0d:08:02', { role: 'worker' });
    const refused: string[] = [];
    for (let i = 0; i < 50; i++) {
      const r = await getFrom(ATTACKER, nodeScriptUrl(g.url, `02:00:00:01:00:${i.toString(16).padStart(2, '0')}`));
      if (r.body.includes('not recording')) refused.push(r.body);
    }
    expect(refused).toHaveLength(40);
    expect(refused[0]).toContain('too many new machines from this address');
    // A known machine behind the same address (NAT, a lab bridge) is still served.
    expect((await getFrom(ATTACKER, nodeScriptUrl(g.url, '52:54:00:0d:08:02'))).body).toContain('talos.config=');
    // From many addresses: the total cap.
    for (let i = 0; i < 30; i++) await getFrom(`127.0.14.${i + 1}`, nodeScriptUrl(g.url, `02:00:00:02:00:${i.toString(16).padStart(2, '0')}`));
    expect((await json(g.api('GET', '/nodes'))).nodes).toHaveLength(25);
    // A known machine is never affected.
    expect((await getFrom(REAL, nodeScriptUrl(g.url, '52:54:00:0d:08:01'))).body).toContain('talos.config=');
    const metrics = await (await fetch(`${g.url}/metrics`)).text();
    expect(metrics).toMatch(/^genesis_refused_total\{protocol="boot",reason="discovery-rate"\} 40$/m);
    expect(metrics).toMatch(/^genesis_refused_total\{protocol="boot",reason="inventory-full"\} 17$/m);
  });
});

describe('9. the smaller findings', () => {
  it('/readyz says not ready while the inventory refuses writes', async () => {
    const g = await start();
    expect((await fetch(`${g.url}/readyz`)).status).toBe(200);
    g.app.database!.connection.pragma('query_only = ON');
    const r = await fetch(`${g.url}/readyz`);
    expect(r.status).toBe(503);
    expect(((await r.json()) as { checks: Record<string, string> }).checks['storage']).toMatch(/writes fail/);
    g.app.database!.connection.pragma('query_only = OFF');
    expect((await fetch(`${g.url}/readyz`)).status).toBe(200);
  });

  it('/assets/ does not follow a symlink out of the assets root', async () => {
    const g = await start();
    mkdirSync(path.join(g.assetsDir, 'talos', 'evil'), { recursive: true });
    symlinkSync('/etc/passwd', path.join(g.assetsDir, 'talos', 'evil', 'vmlinuz'));
    symlinkSync('/etc', path.join(g.assetsDir, 'etc'));
    expect((await fetch(`${g.url}/assets/talos/evil/vmlinuz`)).status).toBe(404);
    expect((await fetch(`${g.url}/assets/etc/passwd`)).status).toBe(404);
    // Inside the root, a symlink is fine.
    symlinkSync(path.join(g.assetsDir, 'talos', 'v1.14.0', 'amd64', 'vmlinuz'), path.join(g.assetsDir, 'talos', 'alias'));
    expect((await fetch(`${g.url}/assets/talos/alias`)).status).toBe(200);
  });

  it('the data dir is 0700 and its files 0600, also when they were looser before', async () => {
    const first = await start();
    const dataDir = first.dataDir;
    const assetsDir = first.assetsDir;
    running.splice(running.indexOf(first), 1);
    await first.app.close();
    chmodSync(dataDir, 0o755);
    chmodSync(path.join(dataDir, 'genesis.db'), 0o644);
    writeFileSync(path.join(dataDir, 'notes.txt'), 'x', { mode: 0o644 });
    const g = await start({}, { dataDir, assetsDir });
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    for (const f of ['genesis.db', 'secrets.yaml', 'notes.txt']) expect(statSync(path.join(dataDir, f)).mode & 0o777, f).toBe(0o600);
    void g;
  });

  it('config patches are kept in the audit trail only as a digest', async () => {
    const g = await start();
    await g.api('PUT', '/nodes/52:54:00:0d:09:01', { role: 'worker', configPatch: 'machine:\n  env:\n    TOKEN: hunter2-secret\n' });
    const text = JSON.stringify((await json(g.api('GET', '/nodes/52:54:00:0d:09:01/events'))).events);
    expect(text).not.toContain('hunter2-secret');
    expect(text).toMatch(/"configPatch":\{"sha256":"[0-9a-f]{64}","bytes":\d+\}/);
  });

  it('a request whose body dribbles in is cut off', async () => {
    const g = await start({ GENESIS_HTTP_REQUEST_TIMEOUT: '1' });
    const port = Number(new URL(g.url).port);
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: ATTACKER });
    await new Promise<void>((r) => socket.once('connect', () => r()));
    // Authenticated, so the handler waits for the body (an unauthenticated one is answered 401 at once).
    socket.write(`PUT /api/v1/nodes/52:54:00:0d:09:02 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`);
    // The server ends it (408 or a close); nothing here ends it.
    const answer = await new Promise<string>((resolve) => {
      let got = '';
      socket.on('data', (d) => (got += d.toString()));
      socket.on('close', () => resolve(got));
    });
    expect(answer === '' || answer.startsWith('HTTP/1.1 408'), answer).toBe(true);
  });
});

describe('under Docker (no terminal) the first-start token never reaches the log', () => {
  it('stderr says where it is; genesis token show prints it', async () => {
    const { GenesisProcess } = await import('../helpers/genesis-process.ts');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-token-'));
    mkdirSync(path.join(dir, 'assets', 'ipxe'), { recursive: true });
    const p = new GenesisProcess(['serve'], { GENESIS_ADVERTISE_ADDR: '127.0.0.1', GENESIS_HTTP_PORT: '0', GENESIS_TFTP_PORT: '0', GENESIS_EVENTS_SINK_PORT: '0', GENESIS_EVENTS_KERNEL_LOG_PORT: '0' }, dir);
    await p.ready();
    // Everything it wrote is in once it has exited.
    p.kill('SIGTERM');
    await p.exit();
    const token = readFileSync(path.join(dir, 'data', 'admin.token'), 'utf8').trim();
    expect(token).toMatch(/^gns_/);
    expect(statSync(path.join(dir, 'data', 'admin.token')).mode & 0o777).toBe(0o600);
    expect(p.stderr).not.toContain(token);
    expect(JSON.stringify(p.lines)).not.toContain(token);
    expect(p.stderr).toContain('Read it with: genesis token show');
    const { BIN } = await import('../helpers/genesis-process.ts');
    const shown = await run(process.execPath, [BIN, 'token', 'show'], { env: { PATH: process.env.PATH, GENESIS_DATA_DIR: path.join(dir, 'data') } });
    expect(shown).toMatchObject({ code: 0, stdout: `${token}\n` });
  });
});
