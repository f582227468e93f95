// The folders of src/ in layers: a module may import only from its own folder or a lower layer,
// and no chain of imports may come back to where it started. A boot flows dhcp → tftp →
// http/ipxe → provision → talos config → talos-events at run time; the imports point the other way
// (the outer layers call the inner ones), and this test keeps them that way. The README's Layout
// section draws the same picture; change both together.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../../src');

/** Lower numbers are more basic. Folders on one layer do not import each other. */
const LAYERS: Record<string, number> = {
  text: -1, // small text helpers (did-you-mean): below every layer, so any may suggest a word
  domain: -1, // the shared domain types and rules (node, MAC, Kubernetes label syntax): depend on nothing, so any layer, talos included, may use them
  talos: 0, // Talos config renderers, version contracts, secrets, the Talos API client
  logging: 0,
  net: 0,
  auth: 0,
  native: 0, // loading Genesis's native addons (native/*.c): where each is built, why one would not load
  scheduling: 0, // the time slices boot work runs in (pure scheduling): HTTP's and TFTP's per-machine answers share them
  ipxe: 1, // iPXE script renderers and the boot plan (pure)
  tftp: 1,
  bulk: 1, // the download senders (the sendfile thread, the sender process): send the byte ranges the HTTP asset route hands them
  dhcp: 2,
  uboot: 2,
  'cloud-init': 2, // boot profiles besides Talos: their files, templates and documents (pure but for reading the profile files)
  grub: 2, // GRUB configs for arm64 UEFI without iPXE (pure), and their TFTP names
  assets: 2,
  config: 2,
  inventory: 3, // SQLite stores
  bootstrap: 4, // the lock's rules and store, the orchestrator
  fleet: 4, // the fleet file: parse, plan, reconcile into the inventory
  power: 4, // power actions: magic packets, ipmitool, Talos reboot and reset
  backup: 4, // etcd snapshots: retention rules, the snapshot files, the schedule
  metrics: 5,
  'talos-events': 6, // the Talos event sink: decoding and install rules (pure), gRPC server
  'kernel-log': 6,
  provision: 6, // the boot conversation
  http: 7,
  doctor: 7,
  '(root)': 8, // app.ts: wiring
  cli: 9,
};

type Edge = { from: string; to: string };

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Every relative import (static, type-only, re-export, dynamic) of every module under src/. */
function imports(): Edge[] {
  const edges: Edge[] = [];
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g)) {
      edges.push({ from: file, to: path.resolve(path.dirname(file), (m[1] ?? m[2])!) });
    }
  }
  return edges;
}

function folderOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length > 1 ? rel[0]! : '(root)';
}

describe('the structure of src/', () => {
  const edges = imports();
  const rel = (f: string) => path.relative(SRC, f);

  it('reads the imports (a parser that found none would pass everything)', () => {
    expect(edges.length).toBeGreaterThan(200);
    expect(edges.some((e) => rel(e.from) === 'app.ts' && rel(e.to) === 'provision/service.ts')).toBe(true);
  });

  it('every folder has a layer', () => {
    const folders = new Set(sources(SRC).map(folderOf));
    folders.delete('dashboard'); // static files served by http/, no TypeScript imports
    expect([...folders].filter((f) => LAYERS[f] === undefined)).toEqual([]);
  });

  it('imports point only down the layers', () => {
    const against = edges
      .filter((e) => folderOf(e.from) !== folderOf(e.to))
      .filter((e) => LAYERS[folderOf(e.from)]! <= LAYERS[folderOf(e.to)]!)
      .map((e) => `${rel(e.from)} → ${rel(e.to)}`);
    expect(against).toEqual([]);
  });

  it('no import cycle between modules', () => {
    const graph = new Map<string, string[]>();
    for (const e of edges) graph.set(e.from, [...(graph.get(e.from) ?? []), e.to]);
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, stack: string[]) => {
      state.set(f, 'open');
      stack.push(f);
      for (const t of graph.get(f) ?? []) {
        if (state.get(t) === 'open') cycles.push([...stack.slice(stack.indexOf(t)), t].map(rel).join(' → '));
        else if (!state.has(t)) visit(t, stack);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of graph.keys()) if (!state.has(f)) visit(f, []);
    expect(cycles).toEqual([]);
  });
});
