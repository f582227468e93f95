// GET /healthz and /readyz (http/health.ts) through inject(): who this Genesis is, and readiness
// from the storage probe and the assets directory, with storage failures in words.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { healthRoutes } from '../../../src/http/health.ts';
import { InventoryError } from '../../../src/inventory/errors.ts';
import { routeGroup } from '../../helpers/inject.ts';

const identity = { cluster: 'lab', instance: '7d3c5e4a-0000-4000-8000-000000000001' };
const assetsDir = mkdtempSync(path.join(tmpdir(), 'genesis-health-'));

function probe(write?: InventoryError, read?: Error) {
  return {
    check: () => {
      if (read) throw read;
    },
    probeWrite: () => {
      if (write) throw write;
    },
  };
}

describe('health routes', () => {
  it('/healthz says who this Genesis is', async () => {
    const app = await routeGroup((a) => healthRoutes(a, { inventory: probe(), assetsDir, identity }));
    const res = await app.inject('/healthz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', genesis: identity });
  });

  it('/readyz is 200 when the inventory reads and writes and the assets dir is readable', async () => {
    const app = await routeGroup((a) => healthRoutes(a, { inventory: probe(), assetsDir, identity }));
    const res = await app.inject('/readyz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', checks: { inventory: 'ok', storage: 'ok', assets: 'ok' } });
  });

  it('/readyz is 503 with the reason in words for a full disk, a read-only file, a damaged one, a missing assets dir', async () => {
    const cases: Array<[InventoryError | undefined, string | undefined, Record<string, string>]> = [
      [new InventoryError('storage_full', 'database or disk is full', 'SQLITE_FULL'), undefined, { storage: 'the data disk is full: writes fail' }],
      [new InventoryError('storage_read_only', 'attempt to write a readonly database', 'SQLITE_READONLY'), undefined, { storage: 'the inventory is read-only: writes fail' }],
      [new InventoryError('storage_unavailable', 'disk I/O error', 'SQLITE_IOERR_WRITE'), undefined, { storage: 'writes fail (SQLITE_IOERR_WRITE)' }],
      [undefined, path.join(assetsDir, 'gone'), { assets: `${path.join(assetsDir, 'gone')}: ENOENT` }],
    ];
    for (const [write, dir, checks] of cases) {
      const app = await routeGroup((a) => healthRoutes(a, { inventory: probe(write), assetsDir: dir ?? assetsDir, identity }));
      const res = await app.inject('/readyz');
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ status: 'not ready', checks });
    }
  });
});
