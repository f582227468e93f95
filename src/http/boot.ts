// Boot endpoints for firmware. They are open (iPXE cannot authenticate) and answer only about
// the machine that asks: the per-machine script is keyed by the MAC iPXE reports.

import type { FastifyInstance } from 'fastify';
import type { BootService, IpxeIdentity } from '../provision/service.ts';
import { sourceAddress } from '../net/address.ts';
import type { TimeSlices } from '../scheduling/time-slices.ts';

const IPXE = 'text/plain; charset=utf-8';
const field = { type: 'string', maxLength: 256 } as const;

/**
 * `slices`: where a machine's turn runs (scheduling/time-slices.ts), so `/boot.ipxe` and the rest of a burst
 * are answered first.
 */
export function bootRoutes(app: FastifyInstance, boot: BootService, slices: TimeSlices): void {
  app.get('/boot.ipxe', async (_req, reply) => reply.type(IPXE).header('cache-control', 'no-store').send(boot.entryScript()));

  app.get<{ Querystring: IpxeIdentity }>(
    '/ipxe/node',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: { mac: field, buildarch: field, platform: field, uuid: field, serial: field, manufacturer: field, product: field },
        },
      },
    },
    async (req, reply) => {
      const ip = sourceAddress(req.ip);
      const answer = await slices.run(() => boot.nodeScript(req.query, ip));
      reply.type(IPXE).header('cache-control', 'no-store');
      switch (answer.outcome) {
        case 'script':
          return reply.code(200).send(answer.script);
        case 'no-mac':
          return reply.code(400).send(answer.script);
        case 'local-disk':
          // Failing the request is what sends iPXE on to the next boot device.
          return reply.code(404).send('installed: boot from local disk\n');
      }
    },
  );
}
