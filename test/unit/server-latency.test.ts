// bench/server-latency.ts reads a quantile from Genesis's request-duration histogram as
// Prometheus's histogram_quantile() does; the figures here are the ones promtool computed for the
// same buckets (test/fixtures/prometheus/genesis-alerts.test.yaml: 4.875 s).

import { describe, expect, it } from 'vitest';
import { samples } from '../../bench/prometheus-text.ts';
import { bucketsOf, eventLoopDelay, latencyText, quantile } from '../../bench/server-latency.ts';

const TEXT = samples([
  '# TYPE genesis_http_request_duration_seconds histogram',
  'genesis_http_request_duration_seconds_bucket{le="1",route="/ipxe/node",method="GET"} 0',
  'genesis_http_request_duration_seconds_bucket{le="2.5",route="/ipxe/node",method="GET"} 0',
  'genesis_http_request_duration_seconds_bucket{le="5",route="/ipxe/node",method="GET"} 10',
  'genesis_http_request_duration_seconds_bucket{le="+Inf",route="/ipxe/node",method="GET"} 10',
  'genesis_http_request_duration_seconds_bucket{le="0.001",route="/boot.ipxe",method="GET"} 90',
  'genesis_http_request_duration_seconds_bucket{le="0.1",route="/boot.ipxe",method="GET"} 99',
  'genesis_http_request_duration_seconds_bucket{le="+Inf",route="/boot.ipxe",method="GET"} 100',
  'genesis_http_request_duration_seconds_bucket{le="0.001",route="/boot.ipxe",method="HEAD"} 7',
  // Another label order reads the same.
  'genesis_http_request_duration_seconds_bucket{method="GET",route="/later",le="+Inf"} 3',
].join('\n'));

describe('bench/server-latency.ts', () => {
  it('reads one route\'s GET buckets in order of their bound', () => {
    expect(bucketsOf(TEXT, '/ipxe/node')).toEqual([[1, 0], [2.5, 0], [5, 10], [Infinity, 10]]);
    expect(bucketsOf(TEXT, '/boot.ipxe')).toEqual([[0.001, 90], [0.1, 99], [Infinity, 100]]);
    expect(bucketsOf(TEXT, '/later')).toEqual([[Infinity, 3]]);
    expect(bucketsOf(TEXT, '/nothing')).toEqual([]);
  });

  it('interpolates inside the bucket as histogram_quantile() does', () => {
    expect(quantile(bucketsOf(TEXT, '/ipxe/node'), 0.95)).toEqual({ q: 0.95, ms: 4875, bucket: [2500, 5000] });
    // 90 of 100 in the first bucket: its p50 lies inside it, from 0.
    expect(quantile(bucketsOf(TEXT, '/boot.ipxe'), 0.5)?.ms).toBeCloseTo((0.5 * 100 / 90) * 1, 6);
    expect(quantile(bucketsOf(TEXT, '/boot.ipxe'), 0.95)).toMatchObject({ bucket: [1, 100] });
    // In +Inf: the highest finite bound, as Prometheus says.
    expect(quantile(bucketsOf(TEXT, '/boot.ipxe'), 0.999)).toEqual({ q: 0.999, ms: 100, bucket: [100, Infinity] });
    expect(quantile([], 0.5)).toBeUndefined();
  });

  it('prints each quantile with its bucket', () => {
    const l = { route: '/ipxe/node', n: 10, quantiles: [quantile(bucketsOf(TEXT, '/ipxe/node'), 0.95)!] };
    expect(latencyText(l)).toBe('p95 4875 ms (2500–5000)');
  });

  it('reads how late the event loop ran, in ms, from prom-client\'s gauges; nothing without them', () => {
    const text = samples(['genesis_process_nodejs_eventloop_lag_p99_seconds 0.0381', 'genesis_process_nodejs_eventloop_lag_max_seconds 0.1224'].join('\n'));
    const delay = eventLoopDelay(text)!;
    expect(delay.p99Ms).toBeCloseTo(38.1, 6);
    expect(delay.maxMs).toBeCloseTo(122.4, 6);
    expect(eventLoopDelay(TEXT)).toBeUndefined();
  });
});
