// The waypoint's request metrics, named, labelled and bucketed as Istio's are (so existing dashboards
// and alerts work): one count, one duration and two body sizes per HTTP or gRPC request.

import { Counter, Histogram, type Registry } from 'prom-client';

/** Istio's standard label set for request metrics, in Istio's order. */
export const REQUEST_LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_cluster',
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
] as const;

export type RequestLabelName = (typeof REQUEST_LABELS)[number];

/** What a request is labelled with; a label left out is written `unknown`, as Istio does. */
export type RequestLabels = Partial<Record<RequestLabelName, string>> & {
  reporter: 'waypoint' | 'source' | 'destination';
  request_protocol: 'http' | 'grpc';
  response_code: string;
};

/**
 * Envoy's default histogram buckets, which Istio's stats filter uses for all three histograms (its
 * `istio_request_bytes_bucket` series carry `le="600000"`, a bound only this list has). Milliseconds
 * for the duration, bytes for the sizes.
 */
export const ISTIO_BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
] as const;

export interface RequestSample {
  durationMs: number;
  /** Body bytes received from the client. */
  requestBytes: number;
  /** Body bytes sent to the client. */
  responseBytes: number;
}

function complete(labels: RequestLabels): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of REQUEST_LABELS) out[l] = labels[l] || 'unknown';
  // Istio writes these three empty or `-` rather than `unknown` when they do not apply.
  out.grpc_response_status = labels.grpc_response_status ?? '';
  out.response_flags = labels.response_flags || '-';
  out.response_code = labels.response_code;
  return out;
}

export class RequestMetrics {
  private readonly requests: Counter;
  private readonly duration: Histogram;
  private readonly requestBytes: Histogram;
  private readonly responseBytes: Histogram;

  constructor(registry: Registry) {
    const labelNames = [...REQUEST_LABELS];
    const buckets = [...ISTIO_BUCKETS];
    const histogram = (name: string, help: string) =>
      new Histogram({ name, help, labelNames, buckets, registers: [registry] });
    this.requests = new Counter({
      name: 'istio_requests_total',
      help: 'Requests handled by the proxy',
      labelNames,
      registers: [registry],
    });
    this.duration = histogram('istio_request_duration_milliseconds', 'Request duration in milliseconds');
    this.requestBytes = histogram('istio_request_bytes', 'Request body size in bytes');
    this.responseBytes = histogram('istio_response_bytes', 'Response body size in bytes');
  }

  /** One finished request (or one the client gave up on: `response_code` 0, flag `DC`). */
  record(labels: RequestLabels, sample: RequestSample): void {
    const l = complete(labels);
    this.requests.inc(l);
    this.duration.observe(l, sample.durationMs);
    this.requestBytes.observe(l, sample.requestBytes);
    this.responseBytes.observe(l, sample.responseBytes);
  }
}
