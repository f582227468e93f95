// GET /talos/config/<mac>/<token>: where a booting Talos fetches its machine config. Open like
// the other boot endpoints (the kernel cannot authenticate), so the token in the URL is what
// proves the request comes from the boot Genesis started for that MAC.

import type { FastifyInstance } from 'fastify';
import type { MachineConfigService } from '../provision/machine-config.ts';
import { normalizeMac } from '../domain/mac.ts';
import { sourceAddress } from '../net/address.ts';

export function talosRoutes(app: FastifyInstance, configs: MachineConfigService): void {
  app.get<{ Params: { mac: string; token: string } }>(
    '/talos/config/:mac/:token',
    { schema: { params: { type: 'object', properties: { mac: { type: 'string', maxLength: 32 }, token: { type: 'string', maxLength: 128 } } } } },
    async (req, reply) => {
      const answer = configs.serve(normalizeMac(req.params.mac), req.params.token, sourceAddress(req.ip));
      if (answer.status === 503) reply.header('retry-after', '10');
      return reply.code(answer.status).type(answer.contentType).header('cache-control', 'no-store').send(answer.body);
    },
  );
  // A config URL without a token (an old script, a guess) gets the same answer as a wrong token.
  app.get('/talos/config/*', async (_req, reply) => reply.code(403).type('text/plain; charset=utf-8').send('forbidden\n'));
}
