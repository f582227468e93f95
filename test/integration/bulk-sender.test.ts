// Large downloads are sent off the main thread (src/bulk), by the sendfile thread (the default)
// or the sender process: the bytes, the framing, the recording of the download, and what happens
// when the sender dies, is off, or Genesis stops.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import parse from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleValue, samples } from '../../bench/prometheus-text.ts';
import { OFFLOAD_MIN_BYTES } from '../../src/http/assets.ts';
import { nodeScriptUrl, startGenesis, type TestGenesis } from '../helpers/genesis-app.ts';
import { run, sha256, sha256File } from '../helpers/run.ts';
import { threadsNamed } from '../helpers/threads.ts';
import { until } from '../helpers/wait.ts';

const kernel = randomBytes(OFFLOAD_MIN_BYTES + 4097);
/** Large enough that a client reading 1 MiB/s is still downloading when the test acts. */
const LARGE = 48 * 1024 * 1024;
const out = path.join(tmpdir(), `genesis-bulk-${process.pid}`);

function stage(g: TestGenesis): void {
  const dir = path.join(g.assetsDir, 'talos', 'v1.14.0', 'amd64');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'vmlinuz'), kernel);
  writeFileSync(path.join(dir, 'initramfs.xz'), Buffer.alloc(LARGE, 3));
}
const kernelUrl = (g: TestGenesis) => `${g.url}/assets/talos/v1.14.0/amd64/vmlinuz`;
const largeUrl = (g: TestGenesis) => `${g.url}/assets/talos/v1.14.0/amd64/initramfs.xz`;

/** The sender processes this test process started (Genesis runs in it). */
function senders(): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(process.pid), '-f', 'sender-process'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A curl reading at 1 MiB/s into `dest`, and its exit. */
function slowDownload(url: string, dest: string) {
  return run('curl', ['-sS', '--limit-rate', '1M', '-o', dest, '-w', '%{http_code} %{size_download}', url]);
}

/** Downloads being sent now, by who sends them, as GET /metrics reports them. */
async function downloadsInFlight(g: TestGenesis): Promise<{ sender: number; genesis: number }> {
  const family = parse(await (await fetch(`${g.url}/metrics`)).text()).find((f) => f.name === 'genesis_http_downloads_in_flight');
  const of = (by: string) => Number(family?.metrics.find((m) => m.labels?.sent_by === by)?.value ?? NaN);
  return { sender: of('sender'), genesis: of('genesis') };
}

/** A GET whose client reads nothing once the head is in: the server's writes stall, the download stays open until cut(). */
function stalledDownload(url: string): Promise<{ status: number; cut: () => void }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      res.pause();
      resolve({ status: res.statusCode ?? 0, cut: () => req.destroy() });
    });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
  });
}

beforeAll(() => mkdirSync(out, { recursive: true }));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe.each([
  { kind: 'the sendfile thread (the default)', env: {} as Record<string, string>, processes: 0 },
  { kind: 'the sender process (http.sendfile off)', env: { GENESIS_HTTP_SENDFILE: 'false' }, processes: 1 },
])('with $kind', ({ env, processes }) => {
  let g: TestGenesis;
  beforeAll(async () => {
    g = await startGenesis(env);
    stage(g);
  });
  afterAll(() => g.close());

  it('sends a large file whole off the main thread, framed by length and a closed connection', async () => {
    const dest = path.join(out, 'kernel');
    const r = await run('curl', ['-sS', '-f', '-o', dest, '-D', '-', kernelUrl(g)]);
    expect(r.code, r.stderr).toBe(0);
    expect(sha256File(dest)).toBe(sha256(kernel));
    expect(r.stdout).toMatch(new RegExp(`content-length: ${kernel.length}\\r`, 'i'));
    expect(r.stdout).toMatch(/^connection: close\r$/im);
    expect(r.stdout).toMatch(/^etag: /im);
    expect(r.stdout).toMatch(/^content-type: application\/octet-stream\r$/im);
    expect(senders()).toHaveLength(processes);
    expect(threadsNamed('gen-sendfile').length).toBe(1 - processes);
  });

  it('sends a large range from the first byte (206) and records it as the download of that machine', async () => {
    const mac = '52:54:00:bb:00:01';
    await fetch(nodeScriptUrl(g.url, mac)).then((r) => r.text());
    const r = await fetch(kernelUrl(g), { headers: { range: `bytes=0-${OFFLOAD_MIN_BYTES}` } });
    expect(r.status).toBe(206);
    expect(r.headers.get('connection')).toBe('close');
    expect(r.headers.get('content-range')).toBe(`bytes 0-${OFFLOAD_MIN_BYTES}/${kernel.length}`);
    expect(Buffer.from(await r.arrayBuffer()).equals(kernel.subarray(0, OFFLOAD_MIN_BYTES + 1))).toBe(true);
    // Recorded when the sender reports, which may come just after the client has read the end.
    // The machine's history already holds the first test's whole download (200): it came from
    // this address before the machine was known, and was written to its history when its script
    // request made it known (boot-steps.ts). So the range's own event is the one with its 206.
    const event = await until(async () => {
      const { events } = (await (await g.api('GET', `/nodes/${mac}/events?limit=5`)).json()) as { events: Array<{ type: string; detail: { path: string; status: number } }> };
      return events.find((e) => e.type === 'asset-fetched' && e.detail.status === 206);
    }, 'the range download recorded (206)');
    expect(event.detail).toMatchObject({ path: '/assets/talos/v1.14.0/amd64/vmlinuz', status: 206 });
    const metrics = await (await fetch(`${g.url}/metrics`)).text();
    expect(metrics).toMatch(/genesis_http_requests_total\{route="\/assets\/\*",method="GET",status="206"\} [1-9]/);
  });

  it('serves small files, HEAD and a 304 itself, on a kept-alive connection', async () => {
    const small = await fetch(kernelUrl(g), { headers: { range: 'bytes=0-99' } });
    expect(small.status).toBe(206);
    expect(small.headers.get('connection')).toBe('keep-alive');
    expect(Buffer.from(await small.arrayBuffer()).equals(kernel.subarray(0, 100))).toBe(true);
    // A range from the middle: the bytes at its offset, not the file's first ones.
    const middle = await fetch(kernelUrl(g), { headers: { range: 'bytes=1000-1099' } });
    expect(middle.status).toBe(206);
    expect(middle.headers.get('content-range')).toBe(`bytes 1000-1099/${kernel.length}`);
    expect(Buffer.from(await middle.arrayBuffer()).equals(kernel.subarray(1000, 1100))).toBe(true);
    const head = await run('curl', ['-sS', '-I', largeUrl(g)]);
    expect(head.stdout).toMatch(/^connection: keep-alive\r$/im);
    expect(head.stdout).toMatch(new RegExp(`^content-length: ${LARGE}\r$`, 'im'));
    const etag = /^etag: (.*)\r$/im.exec(head.stdout)![1]!;
    const again = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', `If-None-Match: ${etag}`, largeUrl(g)]);
    expect(again.stdout).toBe('304');
  });

  it('reports a download the sender is sending as in flight until its connection ends, and times it', async () => {
    // The earlier tests' downloads are over once their reports are in (a client can finish first).
    await until(async () => JSON.stringify(await downloadsInFlight(g)) === JSON.stringify({ sender: 0, genesis: 0 }), 'no download in flight');
    const timed = async () => sampleValue(samples(await (await fetch(`${g.url}/metrics`)).text()), 'genesis_http_request_duration_seconds_count', { route: '/assets/*', method: 'GET' }) ?? 0;
    const before = await timed();
    const download = await stalledDownload(largeUrl(g));
    expect(download.status).toBe(200);
    // Handed over before the head was written (the sender writes it), so counted by now.
    expect(await downloadsInFlight(g)).toEqual({ sender: 1, genesis: 0 });
    download.cut();
    await until(async () => (await downloadsInFlight(g)).sender === 0, 'the cut download no longer in flight');
    expect(await timed()).toBe(before + 1);
  });
});

describe('with the sender process', () => {
  let g: TestGenesis;
  beforeAll(async () => {
    g = await startGenesis({ GENESIS_HTTP_SENDFILE: 'false' });
    stage(g);
  });
  afterAll(() => g.close());

  it('a sender killed mid-download cuts that download off (not recorded), and the next one starts a new sender', async () => {
    const mac = '52:54:00:bb:00:02';
    await fetch(nodeScriptUrl(g.url, mac)).then((r) => r.text());
    const dest = path.join(out, 'cut');
    const cut = slowDownload(largeUrl(g), dest);
    await until(() => existsSync(dest) && statSync(dest).size > 0, 'the slow download under way');
    const [pid] = senders();
    expect(pid).toBeDefined();
    process.kill(pid!, 'SIGKILL');
    const r = await cut;
    expect(r.code).not.toBe(0);
    expect(statSync(dest).size).toBeLessThan(LARGE);
    // The client saw the cut when the kernel closed the dead sender's socket; Genesis learns of the
    // death from its exit, a moment later (under load, after the next request could arrive: a
    // download handed to a sender already dead but not yet reaped is cut off too, as this one was).
    // The cut download leaving the in-flight count says Genesis has seen the exit.
    await until(async () => (await downloadsInFlight(g)).sender === 0, 'the dead sender seen (its download no longer in flight)');

    const whole = await run('curl', ['-sS', '-f', '-o', path.join(out, 'after'), kernelUrl(g)]);
    expect(whole.code, whole.stderr).toBe(0);
    expect(sha256File(path.join(out, 'after'))).toBe(sha256(kernel));
    expect(senders()).not.toContain(pid);
    expect(senders()).toHaveLength(1);
    const { events } = (await (await g.api('GET', `/nodes/${mac}/events?limit=5`)).json()) as { events: Array<{ type: string; detail: { path?: string } }> };
    expect(events.filter((e) => e.type === 'asset-fetched' && e.detail.path?.endsWith('initramfs.xz'))).toEqual([]);
  });
});

describe('Genesis stopping while a download is sent', () => {
  it('stops without waiting for the download, and leaves no sendfile thread behind', async () => {
    const g = await startGenesis();
    stage(g);
    const dest = path.join(out, 'stopping-sendfile');
    const slow = slowDownload(largeUrl(g), dest);
    await until(() => existsSync(dest) && statSync(dest).size > 0, 'the slow download under way');
    expect(threadsNamed('gen-sendfile').length).toBe(1);
    await g.close();
    const r = await slow;
    expect(r.code).not.toBe(0);
    // Joined at shutdown; its /proc entry goes a moment after the join returns.
    await until(() => threadsNamed('gen-sendfile').length === 0, 'the sendfile thread gone from /proc');
  });

  it('stops without waiting for the download, and leaves no sender process behind', async () => {
    const g = await startGenesis({ GENESIS_HTTP_SENDFILE: 'false' });
    stage(g);
    const dest = path.join(out, 'stopping');
    const slow = slowDownload(largeUrl(g), dest);
    await until(() => existsSync(dest) && statSync(dest).size > 0, 'the slow download under way');
    const [pid] = senders();
    expect(pid).toBeDefined();
    await g.close();
    const r = await slow;
    expect(r.code).not.toBe(0);
    expect(senders()).not.toContain(pid);
  });
});

describe('with http.bulk_process off', () => {
  it('serves every download from the main process, on a kept-alive connection', async () => {
    const g = await startGenesis({ GENESIS_HTTP_BULK_PROCESS: 'false' });
    try {
      stage(g);
      const before = senders();
      const r = await fetch(kernelUrl(g));
      expect(r.headers.get('connection')).toBe('keep-alive');
      expect(sha256(Buffer.from(await r.arrayBuffer()))).toBe(sha256(kernel));
      expect(senders()).toEqual(before);
      // Streamed by Genesis itself: counted as its own while it runs.
      const download = await stalledDownload(largeUrl(g));
      expect(download.status).toBe(200);
      expect(await downloadsInFlight(g)).toEqual({ sender: 0, genesis: 1 });
      download.cut();
      await until(async () => (await downloadsInFlight(g)).genesis === 0, 'the cut download no longer in flight');
    } finally {
      await g.close();
    }
  });
});
