// Retransmission timeout estimator (Jacobson/Karels, as TCP does in RFC 6298), per transfer.
// A LAN round trip is well under a millisecond, so a lost block should cost tens of milliseconds,
// not the fixed 1-5 s that classic TFTP servers wait. Samples only come from blocks sent once
// (Karn's rule).
//
// The estimate is bounded by maxMs (the client's `timeout` option). Consecutive timeouts then
// double it, up to backoffCapMs, which may exceed maxMs on purpose: some clients (atftp) re-ACK
// only when their own timer fires, and they restart that timer on every packet they receive, so a
// server that keeps retransmitting faster than the client's timeout would starve it forever.

export type RtoBounds = { initialMs: number; minMs: number; maxMs: number; backoffCapMs: number };

export class RtoEstimator {
  private srtt: number | undefined;
  private rttvar = 0;
  private backoff = 1;
  private readonly bounds: RtoBounds;

  constructor(bounds: RtoBounds) {
    this.bounds = bounds;
  }

  /** A round-trip measurement, in ms, from a packet that was not retransmitted. */
  sample(rttMs: number): void {
    if (this.srtt === undefined) {
      this.srtt = rttMs;
      this.rttvar = rttMs / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rttMs);
      this.srtt = 0.875 * this.srtt + 0.125 * rttMs;
    }
    this.backoff = 1;
  }

  /** The timer has fired: wait longer next time. */
  expired(): void {
    this.backoff = Math.min(this.backoff * 2, 1 << 16);
  }

  /** Current timeout in ms, within [minMs, maxMs]. */
  get timeoutMs(): number {
    const estimate = this.srtt === undefined ? this.bounds.initialMs : this.srtt + 4 * this.rttvar;
    const base = Math.min(this.bounds.maxMs, Math.max(this.bounds.minMs, estimate));
    return Math.round(Math.min(this.bounds.backoffCapMs, base * this.backoff));
  }

  get smoothedRttMs(): number | undefined {
    return this.srtt;
  }
}
