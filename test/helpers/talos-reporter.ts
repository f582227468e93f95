// A stand-in for what a Talos node sends Genesis after boot, over the real protocols:
//  - events: a real gRPC client (grpc-js) from the same sink.proto, publishing like Talos's
//    EventsSinkController: one call at a time, in order, an event leaves the buffer only once
//    acknowledged, and after a failure publishing resumes from the first unacknowledged one;
//  - kernel log: JSON lines over TCP, as Talos's jsonLinesSender writes them.
// Both leave from the node's own loopback address (127.0.x.y), through a TCP relay bound to it,
// because grpc-js cannot choose a source address. The relay can cut the path (pause) and
// restore it (resume), like a cable pulled and plugged back.

import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { eventSinkService } from '../../src/talos-events/sink-grpc.ts';

const EVENTS_PROTO = fileURLToPath(new URL('../../src/talos-events/proto/machine-events.proto', import.meta.url));
let root: protobuf.Root | undefined;

/** An Any as Talos packs it: "type.googleapis.com/machine.<Type>" and the encoded message. */
export function talosAny(type: string, fields: Record<string, unknown>): { type_url: string; value: Buffer } {
  root ??= protobuf.loadSync(EVENTS_PROTO);
  const t = root.lookupType(`machine.${type}`);
  return { type_url: `type.googleapis.com/machine.${type}`, value: Buffer.from(t.encode(t.fromObject(fields)).finish()) };
}

/** A TCP relay on 127.0.0.1 whose upstream connections leave from `localAddress`. */
export class SourceRelay {
  private readonly server: net.Server;
  private readonly pairs = new Set<net.Socket>();
  private paused = false;
  port = 0;

  constructor(target: { host: string; port: number }, localAddress: string) {
    this.server = net.createServer((client) => {
      if (this.paused) return client.destroy();
      const up = net.connect({ host: target.host, port: target.port, localAddress });
      for (const s of [client, up]) {
        this.pairs.add(s);
        s.on('close', () => this.pairs.delete(s));
        s.on('error', () => {});
      }
      client.pipe(up).on('close', () => client.destroy());
      up.pipe(client).on('close', () => up.destroy());
      client.on('close', () => up.destroy());
      up.on('close', () => client.destroy());
    });
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen({ host: '127.0.0.1', port: 0 }, resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Cut every connection and refuse new ones. */
  pause(): void {
    this.paused = true;
    for (const s of this.pairs) s.destroy();
  }

  resume(): void {
    this.paused = false;
  }

  async close(): Promise<void> {
    this.pause();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

type PublishClient = grpc.Client & {
  Publish?: (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => void;
};

type Pending = { id: string; data: { type_url: string; value: Buffer } };

/** Talos's xid-style event ids: unique, sortable enough for a test. */
const eventId = (() => {
  let n = 0;
  return () => `${Date.now().toString(36)}${(n++).toString(36).padStart(4, '0')}${randomBytes(3).toString('hex')}`;
})();

export class TalosReporter {
  private readonly eventRelay: SourceRelay;
  private readonly logRelay: SourceRelay;
  private client: PublishClient | undefined;
  private readonly buffer: Pending[] = [];
  private pump: Promise<void> | undefined;
  private logSocket: net.Socket | undefined;
  /** Events acknowledged by the sink, in order (what Talos would have moved past). */
  readonly acked: Pending[] = [];
  /** Publish calls that failed and were kept for later. */
  failures = 0;
  closed = false;

  readonly ip: string;

  constructor(ip: string, sink: { host: string; port: number }, kernelLog: { host: string; port: number }) {
    this.ip = ip;
    this.eventRelay = new SourceRelay(sink, ip);
    this.logRelay = new SourceRelay(kernelLog, ip);
  }

  async start(): Promise<void> {
    const port = await this.eventRelay.start();
    await this.logRelay.start();
    const Client = grpc.makeGenericClientConstructor(eventSinkService(), 'EventSinkService');
    // Reconnect quickly once the path is back (grpc's default first backoff is 1 s).
    this.client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
      'grpc.initial_reconnect_backoff_ms': 50,
      'grpc.max_reconnect_backoff_ms': 200,
    }) as PublishClient;
  }

  /** Queue events (type and fields of machine.<Type>) and publish them in order. */
  publish(...events: Array<[type: string, fields: Record<string, unknown>]>): void {
    for (const [type, fields] of events) this.buffer.push({ id: eventId(), data: talosAny(type, fields) });
    this.pump ??= this.drain().finally(() => (this.pump = undefined));
  }

  /** Resolves once everything queued so far is acknowledged. */
  async flushed(): Promise<void> {
    while (this.pump) await this.pump;
  }

  /** Send an event already acknowledged once more, as Talos does when an acknowledgement is lost. */
  async resend(event: Pending): Promise<void> {
    await this.call(event);
  }

  /** The path to Genesis goes down: open calls fail, new ones wait. */
  disconnect(): void {
    this.eventRelay.pause();
    this.logRelay.pause();
  }

  reconnect(): void {
    this.eventRelay.resume();
    this.logRelay.resume();
  }

  private call(e: Pending): Promise<void> {
    const client = this.client!;
    return new Promise((resolve, reject) => {
      // waitForReady: while the path is down the call waits for the channel, as Talos's does.
      client.Publish!({ id: e.id, data: e.data }, new grpc.Metadata(), { deadline: Date.now() + 30_000, waitForReady: true } as grpc.CallOptions, (err: grpc.ServiceError | null) =>
        err ? reject(err) : resolve(),
      );
    });
  }

  private async drain(): Promise<void> {
    while (this.buffer.length && !this.closed) {
      const next = this.buffer[0]!;
      try {
        await this.call(next);
        this.buffer.shift();
        this.acked.push(next);
      } catch (err) {
        if (this.closed) return;
        const code = (err as grpc.ServiceError).code;
        if (code === grpc.status.DEADLINE_EXCEEDED) throw err;
        // Kept at the head of the buffer and sent again after a pause, as Talos's controller
        // restarts with a backoff; the next attempt also waits for the channel to be ready.
        this.failures++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  /** Kernel messages as JSON lines over TCP (a connection opened on first use, as Talos does). */
  async kernelLog(lines: Array<string | Record<string, unknown>>): Promise<void> {
    if (!this.logSocket || this.logSocket.destroyed) {
      const s = net.connect({ host: '127.0.0.1', port: this.logRelay.port });
      await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
      s.on('error', () => {});
      this.logSocket = s;
    }
    const text = lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l)) + '\n').join('');
    await new Promise<void>((resolve, reject) => this.logSocket!.write(text, (err) => (err ? reject(err) : resolve())));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.client?.close();
    this.logSocket?.destroy();
    await Promise.all([this.eventRelay.close(), this.logRelay.close()]);
  }
}

/** A kernel message as Talos's JSON-lines sender writes it. */
export function kmsg(msg: string, seq: number, level = 'info'): Record<string, unknown> {
  return { msg, 'talos-time': new Date(Date.UTC(2026, 10, 23, 10, 0, seq)).toISOString(), 'talos-level': level, facility: 'kern', seq, clock: seq * 1000, priority: level === 'error' ? 'err' : 'info' };
}
