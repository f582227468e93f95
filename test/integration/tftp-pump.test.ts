// The TFTP pump (native/tftp-pump.c through src/tftp/native-pump.ts): every file held in memory is
// sent from its thread, a large file from disk on the main thread; its transfers report their
// figures, end when the server ends them (telling the client), and at shutdown; a transfer it
// cannot take runs in JavaScript. The protocol itself is tested on both engines by the state
// machine's unit tests and tftp-wire.test.ts; real clients in tftp-clients.test.ts.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { NativeTftpPump } from '../../src/tftp/native-pump.ts';
import { TransferWorker } from '../../src/tftp/transfer-worker-host.ts';
import { encodeAck, encodeError, encodeRequest, ErrorCode } from '../../src/tftp/packet.ts';
import type { EngineEnd } from '../../src/tftp/transfer-engine.ts';
import type { TransferSummary } from '../../src/tftp/server.ts';
import { pumpAddon } from '../helpers/native-transfer.ts';
import { RawPeer } from '../helpers/raw-tftp.ts';
import { run, sha256, sha256File } from '../helpers/run.ts';
import { threadsNamed } from '../helpers/threads.ts';
import { until } from '../helpers/wait.ts';
import { startTftp, type TestTftp } from '../helpers/tftp-server.ts';

const opened: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close();
});

async function server(overrides: Parameters<typeof startTftp>[0] = {}): Promise<TestTftp> {
  const s = await startTftp(overrides);
  opened.push(s);
  return s;
}
async function peer(): Promise<RawPeer> {
  const p = await new RawPeer().open();
  opened.push(p);
  return p;
}

describe('the TFTP pump', () => {
  it('sends a file held in memory from its thread, and a large file from disk on the main thread; the worker never starts', async () => {
    const srv = await server();
    writeFileSync(path.join(srv.root, 'undionly.kpxe'), randomBytes(70_000));
    // Over the 8 MiB a shared copy may have: streamed from disk, so it stays on the main thread.
    writeFileSync(path.join(srv.root, 'big.bin'), randomBytes(9 * 1024 * 1024));
    const small = await peer();
    small.send(encodeRequest('rrq', 'undionly.kpxe', 'octet'), srv.port);
    const first = await small.next();
    expect(first.packet).toMatchObject({ kind: 'data', block: 1 });
    expect(srv.server.pump!.running).toBe(1);
    expect(threadsNamed('gen-tftp')).toHaveLength(1);
    const big = await peer();
    big.send(encodeRequest('rrq', 'big.bin', 'octet'), srv.port);
    const bigFirst = await big.next();
    expect(bigFirst.packet).toMatchObject({ kind: 'data', block: 1 });
    expect([srv.server.activeTransfers, srv.server.pump!.running]).toEqual([2, 1]);
    // The client's ERROR, latin1 on the wire, comes back as the same text.
    small.send(encodeError(ErrorCode.NotDefined, 'assez, café'), first.port);
    big.send(encodeError(ErrorCode.NotDefined, 'enough'), bigFirst.port);
    const ends = await srv.transfers(2);
    expect(ends.map((e) => [e.file, e.outcome, e.detail]).sort()).toEqual([
      ['big.bin', 'client-error', 'client error 0: enough'],
      ['undionly.kpxe', 'client-error', 'client error 0: assez, café'],
    ]);
    expect(srv.server.pump!.running).toBe(0);
    expect(srv.server.worker!.threadRunning).toBe(false);
  });

  it('a whole windowed transfer with options reports the figures the pump kept, and the bytes are the file', async () => {
    const srv = await server();
    const data = randomBytes(1000 * 5 + 10);
    writeFileSync(path.join(srv.root, 'f.bin'), data);
    const p = await peer();
    p.send(encodeRequest('rrq', 'f.bin', 'octet', new Map([['blksize', '1000'], ['tsize', '0'], ['windowsize', '2']])), srv.port);
    const oack = await p.next();
    expect(oack.packet).toEqual({ kind: 'oack', options: new Map([['blksize', '1000'], ['tsize', String(data.length)], ['windowsize', '2']]) });
    p.send(encodeAck(0), oack.port);
    const got: Buffer[] = [];
    for (let block = 1; block <= 6; block++) {
      const d = await p.next();
      expect(d.packet).toMatchObject({ kind: 'data', block });
      if (d.packet.kind === 'data') got.push(d.packet.data);
      if (block % 2 === 0) p.send(encodeAck(block), d.port);
    }
    expect(Buffer.concat(got).equals(data)).toBe(true);
    const [s] = await srv.transfers(1);
    expect(s).toMatchObject({ file: 'f.bin', outcome: 'ok', size: data.length, bytes: data.length, blksize: 1000, windowsize: 2, retransmits: 0 });
  });

  it('a transfer ended by the server (its lifetime) tells the client and is reported as aborted', async () => {
    const srv = await server({ maxTransferMs: 300 });
    writeFileSync(path.join(srv.root, 'slow.bin'), randomBytes(5000));
    const p = await peer();
    p.send(encodeRequest('rrq', 'slow.bin', 'octet'), srv.port);
    expect((await p.next()).packet).toMatchObject({ kind: 'data', block: 1 });
    const [s] = await srv.transfers(1);
    expect(s).toMatchObject({ file: 'slow.bin', outcome: 'aborted', detail: 'aborted by server: transfer took longer than 0 s' });
    let last = await p.next();
    while (last.packet.kind === 'data') last = await p.next();
    expect(last.packet).toEqual({ kind: 'error', code: ErrorCode.NotDefined, message: 'transfer took longer than 0 s' });
  });

  it('shutdown tells the client and reports the transfers the pump was running before close() resolves', async () => {
    const srv = await startTftp();
    writeFileSync(path.join(srv.root, 'held.bin'), randomBytes(5000));
    const p = await peer();
    const ends: TransferSummary[] = [];
    srv.server.on('transfer-end', (s: TransferSummary) => ends.push(s));
    p.send(encodeRequest('rrq', 'held.bin', 'octet'), srv.port);
    const first = await p.next();
    expect(first.packet).toMatchObject({ kind: 'data', block: 1 });
    // Heard from: the shutdown waits for it (its grace) rather than cut it off as a silent one.
    p.send(encodeAck(1), first.port);
    await srv.close();
    expect(ends).toMatchObject([{ file: 'held.bin', outcome: 'aborted', detail: 'aborted by server: server shutting down' }]);
    let last = await p.next();
    while (last.packet.kind === 'data') last = await p.next();
    expect(last.packet).toEqual({ kind: 'error', code: ErrorCode.NotDefined, message: 'server shutting down' });
    // Joined by close(); its /proc entry goes a moment after the join returns (the kernel wakes
    // the joiner early in the thread's exit), so the listing is waited for, not read once.
    await until(() => threadsNamed('gen-tftp').length === 0, 'the pump thread gone from /proc');
  });

  it('serves IPv6 clients, and IPv4 clients of a dual-stack server (their addresses v4-mapped), from its thread', async () => {
    for (const [host, url] of [
      ['::1', (port: number) => `tftp://[::1]:${port}/f.bin`],
      ['::', (port: number) => `tftp://127.0.0.1:${port}/f.bin`],
    ] as const) {
      const srv = await server({ host });
      const data = randomBytes(100_000);
      writeFileSync(path.join(srv.root, 'f.bin'), data);
      const dest = path.join(srv.root, `out-${host === '::' ? 'any' : 'v6'}`);
      const r = await run('curl', ['-sS', '--tftp-blksize', '1468', '-o', dest, url(srv.port)]);
      expect(r.code, r.stderr).toBe(0);
      expect(sha256File(dest)).toBe(sha256(data));
      const [s] = await srv.transfers(1);
      expect(s).toMatchObject({ file: 'f.bin', outcome: 'ok', bytes: data.length, blksize: 1468 });
      // Sent by the pump: nothing of it ran on this thread or in the worker.
      expect([srv.server.pump!.taken, srv.server.worker!.threadRunning]).toEqual([1, false]);
    }
  });

  it('a transfer the pump cannot take (its socket will not bind there) is left to JavaScript, with one warning', async () => {
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line).msg as string) });
    const settings = { host: '127.0.0.1', limits: { maxBlksize: 1468, maxWindowsize: 64 }, defaultTimeoutMs: 2000, minRtoMs: 20, initialRtoMs: 250, maxRetries: 3 };
    const pump = new NativeTftpPump({ addon: pumpAddon(), settings, logger });
    const events = { heard: () => {}, ended: () => {}, failed: () => {} };
    const request = { kind: 'rrq' as const, filename: 'f', mode: 'octet', options: new Map<string, string>() };
    // An IPv6 client for an IPv4 host: no socket of the pump's can reach it.
    expect(pump.start(request, { address: '::1', port: 9 }, Buffer.alloc(10), events, encodeRequest('rrq', 'f', 'octet'))).toBeUndefined();
    expect(pump.start(request, { address: 'not-an-address', port: 9 }, Buffer.alloc(10), events, encodeRequest('rrq', 'f', 'octet'))).toBeUndefined();
    expect([pump.running, pump.taken]).toEqual([0, 0]);
    await pump.close();
    expect(warnings).toEqual(['the TFTP pump could not take a transfer; it runs in JavaScript']);
  });
});

/** A runner's settings: the server's, as a transfer's engine takes them. */
const engineSettings = { host: '127.0.0.1', limits: { maxBlksize: 1468, maxWindowsize: 64 }, defaultTimeoutMs: 2000, minRtoMs: 20, initialRtoMs: 250, maxRetries: 3 };

// The same race on both threads Genesis hands transfers to: the server's view of a transfer (heard
// from, ended) is a report behind the thread's own.
describe.each([
  ['the pump', () => new NativeTftpPump({ addon: pumpAddon(), settings: engineSettings, logger: pino({ level: 'silent' }) })],
  ['the transfer worker', () => new TransferWorker({ settings: engineSettings, logger: pino({ level: 'silent' }) })],
])('a repeated request sent to %s', (_name, make) => {
  it('a repeated request is answered again until the client is heard from; after that it is not taken, and the server is told so', async () => {
    const runner = make();
    opened.push({ close: () => runner.close() });
    const p = await peer();
    const port = p.socket.address().port;
    let heard!: () => void;
    const wasHeard = new Promise<void>((resolve) => (heard = resolve));
    let ended!: (end: EngineEnd) => void;
    const hasEnded = new Promise<EngineEnd>((resolve) => (ended = resolve));
    const request = { kind: 'rrq' as const, filename: 'f', mode: 'octet', options: new Map<string, string>() };
    const id = runner.start(request, { address: '127.0.0.1', port }, randomBytes(2000), { heard, ended, failed: () => {} }, encodeRequest('rrq', 'f', 'octet'))!;
    const first = await p.next();
    expect(first.packet).toMatchObject({ kind: 'data', block: 1 });
    // Not heard from yet: a repeat, answered with block 1 again.
    const notTaken: string[] = [];
    runner.repeated(id, () => notTaken.push('before'));
    expect((await p.next()).packet).toMatchObject({ kind: 'data', block: 1 });
    p.send(encodeAck(1), first.port);
    await wasHeard;
    expect((await p.next()).packet).toMatchObject({ kind: 'data', block: 2 });
    // Heard from: the same request again is a new one.
    const answered = new Promise<void>((resolve) => runner.repeated(id, () => (notTaken.push('after'), resolve())));
    await answered;
    expect(notTaken).toEqual(['after']);
    p.send(encodeError(ErrorCode.NotDefined, 'enough'), first.port);
    expect((await hasEnded).outcome).toEqual({ result: 'client-error', detail: 'client error 0: enough' });
    // Ended: the server is told at once, without asking the thread.
    let afterEnd = false;
    runner.repeated(id, () => (afterEnd = true));
    expect(afterEnd).toBe(true);
  });
});
