// One transfer's engine (tftp/transfer-engine.ts) over a real loopback socket, after its end:
// the transfer's socket lingers a moment so its last packet can leave, and what still arrives
// then, or a read that completes then, must do nothing. An ACK delivered in that moment once read
// from the released file and threw out of the socket's handler: with the worker off, Genesis died
// in `node bench/tftp.ts` (50 atftp clients at once).

import dgram from 'node:dgram';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { decode, encodeAck } from '../../src/tftp/packet.ts';
import type { TftpSource } from '../../src/tftp/provider.ts';
import { TransferEngine, type EngineEnd, type EngineSettings } from '../../src/tftp/transfer-engine.ts';
import { until } from '../helpers/wait.ts';

// No retransmission inside a test: the tests count what the client received, and a block resent
// because a loaded CI machine answered late (the adaptive timer goes down to its minimum) made
// "block N arrived" wait for a count that had already passed it.
const SETTINGS: EngineSettings = { host: '127.0.0.1', limits: { maxBlksize: 1468, maxWindowsize: 16 }, defaultTimeoutMs: 120_000, minRtoMs: 120_000, initialRtoMs: 120_000, maxRetries: 5 };
const REQUEST = { kind: 'rrq' as const, filename: 'f.bin', mode: 'octet', options: new Map<string, string>() };

/** A file of `size` bytes whose reads the test completes by hand; counts reads after close. */
function heldSource(size: number) {
  const pending: Array<() => void> = [];
  const state = { closed: false, readsAfterClose: 0 };
  const source: TftpSource = {
    size,
    read: (offset, length) => {
      if (state.closed) state.readsAfterClose++;
      return new Promise<Buffer>((resolve) => pending.push(() => resolve(Buffer.alloc(Math.min(length, size - offset), 7))));
    },
    close: async () => {
      state.closed = true;
    },
  };
  return { source, pending, state };
}

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

async function clientSocket(): Promise<{ socket: dgram.Socket; port: number; received: Buffer[] }> {
  const socket = dgram.createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (m) => received.push(m));
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  cleanup.push(() => socket.close());
  return { socket, port: socket.address().port, received };
}

/** The engine's own socket (private): to deliver a packet in the moment after its end, which real timing cannot hit on demand. */
function engineSocket(engine: TransferEngine): dgram.Socket {
  return (engine as unknown as { socket: dgram.Socket }).socket;
}

describe('a transfer engine after its end', () => {
  it('an ACK that arrives after abort() reads nothing, sends nothing and throws nothing', async () => {
    const client = await clientSocket();
    // 128 KiB in 512-byte blocks: the engine reads 64 KiB ahead, and reads the next 64 KiB when
    // block 65 goes out, which the ACK of block 64 asks for.
    const file = heldSource(128 * 1024);
    const ends: EngineEnd[] = [];
    const engine = new TransferEngine(SETTINGS, REQUEST, { address: '127.0.0.1', port: client.port }, file.source, { heard: () => {}, ended: (e) => ends.push(e) });
    await engine.start();
    expect(file.pending).toHaveLength(1);
    file.pending.shift()!();
    const serverPort = () => (engineSocket(engine).address() as { port: number }).port;
    for (let block = 1; block < 64; block++) {
      await until(() => client.received.length === block, `block ${block} at the client`);
      client.socket.send(encodeAck(block), serverPort(), '127.0.0.1');
    }
    await until(() => client.received.length === 64, 'block 64 at the client');
    expect(decode(client.received[63]!)).toMatchObject({ kind: 'data', block: 64 });
    expect(file.pending).toHaveLength(0);
    const socket = engineSocket(engine);
    engine.abort('shutting down', false);
    expect(ends.map((e) => e.outcome.result)).toEqual(['aborted']);
    expect(file.state.closed).toBe(true);
    // The client's ACK of block 64, delivered while the socket still lingers for its last packet.
    expect(() => socket.emit('message', encodeAck(64), { address: '127.0.0.1', port: client.port, family: 'IPv4', size: 4 })).not.toThrow();
    expect(file.state.readsAfterClose).toBe(0);
    expect(file.pending).toHaveLength(0);
    expect(ends).toHaveLength(1);
    await once(socket, 'close');
    expect(client.received).toHaveLength(64);
  });

  it('a read that completes after the end sends nothing and arms no timer', async () => {
    const client = await clientSocket();
    const file = heldSource(4096);
    const engine = new TransferEngine(SETTINGS, REQUEST, { address: '127.0.0.1', port: client.port }, file.source, { heard: () => {}, ended: () => {} });
    await engine.start();
    expect(file.pending).toHaveLength(1);
    const socket = engineSocket(engine);
    engine.abort('client restarted', false);
    file.pending.shift()!();
    await once(socket, 'close');
    expect(client.received).toEqual([]);
    expect((engine as unknown as { timer: unknown }).timer).toBeUndefined();
  });
});
