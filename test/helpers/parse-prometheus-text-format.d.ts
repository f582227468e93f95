// Types for the test-only Prometheus text parser (the package ships none).
declare module 'parse-prometheus-text-format' {
  export type Sample = { value: string; labels?: Record<string, string> };
  export type MetricFamily = { name: string; help: string; type: string; metrics: Sample[] };
  export default function parsePrometheusTextFormat(text: string): MetricFamily[];
}
