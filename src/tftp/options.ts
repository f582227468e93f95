// Option negotiation (RFC 2347, 2348, 2349, 7440). Pure: the request's options and the server's
// limits in, the values the transfer will use and the OACK to send out.

export type TftpLimits = {
  /** Largest blksize the server agrees to. 1468 keeps a block plus headers inside a 1500-byte Ethernet frame. */
  maxBlksize: number;
  /** Largest windowsize the server agrees to; bounds the memory a transfer holds for retransmission. */
  maxWindowsize: number;
  /**
   * Largest `timeout` (seconds) the server agrees to. A client asking for 255 s would otherwise
   * hold a transfer slot for 255 s × retries (over half an hour) without answering. Default 10.
   */
  maxTimeoutS?: number;
};

export type Negotiated = {
  blksize: number;
  windowsize: number;
  /** Upper bound for the retransmission timer in ms: the client's `timeout` option, else the server default. */
  timeoutMs: number | undefined;
  /** The options to acknowledge; empty means no OACK (plain RFC 1350 transfer). */
  oack: Map<string, string>;
};

const DEFAULT_BLKSIZE = 512;

function parseIntStrict(v: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(v)) return undefined;
  return Number(v);
}

/**
 * Decide the transfer parameters. Unknown options and options with invalid values are ignored
 * (RFC 2347: the server simply omits them from the OACK), never an error.
 * `size` is the file size, reported for `tsize`.
 */
export function negotiate(requested: Map<string, string>, limits: TftpLimits, size: number): Negotiated {
  const oack = new Map<string, string>();
  let blksize = DEFAULT_BLKSIZE;
  let windowsize = 1;
  let timeoutMs: number | undefined;

  const b = requested.get('blksize');
  if (b !== undefined) {
    const n = parseIntStrict(b);
    // RFC 2348: valid range 8..65464; the server may answer with a smaller value.
    if (n !== undefined && n >= 8) {
      blksize = Math.min(n, 65464, limits.maxBlksize);
      oack.set('blksize', String(blksize));
    }
  }
  const t = requested.get('timeout');
  if (t !== undefined) {
    const n = parseIntStrict(t);
    // RFC 2349: 1..255 seconds. The server must echo the value unchanged or leave it out: a value
    // over the server's limit is left out, and the client uses its own timer against ours.
    if (n !== undefined && n >= 1 && n <= Math.min(255, limits.maxTimeoutS ?? 10)) {
      timeoutMs = n * 1000;
      oack.set('timeout', t);
    }
  }
  if (requested.has('tsize')) {
    // In a read request the client sends 0; the server answers with the size.
    oack.set('tsize', String(size));
  }
  const w = requested.get('windowsize');
  if (w !== undefined) {
    const n = parseIntStrict(w);
    // RFC 7440: 1..65535; the server may answer with a smaller value.
    if (n !== undefined && n >= 1 && n <= 65535) {
      windowsize = Math.min(n, limits.maxWindowsize);
      oack.set('windowsize', String(windowsize));
    }
  }
  return { blksize, windowsize, timeoutMs, oack };
}
