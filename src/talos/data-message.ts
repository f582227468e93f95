// A hand decoder for common.Data { Metadata metadata = 1; bytes bytes = 2; }, the message Talos
// streams an etcd snapshot in (1 KiB each, so a 1 GiB snapshot is a million of them). The generic
// protobuf decoder builds an object graph per message, and that garbage alone grew Genesis's heap
// by about 100 MB during a snapshot; this one returns a view of the bytes and the metadata's error,
// nothing else. Pure: a Buffer in, fields out. Unknown fields are skipped, as protobuf requires.

export type DataMessage = { bytes: Buffer; error: string | null; code: number | null };

export class DataMessageError extends Error {}

function varint(buf: Buffer, at: number): [value: number, next: number] {
  let value = 0;
  let shift = 0;
  for (let i = at; i < buf.length && i < at + 10; i++) {
    const b = buf[i]!;
    // Past 2^53 precision is lost; lengths and codes here are far below that.
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(b & 0x80)) return [value, i + 1];
  }
  throw new DataMessageError('truncated varint');
}

/** Skip one field's value of `wireType` starting at `at`; returns where the next field starts. */
function skip(buf: Buffer, wireType: number, at: number): number {
  switch (wireType) {
    case 0:
      return varint(buf, at)[1];
    case 1:
      return at + 8;
    case 2: {
      const [len, start] = varint(buf, at);
      return start + len;
    }
    case 5:
      return at + 4;
    default:
      throw new DataMessageError(`unsupported wire type ${wireType}`);
  }
}

/** Fields of `buf` as [field number, wire type, value start, value end] (length-delimited: the payload). */
function* fields(buf: Buffer): Generator<[number, number, number, number]> {
  let at = 0;
  while (at < buf.length) {
    const [key, start] = varint(buf, at);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 2) {
      const [len, payload] = varint(buf, start);
      if (payload + len > buf.length) throw new DataMessageError('field runs past the end of the message');
      yield [field, wire, payload, payload + len];
      at = payload + len;
    } else {
      const end = skip(buf, wire, start);
      if (end > buf.length) throw new DataMessageError('field runs past the end of the message');
      yield [field, wire, start, end];
      at = end;
    }
  }
}

/** common.Metadata: error = 2 (string), status = 3 (google.rpc.Status: code = 1, message = 2). */
function metadataError(buf: Buffer): { error: string | null; code: number | null } {
  let error: string | null = null;
  let code: number | null = null;
  for (const [field, wire, start, end] of fields(buf)) {
    if (field === 2 && wire === 2) error = buf.toString('utf8', start, end);
    if (field === 3 && wire === 2) {
      const status = buf.subarray(start, end);
      for (const [f, w, s] of fields(status)) if (f === 1 && w === 0) code = varint(status, s)[0];
    }
  }
  return { error: error || null, code };
}

export function decodeDataMessage(buf: Buffer): DataMessage {
  let bytes: Buffer = Buffer.alloc(0);
  let meta: { error: string | null; code: number | null } = { error: null, code: null };
  for (const [field, wire, start, end] of fields(buf)) {
    if (field === 2 && wire === 2) bytes = buf.subarray(start, end);
    else if (field === 1 && wire === 2) meta = metadataError(buf.subarray(start, end));
  }
  return { bytes, ...meta };
}

/** common.Data with only its bytes (field 2): what EtcdRecover's client stream sends. */
export function encodeDataMessage(bytes: Buffer): Buffer {
  const len: number[] = [];
  let n = bytes.length;
  while (n >= 0x80) {
    len.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  len.push(n);
  return Buffer.concat([Buffer.from([0x12, ...len]), bytes]);
}

/**
 * EtcdRecoverResponse { repeated EtcdRecover messages = 1 } with EtcdRecover { Metadata metadata = 1 }:
 * the node's error, if its message carries one.
 */
export function decodeRecoverResponse(buf: Buffer): { error: string | null; code: number | null } {
  for (const [field, wire, start, end] of fields(buf)) {
    if (field !== 1 || wire !== 2) continue;
    const message = buf.subarray(start, end);
    for (const [f, w, s, e] of fields(message)) if (f === 1 && w === 2) return metadataError(message.subarray(s, e));
  }
  return { error: null, code: null };
}
