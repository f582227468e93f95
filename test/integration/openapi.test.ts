// The OpenAPI document is built from the routes' own schemas: every route the server has is in
// it, it needs the token like the rest of the API, and the docs page loads nothing from elsewhere.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCS_CSP } from '../../src/http/openapi.ts';
import { startGenesis, TEST_TOKEN, type TestGenesis } from '../helpers/genesis-app.ts';
import { serverRoutes } from '../helpers/routes.ts';

let g: TestGenesis;
beforeAll(async () => {
  g = await startGenesis();
});
afterAll(async () => {
  await g?.close();
});

type Doc = { openapi: string; paths: Record<string, Record<string, { security?: unknown[]; requestBody?: unknown }>> };

describe('OpenAPI', () => {
  it('describes every route the server has, with its methods', async () => {
    const res = await g.api('GET', '/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Doc;
    expect(doc.openapi).toBe('3.1.0');
    const routes = serverRoutes(g.app.http!.printRoutes({ commonPrefix: false }));
    // The document and the page that shows it are the only routes not described.
    for (const hidden of [...routes.keys()].filter((p) => p === '/api/v1/openapi.json' || p.startsWith('/api/v1/docs'))) routes.delete(hidden);
    // The route tree prints wildcard routes as a bare `*` under their common prefix: those are
    // checked the other way round, each documented one against the server.
    for (const wildcard of [...routes.keys()].filter((p) => p.endsWith('{*}'))) routes.delete(wildcard);
    const documentedWildcards = Object.keys(doc.paths).filter((p) => p.endsWith('{*}'));
    expect(documentedWildcards.sort()).toEqual(['/assets/{*}', '/talos/config/{*}']);
    for (const p of documentedWildcards) expect(g.app.http!.hasRoute({ method: 'GET', url: p.replace('{*}', '*') }), p).toBe(true);
    expect(routes.size).toBeGreaterThan(30);
    for (const [path, methods] of routes) {
      expect(doc.paths[path], path).toBeDefined();
      expect(Object.keys(doc.paths[path]!).map((m) => m.toUpperCase()).filter((m) => m !== 'HEAD').sort(), path).toEqual([...methods].sort());
    }
    expect(Object.keys(doc.paths).filter((p) => !p.endsWith('{*}')).sort()).toEqual([...routes.keys()].sort());
    // What the server checks is what the document says: the node body, with its power settings.
    const put = doc.paths['/api/v1/nodes/{mac}']!.put as { requestBody: { content: Record<string, { schema: { properties: Record<string, unknown>; additionalProperties: boolean } }> } };
    const body = put.requestBody.content['application/json']!.schema;
    expect(body.additionalProperties).toBe(false);
    expect(Object.keys(body.properties)).toEqual(expect.arrayContaining(['role', 'hostname', 'installDisk', 'power']));
    expect(doc.paths['/api/v1/nodes']!.get!.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/api/v1/bootstrap/claim']!.post!.security).toEqual([{ joinToken: [] }, { bearer: [] }]);
    expect(doc.paths['/boot.ipxe']!.get!.security).toEqual([]);
  });

  it('needs the token, as the rest of the API', async () => {
    expect((await fetch(`${g.url}/api/v1/openapi.json`)).status).toBe(401);
    expect((await fetch(`${g.url}/api/v1/docs/`)).status).toBe(401);
  });

  it('serves a docs page that loads only its own files', async () => {
    const res = await fetch(`${g.url}/api/v1/docs/`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toBe(DOCS_CSP);
    const html = await res.text();
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(ref, ref).not.toMatch(/^(https?:)?\/\//);
    for (const ref of refs) {
      const file = await fetch(new URL(ref, `${g.url}/api/v1/docs/`), { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
      expect(file.status, ref).toBe(200);
    }
  });
});
