// A second proxyDHCP and a second Genesis on the LAN, with real servers in test network namespaces
// joined by a bridge (192.0.2.0/25, no route out): dnsmasq as a proxyDHCP, a Genesis for the same
// cluster and one for another cluster. The Genesis under test probes at start: GET /api/v1/lan
// names each, a second Genesis for its cluster as a failure; `genesis doctor` says the same.

import { mkdirSync, mkdtempSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, GenesisProcess } from '../helpers/genesis-process.ts';
import { run } from '../helpers/run.ts';
import { until } from '../helpers/wait.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test reads of API JSON
type Json = any;

const TOKEN = 'lan-probe-token-0123456789';
const tag = process.pid.toString(36);
const NS = { bridge: `gen-lb-${tag}`, rival: `gen-lr-${tag}`, twin: `gen-lt-${tag}`, other: `gen-lo-${tag}`, self: `gen-ls-${tag}` };
const ADDR = { rival: '192.0.2.1', twin: '192.0.2.2', other: '192.0.2.3', self: '192.0.2.65' };

let usable = '';
const work = mkdtempSync(path.join(tmpdir(), 'genesis-lan-'));
const processes: Array<GenesisProcess | ChildProcess> = [];

async function ip(...args: string[]): Promise<void> {
  const r = await run('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

function genesisEnv(name: string, addr: string, cluster: string): NodeJS.ProcessEnv {
  const dir = path.join(work, name);
  mkdirSync(path.join(dir, 'assets', 'ipxe'), { recursive: true });
  return {
    GENESIS_DATA_DIR: path.join(dir, 'data'),
    GENESIS_ASSETS_DIR: path.join(dir, 'assets'),
    GENESIS_ADVERTISE_ADDR: addr,
    GENESIS_CLUSTER_NAME: cluster,
    GENESIS_API_TOKEN: TOKEN,
    GENESIS_DHCP_PROXY: 'true',
    GENESIS_DHCP_LAN_PROBE_INTERVAL: name === 'self' ? '600' : '0',
    GENESIS_TFTP_PORT: '0',
    GENESIS_ASSETS_FETCH_ON_START: 'false',
    XDG_STATE_HOME: path.join(dir, 'state'),
  };
}

beforeAll(async () => {
  try {
    await ip('netns', 'add', NS.bridge);
    await ip('-n', NS.bridge, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', NS.bridge, 'link', 'set', 'br0', 'up');
    for (const name of ['rival', 'twin', 'other', 'self'] as const) {
      const ns = NS[name];
      await ip('netns', 'add', ns);
      await ip('link', 'add', 'lan0', 'netns', ns, 'type', 'veth', 'peer', 'name', `p-${name}`, 'netns', NS.bridge);
      await ip('-n', NS.bridge, 'link', 'set', `p-${name}`, 'master', 'br0', 'up');
      await ip('-n', ns, 'addr', 'add', `${ADDR[name]}/25`, 'dev', 'lan0');
      await ip('-n', ns, 'link', 'set', 'lan0', 'up');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    usable = 'yes';
  } catch (err) {
    usable = (err as Error).message;
  }
}, 60_000);

afterAll(async () => {
  for (const p of processes) p.kill('SIGKILL');
  for (const ns of Object.values(NS)) await run('ip', ['netns', 'del', ns]);
});

async function startGenesisIn(name: 'twin' | 'other' | 'self', cluster: string): Promise<GenesisProcess> {
  const g = new GenesisProcess(['serve'], genesisEnv(name, ADDR[name], cluster), undefined, ['ip', 'netns', 'exec', NS[name]]);
  processes.push(g);
  await g.ready();
  return g;
}

describe('other PXE servers on the LAN', () => {
  it('the API and doctor name a rival proxyDHCP and another Genesis, and fail on a second Genesis for the same cluster', async (ctx) => {
    if (usable !== 'yes') ctx.skip(`no test namespaces here: ${usable}`);
    if ((await run('sh', ['-c', 'command -v dnsmasq'])).code !== 0) ctx.skip('dnsmasq is not installed (Debian: dnsmasq-base)');

    // A plain dnsmasq proxyDHCP, as a NAS or an old PXE setup would run it.
    const dnsmasq = spawn(
      'ip',
      ['netns', 'exec', NS.rival, 'dnsmasq', '--keep-in-foreground', '--port=0', '--conf-file=/dev/null', '--interface=lan0', '--bind-interfaces', '--dhcp-range=192.0.2.0,proxy,255.255.255.128', '--pxe-service=x86-64_EFI,"Old menu",bootx64.efi', `--pid-file=${work}/dnsmasq.pid`, '--log-facility=-', '--log-dhcp'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    processes.push(dnsmasq);
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const look = (d: Buffer) => ((out += d), /DHCP, proxy on subnet/.test(out) && resolve());
      dnsmasq.stdout!.on('data', look);
      dnsmasq.stderr!.on('data', look);
      dnsmasq.on('exit', (code) => reject(new Error(`dnsmasq exited (${code}): ${out}`)));
    });
    await startGenesisIn('twin', 'lab');
    await startGenesisIn('other', 'attic');
    const self = await startGenesisIn('self', 'lab');
    const port = (await self.ready()).http.port;

    const lan = async (): Promise<Json> => {
      const r = await run('ip', ['netns', 'exec', NS.self, 'curl', '-sf', '-H', `authorization: Bearer ${TOKEN}`, `http://${ADDR.self}:${port}/api/v1/lan`]);
      if (r.code !== 0) throw new Error(`curl: ${r.code} ${r.stderr}`);
      return JSON.parse(r.stdout);
    };
    const result = await until(async () => {
      const r = await lan();
      return r.probedAt ? r : undefined;
    }, 'the first LAN probe').catch(async (err) => {
      throw new Error(`${(err as Error).message}: ${JSON.stringify(await lan().catch((e) => String(e)))} log: ${JSON.stringify(self.lines.slice(-8))} ${self.stderr}`);
    });
    expect(result.probing).toBe(true);
    const problems = result.findings.filter((f: Json) => f.severity !== 'ok').map((f: Json) => [f.server, f.kind, f.severity, f.genesis?.cluster ?? null]);
    expect(problems.sort()).toEqual([
      [ADDR.rival, 'proxy-dhcp', 'warn', null],
      [ADDR.twin, 'proxy-dhcp', 'fail', 'lab'],
      [ADDR.other, 'proxy-dhcp', 'warn', 'attic'],
    ].sort());

    // doctor, run on the same host with the same settings, says the same (the running serve is this host's).
    const env = genesisEnv('self', ADDR.self, 'lab');
    const doctor = await run('ip', ['netns', 'exec', NS.self, 'env', ...Object.entries({ PATH: process.env.PATH, ...env }).map(([k, v]) => `${k}=${v}`), process.execPath, BIN, 'doctor', '-o', 'json'], { timeoutMs: 60_000 });
    const { results } = JSON.parse(doctor.stdout) as Json;
    const lanChecks = results.filter((r: Json) => r.id === 'lan');
    expect(lanChecks.map((r: Json) => r.status).sort()).toEqual(['fail', 'warn', 'warn']);
    expect(lanChecks.find((r: Json) => r.status === 'fail').title).toMatch(new RegExp(`a second Genesis for cluster "lab" answers PXE clients at ${ADDR.twin.replace(/\./g, '\\.')}`));
    expect(doctor.code).toBe(1);
  });
});
