// The one error shape (http/errors.ts) through inject(): each kind of failure a handler can raise
// becomes its status and {error, message}; storage trouble is 503 with retry-after whether it comes
// from the inventory (already translated) or the bootstrap lock's store (SQLite's own error); a bug
// is 500 without its details.

import Fastify, { type FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { HttpError, installErrorHandling } from '../../../src/http/errors.ts';
import { SecretsError } from '../../../src/talos/secrets.ts';
import { InventoryError } from '../../../src/inventory/errors.ts';
import { routeGroup } from '../../helpers/inject.ts';

function sqliteError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

const cases: Array<[string, () => Error, number, Record<string, unknown>]> = [
  ['not found', () => new InventoryError('not_found', 'no node with MAC 52:54:00:00:00:01'), 404, { error: 'not_found', message: 'no node with MAC 52:54:00:00:00:01' }],
  ['conflict', () => new InventoryError('conflict', 'hostname a is already used by b'), 409, { error: 'conflict' }],
  ['inventory full', () => new InventoryError('full', 'the inventory holds 2 machines'), 503, { error: 'full' }],
  ['disk full (translated)', () => new InventoryError('storage_full', 'database or disk is full', 'SQLITE_FULL'), 503, { error: 'storage_unavailable', message: 'the data disk is full; nothing was changed' }],
  ['disk full (the lock store, raw)', () => sqliteError('SQLITE_FULL', 'database or disk is full'), 503, { error: 'storage_unavailable', message: 'the data disk is full; nothing was changed' }],
  ['busy (raw)', () => sqliteError('SQLITE_BUSY', 'database is locked'), 503, { error: 'storage_unavailable', message: 'the inventory database is unavailable; nothing was changed' }],
  ['the WAL sync after a shared commit failed', () => new InventoryError('storage_unavailable', "the inventory's write-ahead log could not be synced to disk: EIO", 'EIO', { unconfirmed: true }), 503, { error: 'storage_unavailable', message: 'the inventory could not confirm the change on the data disk; ask again' }],
  ['an HTTP error with details', () => new HttpError(422, 'fleet_invalid', 'the fleet file is not valid', { problems: ['fleet.yaml:3:5: x'] }), 422, { error: 'fleet_invalid', problems: ['fleet.yaml:3:5: x'] }],
  ['a bug', () => new TypeError("Cannot read properties of undefined (reading 'mac')"), 500, { error: 'internal', message: 'internal error; see the Genesis log' }],
];

describe('the error shape', () => {
  it.each(cases)('%s', async (_name, make, status, body) => {
    const app = await routeGroup((a) => {
      a.get('/x', async () => {
        throw make();
      });
    });
    const res = await app.inject('/x');
    expect(res.statusCode).toBe(status);
    expect(res.json()).toMatchObject(body);
    if (status === 503 && body.error === 'storage_unavailable') expect(res.headers['retry-after']).toBe('10');
    expect(res.body).not.toMatch(/at .*\.ts:\d+/);
  });

  it('an unknown route and a body that is not JSON', async () => {
    const app = await routeGroup((a) => {
      a.post('/y', async () => ({ ok: true }));
    });
    expect((await app.inject('/nope?mac=1')).json()).toEqual({ error: 'not_found', message: 'no route for GET /nope' });
    const bad = await app.inject({ method: 'POST', url: '/y', headers: { 'content-type': 'application/json' }, payload: '{"a":' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({ error: 'invalid_json', message: 'the body is not valid JSON' });
  });

  it('a full disk or broken secrets file logs one error line, then a summary a minute, not a line per request', async () => {
    const lines: Array<{ level: number; msg: string; count?: number }> = [];
    let now = 1_000_000;
    const app = Fastify({ loggerInstance: pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) }) as FastifyBaseLogger });
    installErrorHandling(app, { now: () => now });
    app.get('/write', async () => {
      throw new InventoryError('storage_full', 'database or disk is full', 'SQLITE_FULL');
    });
    app.get('/config', async () => {
      throw new SecretsError('the secrets bundle changed on disk and cannot be used: not YAML');
    });
    await app.ready();
    const storage = () => lines.filter((l) => l.level === 50 && l.msg.startsWith('inventory storage error'));
    const secrets = () => lines.filter((l) => l.level === 50 && l.msg.startsWith('cluster secrets unavailable'));
    for (let i = 0; i < 40; i++) {
      expect((await app.inject('/write')).statusCode).toBe(503);
      expect((await app.inject('/config')).statusCode).toBe(503);
    }
    expect(storage()).toHaveLength(1);
    expect(secrets()).toHaveLength(1);
    now += 61_000;
    await app.inject('/write');
    expect(storage()).toHaveLength(2);
    // The 39 refused after the first line, and this one: nothing is lost from the count.
    expect(storage()[1]!.count).toBe(40);
    expect(lines.some((l) => l.level === 50 && l.msg === 'request failed')).toBe(false);
  });
});
