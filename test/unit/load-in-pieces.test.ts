// Loading a CommonJS package a few modules per turn (talos/load-in-pieces.ts, in the order
// talos/require-order.ts gives): the order keeps every module's view of the others as when the
// package is required at once (a cycle is never split, or a class extending a half-loaded one
// fails), no turn requires past its budget but for its first module, and what it loaded is what
// an import then finds, not a second copy.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadInPieces } from '../../src/talos/load-in-pieces.ts';
import { requireOrder } from '../../src/talos/require-order.ts';

const graphOf = (edges: Record<string, string[]>) => (m: string) => edges[m] ?? [];

describe('requireOrder', () => {
  it('lists each module after everything it requires, in the order its source requires them', () => {
    const order = requireOrder(['index'], graphOf({ index: ['a', 'b'], a: ['c'], b: ['c', 'd'] }));
    expect(order).toEqual(['c', 'a', 'd', 'b', 'index']);
  });

  it('lists a cycle once, by the member entered first, which loads the rest as a whole require does', () => {
    // index → a → b → a: required at once, a runs first and b sees a half-loaded a.
    const order = requireOrder(['index'], graphOf({ index: ['a', 'x'], a: ['b'], b: ['a', 'leaf'], x: [] }));
    expect(order).toEqual(['leaf', 'a', 'x', 'index']);
    expect(order).not.toContain('b');
  });

  it('keeps a module that reaches back into a cycle inside it', () => {
    // c requires a, which is still loading above it: c belongs to a's cycle too.
    const order = requireOrder(['a'], graphOf({ a: ['b'], b: ['c'], c: ['a'] }));
    expect(order).toEqual(['a']);
  });

  it('walks each entry in turn and lists a shared module once', () => {
    expect(requireOrder(['p', 'q'], graphOf({ p: ['shared'], q: ['shared', 'own'] }))).toEqual(['shared', 'p', 'own', 'q']);
  });
});

describe('loadInPieces', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  /** A package whose modules write their names to a log as they run, in a directory of its own (the module cache is per path). */
  function fixture(files: Record<string, string>): { dir: string; log: string[] } {
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-pieces-'));
    dirs.push(dir);
    const key = `__pieces_${path.basename(dir).replace(/\W/g, '_')}`;
    const log: string[] = [];
    (globalThis as Record<string, unknown>)[key] = log;
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'fixture', main: 'index.js' }));
    for (const [name, body] of Object.entries(files)) writeFileSync(path.join(dir, name), `globalThis.${key}.push(${JSON.stringify(name)});\n${body}`);
    return { dir, log };
  }

  /** A clock that moves 1 ms each time it is read, and a turn that is over at once: the turns are what loadInPieces reports. */
  const counted = () => {
    let clock = 0;
    return { now: () => clock++, turn: async () => undefined };
  };

  it('loads a package with a cycle whose split would fail, in the order a whole require runs it', async () => {
    const { dir, log } = fixture({
      'index.js': `const a = require('./a');\nconst util = require('./util');\nmodule.exports = { a, util, later: () => require('./lazy') };`,
      // a extends a class of b at its top level: loaded alone first, b would hand it a half-loaded b.
      'a.js': `const b = require('./b');\nexports.A = class extends b.Base {};`,
      'b.js': `const a = require('./a');\nconst util = require('./util');\nexports.Base = class {};\nexports.makeA = () => new a.A();`,
      'util.js': `exports.n = 1;\ntry { require('genesis-not-installed-anywhere'); } catch {}`,
      'lazy.js': `exports.lazy = true;`,
    });
    const c = counted();
    const result = await loadInPieces([dir], path.join(dir, 'index.js'), { budgetMs: 0, now: c.now, turn: c.turn });
    // The log is the order the modules began to run. util.js (a leaf) first; then a.js, which
    // loads b.js inside it as a whole require does, so b finds a half-loaded a and a a whole b;
    // lazy.js, required only inside a function, is loaded early (the reading cannot tell such a
    // require apart), which changes when it runs, not what; index.js last.
    expect(log).toEqual(['util.js', 'a.js', 'b.js', 'lazy.js', 'index.js']);
    const req = createRequire(path.join(dir, 'index.js'));
    const pkg = req(dir) as { a: { A: new () => object }; later: () => unknown };
    expect(new pkg.a.A()).toBeInstanceOf((req('./b.js') as { Base: new () => object }).Base);
    // Each module ran once: the whole require above found them all loaded.
    expect(log).toHaveLength(5);
    // b is never required on its own: util, a (with b), lazy, index.
    expect(result.modules).toBe(4);
    // A budget of 0: every module after the first waits for a turn of its own.
    expect(result.turns).toBe(4);
  });

  it('keeps to the budget: modules share a turn until it is spent', async () => {
    const files: Record<string, string> = { 'index.js': Array.from({ length: 9 }, (_, i) => `require('./m${i}');`).join('\n') };
    for (let i = 0; i < 9; i++) files[`m${i}.js`] = '';
    const { dir, log } = fixture(files);
    const c = counted();
    // The clock moves a tick each time it is read, and it is read once before each module but a
    // turn's first: a budget of 3 ticks lets three modules share a turn, so ten take four.
    const result = await loadInPieces([dir], path.join(dir, 'index.js'), { budgetMs: 3, now: c.now, turn: c.turn });
    expect(log).toEqual([...Array.from({ length: 9 }, (_, i) => `m${i}.js`), 'index.js']);
    expect(result.modules).toBe(10);
    expect(result.turns).toBe(4);
  });

  it('loads grpc-js and proto-loader so that an import finds the same modules, not a second copy', async () => {
    const from = path.resolve(import.meta.dirname, '../../src/talos/dialer.ts');
    const result = await loadInPieces(['@grpc/grpc-js', '@grpc/proto-loader'], from);
    expect(result.modules).toBeGreaterThan(50);
    const req = createRequire(from);
    const grpc = (await import('@grpc/grpc-js')) as unknown as { default: unknown };
    expect(grpc.default).toBe(req('@grpc/grpc-js'));
    expect(typeof (req('@grpc/grpc-js') as { Client: unknown }).Client).toBe('function');
  });
});
