// Liveness and readiness. /healthz: the process answers. /readyz: it can do its job, i.e. the
// inventory answers a query and takes a write (a full disk or a read-only file fails here, not
// only in the next boot step), and the asset directory is readable.

import { accessSync, constants } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { InventoryError } from '../inventory/errors.ts';
import type { StorageProbe } from '../inventory/ports.ts';
// Who this Genesis is: another one probing the LAN (dhcp/lan-watch.ts) reads it here.
import type { GenesisIdentity } from '../dhcp/lan-probe.ts';

export function healthRoutes(app: FastifyInstance, deps: { inventory: StorageProbe; assetsDir: string; identity: GenesisIdentity }): void {
  app.get('/healthz', async () => ({ status: 'ok', genesis: deps.identity }));
  app.get('/readyz', async (_req, reply) => {
    const checks: Record<string, string> = {};
    try {
      deps.inventory.check();
      checks.inventory = 'ok';
    } catch (err) {
      checks.inventory = (err as Error).message;
    }
    try {
      deps.inventory.probeWrite();
      checks.storage = 'ok';
    } catch (err) {
      const e = err instanceof InventoryError ? err : undefined;
      checks.storage =
        e?.code === 'storage_full' ? 'the data disk is full: writes fail' : e?.code === 'storage_read_only' ? 'the inventory is read-only: writes fail' : `writes fail (${e?.storageCode ?? e?.code ?? 'error'})`;
    }
    try {
      accessSync(deps.assetsDir, constants.R_OK | constants.X_OK);
      checks.assets = 'ok';
    } catch (err) {
      checks.assets = `${deps.assetsDir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
    }
    const ready = Object.values(checks).every((v) => v === 'ok');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
  });
}
