// Closing the HTTP server without waiting on Node's own 'close' event, which never comes once a
// connection has been handed to a child process (the bulk sender) that has exited since: the
// server then asks the children it handed sockets to whether theirs are closed, and with none of
// them left it waits forever (net.Server.close in Node 24: `_usingWorkers` stays set while the
// exited child is dropped from `_workers`). Shutdown hung there, the event loop emptied, and Node
// exited with code 13 ("unsettled top-level await") instead of 0: after any large download, once
// the sender had left after its quiet minute.
//
// So the connections are counted here, and the server counts as closed once its listener is
// closed and every connection it accepted has ended, whichever comes first of that and Node's
// event. Counting them also bounds the wait: a download on the main thread to a client that
// stopped reading would otherwise hold shutdown until the connection's own timeout (two minutes),
// past the grace period the TFTP transfers get and past `docker stop`'s ten seconds.

import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** How often a closing server is checked for its last connection (its listener closes with no event to wait on). */
const CHECK_MS = 50;

/** An HTTP server's connections, counted from before it listens, and its close on top of them. */
export class HttpConnections {
  private readonly open = new Set<Socket>();
  private readonly app: FastifyInstance;

  /** Attach before the server listens, so every connection is counted. */
  constructor(app: FastifyInstance) {
    this.app = app;
    app.server.on('connection', (socket: Socket) => {
      this.open.add(socket);
      socket.once('close', () => this.open.delete(socket));
    });
  }

  /**
   * Closes the server as fastify does (hooks, then the server, letting requests finish), without
   * waiting on Node's 'close' event alone; connections still open after `graceMs` are cut.
   */
  async close(graceMs: number): Promise<void> {
    const closing = this.app.close();
    const cut = setTimeout(() => {
      for (const socket of this.open) socket.destroy();
    }, graceMs);
    let poll: NodeJS.Timeout | undefined;
    const drained = new Promise<void>((resolve) => {
      poll = setInterval(() => {
        if (!this.app.server.listening && this.open.size === 0) resolve();
      }, CHECK_MS);
    });
    try {
      await Promise.race([closing, drained]);
    } finally {
      clearTimeout(cut);
      clearInterval(poll);
    }
  }
}
