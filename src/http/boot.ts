// Boot endpoints for firmware. They are open (iPXE cannot authenticate) and answer only about
// the machine that asks: the per-machine script is keyed by the MAC iPXE reports.

import type { FastifyInstance } from 'fastify';
import type { BootService, IpxeIdentity } from '../provision/service.ts';
import { sourceAddress } from '../net/address.ts';

const IPXE = 'text/plain; charset=utf-8';
const field = { type: 'string', maxLength: 256 } as const;

export function bootRoutes(app: FastifyInstance, boot: BootService): void {
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
      const answer = boot.nodeScript(req.query, sourceAddress(req.ip));
      return reply.code(answer.status).type(IPXE).header('cache-control', 'no-store').send(answer.body);
    },
  );
}
