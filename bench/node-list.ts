// The node list at fleet scale: building and serialising every record (what GET /api/v1/nodes did
// before paging) against one page of 1000 along the listing index (what it does now), on the same
// inventory file in the same run. Prints the medians and their ratio; no threshold.
//
//   node bench/node-list.ts [--nodes 30000] [--runs 7]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Inventory } from '../src/inventory/store.ts';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '30000' }, runs: { type: 'string', default: '7' } } });
const count = Number(values.nodes);
const runs = Number(values.runs);
const dir = mkdtempSync(path.join(tmpdir(), 'genesis-bench-list-'));
const inv = Inventory.open(path.join(dir, 'genesis.db'));
try {
  inv.atomically(() => {
    for (let i = 0; i < count; i++) {
      const mac = `52:54:${[i >> 24, i >> 16, i >> 8, i].map((b) => (b & 0xff).toString(16).padStart(2, '0')).join(':')}`;
      inv.recordBoot(mac, { arch: 'amd64', firmware: 'uefi', ip: `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}` });
    }
  });
  const median = (f: () => unknown) => {
    const times: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t = performance.now();
      f();
      times.push(performance.now() - t);
    }
    return times.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
  };
  const whole = median(() => JSON.stringify({ nodes: inv.list() }));
  const first = median(() => JSON.stringify({ nodes: inv.list({}, { limit: 1001 }).slice(0, 1000) }));
  const middle = inv.list({}, { limit: count / 2 }).at(-1)!;
  const later = median(() => JSON.stringify({ nodes: inv.list({}, { limit: 1001, after: { firstSeen: middle.firstSeen, mac: middle.mac } }).slice(0, 1000) }));
  console.log(`${count} nodes, median of ${runs}: whole list ${whole.toFixed(1)} ms; first page of 1000 ${first.toFixed(1)} ms; a page from the middle ${later.toFixed(1)} ms; whole/page ${(whole / first).toFixed(1)}x`);
} finally {
  inv.close();
  rmSync(dir, { recursive: true, force: true });
}
