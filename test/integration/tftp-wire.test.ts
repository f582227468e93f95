// Wire-level cases no packaged client produces on purpose: UEFI's abort-and-re-ask, a stranger's
// packets on a transfer port, garbage, a client that vanishes, and the transfer cap.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { decode, encodeAck, encodeError, encodeRequest, ErrorCode } from '../../src/tftp/packet.ts';
import { FileUnavailable } from '../../src/tftp/provider.ts';
import { RawPeer } from '../helpers/raw-tftp.ts';
import { run, sha256, sha256File } from '../helpers/run.ts';
import { startTftp, type TestTftp } from '../helpers/tftp-server.ts';

const opened: Array<TestTftp | RawPeer> = [];
afterEach(async () => {
  for (const o of opened.splice(0)) await o.close();
});

async function serverWith(overrides: Parameters<typeof startTftp>[0] = {}) {
  const s = await startTftp(overrides);
  opened.push(s);
  return s;
}
async function peer() {
  const p = await new RawPeer().open();
  opened.push(p);
  return p;
}
const opts = (o: Record<string, string>) => new Map(Object.entries(o));

/**
 * Each case against both engines: the pump (native/tftp-pump.c) sends files in memory where its
 * addon is built; without it the TypeScript engine does, as it does large files from disk anywhere.
 */
const engines: Array<[string, Parameters<typeof startTftp>[0]]> = [
  ['the native pump', {}],
  ['the TypeScript engine', { pump: undefined, transferWorker: false }],
];

describe.each(engines)('TFTP on the wire, %s', (engine, settings) => {
  const server = (overrides: Parameters<typeof startTftp>[0] = {}) => serverWith({ ...settings, ...overrides });
  it('UEFI pattern: tsize probe, abort after the OACK, ask again with windowsize, get the file', async () => {
    const srv = await server();
    const data = randomBytes(300_000);
    writeFileSync(path.join(srv.root, 'snponly.efi'), data);
    // What EDK2 firmware does: ask with tsize, read the size from the OACK, abort.
    const probe = await peer();
    probe.send(encodeRequest('rrq', 'snponly.efi', 'octet', opts({ tsize: '0', blksize: '1468', windowsize: '4' })), srv.port);
    const oack = await probe.next();
    expect(oack.packet).toEqual({ kind: 'oack', options: opts({ blksize: '1468', tsize: '300000', windowsize: '4' }) });
    probe.send(encodeError(ErrorCode.OptionNegotiation, 'User aborted the transfer'), oack.port);
    const [aborted] = await srv.transfers(1);
    expect(aborted).toMatchObject({ outcome: 'aborted', file: 'snponly.efi' });
    // Then it asks again for the real download; here a real client does that part.
    const dest = path.join(srv.root, '..', `uefi-${process.pid}.bin`);
    const r = await run('atftp', ['--get', '-r', 'snponly.efi', '-l', dest, '--option', 'blksize 1468', '--option', 'windowsize 4', '127.0.0.1', String(srv.port)]);
    expect(r.code, r.stderr).toBe(0);
    expect(sha256File(dest)).toBe(sha256(data));
    const [done] = await srv.transfers(1);
    expect(done).toMatchObject({ outcome: 'ok', windowsize: 4, bytes: 300_000 });
  });

  // 25 s of timers: run once, on the engine Genesis uses (the naming is the server's, shared by both).
  it.runIf(engine === 'the native pump')('UEFI pattern with its abort lost: the probe is not cut short, but ends as aborted (superseded), not as a timeout', async () => {
    const srv = await server({ maxRetries: 1, defaultTimeoutMs: 200 });
    writeFileSync(path.join(srv.root, 'snponly.efi'), randomBytes(50_000));
    const probe = await peer();
    probe.send(encodeRequest('rrq', 'snponly.efi', 'octet', opts({ tsize: '0', blksize: '1468', timeout: '1' })), srv.port);
    expect((await probe.next()).packet.kind).toBe('oack');
    // Its ERROR never arrives. The firmware asks again from a new port and downloads the file;
    // another machine behind the same address could be doing the same, so nothing is cut short.
    const dest = path.join(srv.root, '..', `uefi-lost-${process.pid}.bin`);
    const r = await run('atftp', ['--get', '-r', 'snponly.efi', '-l', dest, '--option', 'blksize 1468', '127.0.0.1', String(srv.port)]);
    expect(r.code, r.stderr).toBe(0);
    const ends = await srv.transfers(2);
    expect(ends.find((t) => t.outcome === 'ok')).toBeDefined();
    expect(ends.find((t) => t.outcome !== 'ok')).toMatchObject({ outcome: 'aborted', bytes: 0, detail: expect.stringMatching(/^superseded: no ACK to the OACK, and the client asked for the same file again/) });
    // A client that asks once and never answers is still a timeout.
    const silent = await peer();
    silent.send(encodeRequest('rrq', 'snponly.efi', 'octet', opts({ tsize: '0', timeout: '1' })), srv.port);
    expect((await silent.next()).packet.kind).toBe('oack');
    const [gone] = await srv.transfers(1);
    expect(gone).toMatchObject({ outcome: 'timeout' });
  });

  it('answers a stranger on a transfer port with error 5 and carries on with the real client', async () => {
    const srv = await server();
    writeFileSync(path.join(srv.root, 'f.bin'), randomBytes(512 * 3));
    const client = await peer();
    const stranger = await peer();
    client.send(encodeRequest('rrq', 'f.bin', 'octet'), srv.port);
    const first = await client.next();
    expect(first.packet).toMatchObject({ kind: 'data', block: 1 });
    stranger.send(encodeAck(1), first.port);
    expect((await stranger.next()).packet).toEqual({ kind: 'error', code: ErrorCode.UnknownTid, message: 'unknown transfer ID' });
    let block = 1;
    for (;;) {
      client.send(encodeAck(block), first.port);
      if (block === 4) break;
      const next = await client.next();
      expect(next.packet).toMatchObject({ kind: 'data', block: block + 1 });
      block++;
    }
    const [s] = await srv.transfers(1);
    expect(s).toMatchObject({ outcome: 'ok', bytes: 512 * 3 });
  });

  it('answers malformed and unexpected packets with an error and keeps serving', async () => {
    const srv = await server();
    const refused: string[] = [];
    srv.server.on('refused', (r: { reason: string }) => refused.push(r.reason.split(':')[0]!));
    writeFileSync(path.join(srv.root, 'ok.bin'), 'fine');
    const p = await peer();
    const garbage = [Buffer.from([0xff]), Buffer.from([0, 9, 1, 2, 3]), Buffer.from('\x00\x01noterminator', 'latin1'), encodeAck(3), Buffer.from('\x00\x01f\x00octet\x00blksize\x00', 'latin1')];
    for (const g of garbage) {
      p.send(g, srv.port);
      const reply = await p.next();
      expect(reply.packet).toMatchObject({ kind: 'error', code: ErrorCode.IllegalOperation });
    }
    // An ERROR sent to the server is never answered (no error ping-pong); the next request still works.
    p.send(encodeError(ErrorCode.NotDefined, 'x'), srv.port);
    p.send(encodeRequest('rrq', 'ok.bin', 'octet'), srv.port);
    const data = await p.next();
    expect(data.packet).toMatchObject({ kind: 'data', block: 1 });
    expect(data.packet.kind === 'data' && data.packet.data.toString()).toBe('fine');
    p.send(encodeAck(1), data.port);
    // Each reported as refused, as what it was.
    expect(refused.filter((r) => r === 'malformed' || r === 'unexpected-opcode')).toHaveLength(garbage.length);
  });

  it('frees the transfer of a client that vanishes', async () => {
    const srv = await server({ maxRetries: 2, defaultTimeoutMs: 1000 });
    writeFileSync(path.join(srv.root, 'f.bin'), randomBytes(5000));
    const p = await peer();
    p.send(encodeRequest('rrq', 'f.bin', 'octet'), srv.port);
    expect((await p.next()).packet).toMatchObject({ kind: 'data', block: 1 });
    // Never acknowledge. The server retransmits, then gives up and says so.
    const [s] = await srv.transfers(1);
    expect(s).toMatchObject({ outcome: 'timeout', retransmits: 2, bytes: 0 });
    expect(srv.server.activeTransfers).toBe(0);
    const seen = [];
    for (let i = 0; i < 3; i++) seen.push((await p.next()).packet.kind);
    expect(seen).toEqual(['data', 'data', 'error']);
  });

  it('at the transfer cap, a request is refused while every transfer has heard from its client', async () => {
    const srv = await server({ maxTransfers: 1 });
    writeFileSync(path.join(srv.root, 'f.bin'), randomBytes(5000));
    const holder = await peer();
    holder.send(encodeRequest('rrq', 'f.bin', 'octet'), srv.port);
    const first = await holder.next();
    holder.send(encodeAck(1), first.port);
    expect((await holder.next()).packet).toMatchObject({ kind: 'data', block: 2 });
    const late = await peer();
    late.send(encodeRequest('rrq', 'f.bin', 'octet'), srv.port);
    expect((await late.next()).packet).toEqual({ kind: 'error', code: ErrorCode.NotDefined, message: 'server busy, try again' });
    holder.send(encodeError(ErrorCode.NotDefined, 'done'), first.port);
    await srv.transfers(1);
  });

  it('at the transfer cap, a new request takes the slot of the oldest transfer whose client never answered', async () => {
    // A burst of requests with spoofed sources fills the slots with transfers nobody answers; a
    // real machine asking after it is served, and the silent transfer is told why it ended.
    const srv = await server({ maxTransfers: 2 });
    writeFileSync(path.join(srv.root, 'f.bin'), randomBytes(5000));
    const [silent, answered] = await Promise.all([peer(), peer()]);
    silent.send(encodeRequest('rrq', 'f.bin', 'octet'), srv.port);
    const silentFirst = await silent.next();
    answered.send(encodeRequest('rrq', 'f.bin', 'octet'), srv.port);
    const answeredFirst = await answered.next();
    answered.send(encodeAck(1), answeredFirst.port);
    expect((await answered.next()).packet).toMatchObject({ kind: 'data', block: 2 });
    const late = await peer();
    late.send(encodeRequest('rrq', 'f.bin', 'octet'), srv.port);
    expect((await late.next()).packet).toMatchObject({ kind: 'data', block: 1 });
    const told = await silent.next();
    expect(told.port).toBe(silentFirst.port);
    expect(told.packet).toEqual({ kind: 'error', code: ErrorCode.NotDefined, message: 'a newer request took its slot at the transfer cap (it never heard from its client)' });
    expect(await srv.transfers(1)).toMatchObject([{ outcome: 'aborted', client: `127.0.0.1:${silent.socket.address().port}` }]);
    expect(srv.server.activeTransfers).toBe(2);
    answered.send(encodeError(ErrorCode.NotDefined, 'done'), answeredFirst.port);
    await srv.transfers(1);
  });
  it('a file that cannot be made now (its inventory disk full) is refused with that one line, counted, and not logged as a server error', async () => {
    const logged: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line) as { level: number; msg: string }) });
    const srv = await server({ logger });
    const refused: string[] = [];
    srv.server.on('refused', (r: { reason: string }) => refused.push(r.reason));
    srv.virtual.register('full.cfg', () => {
      throw new FileUnavailable('the data disk is full; nothing was changed');
    });
    srv.virtual.register('bug.cfg', () => {
      throw new TypeError('a bug');
    });
    const p = await peer();
    p.send(encodeRequest('rrq', 'full.cfg', 'octet'), srv.port);
    expect((await p.next()).packet).toEqual({ kind: 'error', code: ErrorCode.NotDefined, message: 'the data disk is full; nothing was changed' });
    expect(refused).toEqual(['unavailable: the data disk is full; nothing was changed']);
    expect(logged.filter((l) => l.level >= 50)).toEqual([]);
    // Anything else is still the server's own failure: a short answer, and an error in the log.
    p.send(encodeRequest('rrq', 'bug.cfg', 'octet'), srv.port);
    expect((await p.next()).packet).toEqual({ kind: 'error', code: ErrorCode.NotDefined, message: 'server error' });
    expect(logged.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual(['tftp transfer failed to start']);
  });

  it('refuses traversal and absolute Windows paths with an access violation', async () => {
    const srv = await server();
    const p = await peer();
    for (const name of ['../../etc/passwd', '..\\boot.ini', 'a/./b', 'x\x01y']) {
      p.send(encodeRequest('rrq', name, 'octet'), srv.port);
      expect((await p.next()).packet, name).toMatchObject({ kind: 'error', code: ErrorCode.AccessViolation });
    }
  });

  it('repeats its OACK at once when the client repeats the request', async () => {
    const srv = await server();
    writeFileSync(path.join(srv.root, 'f.bin'), randomBytes(100));
    const p = await peer();
    const rrq = encodeRequest('rrq', 'f.bin', 'octet', opts({ tsize: '0', timeout: '5' }));
    p.send(rrq, srv.port);
    const a = await p.next();
    p.send(rrq, srv.port);
    const b = await p.next();
    // Same transfer (same TID), same answer; no second transfer started.
    expect(b.port).toBe(a.port);
    expect(decode(b.raw)).toEqual(decode(a.raw));
    expect(srv.server.activeTransfers).toBe(1);
    p.send(encodeAck(0), a.port);
    expect((await p.next()).packet).toMatchObject({ kind: 'data', block: 1 });
    p.send(encodeAck(1), a.port);
    await srv.transfers(1);
  });

  it('a different request from the same port ends the old transfer silently: the port belongs to the new request now', async () => {
    // A client that gave up, or a new process that got the same ephemeral port while the old
    // transfer still waited for its last ACK. An ERROR sent to that port would reach the new
    // request first, and a client that takes the first answer's port as the server's TID fails.
    const srv = await server();
    writeFileSync(path.join(srv.root, 'old.bin'), randomBytes(512 * 4));
    writeFileSync(path.join(srv.root, 'new.bin'), randomBytes(100));
    const p = await peer();
    p.send(encodeRequest('rrq', 'old.bin', 'octet'), srv.port);
    const first = await p.next();
    expect(first.packet).toMatchObject({ kind: 'data', block: 1 });
    p.send(encodeAck(1), first.port);
    expect((await p.next()).packet).toMatchObject({ kind: 'data', block: 2 });
    p.send(encodeRequest('rrq', 'new.bin', 'octet'), srv.port);
    const answer = await p.next();
    expect(answer.packet).toMatchObject({ kind: 'data', block: 1 });
    expect(answer.port).not.toBe(first.port);
    const [old] = await srv.transfers(1);
    expect(old).toMatchObject({ file: 'old.bin', outcome: 'aborted', detail: 'aborted by server: the client started a new request from the same port' });
    p.send(encodeAck(1), answer.port);
    expect(await srv.transfers(1)).toMatchObject([{ file: 'new.bin', outcome: 'ok' }]);
  });

  it('one address holds at most maxTransfersPerClient slots; past them, with every client answering, it is told the server is busy', async () => {
    const srv = await server({ maxTransfersPerClient: 3 });
    const refused: string[] = [];
    srv.server.on('refused', (r: { reason: string }) => refused.push(r.reason.split(':')[0]!));
    writeFileSync(path.join(srv.root, 'slow.bin'), randomBytes(512 * 10));
    // Three peers on one address start transfers, ACK the first block, then go slow: they hold their slots.
    const holders = await Promise.all([peer(), peer(), peer()]);
    for (const h of holders) {
      h.send(encodeRequest('rrq', 'slow.bin', 'octet'), srv.port);
      const first = await h.next();
      expect(first.packet).toMatchObject({ kind: 'data', block: 1 });
      h.send(encodeAck(1), first.port);
      expect((await h.next()).packet).toMatchObject({ kind: 'data', block: 2 });
    }
    const fourth = await peer();
    fourth.send(encodeRequest('rrq', 'slow.bin', 'octet'), srv.port);
    expect((await fourth.next()).packet).toEqual({ kind: 'error', code: ErrorCode.NotDefined, message: 'too many transfers from this address, try again' });
    expect(refused).toEqual(['busy-client']);
  });

  it('a burst of requests nobody answers, sent with a machine\'s address, does not lock that machine out', async () => {
    // Before: the burst's transfers held the address's 16 slots until they timed out (a minute),
    // and the machine's own request was refused as busy-client meanwhile.
    const lines: Array<{ level: number; msg: string; kind?: string; count?: number }> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const srv = await server({ maxTransfersPerClient: 16, logger });
    const refused: string[] = [];
    srv.server.on('refused', (r: { reason: string }) => refused.push(r.reason));
    const data = randomBytes(200_000);
    writeFileSync(path.join(srv.root, 'ipxe.efi'), data);
    // One slow machine on the address has answered; it keeps its slot through the burst.
    const slow = await peer();
    slow.send(encodeRequest('rrq', 'ipxe.efi', 'octet', opts({ blksize: '1468' })), srv.port);
    const slowFirst = await slow.next();
    expect(slowFirst.packet).toMatchObject({ kind: 'oack' });
    slow.send(encodeAck(0), slowFirst.port);
    expect((await slow.next()).packet).toMatchObject({ kind: 'data', block: 1 });
    // The burst: 40 requests from 40 ports of the same address, none of them ever answered.
    const burst = await Promise.all(Array.from({ length: 40 }, () => peer()));
    for (const b of burst) b.send(encodeRequest('rrq', 'ipxe.efi', 'octet', opts({ blksize: '1468' })), srv.port);
    // 25 gave way to the ones after them (some before their OACK went out); 15 of the burst hold
    // slots beside the slow machine.
    const gaveWay = await srv.transfers(25);
    expect(gaveWay.every((t) => t.outcome === 'aborted' && t.detail === 'aborted by server: a newer request from this address took its slot (it never heard from its client)')).toBe(true);
    expect(srv.server.activeTransfers).toBe(16);
    expect(refused).toEqual([]);
    // One warn line for the burst, not one per request (a flood of requests is not a flood of log).
    const transferLines = lines.filter((l) => l.msg.startsWith('tftp transfer'));
    expect(transferLines).toHaveLength(1);
    expect(transferLines[0]).toMatchObject({ level: 40, kind: 'tftp-gave-way', count: 1 });
    // The machine itself asks now, with a real client, and gets the whole file at once.
    const dest = path.join(srv.root, '..', `burst-${process.pid}.bin`);
    const r = await run('atftp', ['--get', '-r', 'ipxe.efi', '-l', dest, '--option', 'blksize 1468', '127.0.0.1', String(srv.port)]);
    expect(r.code, r.stderr).toBe(0);
    expect(sha256File(dest)).toBe(sha256(data));
    // The slow machine was never cut off: block 1 was sent again meanwhile, and its ACK brings block 2.
    slow.send(encodeAck(1), slowFirst.port);
    let next = await slow.next();
    while (next.packet.kind === 'data' && next.packet.block === 1) next = await slow.next();
    expect(next.packet).toMatchObject({ kind: 'data', block: 2 });
    expect(refused).toEqual([]);
  });

  it('a timeout of 255 s is not granted, and a transfer is ended at its lifetime whatever the client does', async () => {
    const srv = await server({ limits: { maxBlksize: 1468, maxWindowsize: 64, maxTimeoutS: 10 }, maxTransferMs: 300, maxRetries: 50 });
    writeFileSync(path.join(srv.root, 'held.bin'), randomBytes(512 * 10));
    const p = await peer();
    p.send(encodeRequest('rrq', 'held.bin', 'octet', opts({ timeout: '255', blksize: '512' })), srv.port);
    // The OACK leaves the timeout out (RFC 2349): the client keeps its own, the server its adaptive one.
    expect((await p.next()).packet).toEqual({ kind: 'oack', options: opts({ blksize: '512' }) });
    // The client goes quiet after the OACK; the server's lifetime cap ends the transfer.
    const [ended] = await srv.transfers(1);
    expect(ended).toMatchObject({ outcome: 'aborted', file: 'held.bin' });
    expect(ended!.detail).toMatch(/^aborted by server: transfer took longer than 0 s$/);
  });
});
