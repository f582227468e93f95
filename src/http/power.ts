// POST /api/v1/nodes/{mac}/power: power a machine on or off, power-cycle it, reboot it through
// Talos, set its next boot to PXE, or ask its power state. Registered inside the API plugin, so
// the bearer-token check covers it. Thin: the rules are in src/power.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { POWER_ACTIONS, PowerFailed, PowerNotFound, PowerRefused, type PowerAction, type PowerControl, type PowerResult } from '../power/power-control.ts';
import { HttpError } from './errors.ts';
import { macOf, macParams } from './mac-param.ts';

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

export function powerRoutes(app: FastifyInstance, power: Pick<PowerControl, 'act'>, actor: (req: FastifyRequest) => string): void {
  app.post<{ Params: { mac: string }; Body: { action: PowerAction } }>(
    '/nodes/:mac/power',
    { schema: { params: macParams, body: { type: 'object', additionalProperties: false, required: ['action'], properties: { action: { enum: POWER_ACTIONS } } } } },
    async (req) => {
      const mac = macOf(req);
      return powerAnswer(() => power.act(mac, req.body.action, actor(req)));
    },
  );
}
