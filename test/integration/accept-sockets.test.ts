// The HTTP port's extra accepting sockets (http/accept-sockets.ts) over real loopback sockets:
// connections from many addresses land on several of them and are all answered by the one HTTP
// server; the port stays this process's own (a second claim fails as a taken port always did);
// closing stops the extra sockets at once, with a connection they handed over still open.

import { createServer as createHttpServer, type Server } from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { AcceptSockets, canSharePort, claimPort, listenAccepting } from '../../src/http/accept-sockets.ts';
import { until } from '../helpers/wait.ts';

const cleanup: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** An HTTP server on a claimed, shared port, with `count` extra sockets; each answer names nothing but 200. */
async function sharedServer(count: number): Promise<{ server: Server; port: number; extra: AcceptSockets; own: { accepted: number } }> {
  const own = { accepted: 0 };
  const server = createHttpServer((_req, res) => res.end('ok'));
  // The server's own socket counts what it accepts itself; the extra sockets emit 'connection' on it too.
  server.on('connection', () => own.accepted++);
  const port = await claimPort('127.0.0.1', 0);
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port, reusePort: true }, () => resolve()));
  const extra = await AcceptSockets.open(server, { host: '127.0.0.1', port, backlog: 128, count });
  cleanup.push(
    () =>
      new Promise<void>((resolve) => {
        extra.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { server, port, extra, own };
}

/** GET / from `localAddress`: the status, or the error's code. */
function get(port: number, localAddress: string): Promise<number | string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    let text = '';
    socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nHost: genesis\r\nConnection: close\r\n\r\n'));
    socket.on('data', (d) => (text += d.toString()));
    socket.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0)));
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('the HTTP port shared by several accepting sockets', () => {
  it('spreads connections from many addresses over the sockets, and the one server answers them all', async () => {
    const { port, extra, own } = await sharedServer(3);
    const addresses = Array.from({ length: 64 }, (_, i) => `127.0.${20 + (i >> 4)}.${1 + (i & 15)}`);
    const statuses = await Promise.all(addresses.map((a) => get(port, a)));
    expect(statuses).toEqual(addresses.map(() => 200));
    // Every connection reached the server once, whichever socket accepted it.
    expect(own.accepted).toBe(64);
    const byExtra = extra.accepted;
    expect(byExtra.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    // Linux spreads by address and port: with 64 sources, more than one extra socket takes a share.
    expect(byExtra.filter((n) => n > 0).length).toBeGreaterThan(1);
  });

  it('a port already shared is not joined by a second claim: EADDRINUSE, as for any taken port', async () => {
    const { port } = await sharedServer(2);
    await expect(claimPort('127.0.0.1', port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    // And a port anything holds alone is refused to the shared sockets too.
    const alone = net.createServer();
    await new Promise<void>((resolve) => alone.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
    cleanup.push(() => new Promise<void>((resolve) => alone.close(() => resolve())));
    const taken = (alone.address() as net.AddressInfo).port;
    await expect(claimPort('127.0.0.1', taken)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    const server = createHttpServer();
    await expect(AcceptSockets.open(server, { host: '127.0.0.1', port: taken, backlog: 16, count: 2 })).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  it('close() stops the extra sockets at once, leaving a connection they handed over to the server', async () => {
    const { server, port, extra } = await sharedServer(4);
    // Held open on the server: a request whose answer has not begun.
    const held: Array<() => void> = [];
    server.removeAllListeners('request');
    server.on('request', (_req, res) => held.push(() => res.end('late')));
    const pending = Array.from({ length: 16 }, (_, i) => get(port, `127.0.30.${i + 1}`));
    await until(() => held.length === 16, 'the 16 requests held');
    expect(extra.accepted.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    extra.close();
    // The server's own socket still listens: new connections are answered.
    server.removeAllListeners('request');
    server.on('request', (_req, res) => res.end('ok'));
    expect(await get(port, '127.0.31.1')).toBe(200);
    for (const answer of held) answer();
    expect(await Promise.all(pending)).toEqual(pending.map(() => 200));
    // With the server closed too, the port is free: nothing is left listening on it.
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect(await get(port, '127.0.31.2')).toBe('ECONNREFUSED');
  });

  it('listenAccepting: 16 sockets where the port can be shared, the server alone where it cannot (macOS, Windows), serving either way', async () => {
    expect(['linux', 'freebsd', 'darwin', 'win32'].map((p) => canSharePort(p))).toEqual([true, true, false, false]);
    for (const platform of ['linux', 'darwin']) {
      const app = Fastify();
      app.get('/', async () => 'ok');
      const result = await listenAccepting(app, { host: '127.0.0.1', port: 0, backlog: 64, sockets: 16, platform });
      cleanup.push(async () => {
        if ('extra' in result) result.extra.close();
        await app.close();
      });
      const port = (app.server.address() as net.AddressInfo).port;
      if (platform === 'linux') expect('extra' in result && result.extra.accepted).toHaveLength(15);
      else expect(result).toEqual({ alone: 'no SO_REUSEPORT on darwin' });
      expect(await get(port, '127.0.0.1')).toBe(200);
      // Not to be joined either way.
      await expect(claimPort('127.0.0.1', port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    }
  });
});
