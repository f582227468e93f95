// The `:mac` route parameter every node route takes: its schema, and the MAC it names in
// canonical form (or a 400 that says which forms are accepted).

import type { FastifyRequest } from 'fastify';
import { normalizeMac } from '../domain/mac.ts';
import { HttpError } from './errors.ts';

export const macParams = { type: 'object', required: ['mac'], properties: { mac: { type: 'string', maxLength: 32 } } } as const;

export function macOf(req: FastifyRequest): string {
  const raw = (req.params as { mac: string }).mac;
  const mac = normalizeMac(raw);
  if (!mac) throw new HttpError(400, 'invalid_mac', `${JSON.stringify(raw)} is not a MAC address (use aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabbccddeeff)`);
  return mac;
}
