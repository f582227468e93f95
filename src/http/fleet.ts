// /api/v1/fleet: the fleet file's status, a diff or an apply of files the CLI sends, and the
// inventory exported as a fleet file. Registered inside the API plugin (bearer token or session).

import type { FastifyInstance } from 'fastify';
import { FleetError } from '../fleet/parse.ts';
import type { FleetReconciler, FleetResult } from '../fleet/reconciler.ts';
import { sourceFromFiles } from '../fleet/source.ts';
import { HttpError } from './errors.ts';

type FleetBody = { documents: string[]; files: Record<string, string>; prune?: boolean };

const bodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['documents', 'files'],
  properties: {
    documents: { type: 'array', minItems: 1, maxItems: 256, items: { type: 'string', minLength: 1, maxLength: 1024 }, description: 'Which of the files are fleet documents, in the order they are read.' },
    files: { type: 'object', maxProperties: 512, additionalProperties: { type: 'string', maxLength: 1048576 }, description: 'Each file by its name relative to the fleet directory: the documents and the patch files they name.' },
    prune: { type: 'boolean', description: 'Delete machines the fleet does not list (default: fleet.prune).' },
  },
} as const;

function answer(r: FleetResult) {
  return { changed: r.changed, diff: r.text, nodes: r.plan.nodes, unlisted: r.plan.unlisted, restartNeeded: r.restartNeeded, commit: r.commit };
}

function asHttp(err: unknown): never {
  if (err instanceof FleetError) throw new HttpError(422, 'fleet_invalid', err.message, { problems: err.problems });
  throw err;
}

export function fleetRoutes(app: FastifyInstance, fleet: Pick<FleetReconciler, 'status' | 'plan' | 'apply' | 'export' | 'watched'>): void {
  app.get('/fleet', async () => fleet.status());

  app.post<{ Body: FleetBody }>('/fleet/diff', { schema: { body: bodySchema } }, async (req) => {
    try {
      return answer(fleet.plan(sourceFromFiles(req.body.files, req.body.documents), req.body.prune === undefined ? {} : { prune: req.body.prune }));
    } catch (err) {
      return asHttp(err);
    }
  });

  app.post<{ Body: FleetBody }>('/fleet/apply', { schema: { body: bodySchema } }, async (req) => {
    const status = fleet.status();
    if (fleet.watched) {
      throw new HttpError(409, 'fleet_watched', `Genesis applies the fleet at ${status.source} (fleet.path) whenever it changes; change that file instead`);
    }
    try {
      return answer(fleet.apply(sourceFromFiles(req.body.files, req.body.documents), { origin: 'api', ...(req.body.prune === undefined ? {} : { prune: req.body.prune }) }));
    } catch (err) {
      return asHttp(err);
    }
  });

  app.get('/fleet/export', async (_req, reply) => reply.type('application/yaml').header('cache-control', 'no-store').send(fleet.export()));
}
