// Install-script rate: GET /ipxe/node for one assigned machine, from its own address (127.0.13.2),
// 10,000 requests, 16 at once, after 500 untimed ones; then the config cycle: 16 machines, each from its own address, each
// asking for its install script and then fetching the config its token names, 10,000 cycles in all.
// Beside them, the same client's rate for GET /boot.ipxe, which reads and writes nothing: the
// HTTP stack and this client alone, a gauge of the hour's speed for the two absolute goals
// (this VM's speed moves through the day; the ratio to it does not move with it).
// Against this checkout and, with --old <checkout>, against another one in the same run
// (alternating, twice each), so the ratio is what to read:
//
//   git worktree add /tmp/genesis-old <commit> && ln -s "$PWD/node_modules" /tmp/genesis-old/
//   node bench/install-script-rate.ts --old /tmp/genesis-old
//
// Loopback only; bounded in count.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ratePerSecond, startGenesis } from './peers.ts';
import { recordFigures } from './results.ts';

const { values } = parseArgs({ options: { old: { type: 'string' }, requests: { type: 'string' } } });
const N = Number(values.requests ?? 10000);
/** Untimed requests first: a running Genesis has compiled its schemas and warmed its JIT. */
const WARM = 500;
const C = 16;
const IP = '127.0.13.2';
const MAC = '52:54:00:99:00:07';
const TOKEN = 'rate-token-0123456789ab';

type Rates = { script: number; cycle: number; floor: number };

async function measure(repo: string): Promise<Rates> {
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-rate-'));
  for (const v of ['v1.13.9', 'v1.14.0']) {
    mkdirSync(path.join(dir, 'assets', 'talos', v, 'amd64'), { recursive: true });
    for (const f of ['vmlinuz', 'initramfs.xz']) writeFileSync(path.join(dir, 'assets', 'talos', v, 'amd64', f), 'x');
  }
  const genesis = await startGenesis(repo, dir, { GENESIS_API_TOKEN: TOKEN });
  const port = genesis.port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: C });
  const request = (method: string, p: string, body?: unknown, from = IP) =>
    new Promise<string>((resolve, reject) => {
      const r = http.request(`http://127.0.0.1:${port}${p}`, { method, agent, localAddress: from, headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => (res.statusCode === 200 || method !== 'GET' ? resolve(text) : reject(new Error(`${p}: ${res.statusCode} ${text}`))));
      });
      r.on('error', reject);
      r.end(body ? JSON.stringify(body) : undefined);
    });
  // A version both checkouts render, so the two do the same work.
  await request('PUT', `/api/v1/nodes/${MAC}`, { role: 'worker', talosVersion: 'v1.13.9' });
  const script = await ratePerSecond(N, C, () => request('GET', `/ipxe/node?mac=${MAC}&buildarch=x86_64&platform=efi`), WARM);
  const floor = await ratePerSecond(N, C, () => request('GET', '/boot.ipxe'), WARM);

  // The config cycle: machine i (its own MAC and address) asks for its script, then its config.
  const machines = Array.from({ length: C }, (_, i) => ({ mac: `52:54:00:99:01:${(i + 16).toString(16)}`, ip: `127.0.13.${10 + i}` }));
  for (const m of machines) await request('PUT', `/api/v1/nodes/${m.mac}`, { role: 'worker', talosVersion: 'v1.13.9' });
  let cycles = 0;
  const t1 = performance.now();
  await Promise.all(
    machines.map(async (m) => {
      while (cycles < N) {
        cycles++;
        const text = await request('GET', `/ipxe/node?mac=${m.mac}&buildarch=x86_64&platform=efi`, undefined, m.ip);
        const url = /http:\/\/[^/\s]+(\/talos\/config\/\S+)/.exec(text);
        if (!url) throw new Error(`no config URL in the script: ${text}`);
        await request('GET', url[1]!, undefined, m.ip);
      }
    }),
  );
  const cycle = N / ((performance.now() - t1) / 1000);
  agent.destroy();
  await genesis.stop();
  rmSync(dir, { recursive: true, force: true });
  return { script, cycle, floor };
}

const here = path.join(import.meta.dirname, '..');
const rates: { here: Rates[]; old: Rates[] } = { here: [], old: [] };
for (let round = 0; round < 2; round++) {
  if (values.old) rates.old.push(await measure(path.resolve(values.old)));
  rates.here.push(await measure(here));
}
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
recordFigures('install-script-rate', {
  scripts_per_s: mean(rates.here.map((r) => r.script)),
  cycles_per_s: mean(rates.here.map((r) => r.cycle)),
  bootipxe_per_s: mean(rates.here.map((r) => r.floor)),
});
const LABEL = { script: 'install script', cycle: 'config cycle', floor: 'boot.ipxe (no write: the gauge)' } as const;
for (const k of ['script', 'cycle', 'floor'] as const) {
  const label = LABEL[k];
  console.log(`${label}: ${rates.here.map((r) => r[k].toFixed(0)).join(', ')} /s here`);
  if (values.old) {
    console.log(`${label}: ${rates.old.map((r) => r[k].toFixed(0)).join(', ')} /s at ${values.old}`);
    console.log(`${label}: ratio here/old ${(mean(rates.here.map((r) => r[k])) / mean(rates.old.map((r) => r[k]))).toFixed(2)}`);
  }
}
for (const k of ['script', 'cycle'] as const) {
  console.log(`${LABEL[k]} ÷ boot.ipxe, same run: ${(mean(rates.here.map((r) => r[k])) / mean(rates.here.map((r) => r.floor))).toFixed(2)}`);
}
process.exit(0);
