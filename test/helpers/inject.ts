// One route group on a bare fastify with Genesis's error shape, for inject() tests: no socket, no
// other routes, the group's dependencies as fakes (test/fakes) or stubs.

import Fastify, { type FastifyInstance } from 'fastify';
import { installErrorHandling } from '../../src/http/errors.ts';

export async function routeGroup(register: (app: FastifyInstance) => void | Promise<void>): Promise<FastifyInstance> {
  // The same request rules as the real server (http/server.ts): no coercion, no silently dropped fields.
  const app = Fastify({ logger: false, ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } } });
  installErrorHandling(app);
  await register(app);
  await app.ready();
  return app;
}
