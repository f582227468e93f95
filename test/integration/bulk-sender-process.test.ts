// The bulk sender's lifecycle against real processes and sockets: it sends what it is handed,
// leaves when idle, and a sender that keeps dying is given up for serving in process.

import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { getPriority, tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BulkSender, SENDER_NICE } from '../../src/bulk/bulk-sender.ts';
import { until } from '../helpers/wait.ts';

let dir: string;
let server: net.Server;
const accepted: net.Socket[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'genesis-bulk-process-'));
  writeFileSync(path.join(dir, 'file.bin'), Buffer.from('0123456789'));
  writeFileSync(path.join(dir, 'dies.mjs'), 'process.exit(3);\n');
  server = net.createServer((s) => accepted.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
});
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A connected pair: what the client reads, and the server side to hand over. */
async function connection(opts: { reads?: boolean } = {}): Promise<{ received: Promise<string>; serverSide: net.Socket; client: net.Socket }> {
  const n = accepted.length;
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const chunks: Buffer[] = [];
  // A client that reads nothing lets the kernel's buffers fill, and then the sender waits on it.
  if (opts.reads !== false) client.on('data', (c: Buffer) => chunks.push(c));
  const received = new Promise<string>((resolve) => client.on('close', () => resolve(Buffer.concat(chunks).toString())));
  client.on('error', () => {});
  const serverSide = await until(() => accepted[n], 'the connection accepted');
  return { received, serverSide, client };
}

const log = pino({ level: 'silent' });

describe('BulkSender', () => {
  it('writes the head and the byte range, closes the connection, reports, and leaves when idle', async () => {
    const sender = new BulkSender({ logger: log, idleExitMs: 50 });
    const { received, serverSide } = await connection();
    const report = await sender.handOff(serverSide, { head: 'HEAD\r\n\r\n', path: path.join(dir, 'file.bin'), start: 2, end: 5 });
    expect(report).toMatchObject({ ok: true, bytes: 4 });
    expect(await received).toBe('HEAD\r\n\r\n2345');
    const pid = sender.pid!;
    expect(pid).toBeGreaterThan(0);
    await until(() => sender.pid === undefined, 'the idle sender gone');
    expect(() => process.kill(pid, 0)).toThrow();
    await sender.close();
  });

  it('runs at a lower CPU priority than Genesis, so requests are answered before download bytes', async () => {
    const sender = new BulkSender({ logger: log });
    const { received, serverSide } = await connection();
    await sender.handOff(serverSide, { head: 'H\r\n\r\n', path: path.join(dir, 'file.bin'), start: 0, end: 9 });
    await received;
    expect(getPriority(sender.pid!)).toBe(Math.min(19, getPriority() + SENDER_NICE));
    await sender.close();
  });

  it('reports a file that cannot be read as a failed job, and the client sees the connection end', async () => {
    const sender = new BulkSender({ logger: log });
    const { received, serverSide } = await connection();
    const report = await sender.handOff(serverSide, { head: 'H\r\n\r\n', path: path.join(dir, 'missing.bin'), start: 0, end: 9 });
    expect(report).toMatchObject({ ok: false, bytes: 0 });
    expect(report!.error).toMatch(/ENOENT/);
    expect(await received).toBe('H\r\n\r\n');
    await sender.close();
  });

  it('gives a sender that dies at once three tries, then leaves downloads to the main process', async () => {
    const warnings: string[] = [];
    const sender = new BulkSender({ logger: { info: () => {}, warn: (_o: unknown, msg?: string) => void warnings.push(msg ?? '') } as never, program: pathToFileURL(path.join(dir, 'dies.mjs')) });
    for (let i = 0; i < 3; i++) {
      const { received, serverSide } = await connection();
      const report = await sender.handOff(serverSide, { head: 'H\r\n\r\n', path: path.join(dir, 'file.bin'), start: 0, end: 9 });
      expect(report).toMatchObject({ ok: false });
      expect(await received).toBe('');
    }
    const { serverSide } = await connection();
    expect(sender.handOff(serverSide, { head: 'H\r\n\r\n', path: path.join(dir, 'file.bin'), start: 0, end: 9 })).toBeUndefined();
    expect(serverSide.destroyed).toBe(false);
    serverSide.destroy();
    expect(warnings.at(-1)).toMatch(/keeps dying/);
    await sender.close();
  });
});

describe('BulkSender under a flood', () => {
  it('holds at most maxInFlight downloads; the next is left to the main process until one ends', async () => {
    const sender = new BulkSender({ logger: log, maxInFlight: 2 });
    // A client that reads nothing: its download stays in flight.
    const big = path.join(dir, 'big.bin');
    writeFileSync(big, Buffer.alloc(64 * 1024 * 1024));
    const a = await connection({ reads: false });
    const b = await connection();
    const ja = sender.handOff(a.serverSide, { head: 'H\r\n\r\n', path: big, start: 0, end: 64 * 1024 * 1024 - 1 });
    const jb = sender.handOff(b.serverSide, { head: 'H\r\n\r\n', path: path.join(dir, 'file.bin'), start: 0, end: 9 });
    expect(ja).toBeDefined();
    expect(jb).toBeDefined();
    const c = await connection();
    expect(sender.handOff(c.serverSide, { head: 'H\r\n\r\n', path: path.join(dir, 'file.bin'), start: 0, end: 9 })).toBeUndefined();
    expect(await jb).toMatchObject({ ok: true, bytes: 10 });
    const jc = sender.handOff(c.serverSide, { head: 'H\r\n\r\n', path: path.join(dir, 'file.bin'), start: 0, end: 9 });
    expect(await jc).toMatchObject({ ok: true, bytes: 10 });
    expect(await c.received).toBe('H\r\n\r\n0123456789');
    await sender.close();
    expect(await ja).toMatchObject({ ok: false });
    a.client.destroy();
  });
});

/** The sender's resident memory, from /proc. */
function residentBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) * 1024;
}

/** Clients that read nothing until read() is called, then everything to the end; one after another (connection() takes the next accepted socket). */
async function stalledClients(n: number): Promise<Array<Awaited<ReturnType<typeof stalledClient>>>> {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await stalledClient());
  return out;
}

/** A client that reads nothing until read() is called, then everything to the end. */
async function stalledClient(): Promise<{ serverSide: net.Socket; read: () => Promise<Buffer> }> {
  const { serverSide, client } = await connection({ reads: false });
  return {
    serverSide,
    read: () =>
      new Promise<Buffer>((resolve) => {
        const chunks: Buffer[] = [];
        client.on('data', (c: Buffer) => chunks.push(c));
        client.on('close', () => resolve(Buffer.concat(chunks)));
      }),
  };
}

describe('BulkSender with many downloads of one file (a storm)', () => {
  it('reads the file into memory once, switches the running downloads to it, and every client gets its exact bytes; a replaced file is read anew', async () => {
    const SIZE = 32 * 1024 * 1024;
    const kernel = path.join(dir, 'vmlinuz');
    const content = randomBytes(SIZE);
    writeFileSync(kernel, content);
    const sender = new BulkSender({ logger: log });
    // The sender running, its memory measured before any download of the kernel.
    const warm = await connection();
    await sender.handOff(warm.serverSide, { head: 'H\r\n\r\n', path: path.join(dir, 'file.bin'), start: 0, end: 9 });
    const before = residentBytes(sender.pid!);

    // Ten clients that read nothing yet: their downloads stay running (eight make a storm).
    const ranges = Array.from({ length: 10 }, (_, i) => (i === 9 ? { start: 1000, end: SIZE - 1001 } : { start: 0, end: SIZE - 1 }));
    const clients = await stalledClients(ranges.length);
    const reports = clients.map((c, i) => sender.handOff(c.serverSide, { head: 'H\r\n\r\n', path: kernel, ...ranges[i]! })!);
    // The whole file in the sender's memory (ten 256 KiB buffers are 2.5 MiB of it at most).
    await until(() => residentBytes(sender.pid!) - before >= SIZE - 2 * 1024 * 1024, 'the kernel read into the sender');
    const received = await Promise.all(clients.map((c) => c.read()));
    const done = await Promise.all(reports);
    for (const [i, r] of ranges.entries()) {
      expect(done[i]).toMatchObject({ ok: true, bytes: r.end - r.start + 1 });
      expect(received[i]!.subarray(5).equals(content.subarray(r.start, r.end + 1))).toBe(true);
    }
    expect(done.every((r) => r.fromMemory)).toBe(true);

    // Replaced (as genesis assets does: a new file renamed over the old): the next storm gets the new bytes.
    const next = randomBytes(SIZE);
    writeFileSync(`${kernel}.new`, next);
    renameSync(`${kernel}.new`, kernel);
    const again = await stalledClients(10);
    const reportsAgain = again.map((c) => sender.handOff(c.serverSide, { head: 'H\r\n\r\n', path: kernel, start: 0, end: SIZE - 1 })!);
    const receivedAgain = await Promise.all(again.map((c) => c.read()));
    expect((await Promise.all(reportsAgain)).every((r) => r.ok)).toBe(true);
    for (const got of receivedAgain) expect(got.subarray(5).equals(next)).toBe(true);
    await sender.close();
  });
});
