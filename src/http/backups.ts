// /api/v1/backups: the etcd snapshots (list with the schedule's status, take one now, verify one).
// Registered inside the API plugin, so the bearer-token check covers it.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BackupUnavailable, type EtcdBackups } from '../backup/etcd-backups.ts';
import { isSnapshotName, SnapshotError } from '../backup/snapshot-store.ts';
import { HttpError } from './errors.ts';

const nameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 128 } } } as const;

export function backupRoutes(app: FastifyInstance, backups: EtcdBackups, actor: (req: FastifyRequest) => string): void {
  const nameOf = (req: FastifyRequest) => {
    const name = (req.params as { name: string }).name;
    if (!isSnapshotName(name)) throw new HttpError(404, 'not_found', `no snapshot named ${JSON.stringify(name)}`);
    return name;
  };

  app.get('/backups', async () => {
    const [status, snapshots] = await Promise.all([backups.status(), backups.store.list()]);
    return { status, snapshots };
  });

  app.post('/backups', async (req, reply) => {
    try {
      return reply.code(201).send({ snapshot: await backups.runNow(actor(req)) });
    } catch (err) {
      if (err instanceof BackupUnavailable) throw new HttpError(409, 'backup_unavailable', err.message);
      if (err instanceof SnapshotError) throw new HttpError(502, 'backup_failed', err.message);
      throw err;
    }
  });

  app.get('/backups/:name', { schema: { params: nameParams } }, async (req) => {
    const name = nameOf(req);
    const snapshot = await backups.store.get(name);
    if (!snapshot) throw new HttpError(404, 'not_found', `no snapshot named ${name}`);
    return snapshot;
  });

  app.post('/backups/:name/verify', { schema: { params: nameParams } }, async (req) => {
    const name = nameOf(req);
    try {
      return await backups.store.verify(name);
    } catch (err) {
      if (err instanceof SnapshotError) throw new HttpError(404, 'not_found', err.message);
      throw err;
    }
  });
}
