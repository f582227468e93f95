// Install-script rate: GET /ipxe/node for one assigned machine, from its own address (127.0.13.2),
// 3,000 requests, 16 at once, against this checkout and, with --old <checkout>, against another one
// in the same run (alternating, twice each), so the ratio is what to read:
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
import { startGenesis } from './peers.ts';

const { values } = parseArgs({ options: { old: { type: 'string' }, requests: { type: 'string' } } });
const N = Number(values.requests ?? 3000);
const C = 16;
const IP = '127.0.13.2';
const MAC = '52:54:00:99:00:07';
const TOKEN = 'rate-token-0123456789ab';

async function measure(repo: string): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-rate-'));
  for (const v of ['v1.13.9', 'v1.14.0']) {
    mkdirSync(path.join(dir, 'assets', 'talos', v, 'amd64'), { recursive: true });
    for (const f of ['vmlinuz', 'initramfs.xz']) writeFileSync(path.join(dir, 'assets', 'talos', v, 'amd64', f), 'x');
  }
  const genesis = await startGenesis(repo, dir, { GENESIS_API_TOKEN: TOKEN });
  const port = genesis.port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: C });
  const request = (method: string, p: string, body?: unknown) =>
    new Promise<void>((resolve, reject) => {
      const r = http.request(`http://127.0.0.1:${port}${p}`, { method, agent, localAddress: IP, headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      r.on('error', reject);
      r.end(body ? JSON.stringify(body) : undefined);
    });
  // A version both checkouts render, so the two do the same work.
  await request('PUT', `/api/v1/nodes/${MAC}`, { role: 'worker', talosVersion: 'v1.13.9' });
  let started = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (started < N) {
        started++;
        await request('GET', `/ipxe/node?mac=${MAC}&buildarch=x86_64&platform=efi`);
      }
    }),
  );
  const rate = N / ((performance.now() - t0) / 1000);
  agent.destroy();
  await genesis.stop();
  rmSync(dir, { recursive: true, force: true });
  return rate;
}

const here = path.join(import.meta.dirname, '..');
const rates: { here: number[]; old: number[] } = { here: [], old: [] };
for (let round = 0; round < 2; round++) {
  if (values.old) rates.old.push(await measure(path.resolve(values.old)));
  rates.here.push(await measure(here));
}
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
console.log(`install script: ${rates.here.map((r) => r.toFixed(0)).join(', ')} req/s here`);
if (values.old) {
  console.log(`install script: ${rates.old.map((r) => r.toFixed(0)).join(', ')} req/s at ${values.old}`);
  console.log(`ratio here/old: ${(mean(rates.here) / mean(rates.old)).toFixed(2)}`);
}
process.exit(0);
