// Kernel messages as Talos sends them with `talos.logging.kernel=tcp://...` or a KmsgLogConfig
// document: newline-delimited JSON, one object per message ({"msg", "talos-time",
// "talos-level", "facility", "seq", "clock", "priority"}). Pure: splitting a TCP stream into
// lines and reading one line; the socket lives in receiver.ts.

import type { KernelLogLine } from '../domain/node.ts';

/** One line past this is not a kernel message; it is skipped up to its newline. */
export const MAX_LINE_BYTES = 16 * 1024;
const MAX_MSG_CHARS = 4096;

export type SplitResult = { lines: string[]; tooLong: number };

/**
 * Splits a byte stream into lines without ever holding more than one line's worth: a line that
 * grows past the limit is counted and dropped, and reading resumes after its newline.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;
  private readonly max: number;

  constructor(max = MAX_LINE_BYTES) {
    this.max = max;
  }

  push(chunk: Buffer): SplitResult {
    const out: SplitResult = { lines: [], tooLong: 0 };
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const piece = chunk.subarray(start, nl === -1 ? chunk.length : nl);
      if (!this.skipping) {
        this.parts.push(piece);
        this.size += piece.length;
        if (this.size > this.max) {
          out.tooLong++;
          this.skipping = true;
          this.parts = [];
          this.size = 0;
        }
      }
      if (nl === -1) break;
      if (!this.skipping) {
        const line = Buffer.concat(this.parts).toString('utf8').replace(/\r$/, '');
        if (line.trim()) out.lines.push(line);
      }
      this.parts = [];
      this.size = 0;
      this.skipping = false;
      start = nl + 1;
    }
    return out;
  }
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** One line of Talos's JSON-lines format; null when it is not that. */
export function parseKernelLogLine(line: string): KernelLogLine | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const msg = str(o['msg']);
  if (msg === null) return null;
  const { msg: _m, 'talos-time': time, 'talos-level': level, facility, ...rest } = o;
  return {
    msg: msg.length > MAX_MSG_CHARS ? msg.slice(0, MAX_MSG_CHARS) + '…' : msg,
    talosTime: str(time),
    level: str(level),
    facility: str(facility),
    fields: rest,
  };
}
