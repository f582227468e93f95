// More listening sockets on the HTTP port, each handing what it accepts to the one HTTP server.
//
// Why: libuv (1.45 and later, so every Node from 20) accepts one connection per listening socket
// per turn of the event loop, and relies on the socket still being readable to take the next one
// a turn later (libuv commit 6c692ad, "unix: don't accept() connections in a loop"). In a storm a
// turn carries hundreds of requests, so the kernel's accept queue grew faster than one connection
// per turn took from it: in the 1000-machine storm it held 100–300 connections for about a second,
// and a `GET /boot.ipxe` waited there, not in Genesis, for 300–700 ms (docs/performance.md).
// Sockets bound with SO_REUSEPORT share the port, Linux spreads new connections over them by
// address and port, and each is accepted from once per turn: N sockets, N connections per turn.
//
// A shared port must still be this Genesis's alone. Linux lets only sockets of the same effective
// user join it, and claimPort() binds it once without SO_REUSEPORT before the shared sockets do:
// a port held by anything else (a second Genesis's shared sockets included) fails there with
// EADDRINUSE, as it did before the port was shared, instead of splitting the connections between two.

import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import type { FastifyInstance, FastifyListenOptions } from 'fastify';

export type AcceptSocketsOptions = {
  /** The address and port the HTTP server listens on, bound by it with reusePort. */
  host: string;
  port: number;
  backlog: number;
  /** Listening sockets besides the HTTP server's own. */
  count: number;
};

/**
 * Where Node binds with SO_REUSEPORT (net.Server.listen's `reusePort`): Linux, FreeBSD, Solaris,
 * AIX. Elsewhere (macOS, Windows) listen() throws on the option, so the port is not shared there.
 */
const PORT_SHARING_PLATFORMS: readonly string[] = ['linux', 'freebsd', 'sunos', 'aix'];

export function canSharePort(platform: string = process.platform): boolean {
  return PORT_SHARING_PLATFORMS.includes(platform);
}

/**
 * `app` listening on host:port, with `sockets` accepting sockets in all where the port can be
 * shared: the extra sockets, or why the server's own accepts alone (the platform, or the extra
 * sockets would not listen: logged, and the server serves all the same). The port is claimed
 * first, so one in use fails here with EADDRINUSE as a plain listen() does.
 */
export async function listenAccepting(
  app: FastifyInstance,
  o: { host: string; port: number; backlog: number; sockets: number; platform?: string },
): Promise<{ extra: AcceptSockets } | { alone: string; err?: unknown }> {
  const platform = o.platform ?? process.platform;
  if (o.sockets <= 1 || !canSharePort(platform)) {
    await app.listen({ host: o.host, port: o.port, backlog: o.backlog });
    return { alone: o.sockets <= 1 ? 'one socket asked for' : `no SO_REUSEPORT on ${platform}` };
  }
  const port = await claimPort(o.host, o.port);
  // fastify hands its listen options to net.Server.listen() whole; its type omits reusePort.
  const options: FastifyListenOptions & { reusePort: boolean } = { host: o.host, port, backlog: o.backlog, reusePort: true };
  await app.listen(options);
  const bound = app.server.address();
  if (typeof bound !== 'object' || !bound) return { alone: 'the server has no address to share' };
  try {
    return { extra: await AcceptSockets.open(app.server, { host: bound.address, port: bound.port, backlog: o.backlog, count: o.sockets - 1 }) };
  } catch (err) {
    return { alone: 'the extra sockets would not listen', err };
  }
}

/**
 * The port, checked free by binding it alone (no SO_REUSEPORT) and letting it go at once: for
 * port 0, the one the kernel chose. Throws the bind's error (EADDRINUSE, EACCES) as listen() does.
 */
export async function claimPort(host: string, port: number): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen({ host, port, exclusive: true }, () => resolve());
  });
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : port;
}

export class AcceptSockets {
  private readonly sockets: NetServer[];
  /** Connections each socket accepted (for tests). */
  readonly accepted: number[];

  private constructor(sockets: NetServer[], accepted: number[]) {
    this.sockets = sockets;
    this.accepted = accepted;
  }

  /**
   * `count` more sockets on the server's port, each passing its connections to `server` as if
   * the server had accepted them (the same 'connection' event: timeouts, counting, shutdown).
   * Fails, closing any it opened, when one cannot listen (a platform without SO_REUSEPORT).
   */
  static async open(server: HttpServer, o: AcceptSocketsOptions): Promise<AcceptSockets> {
    const sockets: NetServer[] = [];
    const accepted: number[] = [];
    try {
      for (let i = 0; i < o.count; i++) {
        accepted.push(0);
        const socket = createServer((connection: Socket) => {
          accepted[i]!++;
          server.emit('connection', connection);
        });
        sockets.push(socket);
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.listen({ host: o.host, port: o.port, backlog: o.backlog, reusePort: true }, () => {
            socket.off('error', reject);
            resolve();
          });
        });
      }
    } catch (err) {
      closeAll(sockets);
      throw err;
    }
    return new AcceptSockets(sockets, accepted);
  }

  /** Stops accepting on these sockets; connections already handed over are the HTTP server's to end. */
  close(): void {
    closeAll(this.sockets);
  }
}

/**
 * Closes the listening sockets now. Not waiting for close()'s callback: that waits for every
 * connection the socket accepted to end, and those are the HTTP server's (connections.ts ends them).
 */
function closeAll(sockets: NetServer[]): void {
  for (const socket of sockets) if (socket.listening) socket.close();
}
