// A token bucket per key (a source address): `rate` events per `perMs`, refilled continuously.
// The table of keys is bounded, because the keys are what an attacker chooses.

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly rate: number;
  private readonly perMs: number;
  private readonly now: () => number;
  private readonly maxKeys: number;

  constructor(rate: number, perMs: number, opts: { now?: () => number; maxKeys?: number } = {}) {
    this.rate = rate;
    this.perMs = perMs;
    this.now = opts.now ?? (() => Date.now());
    this.maxKeys = opts.maxKeys ?? 10_000;
  }

  /** Whether take(`key`) would succeed now; spends nothing (and adds no key). */
  available(key: string): boolean {
    const b = this.buckets.get(key);
    const tokens = b ? Math.min(this.rate, b.tokens + ((this.now() - b.at) / this.perMs) * this.rate) : this.rate;
    return tokens >= 1;
  }

  /** Spend one token for `key`; false when its bucket is empty. */
  take(key: string): boolean {
    const t = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.prune(t);
      b = { tokens: this.rate, at: t };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.rate, b.tokens + ((t - b.at) / this.perMs) * this.rate);
      b.at = t;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Drop full buckets (keys idle long enough to have refilled), then the oldest if still too many. */
  private prune(t: number): void {
    for (const [k, b] of this.buckets) if (t - b.at >= this.perMs) this.buckets.delete(k);
    for (const k of this.buckets.keys()) {
      if (this.buckets.size < this.maxKeys) break;
      this.buckets.delete(k);
    }
  }
}
