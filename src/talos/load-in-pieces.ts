// Loads a CommonJS package (grpc-js, proto-loader with protobufjs) a few modules per turn of the
// event loop instead of all at once. Required at once, grpc-js alone held the main thread for
// 53–163 ms in four profiled 1000-machine storms, where the first control plane's probe loads it:
// every request that came meanwhile waited for all of it (docs/performance.md). Here no turn runs
// more than `budgetMs` of requiring (and at least one module), and the rest waits for the next turn.
//
// The modules are found by reading their sources (asynchronously, off the main thread) for
// `require("…")` and resolving each as Node would; require-order.ts says in which order they can be
// required alone. A module the reading misses is loaded by whichever module requires it, as
// before; a require it finds that only runs later (inside a function) is loaded early, which
// changes nothing but when. Whatever fails here, the caller's own import loads what is left at once.

import { readFile } from 'node:fs/promises';
import { createRequire, isBuiltin } from 'node:module';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { requireOrder } from './require-order.ts';

/** A `require` call with a literal name, as compiled CommonJS writes it. */
const REQUIRE = /\brequire\(\s*(['"])([^'"\n]+)\1\s*\)/g;
/** What is required here: CommonJS sources and JSON. Anything else (an addon) loads as before. */
const REQUIRABLE = new Set(['.js', '.cjs', '.json']);

let grpcLoad: Promise<void> | undefined;

/**
 * grpc-js and proto-loader (with protobufjs) in pieces, once per process: the Talos API client's
 * first dial and the event sink's first connection both wait on this, and whichever comes second
 * finds it done or under way. It never fails: should the piecewise load fail, the caller's own import
 * loads what is left at once, and says why if it cannot.
 */
export function loadGrpcInPieces(): Promise<void> {
  return (grpcLoad ??= loadInPieces(['@grpc/grpc-js', '@grpc/proto-loader'], fileURLToPath(import.meta.url)).then(
    () => undefined,
    () => undefined,
  ));
}

export type LoadInPiecesOptions = {
  /** How long one turn may spend requiring before it yields, in ms (at least one module runs per turn). */
  budgetMs?: number;
  /** Monotonic milliseconds. */
  now?: () => number;
  /** Waits for the event loop's next turn. */
  turn?: () => Promise<unknown>;
};

/**
 * Requires `packages` (names resolved from `from`, a file path) and everything they require, a
 * few modules per turn. Resolves to how many modules it required and in how many turns.
 */
export async function loadInPieces(packages: readonly string[], from: string, opts: LoadInPiecesOptions = {}): Promise<{ modules: number; turns: number }> {
  const budgetMs = opts.budgetMs ?? 5;
  const now = opts.now ?? (() => performance.now());
  const turn = opts.turn ?? (() => nextTurn());
  const entries = packages.map((p) => createRequire(from).resolve(p));
  const graph = await readGraph(entries, { budgetMs, now, turn });
  const order = requireOrder(entries, (m) => graph.get(m) ?? []);
  let turns = 1;
  let started = now();
  for (const [i, file] of order.entries()) {
    if (i > 0 && now() - started >= budgetMs) {
      await turn();
      turns++;
      started = now();
    }
    createRequire(file)(file);
  }
  return { modules: order.length, turns };
}

/**
 * Every module reachable from `entries` through literal requires, with what each requires in
 * source order. Files are read off the main thread; resolving (a few stat calls per name) is
 * counted against the turn's budget like requiring is.
 */
async function readGraph(entries: readonly string[], o: Required<LoadInPiecesOptions>): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>();
  let frontier = [...new Set(entries)];
  /** Every module read or about to be. */
  const seen = new Set(frontier);
  let started = o.now();
  while (frontier.length) {
    // JSON requires nothing.
    const texts = await Promise.all(frontier.map((f) => (path.extname(f) === '.json' ? Promise.resolve('') : readFile(f, 'utf8'))));
    const next: string[] = [];
    for (const [i, file] of frontier.entries()) {
      const resolve = createRequire(file).resolve;
      const deps: string[] = [];
      for (const m of texts[i]!.matchAll(REQUIRE)) {
        const name = m[2]!;
        if (isBuiltin(name)) continue;
        let dep: string;
        try {
          dep = resolve(name);
        } catch {
          continue; // an optional dependency that is not installed: its own code copes, as before
        }
        if (!REQUIRABLE.has(path.extname(dep))) continue;
        if (!deps.includes(dep)) deps.push(dep);
        if (!seen.has(dep)) {
          seen.add(dep);
          next.push(dep);
        }
      }
      graph.set(file, deps);
      if (o.now() - started >= o.budgetMs) {
        await o.turn();
        started = o.now();
      }
    }
    frontier = next;
  }
  return graph;
}
