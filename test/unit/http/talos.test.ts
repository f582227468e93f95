// GET /talos/config/:mac/:token (http/talos.ts) through inject(): each outcome of the config
// service in HTTP, and what a request that is not a config URL gets.

import { describe, expect, it } from 'vitest';
import { talosRoutes } from '../../../src/http/talos.ts';
import type { ConfigOutcome } from '../../../src/provision/machine-config.ts';
import { routeGroup } from '../../helpers/inject.ts';
import { TimeSlices } from '../../../src/scheduling/time-slices.ts';

const MAC = '52:54:00:12:34:56';
const TOKEN = 'ab'.repeat(32);

async function app(outcome: ConfigOutcome, slices = new TimeSlices({ sliceMs: 10 })) {
  const calls: Array<[string | undefined, string, string | undefined]> = [];
  const a = await routeGroup((r) =>
    talosRoutes(
      r,
      {
        serve: async (mac, token, ip) => {
          calls.push([mac, token, ip]);
          return outcome;
        },
      },
      slices,
    ),
  );
  return { a, calls };
}

describe('talos config route', () => {
  it('served: the YAML, never cached', async () => {
    const { a, calls } = await app({ outcome: 'served', yaml: 'version: v1alpha1\n' });
    const res = await a.inject(`/talos/config/${MAC.replace(/:/g, '-')}/${TOKEN}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/yaml');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toBe('version: v1alpha1\n');
    expect(calls).toEqual([[MAC, TOKEN, '127.0.0.1']]);
  });

  it('denied: 403 and nothing more, whatever the reason', async () => {
    for (const reason of ['wrong-token', 'expired', 'window-closed', 'conflict'] as const) {
      const { a } = await app({ outcome: 'denied', reason });
      const res = await a.inject(`/talos/config/${MAC}/${TOKEN}`);
      expect(res.statusCode).toBe(403);
      expect(res.body).toBe('forbidden\n');
    }
  });

  it('unrenderable: 503 with retry-after, the reason kept for the operator', async () => {
    const { a } = await app({ outcome: 'unrenderable', reason: 'machine.install.disk: required' });
    const res = await a.inject(`/talos/config/${MAC}/${TOKEN}`);
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('10');
    expect(res.body).not.toContain('machine.install.disk');
  });

  it('a URL without a token is asked of the service as a bad request, and answered as any denial', async () => {
    const { a, calls } = await app({ outcome: 'denied', reason: 'bad-request' });
    const res = await a.inject(`/talos/config/${MAC}`);
    expect(res.statusCode).toBe(403);
    expect(calls).toEqual([[undefined, '', '127.0.0.1']]);
  });

  it('an oversized token never reaches the service as a token: it is a URL without one', async () => {
    const { a, calls } = await app({ outcome: 'denied', reason: 'bad-request' });
    const res = await a.inject(`/talos/config/${MAC}/${'a'.repeat(129)}`);
    expect(res.statusCode).toBe(403);
    expect(calls).toEqual([[undefined, '', '127.0.0.1']]);
  });

  it('a config is decided in a later slice, not in the handler that parsed its request', async () => {
    const turns: Array<() => void> = [];
    const slices = new TimeSlices({ sliceMs: 10, later: (fn) => turns.push(fn) });
    const { a, calls } = await app({ outcome: 'served', yaml: 'version: v1alpha1\n' }, slices);
    const pending = a.inject(`/talos/config/${MAC}/${TOKEN}`);
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual([]);
    expect(slices.waiting).toBe(1);
    turns.shift()!();
    expect((await pending).statusCode).toBe(200);
    expect(calls).toEqual([[MAC, TOKEN, '127.0.0.1']]);
  });
});
