// Genesis killed with SIGKILL while a node publishes its events: the node keeps what was not
// acknowledged and sends it to the restarted Genesis; every event ends up recorded exactly once,
// in order, and the install is still detected. A real `genesis serve` process, a real data dir.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../src/inventory/store.ts';
import { loopbackServeEnv, seedSecrets, TEST_TOKEN } from '../helpers/genesis-app.ts';
import { GenesisProcess } from '../helpers/genesis-process.ts';
import { TalosReporter } from '../helpers/talos-reporter.ts';
import { until } from '../helpers/wait.ts';

const cleanup: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

describe('Genesis killed while a node reports', () => {
  it('loses no event and records none twice; the install is detected after the restart', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-events-crash-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const dataDir = path.join(dir, 'data');
    mkdirSync(path.join(dir, 'assets'), { recursive: true });
    seedSecrets(dataDir);
    const mac = '52:54:00:0c:00:02';
    const ip = '127.0.12.2';
    const inv = Inventory.open(path.join(dataDir, 'genesis.db'));
    inv.update(mac, { role: 'worker', hostname: 'w-1' }, 'test', { create: true });
    inv.recordBoot(mac, { ip });
    inv.setState(mac, 'installing', 'test');
    inv.close();

    const start = (sinkPort: number) => {
      const p = new GenesisProcess(['serve'], {
        ...loopbackServeEnv(dataDir, path.join(dir, 'assets')),
        GENESIS_BOOTSTRAP_ENABLED: 'false',
        GENESIS_EVENTS_HOST: '127.0.0.1',
        GENESIS_EVENTS_SINK_PORT: String(sinkPort),
      });
      cleanup.push(() => p.kill('SIGKILL'));
      return p;
    };
    const first = start(0);
    const ready = (await first.ready()) as unknown as { events: { sink: { port: number }; kernelLog: { port: number } } };
    const sinkPort = ready.events.sink.port;

    const talos = new TalosReporter(ip, { host: '127.0.0.1', port: sinkPort }, { host: '127.0.0.1', port: ready.events.kernelLog.port });
    cleanup.push(() => talos.close());
    await talos.start();
    const tasks = Array.from({ length: 150 }, (_, i): [string, Record<string, unknown>] => ['TaskEvent', { task: `task${i}`, action: i % 2 ? 'STOP' : 'START' }]);
    talos.publish(...tasks);
    // Killed mid-stream: some events acknowledged, the rest still on the node.
    await until(() => talos.acked.length >= 40, 'the first events to be acknowledged');
    first.kill('SIGKILL');
    expect(await first.exit()).toBeNull();
    expect(talos.acked.length).toBeLessThan(tasks.length);

    const second = start(sinkPort);
    const { http } = await second.ready();
    talos.publish(['SequenceEvent', { sequence: 'boot', action: 'START' }]);
    await talos.flushed();

    const res = await fetch(`http://127.0.0.1:${http.port}/api/v1/nodes/${mac}/events?limit=1000`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    const events = ((await res.json()) as { events: Array<{ type: string; detail: { id?: string; summary?: string } }> }).events.reverse();
    const recorded = events.filter((e) => e.type === 'talos-event').map((e) => e.detail.id);
    expect(recorded).toEqual(talos.acked.map((e) => e.id));
    expect(recorded).toHaveLength(tasks.length + 1);
    const node = (await (await fetch(`http://127.0.0.1:${http.port}/api/v1/nodes/${mac}`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })).json()) as { state: string };
    expect(node.state).toBe('installed');
  }, 60_000);
});
