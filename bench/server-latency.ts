// Genesis's own view of a route's latency during a bench: read from its request-duration
// histogram (GET /metrics, genesis_http_request_duration_seconds), as Prometheus's
// histogram_quantile() reads it: the bucket a quantile falls in, and a linear estimate inside it.
// The histogram times a request from routing to its last byte, so set beside a client's figure
// it splits a request's time into Genesis's handling and what came before it (the kernel's accept
// queue, the client's own loop).

import { samples, type Sample } from './prometheus-text.ts';

export type BucketQuantile = { q: number; ms: number; bucket: [number, number] };
export type ServerLatency = { route: string; n: number; quantiles: BucketQuantile[] };

/** Cumulative buckets (upper bound in seconds → count, +Inf as Infinity) of one route's GETs. */
export function bucketsOf(all: Sample[], route: string): Array<[number, number]> {
  return all
    .filter((s) => s.name === 'genesis_http_request_duration_seconds_bucket' && s.labels.route === route && s.labels.method === 'GET')
    .map((s): [number, number] => [s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), s.value])
    .sort((a, b) => a[0] - b[0]);
}

/** The q-quantile of cumulative buckets, interpolated as histogram_quantile() does; undefined with no samples. */
export function quantile(buckets: Array<[number, number]>, q: number): BucketQuantile | undefined {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return undefined;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [upper, count] of buckets) {
    if (count >= rank) {
      // In the +Inf bucket the estimate is the highest finite bound, as Prometheus gives.
      if (upper === Infinity) return { q, ms: lower * 1000, bucket: [lower * 1000, Infinity] };
      const inside = count - below;
      const at = inside === 0 ? upper : lower + (upper - lower) * ((rank - below) / inside);
      return { q, ms: at * 1000, bucket: [lower * 1000, upper * 1000] };
    }
    lower = upper;
    below = count;
  }
  return undefined;
}

/** One scrape of a running Genesis's metrics. It also restarts the event-loop delay readings (below). */
export async function scrape(baseUrl: string): Promise<Sample[]> {
  return samples(await (await fetch(`${baseUrl}/metrics`)).text());
}

/** Each route's p50, p95 and p99, from one scrape. */
export function serverLatencies(all: Sample[], routes: string[]): ServerLatency[] {
  return routes.map((route) => {
    const buckets = bucketsOf(all, route);
    const quantiles = [0.5, 0.95, 0.99].map((q) => quantile(buckets, q)).filter((x): x is BucketQuantile => x !== undefined);
    return { route, n: buckets.at(-1)?.[1] ?? 0, quantiles };
  });
}

/**
 * How late Genesis's event loop ran since the scrape before this one (prom-client's
 * monitorEventLoopDelay, 10 ms resolution, restarted at each scrape): its p99 and its longest,
 * in ms. The longest is the longest the main thread held everything else back, a request that
 * had arrived included. Undefined where the metrics do not have them.
 */
export function eventLoopDelay(all: Sample[]): { p99Ms: number; maxMs: number } | undefined {
  const value = (name: string) => all.find((s) => s.name === name)?.value;
  const p99 = value('genesis_process_nodejs_eventloop_lag_p99_seconds');
  const max = value('genesis_process_nodejs_eventloop_lag_max_seconds');
  return p99 === undefined || max === undefined ? undefined : { p99Ms: p99 * 1000, maxMs: max * 1000 };
}

/** "p95 180 ms (100–250)" for each quantile. */
export function latencyText(l: ServerLatency): string {
  const ms = (x: number) => (x === Infinity ? '∞' : x < 10 ? x.toFixed(1) : String(Math.round(x)));
  return l.quantiles.map((b) => `p${Math.round(b.q * 100)} ${ms(b.ms)} ms (${ms(b.bucket[0])}–${ms(b.bucket[1])})`).join(', ');
}
