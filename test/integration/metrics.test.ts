// GET /metrics, parsed with a Prometheus text-format parser and checked by Prometheus's own
// promtool: the families exist from the start, and the counters move as a real TFTP client, HTTP
// downloads and config fetches happen.

import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import parse from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleValue, samples } from '../../bench/prometheus-text.ts';
import { encodeError, encodeRequest, ErrorCode } from '../../src/tftp/packet.ts';
import { nodeScriptUrl, startGenesis, type TestGenesis } from '../helpers/genesis-app.ts';
import { commandMissing } from '../helpers/host-tools.ts';
import { RawPeer } from '../helpers/raw-tftp.ts';
import { run } from '../helpers/run.ts';
import { until } from '../helpers/wait.ts';

let g: TestGenesis;
beforeAll(async () => {
  g = await startGenesis();
  writeFileSync(path.join(g.assetsDir, 'ipxe', 'undionly.kpxe'), Buffer.alloc(100_000, 7));
});
afterAll(async () => {
  await g.close();
});

async function scrape(): Promise<(name: string, labels?: Record<string, string>) => number> {
  const res = await fetch(`${g.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  const families = parse(await res.text());
  return (name, labels = {}) => {
    const fam = families.find((f) => f.name === name);
    if (!fam) throw new Error(`no metric ${name}`);
    return fam.metrics.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)).reduce((n, m) => n + Number(m.value), 0);
  };
}

/** One histogram series of the scraped text: its count, sum and +Inf bucket (0 for a series not there yet). */
async function histogram(name: string, labels: Record<string, string>): Promise<{ count: number; sum: number; inf: number }> {
  const all = samples(await (await fetch(`${g.url}/metrics`)).text());
  return {
    count: sampleValue(all, `${name}_count`, labels) ?? 0,
    sum: sampleValue(all, `${name}_sum`, labels) ?? 0,
    inf: sampleValue(all, `${name}_bucket`, { ...labels, le: '+Inf' }) ?? 0,
  };
}

describe('GET /metrics', () => {
  it.skipIf(commandMissing(['promtool']))('is text Prometheus reads, and passes its linter but for three of the Node.js defaults', async () => {
    // Something in every family first, so each is linted with samples in it.
    await fetch(`${g.url}/boot.ipxe`);
    const text = await (await fetch(`${g.url}/metrics`)).text();
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    // Exit 3 is lint findings; a parse error would be 1. The three are prom-client's default
    // gauges, named with _total (prom-client's, not ours to rename).
    const findings = `${r.stdout}${r.stderr}`.trim().split('\n').filter(Boolean).sort();
    expect(findings).toEqual([
      'genesis_process_nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
      'genesis_process_nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
      'genesis_process_nodejs_active_resources_total non-counter metrics should not have "_total" suffix',
    ]);
    expect(r.status).toBe(3);
  });

  it('counts TFTP transfers and bytes from a real client', async () => {
    const before = await scrape();
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'genesis-metrics-')), 'f');
    const r = await run('curl', ['-sS', '-o', out, `tftp://127.0.0.1:${g.tftpPort}/undionly.kpxe`]);
    expect(r.code, r.stderr).toBe(0);
    // curl is done once it has sent its last ACK; the transfer ends on the server when that ACK
    // arrives (in the transfer worker, whose word then reaches the main thread): counted a moment later.
    const delta = async () => {
      const now = await scrape();
      return now('genesis_tftp_transfers_total', { outcome: 'ok' }) - before('genesis_tftp_transfers_total', { outcome: 'ok' }) > 0 ? now : false;
    };
    const after = await until(delta, 'the transfer counted');
    expect(after('genesis_tftp_transfers_total', { outcome: 'ok' }) - before('genesis_tftp_transfers_total', { outcome: 'ok' })).toBe(1);
    expect(after('genesis_tftp_bytes_total') - before('genesis_tftp_bytes_total')).toBe(100_000);
  });

  it('counts HTTP requests by route pattern, asset bytes, and configs served and refused', async () => {
    const mac = '52:54:00:00:0e:01';
    expect((await g.api('PUT', `/nodes/${mac}`, { role: 'worker' })).status).toBe(201);
    const before = await scrape();
    const script = await (await fetch(nodeScriptUrl(g.url, mac))).text();
    const configUrl = / talos\.config=(\S+)/.exec(script)![1]!;
    expect((await fetch(configUrl)).status).toBe(200);
    expect((await fetch(configUrl.replace(/[0-9a-f]{64}$/, '0'.repeat(64)))).status).toBe(403);
    const kernel = await fetch(`${g.url}/assets/talos/v1.14.0/amd64/vmlinuz`);
    const size = (await kernel.arrayBuffer()).byteLength;
    const after = await scrape();
    const delta = (name: string, labels?: Record<string, string>) => after(name, labels) - before(name, labels);
    expect(delta('genesis_http_requests_total', { route: '/ipxe/node', status: '200' })).toBe(1);
    expect(delta('genesis_machine_configs_total', { result: 'served' })).toBe(1);
    expect(delta('genesis_machine_configs_total', { result: 'refused' })).toBe(1);
    expect(delta('genesis_http_asset_bytes_total')).toBe(size);
    const timed = await histogram('genesis_http_request_duration_seconds', { route: '/ipxe/node', method: 'GET' });
    expect(timed.count).toBeGreaterThanOrEqual(1);
    expect(timed.inf).toBe(timed.count);
    expect(timed.sum).toBeGreaterThan(0);
    // Route patterns only: no MAC or token ever becomes a label.
    const text = await (await fetch(`${g.url}/metrics`)).text();
    expect(text).not.toContain(mac);
    expect(text).not.toMatch(/[0-9a-f]{64}/);
  });

  it('times every request by route pattern, from routing to its last byte', async () => {
    const before = await histogram('genesis_http_request_duration_seconds', { route: '/boot.ipxe', method: 'GET' });
    for (let i = 0; i < 3; i++) expect((await fetch(`${g.url}/boot.ipxe`)).status).toBe(200);
    const after = await histogram('genesis_http_request_duration_seconds', { route: '/boot.ipxe', method: 'GET' });
    expect(after.count - before.count).toBe(3);
    expect(after.inf).toBe(after.count);
    expect(after.sum).toBeGreaterThan(before.sum);
  });

  it('reports the TFTP transfers running now', async () => {
    const inFlight = async () => (await scrape())('genesis_tftp_transfers_in_flight');
    expect(await inFlight()).toBe(0);
    // A client that takes block 1 and answers nothing yet: its transfer runs.
    const peer = await new RawPeer().open();
    try {
      peer.send(encodeRequest('rrq', 'undionly.kpxe', 'octet'), g.tftpPort!);
      const first = await peer.next();
      expect(first.packet).toMatchObject({ kind: 'data', block: 1 });
      expect(await inFlight()).toBe(1);
      peer.send(encodeError(ErrorCode.NotDefined, 'enough'), first.port);
      await until(async () => (await inFlight()) === 0, 'the aborted transfer no longer counted');
    } finally {
      peer.close();
    }
  });

  it('reports nodes by state and role, and the bootstrap lock', async () => {
    expect((await g.api('PUT', '/nodes/52:54:00:00:0e:02', { role: 'controlplane' })).status).toBe(201);
    const m = await scrape();
    expect(m('genesis_nodes', { state: 'assigned', role: 'controlplane' })).toBe(1);
    expect(m('genesis_nodes')).toBe((await (await g.api('GET', '/nodes')).json() as { nodes: unknown[] }).nodes.length);
    expect(m('genesis_bootstrap_state', { state: 'unclaimed' })).toBe(1);
    expect(m('genesis_bootstrap_state')).toBe(1);
    expect(m('genesis_bootstrap_epoch')).toBe(0);
  });
});
