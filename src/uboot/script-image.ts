// U-Boot's legacy image format for a script (what `mkimage -T script` writes, and what U-Boot's
// `source` runs): a 64-byte big-endian header, then a multi-file payload of one file: its length,
// a zero terminator, the script text. Pure; checked against mkimage -l and dumpimage in the tests.

import { crc32 } from 'node:zlib';

const MAGIC = 0x27051956;
const HEADER_SIZE = 64;
const NAME_SIZE = 32;
/** image.h: IH_OS_LINUX, IH_ARCH_ARM64, IH_TYPE_SCRIPT, IH_COMP_NONE. */
const OS_LINUX = 5;
const ARCH_ARM64 = 22;
const TYPE_SCRIPT = 6;
const COMP_NONE = 0;

export type ScriptImageOptions = {
  /** Up to 31 bytes of ASCII; shown by mkimage -l and U-Boot. */
  name: string;
  /** Seconds since the epoch written into the header (mkimage uses the build time). */
  time?: number;
};

export function encodeScriptImage(script: string, opts: ScriptImageOptions): Buffer {
  const text = Buffer.from(script, 'utf8');
  const data = Buffer.alloc(8 + text.length);
  data.writeUInt32BE(text.length, 0); // the one file's length; then 0 ends the list
  text.copy(data, 8);
  const header = Buffer.alloc(HEADER_SIZE);
  header.writeUInt32BE(MAGIC, 0);
  header.writeUInt32BE((opts.time ?? 0) >>> 0, 8);
  header.writeUInt32BE(data.length, 12);
  // load address and entry point stay 0: a script is run where `source` finds it
  header.writeUInt32BE(crc32(data) >>> 0, 24);
  header.writeUInt8(OS_LINUX, 28);
  header.writeUInt8(ARCH_ARM64, 29);
  header.writeUInt8(TYPE_SCRIPT, 30);
  header.writeUInt8(COMP_NONE, 31);
  const name = Buffer.from(opts.name.replace(/[^\x20-\x7e]/g, '?'), 'ascii').subarray(0, NAME_SIZE - 1);
  name.copy(header, 32);
  header.writeUInt32BE(crc32(header) >>> 0, 4); // computed with its own field still 0
  return Buffer.concat([header, data]);
}

/** The script text back out of an image, or why it is not one (for tests and diagnostics). */
export function decodeScriptImage(image: Buffer): { ok: true; name: string; script: string } | { ok: false; reason: string } {
  if (image.length < HEADER_SIZE + 8) return { ok: false, reason: 'shorter than a header' };
  if (image.readUInt32BE(0) !== MAGIC) return { ok: false, reason: 'bad magic' };
  const header = Buffer.from(image.subarray(0, HEADER_SIZE));
  const hcrc = header.readUInt32BE(4);
  header.writeUInt32BE(0, 4);
  if (crc32(header) >>> 0 !== hcrc) return { ok: false, reason: 'bad header CRC' };
  const size = image.readUInt32BE(12);
  const data = image.subarray(HEADER_SIZE, HEADER_SIZE + size);
  if (data.length !== size) return { ok: false, reason: 'truncated' };
  if (crc32(data) >>> 0 !== image.readUInt32BE(24)) return { ok: false, reason: 'bad data CRC' };
  if (image.readUInt8(30) !== TYPE_SCRIPT) return { ok: false, reason: 'not a script image' };
  const len = data.readUInt32BE(0);
  if (data.readUInt32BE(4) !== 0 || 8 + len > data.length) return { ok: false, reason: 'not a one-file script' };
  const name = image.subarray(32, 64).toString('ascii').replace(/\0.*$/s, '');
  return { ok: true, name, script: data.subarray(8, 8 + len).toString('utf8') };
}
