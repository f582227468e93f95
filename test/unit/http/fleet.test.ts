// /fleet routes (http/fleet.ts) through inject(), the reconciler stood in for (its plan and apply
// are tested in fleet.test.ts): an invalid fleet is 422 with every problem at its place; a
// watched fleet file is not applied through the API; the export is YAML.

import { describe, expect, it } from 'vitest';
import { FleetError } from '../../../src/fleet/parse.ts';
import type { FleetReconciler } from '../../../src/fleet/reconciler.ts';
import { fleetRoutes } from '../../../src/http/fleet.ts';
import { routeGroup } from '../../helpers/inject.ts';

type Stub = Pick<FleetReconciler, 'status' | 'plan' | 'apply' | 'export' | 'watched'>;

function reconciler(over: Partial<Stub> = {}): Stub {
  return {
    watched: false,
    status: () => ({ source: null }) as never,
    plan: () => {
      throw new FleetError([{ at: 'fleet.yaml:4:11', message: 'role must be one of: controlplane, worker' }]);
    },
    apply: () => {
      throw new Error('not called');
    },
    export: () => 'apiVersion: genesis.dev/v1alpha1\nkind: Fleet\n',
    ...over,
  };
}

const body = { documents: ['fleet.yaml'], files: { 'fleet.yaml': 'apiVersion: genesis.dev/v1alpha1\nkind: Fleet\n' } };

describe('fleet routes', () => {
  it('an invalid fleet is 422 with each problem at its file:line:col', async () => {
    const a = await routeGroup((r) => fleetRoutes(r, reconciler()));
    const res = await a.inject({ method: 'POST', url: '/fleet/diff', payload: body });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toEqual({ error: 'fleet_invalid', message: 'fleet.yaml:4:11: role must be one of: controlplane, worker', problems: [{ at: 'fleet.yaml:4:11', message: 'role must be one of: controlplane, worker' }] });
  });

  it('a watched fleet file is changed in the file, not through the API', async () => {
    const a = await routeGroup((r) => fleetRoutes(r, reconciler({ watched: true, status: () => ({ source: '/srv/fleet' }) as never })));
    const res = await a.inject({ method: 'POST', url: '/fleet/apply', payload: body });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ error: 'fleet_watched', message: expect.stringContaining('/srv/fleet') });
  });

  it('the body must name its documents among its files, within the limits', async () => {
    const a = await routeGroup((r) => fleetRoutes(r, reconciler()));
    for (const payload of [{ files: {} }, { documents: [], files: {} }, { ...body, extra: true }]) {
      expect((await a.inject({ method: 'POST', url: '/fleet/diff', payload })).statusCode).toBe(400);
    }
  });

  it('export is YAML, not cached', async () => {
    const a = await routeGroup((r) => fleetRoutes(r, reconciler()));
    const res = await a.inject('/fleet/export');
    expect(res.headers['content-type']).toBe('application/yaml');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toBe('apiVersion: genesis.dev/v1alpha1\nkind: Fleet\n');
  });
});
