// Every route a running Genesis serves, read from fastify's own route tree (printRoutes), in
// OpenAPI's path form (`:mac` as `{mac}`, a trailing wildcard as `{*}`), with its methods.

export function serverRoutes(tree: string): Map<string, string[]> {
  const routes = new Map<string, string[]>();
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([│ ]*)[└├]── (\S+)(?: \(([A-Z, ]+)\))?/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    const full = (depth === 0 ? '' : stack[depth - 1]!).replace(/\/$/, '') + (m[2]!.startsWith('/') || depth === 0 ? '' : '/') + m[2]!;
    stack[depth] = full;
    if (m[3]) routes.set(full.replace(/:(\w+)/g, '{$1}').replace(/\*$/, '{*}'), m[3].split(', ').filter((x) => x !== 'HEAD'));
  }
  return routes;
}
