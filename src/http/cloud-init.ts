// The NoCloud datasource over HTTP: /cloud-init/<mac>/<token>/<document>, and cloud-init's
// phone-home. Open like the other boot endpoints (cloud-init cannot authenticate): the token in
// the URL, issued with the machine's install script, is what proves the request is that boot's.

import type { FastifyInstance, FastifyReply } from 'fastify';
import { DATASOURCE_FILES, type DatasourceFile } from '../cloud-init/documents.ts';
import { normalizeMac } from '../domain/mac.ts';
import { sourceAddress } from '../net/address.ts';
import type { CloudInitService, DatasourceOutcome, PhoneHomeOutcome } from '../provision/cloud-init.ts';

const TEXT = 'text/plain; charset=utf-8';
const params = { type: 'object', properties: { mac: { type: 'string', maxLength: 32 }, token: { type: 'string', maxLength: 128 } } } as const;

export async function cloudInitRoutes(app: FastifyInstance, service: Pick<CloudInitService, 'serve' | 'phoneHome'>): Promise<void> {
  // cloud-init's phone_home posts a form; its fields are short (keys, ids, names).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  app.get<{ Params: { mac: string; token: string; file: string } }>(
    '/cloud-init/:mac/:token/:file',
    { schema: { params: { ...params, properties: { ...params.properties, file: { type: 'string', maxLength: 32 } } } } },
    async (req, reply) => {
      if (!(DATASOURCE_FILES as readonly string[]).includes(req.params.file)) return reply.code(404).type(TEXT).send('not found\n');
      return answer(reply, service.serve(normalizeMac(req.params.mac), req.params.token, req.params.file as DatasourceFile, sourceAddress(req.ip)));
    },
  );

  app.post<{ Params: { mac: string; token: string }; Body: unknown }>('/cloud-init/:mac/:token/phone-home', { schema: { params } }, async (req, reply) => {
    const body = req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
    const report = Object.fromEntries(Object.entries(body).filter((e): e is [string, string] => typeof e[1] === 'string'));
    return phoned(reply, service.phoneHome(normalizeMac(req.params.mac), req.params.token, sourceAddress(req.ip), report));
  });
}

function answer(reply: FastifyReply, o: DatasourceOutcome): FastifyReply {
  reply.header('cache-control', 'no-store');
  switch (o.outcome) {
    case 'served':
      return reply.code(200).type(TEXT).send(o.body);
    case 'absent':
      return reply.code(404).type(TEXT).send('this profile has no such document\n');
    case 'denied':
      return reply.code(403).type(TEXT).send('forbidden\n');
    case 'unrenderable':
      return reply.code(503).header('retry-after', '10').type(TEXT).send('the cloud-init documents cannot be rendered yet; Genesis has recorded why\n');
  }
}

function phoned(reply: FastifyReply, o: PhoneHomeOutcome): FastifyReply {
  reply.header('cache-control', 'no-store');
  if (o.outcome === 'denied') return reply.code(403).type(TEXT).send('forbidden\n');
  return reply.code(200).type(TEXT).send('recorded: installed\n');
}
