// The event sink's gRPC side: grpc-js serving `events.EventSinkService` from our .proto subset,
// fed connections our own listener accepted (sink-server.ts). Loaded on the first node
// connection, not at start: an idle Genesis does not hold grpc-js and protobufjs.

import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const PROTO_FILE = fileURLToPath(new URL('./proto/sink.proto', import.meta.url));

// Field names as in the .proto (keepCase): protobufjs's built-in Any is not camel-cased either.
export type EventRequest = { data?: { type_url?: string; value?: Buffer } | null; id?: string; actor_id?: string };

let service: grpc.ServiceDefinition | undefined;
/** The service from our .proto subset; the tests' Talos stand-in uses the same definition. */
export function eventSinkService(): grpc.ServiceDefinition {
  if (!service) {
    const def = protoLoader.loadSync(PROTO_FILE, { keepCase: true, longs: String, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { events: { EventSinkService: grpc.ServiceClientConstructor } };
    service = pkg.events.EventSinkService.service;
  }
  return service;
}

export type GrpcSink = { inject: (socket: net.Socket) => void; shutdown: () => void };

/** A gRPC server answering Publish with `publish`, for sockets handed to it with inject(). */
export function grpcSink(publish: grpc.handleUnaryCall<EventRequest, object>): GrpcSink {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 256 * 1024 });
  server.addService(eventSinkService(), { Publish: publish });
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  return { inject: (socket) => injector.injectConnection(socket), shutdown: () => server.forceShutdown() };
}
