// The Talos event sink: the plaintext gRPC service `events.EventSinkService/Publish` that Talos
// dials when `talos.events.sink=` (kernel command line) or an EventSinkConfig document names it.
// Each node publishes its events one call at a time and only moves on when a call succeeds, so:
//  - an event we cannot store (disk full, database locked) is answered UNAVAILABLE and Talos
//    sends it again later: nothing is lost;
//  - an event we will never store (not decodable, from a machine we do not know) is answered OK
//    and counted, or it would block every event behind it.
//
// Connections are accepted by our own net.Server and handed to grpc-js (a connection injector),
// so Genesis knows how many nodes are connected and from where. grpc-js and the .proto are loaded
// on the first connection (sink-grpc.ts): an idle Genesis, with no node reporting, does not hold
// them (about 10 MB resident, docs/performance.md).

import type net from 'node:net';
import type grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { LogThrottle, sample } from '../logging/throttle.ts';
import { loadGrpcInPieces } from '../talos/load-in-pieces.ts';
import type { Node } from '../domain/node.ts';
import type { TalosReports } from '../inventory/ports.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { decodeTalosEvent, EventDecodeError, eventEffect, eventSummary, type TalosEvent } from './talos-event.ts';
import { NodeListener } from '../net/node-listener.ts';
import { peerAddress, sourceAddress } from '../net/address.ts';
import type { EventRequest, GrpcSink } from './sink-grpc.ts';

/** grpc.status.UNAVAILABLE, without importing grpc-js for one number. */
const UNAVAILABLE = 14;

export type EventSinkOptions = {
  host: string;
  port: number;
  inventory: TalosReports;
  metrics?: Metrics;
  log: Logger;
  /** Nodes are few; anything beyond this is not a homelab fleet and is refused. */
  maxConnections?: number;
  /** Connections per source address, and the silent/idle cut-offs (see NodeListener). */
  maxPerAddress?: number;
  idleMs?: number;
};

export class EventSinkServer {
  private readonly opts: EventSinkOptions;
  private readonly listener: NodeListener;
  private readonly throttle: LogThrottle;
  /** The gRPC side, once the first connection has loaded it; `loading` while it loads. */
  private transport: GrpcSink | undefined;
  private loading: Promise<GrpcSink> | undefined;
  private closed = false;

  constructor(o: EventSinkOptions) {
    this.opts = o;
    this.throttle = new LogThrottle(o.log);
    this.listener = new NodeListener(
      { host: o.host, port: o.port, maxConnections: o.maxConnections ?? 256, maxPerAddress: o.maxPerAddress, idleMs: o.idleMs },
      (socket) => {
        this.opts.metrics?.nodeConnection('event-sink');
        this.hand(socket);
      },
      (r) => {
        this.opts.metrics?.refused('event-sink', r.reason);
        this.throttle.note(`event-sink-${r.reason}`, r.address, {}, 'event-sink connection closed');
      },
    );
  }

  /** Open connections from nodes. */
  get connections(): number {
    return this.listener.connections;
  }

  /** Where the open connections come from (a node is "reporting" while its address is here). */
  connectedAddresses(): string[] {
    return this.listener.connectedAddresses();
  }

  start(): Promise<{ address: string; port: number }> {
    return this.listener.start();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.listener.close();
    const transport = this.transport ?? (await this.loading?.catch(() => undefined));
    transport?.shutdown();
  }

  /**
   * A node's connection to grpc-js, which the first one loads. Its bytes wait in the socket
   * meanwhile (HTTP/2 reads what is already buffered when it takes the socket over).
   */
  private hand(socket: net.Socket): void {
    if (this.transport) {
      this.transport.inject(socket);
      return;
    }
    // grpc-js a few modules per turn (talos/load-in-pieces.ts), so the first node's connection does
    // not hold every request behind a load of up to 160 ms.
    this.loading ??= loadGrpcInPieces()
      .then(() => import('./sink-grpc.ts'))
      .then((m) => (this.transport = m.grpcSink((call, done) => this.publish(call, done))));
    this.loading.then(
      (transport) => {
        if (this.closed) transport.shutdown();
        if (this.closed || socket.destroyed) socket.destroy();
        else transport.inject(socket);
      },
      (err: unknown) => {
        // Cannot happen short of a broken install; said once per connection, and the next one tries again.
        this.loading = undefined;
        this.opts.log.error({ err: sample((err as Error).message, 200) }, 'the event sink could not load its gRPC service; connection closed');
        socket.destroy();
      },
    );
  }

  private publish(call: grpc.ServerUnaryCall<EventRequest, object>, done: grpc.sendUnaryData<object>): void {
    const peer = peerAddress(call.getPeer());
    const seen = { kind: 'unknown' };
    try {
      this.record(call.request, peer, seen);
      done(null, {});
    } catch (err) {
      // Not stored (disk full, database locked, or a bug): Talos keeps the event and sends it again.
      this.opts.metrics?.talosEvent('failed', seen.kind);
      this.throttle.note('event-store-failed', 'storage', { err: sample((err as Error).message, 120), kind: seen.kind }, 'could not record a Talos event; the node will send it again');
      done({ code: UNAVAILABLE, details: 'genesis cannot store events right now; retry' });
    }
  }

  /** Decode, attribute and store one event (its kind noted in `seen`). Throws only when it must be resent. */
  private record(req: EventRequest, peer: string, seen: { kind: string }): void {
    const typeUrl = req.data?.type_url ?? '';
    let event: TalosEvent;
    try {
      event = decodeTalosEvent(typeUrl, req.data?.value ?? Buffer.alloc(0));
    } catch (err) {
      if (!(err instanceof EventDecodeError)) throw err;
      this.opts.metrics?.talosEvent('malformed', 'unknown');
      this.throttle.note('event-malformed', peer, { type: sample(typeUrl), err: sample(err.message, 80) }, 'dropped an event that does not decode');
      return;
    }
    seen.kind = event.kind;
    // As the inventory matches them: no prefix length, no IPv4-mapped form.
    const reported = event.kind === 'addresses' ? event.addresses.map(sourceAddress) : undefined;
    const node = this.nodeFor(peer, event, reported);
    if (!node) {
      this.opts.metrics?.talosEvent('unknown-source', event.kind);
      this.throttle.note('event-unknown-source', peer, { kind: event.kind }, 'event from an address no node in the inventory has; dropped');
      return;
    }
    const effect = eventEffect(event, node);
    // Talos always sets an id; without one the event cannot be recognised when resent.
    const id = (req.id ?? '').slice(0, 64) || `genesis-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const result = this.opts.inventory.applyTalosEvent(node.mac, {
      id,
      detail: { ...event, summary: eventSummary(event), ...(req.actor_id ? { actor: req.actor_id.slice(0, 64) } : {}) },
      ...(effect.stage ? { stage: effect.stage } : {}),
      ...(effect.ready !== undefined ? { ready: effect.ready } : {}),
      ...(reported ? { addresses: reported } : {}),
      ...(effect.installed ? { installed: effect.installed } : {}),
    });
    this.opts.metrics?.talosEvent(result.duplicate ? 'duplicate' : 'recorded', event.kind);
    if (!result.duplicate) {
      if (result.installed) this.opts.log.info({ mac: node.mac, reason: effect.installed }, 'node installed: its next network boot goes to its disk');
      if (effect.problem) this.opts.log.warn({ mac: node.mac, hostname: node.hostname }, effect.problem);
    }
  }

  /**
   * The node behind an event: by the address it comes from; failing that, an address report
   * naming a hostname we assigned (a node back from its disk with a new lease says who it is).
   */
  private nodeFor(peer: string, event: TalosEvent, reported: string[] | undefined): Node | undefined {
    const bySource = this.opts.inventory.bySource(peer);
    if (bySource) return bySource;
    if (event.kind !== 'addresses' || !event.hostname || !reported?.includes(peer)) return undefined;
    return this.opts.inventory.byHostname(event.hostname);
  }
}
