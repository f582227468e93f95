// Retransmission timeout estimator (Jacobson/Karels, as TCP does in RFC 6298), per transfer.
// A LAN round trip is well under a millisecond, so a lost block should cost tens of milliseconds,
// not the fixed 1-5 s that classic TFTP servers wait. Samples only come from blocks sent once
// (Karn's rule).
//
// The estimate is bounded by maxMs (the client's `timeout` option). Consecutive timeouts then
// double it, up to backoffCapMs, which may exceed maxMs on purpose: some clients (atftp) re-ACK
// only when their own timer fires, and they restart that timer on every packet they receive, so a
// server that keeps retransmitting faster than the client's timeout would starve it forever.
//
// A valid sample ends the backoff, as in TCP; so does progress, down to a cap the caller names
// (progress()). Samples are scarce on a lossy link: every window with a loss in it voids its own
// (Karn), and U-Boot acknowledges off our window ends after a gap, so none of its ACKs may match a
// sample. The backoff then grew across the whole transfer until our timer outlasted U-Boot's own
// 1 s one, and U-Boot, which allows itself a fixed number of timeouts per file, gave a 30 MB
// kernel up at 10% loss (docs/tftp.md).

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

  /**
   * An ACK advanced the transfer: the stall's backoff goes on only as far as keeps the timer
   * within `capMs` (a share of the client's own timer). Not all of it: a client whose round trip
   * grew past our timer keeps the backoff that lets a clean sample through, up to that cap.
   */
  progress(capMs: number): void {
    if (this.backoff === 1) return; // every ACK of a transfer without a loss
    const base = this.baseMs();
    while (this.backoff > 1 && base * this.backoff > capMs) this.backoff /= 2;
  }

  /** Current timeout in ms: the estimate within [minMs, maxMs], backed off up to backoffCapMs. */
  get timeoutMs(): number {
    return Math.round(Math.min(this.bounds.backoffCapMs, this.baseMs() * this.backoff));
  }

  private baseMs(): number {
    const estimate = this.srtt === undefined ? this.bounds.initialMs : this.srtt + 4 * this.rttvar;
    return Math.min(this.bounds.maxMs, Math.max(this.bounds.minMs, estimate));
  }

  get smoothedRttMs(): number | undefined {
    return this.srtt;
  }
}
