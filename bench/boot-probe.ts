// A boot.ipxe prober for the storm bench (storm.ts): a request every `--every` ms on schedule,
// each on a new connection as firmware opens them, from its own loopback address, until it is
// sent SIGTERM or has run `--max-seconds`. It prints one JSON line: how long each request took
// from connect to the last byte, as percentiles.
//
// On schedule, not one after another: a prober that waits for each answer before the next asks
// once during a slow second where it should ask fifty times, and its percentiles leave the slow
// moments out (coordinated omission). So a request starts every `--every` ms whether or not the
// ones before have been answered (at most MAX_IN_FLIGHT at once, the rest counted as skipped).
//
// Why a separate process: the storm's simulator times its own requests, and with 1,000 machines
// on one event loop its own turn delays every reading it takes (it uses most of a core). This
// process does almost nothing, so what it reads is how long the server (and the CPU the server
// shares with everything here) kept a small request waiting.
//
//   node bench/boot-probe.ts --host 127.0.0.1 --port 8080 [--src 127.0.9.9] [--every 20] [--max-seconds 120]
//
// Loopback only; bounded in time.

import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { host: { type: 'string' }, port: { type: 'string' }, src: { type: 'string' }, every: { type: 'string' }, 'max-seconds': { type: 'string' }, detail: { type: 'boolean' } } });
const HOST = values.host ?? '127.0.0.1';
const PORT = Number(values.port);
const SRC = values.src ?? '127.0.9.9';
const EVERY_MS = Number(values.every ?? 20);
const MAX_MS = Number(values['max-seconds'] ?? 120) * 1000;
if (!Number.isInteger(PORT) || PORT <= 0) throw new Error('--port is required');

/** One GET /boot.ipxe on a new connection: milliseconds to the last byte and to the handshake's end, or an error. */
function once(): Promise<{ ms: number; connectMs: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let connectMs = 0;
    let head = '';
    const sock = net.connect({ host: HOST, port: PORT, localAddress: SRC }, () => {
      connectMs = performance.now() - started;
      sock.write(`GET /boot.ipxe HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
    });
    sock.setTimeout(30_000, () => sock.destroy(new Error('no answer in 30 s')));
    sock.on('data', (d: Buffer) => {
      if (head.length < 16) head += d.toString('latin1');
    });
    sock.on('error', reject);
    sock.on('close', () => {
      if (/^HTTP\/1\.1 200 /.test(head)) resolve({ ms: performance.now() - started, connectMs });
      else reject(new Error(`unexpected answer: ${JSON.stringify(head.slice(0, 16))}`));
    });
  });
}

/** Requests left waiting at once, at most: the prober stays bounded whatever the server does. */
const MAX_IN_FLIGHT = 200;

let stopping = false;
process.on('SIGTERM', () => (stopping = true));
const took: number[] = [];
/** With --detail: each request's start (ms since the first) and how long it took, on stderr at the end. */
const timeline: Array<[number, number, number]> = [];
let failed = 0;
let skipped = 0;
const inFlight = new Set<Promise<void>>();
const begin = performance.now();
for (let k = 0; !stopping && performance.now() - begin < MAX_MS; k++) {
  if (inFlight.size >= MAX_IN_FLIGHT) skipped++;
  else {
    const at = performance.now() - begin;
    const request: Promise<void> = once().then(
      ({ ms, connectMs }) => {
        took.push(ms);
        if (values.detail) timeline.push([Math.round(at), Math.round(ms), Math.round(connectMs)]);
      },
      () => void failed++,
    );
    inFlight.add(request);
    void request.finally(() => inFlight.delete(request));
  }
  // The next one on the schedule, not EVERY_MS after this one returned.
  await sleep(Math.max(0, begin + (k + 1) * EVERY_MS - performance.now()));
}
await Promise.all(inFlight);
if (values.detail) console.error(`boot-probe: the slowest requests, [start ms, took ms, of which connecting]: ${JSON.stringify([...timeline].sort((a, b) => b[1] - a[1]).slice(0, 15).sort((a, b) => a[0] - b[0]))}`);
took.sort((a, b) => a - b);
const pct = (q: number) => (took.length ? Number(took[Math.min(took.length - 1, Math.floor(q * took.length))]!.toFixed(1)) : null);
console.log(JSON.stringify({ n: took.length, failed, skipped, p50_ms: pct(0.5), p95_ms: pct(0.95), p99_ms: pct(0.99), max_ms: pct(1) }));
