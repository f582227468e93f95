// GET /talos/config/<mac>/<token>: where a booting Talos fetches its machine config. Open like
// the other boot endpoints (the kernel cannot authenticate), so the token in the URL is what
// proves the request comes from the boot Genesis started for that MAC.

import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ConfigOutcome, MachineConfigService } from '../provision/machine-config.ts';

const TEXT = 'text/plain; charset=utf-8';
import { normalizeMac } from '../domain/mac.ts';
import { sourceAddress } from '../net/address.ts';
import type { TimeSlices } from '../scheduling/time-slices.ts';

/** `slices`: where a config's decision runs (scheduling/time-slices.ts), after the cheap requests of a burst. */
export function talosRoutes(app: FastifyInstance, configs: Pick<MachineConfigService, 'serve'>, slices: TimeSlices): void {
  app.get<{ Params: { mac: string; token: string } }>(
    '/talos/config/:mac/:token',
    { schema: { params: { type: 'object', properties: { mac: { type: 'string', maxLength: 32 }, token: { type: 'string', maxLength: 128 } } } } },
    async (req, reply) => {
      const mac = normalizeMac(req.params.mac);
      return answer(reply, await slices.run(() => configs.serve(mac, req.params.token, sourceAddress(req.ip))));
    },
  );
  // A config URL without a token (an old script, a guess) gets the same answer as a wrong token.
  app.get('/talos/config/*', async (req, reply) => answer(reply, await configs.serve(undefined, '', sourceAddress(req.ip))));
}

/** The outcome in HTTP: a denial says nothing more than 403; a config not renderable yet is retried. */
function answer(reply: FastifyReply, o: ConfigOutcome): FastifyReply {
  reply.header('cache-control', 'no-store');
  switch (o.outcome) {
    case 'served':
      return reply.code(200).type('application/yaml').send(o.yaml);
    case 'denied':
      return reply.code(403).type(TEXT).send('forbidden\n');
    case 'unrenderable':
      return reply.code(503).header('retry-after', '10').type(TEXT).send('the machine config cannot be rendered yet; Genesis has recorded why\n');
  }
}
