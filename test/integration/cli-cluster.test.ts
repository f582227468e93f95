// `genesis cluster` and `genesis nodes assign --bootstrap`, run as real processes against a
// running Genesis.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGenesis, TEST_TOKEN, type TestGenesis } from '../helpers/genesis-app.ts';
import { BIN } from '../helpers/genesis-process.ts';
import { run } from '../helpers/run.ts';

let g: TestGenesis;
const genesis = (args: string[]) =>
  run(process.execPath, [BIN, ...args, '--url', g.url], { env: { PATH: process.env.PATH, GENESIS_API_TOKEN: TEST_TOKEN, GENESIS_ADVERTISE_ADDR: '127.0.0.1' } });

beforeAll(async () => {
  // No Talos nodes here: the orchestrator stays idle, the lock unclaimed.
  g = await startGenesis({ GENESIS_CLUSTER_NAME: 'lab', GENESIS_BOOTSTRAP_ENABLED: 'false' });
});
afterAll(async () => {
  await g.close();
});

describe('genesis cluster', () => {
  it('status shows the lock; --json gives the API document', async () => {
    const human = await genesis(['cluster', 'status']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^cluster +lab\nstate +unclaimed\nholder +-\nepoch +0\n/);
    const json = await genesis(['cluster', 'status', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ cluster: 'lab', state: 'unclaimed', epoch: 0, orchestrator: { enabled: false } });
  });

  it('join-token prints the token the claim API accepts', async () => {
    const out = await genesis(['cluster', 'join-token']);
    expect(out.code).toBe(0);
    const token = out.stdout.trim();
    const res = await fetch(`${g.url}/api/v1/bootstrap/claim`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ mac: '52:54:00:00:0d:01' }),
    });
    expect(await res.json()).toMatchObject({ decision: 'init', epoch: 1 });
  });

  it('reset needs --confirm and says why the server refused', async () => {
    const bare = await genesis(['cluster', 'reset']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('reset needs --confirm <cluster name>');
    const wrong = await genesis(['cluster', 'reset', '--confirm', 'other']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('send {"confirm": "lab"}');
    // The claim above left the lock bootstrap-sent; no control plane reports etcd: reset allowed.
    const ok = await genesis(['cluster', 'reset', '--confirm', 'lab']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/state +unclaimed/);
    expect(ok.stdout).toContain('bootstrap-sent -> unclaimed  epoch 1  api:cli: reset');
  });

  it('unknown subcommands exit 2 with the usage', async () => {
    const out = await genesis(['cluster', 'explode']);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain('Usage: genesis cluster');
  });

  it('a mistyped command or flag exits 2 with one line naming the nearest real one, then the usage', async () => {
    const cases: Array<[string[], string]> = [
      [['nodes', 'lst'], 'genesis nodes: unknown command "lst" (did you mean "list"?)'],
      [['cluster', 'status', '--josn'], 'genesis cluster: unknown option --josn (did you mean --json?)'],
      [['assets', 'fetch', '--arch'], 'genesis assets: option --arch needs a value'],
    ];
    for (const [argv, line] of cases) {
      const out = await genesis(argv);
      expect(out.code, argv.join(' ')).toBe(2);
      expect(out.stderr.split('\n')[0]).toBe(line);
      expect(out.stderr).toContain('Usage: genesis');
      expect(out.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe('genesis nodes assign --bootstrap', () => {
  it('marks a control plane, and is refused for a worker', async () => {
    const cp = await genesis(['nodes', 'assign', '52:54:00:00:0d:02', 'controlplane', '--bootstrap', '--json']);
    expect(cp.code).toBe(0);
    expect(JSON.parse(cp.stdout)).toMatchObject({ role: 'controlplane', bootstrap: true });
    const worker = await genesis(['nodes', 'assign', '52:54:00:00:0d:03', 'worker', '--bootstrap']);
    expect(worker.code).toBe(2);
    expect(worker.stderr).toContain('--bootstrap is for control planes');
    const api = await g.api('PATCH', '/nodes/52:54:00:00:0d:02', { role: 'worker', bootstrap: true });
    expect(api.status).toBe(400);
    expect(await api.json()).toMatchObject({ error: 'invalid_request', message: expect.stringContaining('for control planes') });
  });
});
