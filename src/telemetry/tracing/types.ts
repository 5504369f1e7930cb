// The request tracer's contract, free of any OpenTelemetry import so that the waypoint can name these
// types without loading the SDK (it loads it with `loadTracing()` only when some Telemetry traces).

import type { Logger } from '../../log/index.ts';
import type { CustomTag, TracingProviderRef } from './resolve.ts';

/** Request headers as Node gives them (lower-case names); the waypoint's own header maps fit it. */
export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The headers that carry a trace context; a proxy replaces all of them on the upstream request. */
export const PROPAGATION_HEADERS: readonly string[] = [
  'traceparent',
  'tracestate',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
];

/** Who this waypoint is, as Istio tags every span its proxies report. */
export interface ProxyIdentity {
  /** `istio.canonical_service`: the waypoint's own canonical name (its Gateway's name). */
  canonicalService: string;
  /** `istio.canonical_revision`; Istio's default is `latest`. */
  canonicalRevision?: string;
  /** `istio.namespace`: the waypoint's namespace. */
  namespace: string;
  /** `istio.mesh_id`; Istio's default is `unknown`. */
  meshId?: string;
  /** `istio.cluster_id`; Istio's default is `unknown`. */
  clusterId?: string;
  /** Envoy's `node_id` tag: this replica's proxy id (e.g. `waypoint~198.18.1.5~wp-0.shop~shop.svc.cluster.local`). */
  nodeId: string;
}

export interface TracerOptions {
  provider: TracingProviderRef;
  /** The collector's address: the waypoint resolves the provider's `service` to it. */
  endpoint: { host: string; port: number };
  /** `service.name` of every span (Istio: the proxy's cluster, e.g. `waypoint.shop`). */
  serviceName: string;
  proxy: ProxyIdentity;
  /** More resource attributes (`k8s.pod.name`, …), on every span this tracer exports. */
  resourceAttributes?: Record<string, string>;
  log: Logger;
  /** Spans waiting for or in export at most; past it new spans are dropped and counted. Default 2,048. */
  maxQueueSize?: number;
  /** How long spans wait before a batch leaves (Envoy's OpenTelemetry flush interval). Default 5,000 ms. */
  flushIntervalMs?: number;
}

export interface RequestSettings {
  samplingPercentage: number;
  customTags: Readonly<Record<string, CustomTag>>;
  disableSpanReporting: boolean;
}

export interface IncomingRequest {
  method: string;
  /** The request target as sent: path and query. */
  path: string;
  /** `:authority` / `Host`, as sent (may carry a port). */
  host: string;
  headers: RequestHeaders;
  /** `HTTP/1.1`, `HTTP/2`, or Node's `1.1` / `2.0`. */
  protocol: string;
  /** The peer's address (`network.peer.address`). */
  peerAddress?: string;
}

export interface UpstreamTarget {
  /** Envoy's cluster name, as the access log and metrics write it (`outbound|80||web.shop.svc.cluster.local`). */
  cluster: string;
  /** The endpoint dialled, `ip:port` (`[ip]:port` for IPv6). */
  address: string;
}

export interface AttemptResult {
  /** The backend's status; absent when no response came. */
  status?: number;
  /** Why the attempt failed without a response (reset, timeout, refused). */
  error?: string;
}

export interface UpstreamAttempt {
  /**
   * The trace headers the upstream request carries: delete every PROPAGATION_HEADERS name from the
   * forwarded headers, then set these. With span reporting disabled these are the client's own.
   */
  headers: Record<string, string>;
  end(result: AttemptResult): void;
}

/** The workloads at either end of the request, for Istio's waypoint tags. */
export interface Peer {
  workload?: string;
  namespace?: string;
  /** SPIFFE id. */
  principal?: string;
  canonicalService?: string;
  canonicalRevision?: string;
}

export interface RequestResult {
  /** The status the client got (0 when it got none). */
  status: number;
  /** Envoy's response flags (`-` when none): `UF`, `UT`, `NR`, … */
  flags: string;
  /** The matched rule's path as written (`/api/*`): `http.route` and the span's name. Low cardinality only. */
  route?: string;
  /** The cluster the request was last sent to (`upstream_cluster`). */
  upstreamCluster?: string;
  /** The request's `x-request-id` when the waypoint set one (Envoy's `guid:x-request-id` tag). */
  requestId?: string;
  source?: Peer;
  destination?: Peer;
}

export interface RequestSpan {
  /** The trace id (32 hex digits) of this request, also when it is not sampled; empty when disabled. */
  readonly traceId: string;
  readonly sampled: boolean;
  /** A client span per upstream attempt (retries and mirrors each get one), child of the server span. */
  startAttempt(upstream: UpstreamTarget): UpstreamAttempt;
  end(result: RequestResult): void;
}

export interface TracerStats {
  /** Spans the collector accepted. */
  exported: number;
  /** Spans never sent: the queue was full (a collector down or slow). */
  dropped: number;
  /** Spans sent and lost: the collector refused them, timed out, or could not be reached. */
  failed: number;
}

export interface RequestTracer {
  /**
   * Continues the trace the request carries (W3C `traceparent`/`tracestate`, else B3 single `b3`, else
   * B3 multi `x-b3-*`) or starts one. A parent's sampled flag decides; without one, samplingPercentage.
   * Never throws: malformed trace headers start a new trace.
   */
  startRequest(req: IncomingRequest, settings: RequestSettings): RequestSpan;
  stats(): TracerStats;
  /** Exports what is queued (bounded by the provider's timeout), then stops. */
  shutdown(): Promise<void>;
}

export interface TracingFactory {
  create(opts: TracerOptions): RequestTracer;
}
