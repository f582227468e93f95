// The claim API (http/cluster.ts, claimRoutes) through inject(), with the lock in memory under the
// same rules: who may claim (the join token or the API token), what a claim must carry, and the
// answers: one init, then joins naming the winner's reported address.

import { describe, expect, it } from 'vitest';
import { hashToken } from '../../../src/auth/api-token.ts';
import { claimRoutes } from '../../../src/http/cluster.ts';
import { FixedInventory } from '../../fakes/inventory.ts';
import { MemoryLocks } from '../../fakes/lock-store.ts';
import { routeGroup } from '../../helpers/inject.ts';

const JOIN = 'join-token-for-lab-0123456789';
const API = 'api-token-0123456789abcdef';

async function app() {
  const inventory = new FixedInventory();
  const locks = new MemoryLocks(() => Date.parse('2026-12-02T10:00:00Z'));
  const a = await routeGroup(async (r) => {
    await r.register((c) => claimRoutes(c, { cluster: 'lab', orchestrator: { status: () => ({}) as never, reset: async () => ({}) as never, recover: async () => ({}) as never }, locks, inventory, joinToken: () => JOIN, tokenHash: hashToken(API) }), { prefix: '/api/v1/bootstrap' });
  });
  const claim = (body: unknown, token = JOIN) => a.inject({ method: 'POST', url: '/api/v1/bootstrap/claim', headers: { authorization: `Bearer ${token}` }, payload: body as object });
  return { a, claim, inventory };
}

describe('claim API', () => {
  it('needs the join token or the API token', async () => {
    const { a, claim } = await app();
    const none = await a.inject({ method: 'POST', url: '/api/v1/bootstrap/claim', payload: { mac: '52:54:00:00:00:01' } });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="genesis-join"');
    expect((await claim({ mac: '52:54:00:00:00:01' }, 'wrong')).json()).toEqual({ error: 'unauthorized', message: 'the join token is not valid' });
    expect((await claim({ mac: '52:54:00:00:00:01' }, API)).statusCode).toBe(200);
  });

  it('one init, then joins that name the winner by the address it reported', async () => {
    const { claim, inventory } = await app();
    const first = await claim({ mac: '52:54:00:00:00:01', address: '192.0.2.11' });
    expect(first.json()).toMatchObject({ decision: 'init', leader: { mac: '52:54:00:00:00:01', ip: '192.0.2.11' }, epoch: 1 });
    for (const mac of ['52:54:00:00:00:02', '52:54:00:00:00:03']) {
      expect((await claim({ mac })).json()).toMatchObject({ decision: 'join', leader: { mac: '52:54:00:00:00:01', ip: '192.0.2.11' }, epoch: 1 });
    }
    // Asking again is the same answer, and recorded once.
    expect((await claim({ mac: '52:54:00:00:00:01' })).json()).toMatchObject({ decision: 'init' });
    expect(inventory.events.filter((e) => e.type === 'bootstrap-claimed').map((e) => [e.mac, e.detail['decision'], e.detail['address'] ?? null])).toEqual([['52:54:00:00:00:01', 'init', '192.0.2.11']]);
  });

  it('refuses what is not a claim, and claims nothing for it', async () => {
    const { claim, inventory } = await app();
    expect((await claim({ mac: 'not-a-mac' })).json()).toMatchObject({ error: 'invalid_mac' });
    expect((await claim({ mac: '52:54:00:00:00:01', address: '192.0.2.300' })).json()).toMatchObject({ error: 'invalid_request' });
    expect((await claim({ mac: '52:54:00:00:00:01', role: 'x' })).statusCode).toBe(400);
    expect(inventory.events).toEqual([]);
    expect((await claim({ mac: '52:54:00:00:00:02' })).json()).toMatchObject({ decision: 'init', leader: { mac: '52:54:00:00:00:02' } });
  });
});
