// The API described as OpenAPI 3.1, from the route schemas themselves (@fastify/swagger collects
// them as routes are added), so the document cannot drift from what the server checks. Served at
// GET /api/v1/openapi.json, with a browsable page at /api/v1/docs (@fastify/swagger-ui, its
// files served by Genesis: no CDN). Both sit behind the API token or the dashboard's session.

import type { SwaggerOptions } from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

export function openApiOptions(): SwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Genesis API',
        version: '1',
        description:
          'Inventory, machine configs, the bootstrap lock, backups and power control. Every /api/v1 route needs Authorization: Bearer <token> (or the dashboard session with its CSRF header for changes); boot endpoints are open because firmware cannot authenticate. Errors are {"error": "<code>", "message": "<what to fix>"}.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, joinToken: { type: 'http', scheme: 'bearer', description: 'the cluster join token (genesis cluster join-token), for POST /api/v1/bootstrap/claim' } } },
      security: [],
    },
    // Boot endpoints and the API under one document; each operation says which need the token.
    transform: ({ schema, url }) => {
      const api = url.startsWith('/api/v1/');
      const security: Array<Record<string, string[]>> = url.startsWith('/api/v1/bootstrap/') ? [{ joinToken: [] }, { bearer: [] }] : api ? [{ bearer: [] }] : [];
      return { schema: { ...(schema ?? {}), security, tags: [api ? 'api' : url.startsWith('/ui') || url === '/' ? 'dashboard' : 'boot'] } as typeof schema, url };
    },
  };
}

export const DOCS_CSP = "default-src 'self'; base-uri 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; object-src 'none'; frame-ancestors 'none'";

/** Inside the /api/v1 context, so its token check covers them. */
export async function openApiRoutes(api: FastifyInstance): Promise<void> {
  api.get('/openapi.json', { schema: { hide: true } }, async (_req, reply) => reply.header('cache-control', 'no-store').send(api.swagger()));
  await api.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    // validatorUrl null: the page would otherwise send the document to validator.swagger.io.
    uiConfig: { docExpansion: 'list', tryItOutEnabled: false, validatorUrl: null },
    staticCSP: true,
    // Genesis serves plain HTTP on the LAN: no upgrade-insecure-requests (it would break every
    // file of the page), and nothing from other origins.
    transformStaticCSP: () => DOCS_CSP,
  });
}
