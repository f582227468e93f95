// The bulk sender's lifecycle against real processes and sockets: it sends what it is handed,
// leaves when idle, and a sender that keeps dying is given up for serving in process.

import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
