// TFTP packet codec (RFC 1350, RFC 2347). Pure functions: bytes in, values out.
// Decoding never throws: malformed input comes back as { kind: 'malformed' } with a reason,
// because a packet from the wire is never a reason for the server to fail.

export const Opcode = {
  RRQ: 1,
  WRQ: 2,
  DATA: 3,
  ACK: 4,
  ERROR: 5,
  OACK: 6,
} as const;

export const ErrorCode = {
  NotDefined: 0,
  FileNotFound: 1,
  AccessViolation: 2,
  DiskFull: 3,
  IllegalOperation: 4,
  UnknownTid: 5,
  FileExists: 6,
  NoSuchUser: 7,
  OptionNegotiation: 8,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export type Request = {
  kind: 'rrq' | 'wrq';
  filename: string;
  mode: string; // lower-cased
  /** Option names lower-cased; values as sent. Later duplicates are ignored. */
  options: Map<string, string>;
};
export type Data = { kind: 'data'; block: number; data: Buffer };
export type Ack = { kind: 'ack'; block: number };
export type ErrorPacket = { kind: 'error'; code: number; message: string };
export type Oack = { kind: 'oack'; options: Map<string, string> };
export type Malformed = { kind: 'malformed'; reason: string };
export type Packet = Request | Data | Ack | ErrorPacket | Oack | Malformed;

/** Split a run of NUL-terminated strings. Returns undefined when the last string is not terminated. */
function splitStrings(buf: Buffer, start: number): string[] | undefined {
  const out: string[] = [];
  let pos = start;
  while (pos < buf.length) {
    const end = buf.indexOf(0, pos);
    if (end < 0) return undefined;
    // latin1 keeps every byte as one char, so odd bytes survive to validation instead of becoming U+FFFD.
    out.push(buf.toString('latin1', pos, end));
    pos = end + 1;
  }
  return out;
}

function decodeOptions(fields: string[]): Map<string, string> | string {
  if (fields.length % 2 !== 0) return 'option without a value';
  const options = new Map<string, string>();
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!.toLowerCase();
    if (name === '') return 'empty option name';
    if (!options.has(name)) options.set(name, fields[i + 1]!);
  }
  return options;
}

export function decode(buf: Buffer): Packet {
  if (buf.length < 2) return { kind: 'malformed', reason: 'shorter than an opcode' };
  const op = buf.readUInt16BE(0);
  switch (op) {
    case Opcode.RRQ:
    case Opcode.WRQ: {
      const fields = splitStrings(buf, 2);
      if (!fields) return { kind: 'malformed', reason: 'request strings not NUL-terminated' };
      if (fields.length < 2) return { kind: 'malformed', reason: 'request without filename and mode' };
      const [filename, mode, ...rest] = fields as [string, string, ...string[]];
      if (filename === '') return { kind: 'malformed', reason: 'empty filename' };
      const options = decodeOptions(rest);
      if (typeof options === 'string') return { kind: 'malformed', reason: options };
      return { kind: op === Opcode.RRQ ? 'rrq' : 'wrq', filename, mode: mode.toLowerCase(), options };
    }
    case Opcode.DATA:
      if (buf.length < 4) return { kind: 'malformed', reason: 'DATA shorter than its header' };
      return { kind: 'data', block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case Opcode.ACK:
      // Some clients pad ACKs; only the first four bytes matter.
      if (buf.length < 4) return { kind: 'malformed', reason: 'ACK shorter than its header' };
      return { kind: 'ack', block: buf.readUInt16BE(2) };
    case Opcode.ERROR: {
      if (buf.length < 4) return { kind: 'malformed', reason: 'ERROR shorter than its header' };
      const end = buf.indexOf(0, 4);
      const message = buf.toString('latin1', 4, end < 0 ? buf.length : end);
      return { kind: 'error', code: buf.readUInt16BE(2), message };
    }
    case Opcode.OACK: {
      const fields = splitStrings(buf, 2);
      if (!fields) return { kind: 'malformed', reason: 'OACK strings not NUL-terminated' };
      const options = decodeOptions(fields);
      if (typeof options === 'string') return { kind: 'malformed', reason: options };
      return { kind: 'oack', options };
    }
    default:
      return { kind: 'malformed', reason: `unknown opcode ${op}` };
  }
}

function strings(op: number, parts: string[]): Buffer {
  const len = 2 + parts.reduce((n, s) => n + Buffer.byteLength(s, 'latin1') + 1, 0);
  const buf = Buffer.alloc(len);
  buf.writeUInt16BE(op, 0);
  let pos = 2;
  for (const s of parts) {
    pos += buf.write(s, pos, 'latin1');
    buf[pos++] = 0;
  }
  return buf;
}

export function encodeRequest(kind: 'rrq' | 'wrq', filename: string, mode: string, options?: Map<string, string>): Buffer {
  const parts = [filename, mode];
  for (const [k, v] of options ?? []) parts.push(k, v);
  return strings(kind === 'rrq' ? Opcode.RRQ : Opcode.WRQ, parts);
}

export function encodeData(block: number, data: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(4 + data.length);
  buf.writeUInt16BE(Opcode.DATA, 0);
  buf.writeUInt16BE(block & 0xffff, 2);
  data.copy(buf, 4);
  return buf;
}

export function encodeAck(block: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt16BE(Opcode.ACK, 0);
  buf.writeUInt16BE(block & 0xffff, 2);
  return buf;
}

export function encodeError(code: ErrorCode, message: string): Buffer {
  const text = Buffer.from(message, 'latin1');
  const buf = Buffer.alloc(4 + text.length + 1);
  buf.writeUInt16BE(Opcode.ERROR, 0);
  buf.writeUInt16BE(code, 2);
  text.copy(buf, 4);
  return buf;
}

export function encodeOack(options: Map<string, string>): Buffer {
  const parts: string[] = [];
  for (const [k, v] of options) parts.push(k, v);
  return strings(Opcode.OACK, parts);
}
