// Asset GETs against the size of the inventory: a 64 KiB kernel fetched 5,000 times, 16 at once,
// from the address of a known machine (so each response is attributed to it), with 100 and with
// 30,000 machines in the inventory, alternated twice; the ratio is what to read (the issue's
// figure before the `last_ip` index: 1,546 req/s at 100 machines, 204 at 30,000).
//
//   node bench/asset-lookup.ts [--nodes 30000]
//
// Loopback only; bounded in count.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Inventory } from '../src/inventory/store.ts';
import { ratePerSecond, startGenesis } from './peers.ts';
import { recordFigures } from './results.ts';

const { values } = parseArgs({ options: { nodes: { type: 'string' } } });
const BIG = Number(values.nodes ?? 30000);
const N = 5000;
const WARM = 500;
const C = 16;
const IP = '127.0.15.2';
const mac = (i: number) => `52:54:01:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

async function measure(nodes: number): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-lookup-'));
  const assets = path.join(dir, 'assets', 'talos', 'v1.14.0', 'amd64');
  mkdirSync(assets, { recursive: true });
  writeFileSync(path.join(assets, 'vmlinuz'), Buffer.alloc(64 * 1024, 1));
  writeFileSync(path.join(assets, 'initramfs.xz'), 'x');
  mkdirSync(path.join(dir, 'data'), { mode: 0o700 });
  const inv = Inventory.open(path.join(dir, 'data', 'genesis.db'));
  // Machine 0 is the one asking; the others each from an address of their own.
  inv.atomically(() => {
    for (let i = 0; i < nodes; i++) inv.recordBoot(mac(i), { ip: i === 0 ? IP : `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` });
  });
  inv.close();
  const genesis = await startGenesis(path.join(import.meta.dirname, '..'), dir, { GENESIS_INVENTORY_MAX_NODES: String(nodes + 100) });
  const agent = new http.Agent({ keepAlive: true, maxSockets: C });
  const get = () =>
    new Promise<void>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: genesis.port, path: '/assets/talos/v1.14.0/amd64/vmlinuz', agent, localAddress: IP }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
        })
        .on('error', reject);
    });
  const rate = await ratePerSecond(N, C, get, WARM);
  agent.destroy();
  await genesis.stop();
  rmSync(dir, { recursive: true, force: true });
  return rate;
}

const small: number[] = [];
const big: number[] = [];
for (let round = 0; round < 2; round++) {
  small.push(await measure(100));
  big.push(await measure(BIG));
}
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
console.log(`asset GET: ${small.map((r) => r.toFixed(0)).join(', ')} req/s with 100 machines`);
console.log(`asset GET: ${big.map((r) => r.toFixed(0)).join(', ')} req/s with ${BIG} machines`);
console.log(`ratio 100 / ${BIG}: ${(mean(small) / mean(big)).toFixed(2)}`);
recordFigures('asset-lookup', { machines: BIG, rate_100: mean(small), rate_big: mean(big), ratio: mean(small) / mean(big) });
process.exit(0);
