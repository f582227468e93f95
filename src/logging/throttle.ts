// Refusals of unauthenticated input (malformed packets, bad tokens, strangers) are logged at
// debug each, and summarised at warn at most once per interval per kind and source: a flood
// cannot turn into a flood of log lines (one 65 KB filename per packet once made 196 MB of log
// from 33 MB of traffic). What the sender controls is never echoed beyond a short escaped prefix.

import type { Logger } from 'pino';

/** At most `max` characters of attacker-controlled text, control and non-ASCII bytes escaped. */
export function sample(value: unknown, max = 48): string {
  const s = typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('latin1') : String(value);
  const cut = s.length > max ? s.slice(0, max) : s;
  const escaped = cut.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0').slice(-2)}`);
  return s.length > max ? `${escaped}... (${s.length} chars)` : escaped;
}

type Entry = { count: number; first: Record<string, unknown>; warnedAt: number };

export type ThrottleOptions = {
  intervalMs?: number;
  now?: () => number;
  maxKeys?: number;
  /** The summary's level: warn for refusals; error for failures of our own (a full disk). */
  level?: 'warn' | 'error';
};

export class LogThrottle {
  private readonly log: Logger;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly maxKeys: number;
  private readonly level: 'warn' | 'error';
  private readonly entries = new Map<string, Entry>();

  constructor(log: Logger, opts: ThrottleOptions = {}) {
    this.log = log;
    this.intervalMs = opts.intervalMs ?? 60_000;
    this.now = opts.now ?? (() => Date.now());
    // Sources are attacker-chosen too: the table of them is bounded.
    this.maxKeys = opts.maxKeys ?? 1000;
    this.level = opts.level ?? 'warn';
  }

  /**
   * One refusal of `kind` from `source`. `detail` must already be short and safe (use sample());
   * it goes to debug every time, and into the warn summary as the first example of its interval.
   */
  note(kind: string, source: string, detail: Record<string, unknown>, message: string): void {
    this.log.debug({ kind, source, ...detail }, message);
    const key = `${kind} ${source}`;
    const t = this.now();
    let e = this.entries.get(key);
    if (!e) {
      if (this.entries.size >= this.maxKeys) this.flushOldest(t);
      e = { count: 0, first: detail, warnedAt: -Infinity };
      this.entries.set(key, e);
    }
    e.count++;
    if (t - e.warnedAt >= this.intervalMs) {
      // The first line about a source is the refusal itself; later ones sum up the interval.
      const said = e.warnedAt === -Infinity ? message : `${message} (summary: ${e.count} since the last one)`;
      this.log[this.level]({ kind, source, count: e.count, example: e.first, intervalSeconds: this.intervalMs / 1000 }, said);
      e.count = 0;
      e.first = detail;
      e.warnedAt = t;
    }
  }

  private flushOldest(t: number): void {
    for (const [key, e] of this.entries) {
      if (t - e.warnedAt >= this.intervalMs || this.entries.size >= this.maxKeys) this.entries.delete(key);
      if (this.entries.size < this.maxKeys / 2) return;
    }
  }
}
