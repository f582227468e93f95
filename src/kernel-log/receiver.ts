// The kernel-log receiver: a TCP server taking Talos's JSON-lines kernel log from each node
// (`talos.logging.kernel=tcp://<genesis>:<port>/`, and a KmsgLogConfig document so it survives
// install). Lines are attributed by source address and kept in the node's bounded ring in the
// inventory. Lines from an address no node has are counted and dropped; bad lines are skipped,
// never fatal to the connection or the server.

import net from 'node:net';
import type { Logger } from 'pino';
import { LogThrottle, sample } from '../logging/throttle.ts';
import type { KernelLogLine } from '../domain/node.ts';
import type { TalosReports } from '../inventory/ports.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { sourceAddress } from '../net/address.ts';
import { NodeListener } from '../net/node-listener.ts';
import { LineSplitter, parseKernelLogLine, type SplitResult } from './kmsg.ts';

export type KernelLogReceiverOptions = {
  host: string;
  port: number;
  inventory: Pick<TalosReports, 'bySource' | 'appendKernelLog'>;
  /** Lines kept per node. */
  keep: number;
  metrics?: Metrics;
  log: Logger;
  maxConnections?: number;
  /** Connections per source address, and the silent/idle cut-offs (see NodeListener). */
  maxPerAddress?: number;
  idleMs?: number;
};

export class KernelLogReceiver {
  private readonly opts: KernelLogReceiverOptions;
  private readonly listener: NodeListener;
  private readonly throttle: LogThrottle;

  constructor(o: KernelLogReceiverOptions) {
    this.opts = o;
    this.throttle = new LogThrottle(o.log);
    this.listener = new NodeListener(
      { host: o.host, port: o.port, maxConnections: o.maxConnections ?? 256, maxPerAddress: o.maxPerAddress, idleMs: o.idleMs },
      (socket) => this.accept(socket),
      (r) => {
        this.opts.metrics?.refused('kernel-log', r.reason);
        this.throttle.note(`kernel-log-${r.reason}`, r.address, {}, 'kernel-log connection closed');
      },
    );
  }

  get connections(): number {
    return this.listener.connections;
  }

  start(): Promise<{ address: string; port: number }> {
    return this.listener.start();
  }

  close(): Promise<void> {
    return this.listener.close();
  }

  private accept(socket: net.Socket): void {
    this.opts.metrics?.nodeConnection('kernel-log');
    const source = sourceAddress(socket.remoteAddress ?? '');
    const splitter = new LineSplitter();
    socket.on('data', (chunk: Buffer) => {
      try {
        this.receive(source, splitter.push(chunk), () => this.throttle.note('kernel-log-unknown-source', source, {}, 'kernel log from an address no node in the inventory has; dropped'));
      } catch (err) {
        // The log is a diagnostic: a full disk (or anything else) must not take the receiver down.
        this.throttle.note('kernel-log-store-failed', 'storage', { err: sample((err as Error).message, 120) }, 'could not store kernel-log lines');
      }
    });
  }

  private receive(source: string, { lines, tooLong }: SplitResult, unknown: () => void): void {
    if (tooLong) this.opts.metrics?.kernelLog('too-long', tooLong);
    const parsed: KernelLogLine[] = [];
    for (const l of lines) {
      const p = parseKernelLogLine(l);
      if (p) parsed.push(p);
      else this.opts.metrics?.kernelLog('malformed');
    }
    if (!parsed.length) return;
    // Looked up per chunk: a node may become known (or report this address) after it connected.
    const node = this.opts.inventory.bySource(source);
    if (!node) {
      this.opts.metrics?.kernelLog('unknown-source', parsed.length);
      unknown();
      return;
    }
    try {
      this.opts.inventory.appendKernelLog(node.mac, parsed, this.opts.keep);
    } catch (err) {
      this.opts.metrics?.kernelLog('failed', parsed.length);
      throw err;
    }
    this.opts.metrics?.kernelLog('stored', parsed.length);
  }
}
