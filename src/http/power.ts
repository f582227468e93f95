// POST /api/v1/nodes/{mac}/power: power a machine on or off, power-cycle it, reboot it through
// Talos, set its next boot to PXE, or ask its power state. Registered inside the API plugin, so
// the bearer-token check covers it. Thin: the rules are in src/power.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { normalizeMac } from '../domain/mac.ts';
import { POWER_ACTIONS, PowerFailed, PowerNotFound, PowerRefused, type PowerAction, type PowerControl, type PowerResult } from '../power/power-control.ts';
import { HttpError } from './errors.ts';

const macParams = { type: 'object', required: ['mac'], properties: { mac: { type: 'string', maxLength: 32 } } } as const;

/** The power errors as HTTP answers; anything else is a bug and goes to the error handler. */
export async function powerAnswer(fn: () => Promise<PowerResult>): Promise<PowerResult> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof PowerNotFound) throw new HttpError(404, 'not_found', err.message);
    if (err instanceof PowerRefused) throw new HttpError(409, 'power_refused', err.message);
    if (err instanceof PowerFailed) throw new HttpError(502, 'power_failed', err.message);
    throw err;
  }
}

export function powerRoutes(app: FastifyInstance, power: PowerControl, actor: (req: FastifyRequest) => string): void {
  app.post<{ Params: { mac: string }; Body: { action: PowerAction } }>(
    '/nodes/:mac/power',
    { schema: { params: macParams, body: { type: 'object', additionalProperties: false, required: ['action'], properties: { action: { enum: POWER_ACTIONS } } } } },
    async (req) => {
      const mac = normalizeMac(req.params.mac);
      if (!mac) throw new HttpError(400, 'invalid_mac', `${JSON.stringify(req.params.mac)} is not a MAC address`);
      return powerAnswer(() => power.act(mac, req.body.action, actor(req)));
    },
  );
}
