// The transfer worker: files held in memory are sent from the worker thread once the main thread
// carries its share, large files from disk on the main thread; shutdown reports the worker's
// transfers; a worker that dies ends its transfers as aborted and, dying again and again, leaves
// transfers to the main thread.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeAck, encodeError, encodeRequest, ErrorCode } from '../../src/tftp/packet.ts';
import type { EngineEnd } from '../../src/tftp/transfer-engine.ts';
import { TransferWorker } from '../../src/tftp/transfer-worker-host.ts';
import type { TransferSummary } from '../../src/tftp/server.ts';
import { RawPeer } from '../helpers/raw-tftp.ts';
import { startTftp, type TestTftp } from '../helpers/tftp-server.ts';

const opened: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close();
});

/** A server whose files in memory all go to the worker, unless a test sets its own share. */
async function server(overrides: Parameters<typeof startTftp>[0] = {}): Promise<TestTftp> {
  const s = await startTftp({ pump: undefined, mainThreadTransfers: 0, ...overrides });
  opened.push(s);
  return s;
}
async function peer(): Promise<RawPeer> {
  const p = await new RawPeer().open();
  opened.push(p);
  return p;
}

describe('the TFTP transfer worker', () => {
  it('sends a file held in memory from the worker, and a large file from disk on the main thread', async () => {
    const srv = await server();
    writeFileSync(path.join(srv.root, 'undionly.kpxe'), randomBytes(70_000));
    // Over the 8 MiB a shared copy may have: streamed from disk, so it stays on the main thread.
    writeFileSync(path.join(srv.root, 'big.bin'), randomBytes(9 * 1024 * 1024));
    const small = await peer();
    small.send(encodeRequest('rrq', 'undionly.kpxe', 'octet'), srv.port);
    const first = await small.next();
    expect(first.packet).toMatchObject({ kind: 'data', block: 1 });
    expect(srv.server.worker!.running).toBe(1);
    const big = await peer();
    big.send(encodeRequest('rrq', 'big.bin', 'octet'), srv.port);
    const bigFirst = await big.next();
    expect(bigFirst.packet).toMatchObject({ kind: 'data', block: 1 });
    expect(srv.server.activeTransfers).toBe(2);
    expect(srv.server.worker!.running).toBe(1);
    small.send(encodeError(ErrorCode.NotDefined, 'enough'), first.port);
    big.send(encodeError(ErrorCode.NotDefined, 'enough'), bigFirst.port);
    const ends = await srv.transfers(2);
    expect(ends.map((e) => [e.file, e.outcome]).sort()).toEqual([
      ['big.bin', 'client-error'],
      ['undionly.kpxe', 'client-error'],
    ]);
    expect(srv.server.worker!.running).toBe(0);
  });

  it('keeps files in memory on the main thread until it carries mainThreadTransfers, and starts the worker only then', async () => {
    const srv = await server({ mainThreadTransfers: 2 });
    writeFileSync(path.join(srv.root, 'undionly.kpxe'), randomBytes(70_000));
    const worker = srv.server.worker!;
    const peers: RawPeer[] = [];
    const firsts: Array<{ port: number }> = [];
    for (let i = 1; i <= 3; i++) {
      const p = await peer();
      p.send(encodeRequest('rrq', 'undionly.kpxe', 'octet'), srv.port);
      const first = await p.next();
      expect(first.packet).toMatchObject({ kind: 'data', block: 1 });
      peers.push(p);
      firsts.push(first);
      // The first two are this thread's: a LAN with a few machines never pays for the worker's isolate.
      expect([worker.threadRunning, worker.running]).toEqual(i <= 2 ? [false, 0] : [true, 1]);
    }
    expect(srv.server.activeTransfers).toBe(3);
    peers.forEach((p, i) => p.send(encodeError(ErrorCode.NotDefined, 'enough'), firsts[i]!.port));
    await srv.transfers(3);
    expect(worker.running).toBe(0);
    // Below the mark again, the next one stays here, though the worker is up.
    const again = await peer();
    again.send(encodeRequest('rrq', 'undionly.kpxe', 'octet'), srv.port);
    const first = await again.next();
    expect(first.packet).toMatchObject({ kind: 'data', block: 1 });
    expect(worker.running).toBe(0);
    expect(srv.server.activeTransfers).toBe(1);
    again.send(encodeError(ErrorCode.NotDefined, 'enough'), first.port);
    await srv.transfers(1);
  });

  it("a whole transfer through the worker reports the worker's figures", async () => {
    const srv = await server();
    const data = randomBytes(512 * 3 + 100);
    writeFileSync(path.join(srv.root, 'f.bin'), data);
    const p = await peer();
    p.send(encodeRequest('rrq', 'f.bin', 'octet'), srv.port);
    const got: Buffer[] = [];
    for (let block = 1; block <= 4; block++) {
      const d = await p.next();
      expect(d.packet).toMatchObject({ kind: 'data', block });
      if (d.packet.kind === 'data') got.push(d.packet.data);
      p.send(encodeAck(block), d.port);
    }
    expect(Buffer.concat(got).equals(data)).toBe(true);
    const [s] = await srv.transfers(1);
    expect(s).toMatchObject({ file: 'f.bin', outcome: 'ok', size: data.length, bytes: data.length, blksize: 512, retransmits: 0 });
  });

  it('shutdown tells the client and reports the transfers the worker was running before close() resolves', async () => {
    const srv = await startTftp({ pump: undefined, mainThreadTransfers: 0 });
    writeFileSync(path.join(srv.root, 'held.bin'), randomBytes(5000));
    const p = await peer();
    const ends: TransferSummary[] = [];
    srv.server.on('transfer-end', (s: TransferSummary) => ends.push(s));
    p.send(encodeRequest('rrq', 'held.bin', 'octet'), srv.port);
    expect((await p.next()).packet).toMatchObject({ kind: 'data', block: 1 });
    await srv.close();
    expect(ends).toMatchObject([{ file: 'held.bin', outcome: 'aborted', detail: 'aborted by server: server shutting down' }]);
    // Retransmissions of block 1 may come first; the transfer's last word is the ERROR.
    let last = await p.next();
    while (last.packet.kind === 'data') last = await p.next();
    expect(last.packet).toEqual({ kind: 'error', code: ErrorCode.NotDefined, message: 'server shutting down' });
  });

  it('at shutdown a transfer whose client never answered is ended after one timeout, not the whole grace; one whose client answers goes on to its end', async () => {
    const srv = await server({ defaultTimeoutMs: 300 });
    const data = randomBytes(512 * 4 + 7);
    writeFileSync(path.join(srv.root, 'held.bin'), data);
    const ends: TransferSummary[] = [];
    srv.server.on('transfer-end', (s: TransferSummary) => ends.push(s));
    // A request sent with someone's address: block 1 goes out, no ACK ever comes back.
    const silent = await peer();
    silent.send(encodeRequest('rrq', 'held.bin', 'octet'), srv.port);
    expect((await silent.next()).packet).toMatchObject({ kind: 'data', block: 1 });
    const live = await peer();
    live.send(encodeRequest('rrq', 'held.bin', 'octet'), srv.port);
    let d = await live.next();
    // A grace no test would outlive: close() resolving at all shows the silent transfer was not waited for.
    const closing = srv.server.close(3_600_000);
    const got: Buffer[] = [];
    for (;;) {
      expect(d.packet.kind).toBe('data');
      if (d.packet.kind !== 'data') break;
      if (d.packet.block === got.length + 1) got.push(d.packet.data);
      live.send(encodeAck(d.packet.block), d.port);
      if (d.packet.data.length < 512) break;
      d = await live.next();
    }
    await closing;
    expect(Buffer.concat(got).equals(data)).toBe(true);
    expect(ends.map((e) => e.outcome).sort()).toEqual(['aborted', 'ok']);
    expect(ends.find((e) => e.outcome === 'aborted')).toMatchObject({ detail: 'aborted by server: server shutting down', bytes: 0 });
  });

  it('a worker that dies ends its transfers as aborted; one that keeps dying leaves transfers to the main thread', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'genesis-worker-'));
    opened.push({ close: async () => rmSync(dir, { recursive: true, force: true }) });
    const program = path.join(dir, 'dies.mjs');
    // Stands in for a worker that crashes on its first transfer.
    writeFileSync(program, "import { parentPort } from 'node:worker_threads';\nparentPort.on('message', () => process.exit(3));\n");
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line).msg) });
    const worker = new TransferWorker({
      settings: { host: '127.0.0.1', limits: { maxBlksize: 1468, maxWindowsize: 64 }, defaultTimeoutMs: 1000, minRtoMs: 20, initialRtoMs: 250, maxRetries: 2 },
      logger,
      program: pathToFileURL(program),
    });
    opened.push(worker);
    const request = { kind: 'rrq' as const, filename: 'f.bin', mode: 'octet', options: new Map<string, string>() };
    for (let death = 1; death <= 3; death++) {
      const end = await new Promise<EngineEnd>((resolve, reject) => {
        const id = worker.start(request, { address: '127.0.0.1', port: 9 }, Buffer.from('data'), { heard: () => {}, ended: resolve, failed: reject });
        expect(id).toBeTypeOf('number');
      });
      expect(end).toEqual({ outcome: { result: 'aborted', detail: 'the TFTP transfer worker stopped (exit code 3)' }, stats: undefined, neverAcknowledged: false });
    }
    expect(worker.start(request, { address: '127.0.0.1', port: 9 }, Buffer.from('data'), { heard: () => {}, ended: () => {}, failed: () => {} })).toBeUndefined();
    expect(warnings).toEqual([
      'the TFTP transfer worker stopped; the next transfer starts it again',
      'the TFTP transfer worker stopped; the next transfer starts it again',
      'the TFTP transfer worker keeps stopping; transfers run on the main thread from now on',
    ]);
  });
});
