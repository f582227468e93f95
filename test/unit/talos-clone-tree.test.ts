// cloneTree() replaced structuredClone() in the render: the copy must be equal and independent,
// for Talos's own configs and for whatever a patch's YAML can hold.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { cloneTree } from '../../src/talos/documents.ts';

const fixture = (name: string) => path.join(import.meta.dirname, '..', 'fixtures', 'talos', 'stability', 'v1.14', name);

describe('cloneTree', () => {
  it("copies Talos's generated documents equal to structuredClone's copy, sharing nothing with the original", () => {
    for (const file of ['base-controlplane.yaml', 'base-worker.yaml']) {
      for (const parsed of parseAllDocuments(readFileSync(fixture(file), 'utf8'))) {
        const doc = parsed.toJS() as Record<string, unknown>;
        const copy = cloneTree(doc);
        expect(copy).toStrictEqual(structuredClone(doc));
        const objects = new Set<unknown>();
        const walk = (v: unknown) => {
          if (v && typeof v === 'object') {
            objects.add(v);
            Object.values(v).forEach(walk);
          }
        };
        walk(doc);
        const walkCopy = (v: unknown) => {
          if (v && typeof v === 'object') {
            expect(objects.has(v)).toBe(false);
            Object.values(v).forEach(walkCopy);
          }
        };
        walkCopy(copy);
      }
    }
  });

  it('keeps scalars, empty collections, nulls and undefined as they are, and copies other objects as structuredClone does', () => {
    const when = new Date(0);
    const tree = { a: [1, 'x', null, true, [], {}], b: { c: undefined, d: -0, e: 1.5 }, when, bytes: new Uint8Array([1, 2]) };
    const copy = cloneTree(tree);
    expect(copy).toStrictEqual(structuredClone(tree));
    expect(copy.when).not.toBe(when);
    expect(copy.when.getTime()).toBe(0);
    expect(Object.is(copy.b.d, -0)).toBe(true);
    expect(Object.keys(copy.b)).toEqual(['c', 'd', 'e']);
    const nullProto = Object.assign(Object.create(null) as Record<string, unknown>, { k: { v: 1 } });
    expect(cloneTree(nullProto)).toStrictEqual({ k: { v: 1 } });
  });
});
