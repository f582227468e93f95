// The Talos event sink and the kernel-log receiver against real clients: a grpc-js client built
// from the same sink.proto publishing Talos's event messages from each node's own address, and
// JSON lines over TCP. Nodes boot over real HTTP (curl --interface) first, so Genesis knows them.

import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { startGenesis, nodeScriptUrl, TEST_TOKEN, type TestGenesis } from '../helpers/genesis-app.ts';
import { BIN } from '../helpers/genesis-process.ts';
import { run } from '../helpers/run.ts';
import { kmsg, TalosReporter } from '../helpers/talos-reporter.ts';
import { until } from '../helpers/wait.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let g: TestGenesis;
const reporters: TalosReporter[] = [];

beforeAll(async () => {
  g = await startGenesis({ GENESIS_EVENTS_KERNEL_LOG_LINES: '100' });
});
afterAll(async () => {
  await Promise.all(reporters.map((r) => r.close()));
  await g?.close();
});

async function reporter(ip: string): Promise<TalosReporter> {
  const r = new TalosReporter(ip, { host: '127.0.0.1', port: g.eventPorts!.sink }, { host: '127.0.0.1', port: g.eventPorts!.kernelLog });
  await r.start();
  reporters.push(r);
  return r;
}

/** Register, then boot as the machine would from `ip`: its script, then its config. */
async function install(mac: string, ip: string, hostname: string): Promise<{ script: string; configUrl: string; config: string }> {
  expect((await g.api('PUT', `/nodes/${mac}`, { role: 'worker', hostname })).status).toBe(201);
  const script = (await run('curl', ['-sf', '--interface', ip, nodeScriptUrl(g.url, mac)])).stdout;
  const configUrl = / talos\.config=(\S+)/.exec(script)?.[1];
  if (!configUrl) throw new Error(`no config URL in ${script}`);
  const config = await run('curl', ['-sf', '--interface', ip, configUrl]);
  expect(config.code).toBe(0);
  return { script, configUrl, config: config.stdout };
}

const node = async (mac: string): Promise<Json> => (await (await g.api('GET', `/nodes/${mac}`)).json()) as Json;
const json = async (res: Response): Promise<Json> => (await res.json()) as Json;
const talosEvents = async (mac: string): Promise<Json[]> =>
  ((await json(await g.api('GET', `/nodes/${mac}/events?limit=1000`))).events as Json[]).filter((e) => e.type === 'talos-event').reverse();
async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${g.url}/metrics`)).text();
  const family = parsePrometheusTextFormat(text).find((f) => f.name === name);
  const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return sample ? Number(sample.value) : 0;
}

const INSTALL_RUN: Array<[string, Record<string, unknown>]> = [
  ['MachineStatusEvent', { stage: 'BOOTING', status: { ready: false } }],
  ['SequenceEvent', { sequence: 'initialize', action: 'START' }],
  ['PhaseEvent', { phase: 'config', action: 'START' }],
  ['TaskEvent', { task: 'loadConfig', action: 'START' }],
  ['TaskEvent', { task: 'loadConfig', action: 'STOP' }],
  ['PhaseEvent', { phase: 'config', action: 'STOP' }],
  ['SequenceEvent', { sequence: 'initialize', action: 'STOP' }],
  ['SequenceEvent', { sequence: 'install', action: 'START' }],
  ['MachineStatusEvent', { stage: 'INSTALLING', status: { ready: false, unmetConditions: [{ name: 'install', reason: 'writing the image' }] } }],
  ['SequenceEvent', { sequence: 'install', action: 'STOP' }],
  ['MachineStatusEvent', { stage: 'REBOOTING', status: { ready: false } }],
];
const DISK_BOOT: Array<[string, Record<string, unknown>]> = [
  ['MachineStatusEvent', { stage: 'BOOTING', status: { ready: false } }],
  ['SequenceEvent', { sequence: 'boot', action: 'START' }],
  ['ServiceStateEvent', { service: 'kubelet', action: 'RUNNING', message: 'Health check successful', health: { healthy: true } }],
  ['AddressEvent', { hostname: 'w-1', addresses: ['127.0.9.2'] }],
  ['MachineStatusEvent', { stage: 'RUNNING', status: { ready: true } }],
];

describe('Talos event sink', () => {
  it('points nodes at itself: kernel arguments and config documents name the sink and the log receiver', async () => {
    const { script, config } = await install('52:54:00:09:00:01', '127.0.9.1', 'w-0');
    expect(script).toContain(` talos.events.sink=127.0.0.1:${g.eventPorts!.sink} `);
    expect(script).toContain(` talos.logging.kernel=tcp://127.0.0.1:${g.eventPorts!.kernelLog}/ `);
    const docs = parseAllDocuments(config).map((d) => d.toJS() as Json);
    expect(docs.find((d) => d.kind === 'EventSinkConfig')).toEqual({ apiVersion: 'v1alpha1', kind: 'EventSinkConfig', endpoint: `127.0.0.1:${g.eventPorts!.sink}` });
    expect(docs.find((d) => d.kind === 'KmsgLogConfig')).toEqual({ apiVersion: 'v1alpha1', kind: 'KmsgLogConfig', name: 'genesis', url: `tcp://127.0.0.1:${g.eventPorts!.kernelLog}/` });
  });

  it('records a node install as it happens; the boot sequence marks it installed, revokes its config token and sends its next boot to the disk', async () => {
    const mac = '52:54:00:09:00:02';
    const { configUrl } = await install(mac, '127.0.9.2', 'w-1');
    expect((await node(mac)).state).toBe('installing');
    const r = await reporter('127.0.9.2');

    r.publish(...INSTALL_RUN);
    await r.flushed();
    // Installing and rebooting are not proof: a failed install does both.
    expect(await node(mac)).toMatchObject({ state: 'installing', talosStage: 'rebooting', talosReady: false });
    expect((await talosEvents(mac)).map((e) => e.detail.summary)).toEqual([
      'stage booting',
      'sequence initialize start',
      'phase config start',
      'task loadConfig start',
      'task loadConfig stop',
      'phase config stop',
      'sequence initialize stop',
      'sequence install start',
      'stage installing',
      'sequence install stop',
      'stage rebooting',
    ]);

    r.publish(...DISK_BOOT);
    await r.flushed();
    expect(await node(mac)).toMatchObject({ state: 'installed', talosStage: 'running', talosReady: true, talosAddresses: ['127.0.9.2'] });
    const changes = ((await json(await g.api('GET', `/nodes/${mac}/events`))).events as Json[]).filter((e) => e.type === 'state-changed');
    expect(changes[0]).toMatchObject({ actor: 'talos', detail: { from: 'installing', to: 'installed', reason: 'the boot sequence started (Talos runs from its disk)' } });

    // The token is gone: even the machine's own URL is refused now.
    expect((await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--interface', '127.0.9.2', configUrl])).stdout).toBe('403');
    expect((await run('curl', ['-sf', '--interface', '127.0.9.2', nodeScriptUrl(g.url, mac)])).stdout).toMatch(/leaving to the local disk\nexit 1\n$/);

    const steps = ((await json(await g.api('GET', `/nodes/${mac}/timeline`))).steps as Json[]).map((s) => s.step);
    expect(steps).toEqual(expect.arrayContaining(['script', 'config', 'talos stage installing', 'talos sequence boot start', 'state installing -> installed']));
    expect(steps.indexOf('talos sequence boot start')).toBeLessThan(steps.indexOf('state installing -> installed'));
  });

  it('a node that lost its path to Genesis replays its buffered events when it reconnects; each is recorded once', async () => {
    const mac = '52:54:00:09:00:03';
    await install(mac, '127.0.9.3', 'w-2');
    const r = await reporter('127.0.9.3');
    r.publish(...INSTALL_RUN.slice(0, 3));
    await r.flushed();
    expect(await talosEvents(mac)).toHaveLength(3);

    r.disconnect();
    await until(() => !g.app.eventSink!.connectedAddresses().includes('127.0.9.3'), 'the sink to see the node gone');
    r.publish(...INSTALL_RUN.slice(3), ...DISK_BOOT);
    // Nothing can arrive while the path is down: the node holds them.
    expect(r.acked).toHaveLength(3);
    expect(await node(mac)).toMatchObject({ state: 'installing' });

    r.reconnect();
    await r.flushed();
    const recorded = await talosEvents(mac);
    expect(recorded.map((e) => e.detail.id)).toEqual(r.acked.map((e) => e.id));
    expect(recorded).toHaveLength(INSTALL_RUN.length + DISK_BOOT.length);
    expect((await node(mac)).state).toBe('installed');

    // An acknowledgement lost on the way: Talos sends the same event again. Nothing changes.
    const before = await metric('genesis_talos_events_total', { result: 'duplicate', kind: 'sequence' });
    await r.resend(r.acked.find((e) => e.data.type_url.endsWith('SequenceEvent'))!);
    expect(await talosEvents(mac)).toHaveLength(recorded.length);
    expect(await metric('genesis_talos_events_total', { result: 'duplicate', kind: 'sequence' })).toBe(before + 1);
  });

  it('a node back from its disk on a new address is recognised by the hostname it reports, then by that address', async () => {
    const mac = '52:54:00:09:00:04';
    await install(mac, '127.0.9.4', 'w-3');
    const r = await reporter('127.0.9.5');
    r.publish(['AddressEvent', { hostname: 'w-3', addresses: ['127.0.9.5/8'] }], ['SequenceEvent', { sequence: 'boot', action: 'START' }]);
    await r.flushed();
    expect(await node(mac)).toMatchObject({ state: 'installed', talosAddresses: ['127.0.9.5'] });
    expect((await talosEvents(mac)).map((e) => e.detail.summary)).toEqual(['addresses 127.0.9.5/8', 'sequence boot start']);
  });

  it('events from an address no node has, and events that do not decode, are acknowledged, counted and dropped', async () => {
    const unknownBefore = await metric('genesis_talos_events_total', { result: 'unknown-source', kind: 'sequence' });
    const stranger = await reporter('127.0.9.99');
    stranger.publish(['SequenceEvent', { sequence: 'boot', action: 'START' }]);
    await stranger.flushed();
    expect(await metric('genesis_talos_events_total', { result: 'unknown-source', kind: 'sequence' })).toBe(unknownBefore + 1);

    const mac = '52:54:00:09:00:06';
    await install(mac, '127.0.9.6', 'w-5');
    const r = await reporter('127.0.9.6');
    const malformedBefore = await metric('genesis_talos_events_total', { result: 'malformed', kind: 'unknown' });
    // A varint field (action) with its value cut off: not a SequenceEvent.
    await r.resend({ id: 'bad-1', data: { type_url: 'type.googleapis.com/machine.SequenceEvent', value: Buffer.from([0x10]) } });
    expect(await metric('genesis_talos_events_total', { result: 'malformed', kind: 'unknown' })).toBe(malformedBefore + 1);
    // A message type Genesis does not read is recorded by name; the node's state is untouched.
    await r.resend({ id: 'new-1', data: { type_url: 'type.googleapis.com/machine.SomethingNewEvent', value: Buffer.alloc(0) } });
    expect((await talosEvents(mac)).map((e) => e.detail)).toEqual([{ id: 'new-1', kind: 'other', type: 'machine.SomethingNewEvent', summary: 'machine.SomethingNewEvent' }]);
    expect((await node(mac)).state).toBe('installing');
  });

  it('an event Genesis cannot store is refused, so the node keeps it and sends it again: nothing is lost', async () => {
    const mac = '52:54:00:09:00:07';
    await install(mac, '127.0.9.7', 'w-6');
    const r = await reporter('127.0.9.7');
    // The database refuses writes, as on a full disk.
    g.app.database!.connection.pragma('query_only = 1');
    try {
      r.publish(['SequenceEvent', { sequence: 'boot', action: 'START' }]);
      await until(() => r.failures > 0, 'a refused publish');
      expect(await metric('genesis_talos_events_total', { result: 'failed', kind: 'sequence' })).toBeGreaterThan(0);
    } finally {
      g.app.database!.connection.pragma('query_only = 0');
    }
    await r.flushed();
    expect((await node(mac)).state).toBe('installed');
    expect(await talosEvents(mac)).toHaveLength(1);
  });

  it('counts the nodes connected to the sink and the log receiver', async () => {
    await until(async () => (await metric('genesis_node_connections', { server: 'event-sink' })) >= 1, 'a connected node');
    expect(await metric('genesis_node_connections', { server: 'event-sink' })).toBe(g.app.eventSink!.connections);
    expect(await metric('genesis_node_connections_total', { server: 'event-sink' })).toBeGreaterThanOrEqual(reporters.length);
  });
});

describe('kernel-log receiver', () => {
  it('keeps each node\'s kernel log in a bounded ring, readable through the API; bad lines are skipped', async () => {
    const mac = '52:54:00:09:00:08';
    await install(mac, '127.0.9.8', 'w-7');
    const r = await reporter('127.0.9.8');
    const malformedBefore = await metric('genesis_kernel_log_lines_total', { result: 'malformed' });
    const tooLongBefore = await metric('genesis_kernel_log_lines_total', { result: 'too-long' });
    await r.kernelLog([kmsg('Linux version 6.12', 0), 'not json', JSON.stringify({ no: 'msg' }), JSON.stringify({ msg: 'x'.repeat(20_000) })]);
    await r.kernelLog(Array.from({ length: 149 }, (_, i) => kmsg(i === 148 ? 'installer: failed to find disk /dev/sda' : `line ${i + 1}`, i + 1, i === 148 ? 'error' : 'info')));
    const lines = await until(async () => {
      const body = await json(await g.api('GET', `/nodes/${mac}/logs?limit=1000`));
      return body.lines.at(-1)?.fields.seq === 149 ? (body.lines as Json[]) : undefined;
    }, 'the last kernel line');
    // 150 good lines sent, 100 kept: the newest.
    expect(lines).toHaveLength(100);
    expect(lines.map((l) => l.fields.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 50));
    expect(lines.at(-1)).toMatchObject({ msg: 'installer: failed to find disk /dev/sda', level: 'error', facility: 'kern', talosTime: '2026-11-23T10:02:29.000Z' });
    expect(await metric('genesis_kernel_log_lines_total', { result: 'malformed' })).toBe(malformedBefore + 2);
    expect(await metric('genesis_kernel_log_lines_total', { result: 'too-long' })).toBe(tooLongBefore + 1);

    // Tailing: only what came after the last line read.
    await r.kernelLog([kmsg('line 150', 150)]);
    const after = lines.at(-1)!.id;
    const tail = await until(async () => {
      const body = await json(await g.api('GET', `/nodes/${mac}/logs?after=${after}`));
      return body.lines.length ? (body.lines as Json[]) : undefined;
    }, 'the new line');
    expect(tail.map((l) => l.msg)).toEqual(['line 150']);
    // Paging forward from the oldest line kept: the next ten, none skipped.
    const page = await json(await g.api('GET', `/nodes/${mac}/logs?after=${lines[0]!.id}&limit=10`));
    expect((page.lines as Json[]).map((l) => l.fields.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 51));
  });

  it('genesis nodes logs prints it; genesis nodes list shows where Talos is', async () => {
    const env = { PATH: process.env.PATH, GENESIS_API_TOKEN: TEST_TOKEN, GENESIS_ADVERTISE_ADDR: '127.0.0.1' };
    const logs = await run(process.execPath, [BIN, 'nodes', 'logs', '52:54:00:09:00:08', '--lines', '2', '--url', g.url], { env });
    expect(logs.stderr).toBe('');
    expect(logs.stdout).toBe('2026-11-23T10:02:29.000Z  error  installer: failed to find disk /dev/sda\n2026-11-23T10:02:30.000Z  info   line 150\n');
    const list = await run(process.execPath, [BIN, 'nodes', 'list', '--url', g.url], { env });
    expect(list.stdout.split('\n')[0]).toMatch(/^MAC +ROLE +STATE +TALOS +HOSTNAME/);
    expect(list.stdout).toMatch(/52:54:00:09:00:02 +worker +installed +running,ready +w-1 /);
    const none = await run(process.execPath, [BIN, 'nodes', 'logs', '52:54:00:09:00:01', '--url', g.url], { env });
    expect(none.stdout).toBe('(no kernel log received from this machine)\n');
  });

  it('lines Genesis cannot store are counted and dropped; the connection and the receiver carry on', async () => {
    const mac = '52:54:00:09:00:0a';
    await install(mac, '127.0.9.10', 'w-9');
    const r = await reporter('127.0.9.10');
    const failedBefore = await metric('genesis_kernel_log_lines_total', { result: 'failed' });
    g.app.database!.connection.pragma('query_only = 1');
    try {
      await r.kernelLog([kmsg('lost on a full disk', 1)]);
      await until(async () => (await metric('genesis_kernel_log_lines_total', { result: 'failed' })) === failedBefore + 1, 'the refused line');
    } finally {
      g.app.database!.connection.pragma('query_only = 0');
    }
    await r.kernelLog([kmsg('after the disk was freed', 2)]);
    const lines = await until(async () => {
      const body = await json(await g.api('GET', `/nodes/${mac}/logs`));
      return body.lines.length ? (body.lines as Json[]) : undefined;
    }, 'the next line');
    expect(lines.map((l) => l.msg)).toEqual(['after the disk was freed']);
  });

  it('the log API needs the token and a known MAC', async () => {
    expect((await fetch(`${g.url}/api/v1/nodes/52:54:00:09:00:08/logs`)).status).toBe(401);
    expect((await g.api('GET', '/nodes/52:54:00:09:0f:0f/logs')).status).toBe(404);
    expect((await g.api('GET', '/nodes/52:54:00:09:00:08/logs?limit=lots')).status).toBe(400);
  });
});
