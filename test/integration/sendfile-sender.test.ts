// The sendfile thread (native/sendfile.c behind src/bulk/sendfile-sender.ts), driven directly
// over real loopback connections: the bytes and their framing, a range, a client that goes away or
// stops reading, a file that is shorter than the head says or cannot be opened, the cap, and
// stopping. The addon must be built (npm ci builds it; .ci/run installs the compiler).

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { getPriority, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BulkSender } from '../../src/bulk/bulk-sender.ts';
import { makeDownloadSender } from '../../src/bulk/download-sender.ts';
import type { SendReport } from '../../src/bulk/protocol.ts';
import { loadSendfileAddon, type SendfileAddon } from '../../src/bulk/sendfile-addon.ts';
import { SendfileSender } from '../../src/bulk/sendfile-sender.ts';
import { sha256 } from '../helpers/run.ts';
import { threadsNamed } from '../helpers/threads.ts';
import { until } from '../helpers/wait.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'genesis-sendfile-'));
const small = randomBytes(3 * 1024 * 1024 + 17);
const smallPath = path.join(dir, 'small.bin');
/** Larger than loopback's socket buffers on both sides, so a client that stops reading stalls the send. */
const LARGE = 96 * 1024 * 1024;
const largePath = path.join(dir, 'large.bin');
const HEAD = 'HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n';

function addon(): SendfileAddon {
  const loaded = loadSendfileAddon();
  if (!loaded.addon) throw new Error(`the sendfile addon must be built for this test: ${loaded.reason}`);
  return loaded.addon;
}

/**
 * A server that hands each connection to `sender` once its first bytes (the request) arrive, and
 * a client connected to it. `handed` settles with handOff's result, in an object: a promise
 * resolved with a promise would wait for the report.
 */
async function connection(sender: SendfileSender, job: { path: string; start: number; end: number; head?: string }) {
  let handed!: (r: { sent: Promise<SendReport> | undefined }) => void;
  const handedOff = new Promise<{ sent: Promise<SendReport> | undefined }>((resolve) => (handed = resolve));
  let serverSide!: net.Socket;
  const server = net.createServer((socket) => {
    serverSide = socket;
    socket.once('data', () => {
      const head = (job.head ?? HEAD).replace('{n}', String(job.end - job.start + 1));
      handed({ sent: sender.handOff(socket, { head, path: job.path, start: job.start, end: job.end }) });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((resolve) => client.once('connect', resolve));
  client.write('GET / HTTP/1.1\r\n\r\n');
  /** The report (or undefined when not handed off): waits for the download's end. */
  const result = handedOff.then((h) => h.sent);
  return { client, handedOff, result, server, serverSide: () => serverSide };
}

/** Everything the client receives until the server ends the connection (FIN), and how it ended. */
function received(client: net.Socket): Promise<{ bytes: Buffer; ended: 'fin' | 'reset' }> {
  const chunks: Buffer[] = [];
  client.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => {
    client.once('end', () => resolve({ bytes: Buffer.concat(chunks), ended: 'fin' }));
    client.once('error', () => resolve({ bytes: Buffer.concat(chunks), ended: 'reset' }));
  });
}

beforeAll(() => {
  writeFileSync(smallPath, small);
  writeFileSync(largePath, Buffer.alloc(LARGE, 5));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the sendfile sender', () => {
  let sender: SendfileSender;
  beforeAll(() => {
    sender = new SendfileSender({ addon: addon(), stalledMs: 400, maxInFlight: 3 });
  });
  afterAll(() => sender.close());

  it('writes the head, then the whole file, ends with a FIN, and reports the file bytes', async () => {
    const c = await connection(sender, { path: smallPath, start: 0, end: small.length - 1 });
    const got = received(c.client);
    const report = (await c.result)!;
    const { bytes, ended } = await got;
    c.server.close();
    expect(report).toMatchObject({ ok: true, bytes: small.length });
    expect(ended).toBe('fin');
    const head = HEAD.replace('{n}', String(small.length));
    expect(bytes.subarray(0, head.length).toString('latin1')).toBe(head);
    expect(sha256(bytes.subarray(head.length))).toBe(sha256(small));
    // The handing side's copy of the connection was closed at once: the addon held its own.
    expect(c.serverSide().destroyed).toBe(true);
  });

  it('sends a range from the middle: exactly those bytes', async () => {
    const c = await connection(sender, { path: smallPath, start: 1_000_001, end: 2_500_000, head: 'H\r\n\r\n' });
    const got = received(c.client);
    const report = (await c.result)!;
    const { bytes } = await got;
    c.server.close();
    expect(report).toMatchObject({ ok: true, bytes: 1_500_000 });
    expect(bytes.subarray(5).equals(small.subarray(1_000_001, 2_500_001))).toBe(true);
  });

  it('sends to many clients at once, each its exact bytes, on a thread of its own at a lower priority', async () => {
    const many = new SendfileSender({ addon: addon() });
    try {
      const runs = await Promise.all(
        Array.from({ length: 24 }, async (_, i) => {
          const start = i * 1000;
          const c = await connection(many, { path: smallPath, start, end: small.length - 1, head: '' });
          return { c, start, got: received(c.client) };
        }),
      );
      // Two: the one of the sender the other tests share, and this one's; both yield the CPU.
      const threads = threadsNamed('gen-sendfile');
      expect(threads).toHaveLength(2);
      for (const tid of threads) expect(getPriority(tid)).toBe(Math.min(19, getPriority() + 10));
      for (const { c, start, got } of runs) {
        const report = (await c.result)!;
        expect(report).toMatchObject({ ok: true, bytes: small.length - start });
        expect((await got).bytes.equals(small.subarray(start))).toBe(true);
        c.server.close();
      }
    } finally {
      await many.close();
    }
  });

  it('reports a client that goes away mid-download', async () => {
    const c = await connection(sender, { path: largePath, start: 0, end: LARGE - 1 });
    await new Promise<void>((resolve) => c.client.once('data', () => resolve()));
    c.client.resetAndDestroy();
    const report = (await c.result)!;
    c.server.close();
    expect(report.ok).toBe(false);
    expect(report.error).toMatch(/^the client went away: (Broken pipe|Connection reset by peer)$/);
    expect(report.bytes).toBeGreaterThan(0);
    expect(report.bytes).toBeLessThan(LARGE);
  });

  it('drops a client that takes nothing for the stall time, and closes its connection', async () => {
    const c = await connection(sender, { path: largePath, start: 0, end: LARGE - 1 });
    c.client.pause();
    const report = (await c.result)!;
    expect(report).toMatchObject({ ok: false, error: 'the client took nothing for 0.4 s' });
    expect(report.bytes).toBeLessThan(LARGE);
    // What was sent before the stall still arrives, then the connection's end.
    const got = received(c.client);
    c.client.resume();
    const { bytes } = await got;
    c.server.close();
    expect(bytes.length).toBeLessThan(LARGE);
  });

  it('a client that sends more after its request still gets every byte', async () => {
    // Bytes the client sends that nobody reads would make a plain close() answer with a reset,
    // which drops what is still queued for the client; the thread reads and drops them instead.
    const c = await connection(sender, { path: largePath, start: 0, end: LARGE - 1, head: '' });
    const got = received(c.client);
    c.client.once('data', () => c.client.write(Buffer.alloc(256 * 1024, 1)));
    const { bytes, ended } = await got;
    const report = (await c.result)!;
    c.server.close();
    expect(ended).toBe('fin');
    expect(bytes.length).toBe(LARGE);
    expect(report).toMatchObject({ ok: true, bytes: LARGE });
  });

  it('reports a download once every byte is queued, and closes a connection whose client keeps its side open a few seconds later', async () => {
    const c = await connection(sender, { path: smallPath, start: 0, end: 999, head: '' });
    c.client.allowHalfOpen = true;
    const chunks: Buffer[] = [];
    c.client.on('data', (d: Buffer) => chunks.push(d));
    const ended = new Promise<void>((resolve) => c.client.once('end', () => resolve()));
    const failed = new Promise<void>((resolve) => c.client.once('error', () => resolve()));
    // Reported done while the client still holds its side open.
    expect((await c.result)!).toMatchObject({ ok: true, bytes: 1000 });
    await ended;
    expect(Buffer.concat(chunks).equals(small.subarray(0, 1000))).toBe(true);
    // The thread closes its side after its wait for the client's FIN: from then on the client's
    // writes meet a reset. Bounded: a byte every 100 ms, for at most 15 s.
    let closed = false;
    void failed.then(() => (closed = true));
    await until(async () => {
      if (!closed && !c.client.destroyed) c.client.write('x');
      await new Promise((resolve) => setTimeout(resolve, 100));
      return closed || undefined;
    }, 'the connection closed by the thread', 15_000);
    c.server.close();
  });

  it('stops at the end of a file that is shorter than the head said, and says so', async () => {
    const shortPath = path.join(dir, 'short.bin');
    writeFileSync(shortPath, small);
    truncateSync(shortPath, 1000);
    const c = await connection(sender, { path: shortPath, start: 0, end: small.length - 1, head: '' });
    const got = received(c.client);
    const report = (await c.result)!;
    c.server.close();
    expect(report).toEqual({ id: report.id, ok: false, bytes: 1000, error: 'the file is shorter than the head said' });
    expect((await got).bytes.equals(small.subarray(0, 1000))).toBe(true);
  });

  it('leaves the connection to the caller when the file cannot be opened', async () => {
    const c = await connection(sender, { path: path.join(dir, 'missing.bin'), start: 0, end: 9 });
    expect(await c.result).toBeUndefined();
    // The socket is the caller's still: it can answer on it.
    const got = received(c.client);
    c.serverSide().end('still here');
    expect((await got).bytes.toString()).toBe('still here');
    c.server.close();
  });

  it('holds at most maxInFlight downloads; the next is left to the caller until one ends', async () => {
    const held = await Promise.all([0, 1, 2].map(() => connection(sender, { path: largePath, start: 0, end: LARGE - 1 })));
    for (const h of held) h.client.pause();
    const reports = (await Promise.all(held.map((h) => h.handedOff))).map((h) => h.sent);
    expect(reports.every((r) => r !== undefined)).toBe(true);
    const fourth = await connection(sender, { path: smallPath, start: 0, end: 9 });
    expect(await fourth.result).toBeUndefined();
    fourth.client.destroy();
    fourth.server.close();
    for (const h of held) h.client.destroy();
    await Promise.all(reports);
    for (const h of held) h.server.close();
    const fifth = await connection(sender, { path: smallPath, start: 0, end: 9, head: '' });
    const got = received(fifth.client);
    expect(await fifth.result).toMatchObject({ ok: true, bytes: 10 });
    expect((await got).bytes.equals(small.subarray(0, 10))).toBe(true);
    fifth.server.close();
  });
});

describe('stopping the sendfile sender', () => {
  it('cuts the downloads it holds, reports them failed, ends its thread, and takes no more', async () => {
    const sender = new SendfileSender({ addon: addon() });
    const c = await connection(sender, { path: largePath, start: 0, end: LARGE - 1 });
    c.client.pause();
    const pending = (await c.handedOff).sent!;
    const got = received(c.client);
    await sender.close();
    expect(await pending).toMatchObject({ ok: false, error: 'Genesis is shutting down' });
    c.client.resume();
    expect((await got).bytes.length).toBeLessThan(LARGE);
    // Joined by stop(); its /proc entry goes a moment after the join returns (the kernel wakes
    // the joiner early in the thread's exit), so the listing is waited for, not read once.
    await until(() => threadsNamed('gen-sendfile').length === 0, 'the sendfile thread gone from /proc');
    const after = await connection(sender, { path: smallPath, start: 0, end: 9 });
    expect(await after.result).toBeUndefined();
    after.client.destroy();
    after.server.close();
    c.server.close();
  });
});

describe('choosing the download sender', () => {
  const logger = { warn: () => {} };
  it('is the sendfile thread where the addon loads, the process where it does not or is turned off, none with bulk_process off', async () => {
    const sendfile = makeDownloadSender({ bulkProcess: true, sendfile: true }, logger);
    expect(sendfile).toBeInstanceOf(SendfileSender);
    await sendfile?.close();
    const missing = makeDownloadSender({ bulkProcess: true, sendfile: true }, logger, () => loadSendfileAddon(path.join(dir, 'none.node')));
    expect(missing).toBeInstanceOf(BulkSender);
    expect(loadSendfileAddon(path.join(dir, 'none.node')).reason).toBe(`the sendfile addon is not built (${path.join(dir, 'none.node')}; npm ci builds it with a C compiler: scripts/build-native.sh)`);
    await missing?.close();
    const off = makeDownloadSender({ bulkProcess: true, sendfile: false }, logger);
    expect(off).toBeInstanceOf(BulkSender);
    await off?.close();
    expect(makeDownloadSender({ bulkProcess: false, sendfile: true }, logger)).toBeUndefined();
  });

  it('refuses a file that is not the addon', () => {
    const bogus = path.join(dir, 'bogus.node');
    writeFileSync(bogus, 'not a shared object');
    expect(loadSendfileAddon(bogus).reason).toMatch(/^the sendfile addon did not load: /);
  });
});
