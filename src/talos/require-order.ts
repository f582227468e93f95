// The order in which CommonJS modules can be required one at a time and behave exactly as when the
// entry is required at once (load-in-pieces.ts does the requiring). Pure: it sees only the graph.
//
// Required at once, a module finishes after every module it requires, in the order its source
// requires them: a depth-first post-order. Required one at a time in that order, each finds its
// dependencies already loaded and runs only its own top level. A cycle is the exception: required
// at once, the member entered first runs to its `require` of the next, which then finishes seeing
// the first one's partial exports. Required alone, that later member would run first and the
// partial one would be the other: a class that extends a partially loaded one fails. So a cycle is
// never split: only the member the depth-first walk enters first (the root of its strongly
// connected component) is listed, and requiring it loads the rest of the cycle as it always did.

/**
 * Modules to require one at a time, in order, so that `entries` end up loaded exactly as if each
 * were required at once, in turn. `deps(m)` lists what m's source requires, in source order.
 * Tarjan's algorithm: a component's root is listed when the walk leaves it, which is when m would
 * finish loading.
 */
export function requireOrder(entries: readonly string[], deps: (module: string) => readonly string[]): string[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const order: string[] = [];
  const visit = (m: string): void => {
    index.set(m, index.size);
    low.set(m, index.get(m)!);
    stack.push(m);
    onStack.add(m);
    for (const d of deps(m)) {
      if (!index.has(d)) {
        visit(d);
        low.set(m, Math.min(low.get(m)!, low.get(d)!));
      } else if (onStack.has(d)) {
        low.set(m, Math.min(low.get(m)!, index.get(d)!));
      }
    }
    if (low.get(m) !== index.get(m)) return;
    // m is its component's root: the component leaves the stack, and only m is required.
    let top: string;
    do {
      top = stack.pop()!;
      onStack.delete(top);
    } while (top !== m);
    order.push(m);
  };
  for (const e of entries) if (!index.has(e)) visit(e);
  return order;
}
