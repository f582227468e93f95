// The inventory's boot-path reads and its ring prune, per call: attributing a TFTP or asset
// download to the machine at an address, finding a node by an address its Talos reported, a page
// of the node list and the orchestrator's list of one role, a node's recent events, and the prune
// that keeps a machine's noise ring bounded (run for each machine's first append after start).
// 1,000 machines in a real SQLite file (WAL, as `genesis serve` opens it).
// With --old <checkout>, that checkout's inventory is loaded into the same process, on a file of
// its own filled the same way, and the two take turns batch by batch; the ratio is what to read:
//
//   git worktree add /tmp/genesis-old <commit> && ln -s "$PWD/node_modules" /tmp/genesis-old/
//   node bench/inventory-lookups.ts --old /tmp/genesis-old
//
// No sockets; bounded in count.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './results.ts';

const { values } = parseArgs({ options: { old: { type: 'string' }, calls: { type: 'string' } } });
const MACHINES = 1000;
const CALLS = Number(values.calls ?? 20000);
const BATCHES = 20;
const WARM = 500;

const mac = (i: number) => `52:54:00:10:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const ip = (i: number) => `10.${(i >> 8) & 255}.${i & 255}.1`;

type Operation = (i: number) => unknown;
type Subject = { ops: Record<string, Operation>; close: () => void };

async function subjectOf(repo: string): Promise<Subject> {
  const load = (p: string) => import(pathToFileURL(path.join(repo, p)).href);
  const { InventoryDatabase } = (await load('src/inventory/database.ts')) as typeof import('../src/inventory/database.ts');
  const { Inventory } = (await load('src/inventory/store.ts')) as typeof import('../src/inventory/store.ts');
  const dir = mkdtempSync(path.join(tmpdir(), 'genesis-lookups-'));
  const database = InventoryDatabase.open(path.join(dir, 'genesis.db'));
  const inv = new Inventory(database);
  inv.atomically(() => {
    for (let i = 0; i < MACHINES; i++) {
      inv.recordBoot(mac(i), { arch: 'amd64', firmware: 'uefi', ip: ip(i) });
      if (i % 3 === 0) inv.update(mac(i), { role: 'worker' }, 'bench', { create: false });
      inv.applyTalosEvent(mac(i), { id: `e-${i}`, detail: {}, addresses: [`10.200.${(i >> 8) & 255}.${i & 255}`] });
      for (let e = 0; e < 40; e++) inv.record(mac(i), 'asset-fetched', 'boot', { path: '/assets/talos/v1.14.0/amd64/vmlinuz' });
    }
  });
  const first = inv.list({}, { limit: 50 });
  const after = { firstSeen: first.at(-1)!.firstSeen, mac: first.at(-1)!.mac };
  return {
    ops: {
      'download attributed by address': (i) => inv.observedMac({ ip: ip(i % MACHINES) }),
      'node by boot address': (i) => inv.byIp(ip(i % MACHINES)),
      'node by a Talos address': (i) => inv.bySource(`10.200.${((i % MACHINES) >> 8) & 255}.${(i % MACHINES) & 255}`),
      'node list, a page of 50': () => inv.list({}, { limit: 50, after }),
      "a node's 20 newest events": (i) => inv.events(mac(i % MACHINES), { limit: 20 }),
      // The prune alone, as a machine's first noise append after start runs it (rolled back: the ring stays as it is).
      'noise ring prune': (i) => {
        try {
          database.write(() => {
            database.keepNewest('node_events', 'id', mac(i % MACHINES), 30, 'audit = 0');
            throw new Error('roll back');
          });
        } catch {
          // rolled back on purpose
        }
      },
    },
    close: () => {
      inv.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** µs per call over one batch of `n` calls. */
function batch(op: Operation, n: number, from: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) op(from + i);
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

const now = await subjectOf(path.resolve(import.meta.dirname, '..'));
const old = values.old ? await subjectOf(path.resolve(values.old)) : undefined;
const per = Math.max(1, Math.round(CALLS / BATCHES));
console.log(`µs per call, ${MACHINES} machines: the median of ${BATCHES} batches of ${per} calls after ${WARM} untimed${old ? ', the two checkouts taking turns batch by batch' : ''}`);
for (const name of Object.keys(now.ops)) {
  const a = now.ops[name]!;
  const b = old?.ops[name];
  batch(a, WARM, 0);
  if (b) batch(b, WARM, 0);
  const times = { now: [] as number[], old: [] as number[] };
  for (let k = 0; k < BATCHES; k++) {
    // Each goes first in every other batch.
    if (b && k % 2) times.old.push(batch(b, per, k * per));
    times.now.push(batch(a, per, k * per));
    if (b && !(k % 2)) times.old.push(batch(b, per, k * per));
  }
  const line = `${name.padEnd(32)} ${median(times.now).toFixed(1).padStart(7)} µs`;
  console.log(b ? `${line}   old ${median(times.old).toFixed(1).padStart(7)} µs   ${(median(times.now) / median(times.old)).toFixed(2)}×` : line);
}
now.close();
old?.close();
