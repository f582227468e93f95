// POST /nodes/:mac/power (http/power.ts) through inject(): the power errors as answers, and the
// request rules, with the power control stood in for (its rules are tested in power.test.ts).

import { describe, expect, it } from 'vitest';
import { powerRoutes } from '../../../src/http/power.ts';
import { PowerFailed, PowerNotFound, PowerRefused, type PowerAction } from '../../../src/power/power-control.ts';
import { routeGroup } from '../../helpers/inject.ts';

const MAC = '52:54:00:00:00:01';

async function app(fail?: Error) {
  const acts: Array<[string, PowerAction, string]> = [];
  const a = await routeGroup((r) =>
    powerRoutes(
      r,
      {
        act: async (mac, action, actor) => {
          acts.push([mac, action, actor]);
          if (fail) throw fail;
          return { mac, action, method: 'wol', result: 'magic packet sent' };
        },
      },
      () => 'api',
    ),
  );
  const post = (mac: string, body: unknown) => a.inject({ method: 'POST', url: `/nodes/${mac}/power`, payload: body as object });
  return { post, acts };
}

describe('power route', () => {
  it('acts on the normalised MAC and answers the result', async () => {
    const { post, acts } = await app();
    const res = await post('52-54-00-00-00-01', { action: 'on' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ mac: MAC, action: 'on', method: 'wol', result: 'magic packet sent' });
    expect(acts).toEqual([[MAC, 'on', 'api']]);
  });

  it('not found 404, refused 409, failed 502, each with its message', async () => {
    const cases: Array<[Error, number, string]> = [
      [new PowerNotFound(`no node with MAC ${MAC}`), 404, 'not_found'],
      [new PowerRefused('Wake-on-LAN cannot switch a machine off'), 409, 'power_refused'],
      [new PowerFailed('ipmitool: Unable to establish IPMI v2 / RMCP+ session'), 502, 'power_failed'],
    ];
    for (const [err, status, code] of cases) {
      const { post } = await app(err);
      const res = await post(MAC, { action: 'off' });
      expect(res.statusCode).toBe(status);
      expect(res.json()).toEqual({ error: code, message: err.message });
    }
  });

  it('an unknown action or a bad MAC is refused before anything is done', async () => {
    const { post, acts } = await app();
    expect((await post(MAC, { action: 'explode' })).statusCode).toBe(400);
    expect((await post(MAC, { action: 'on', extra: 1 })).statusCode).toBe(400);
    expect((await post('not-a-mac', { action: 'on' })).statusCode).toBe(400);
    expect(acts).toEqual([]);
  });
});
