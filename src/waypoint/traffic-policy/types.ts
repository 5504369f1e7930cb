// What a DestinationRule's trafficPolicy means once resolved for one backend Service port: the load
// balancer, the connection pool limits (Envoy's circuit breakers) and outlier detection, with Istio's
// and Envoy's defaults filled in, so the HTTP core reads numbers, never optional fields.

/** Where a consistent hash takes its key from (exactly one, as the schema enforces). */
export type HashKey =
  | { kind: 'header'; name: string }
  /** `ttlSeconds` set: the proxy generates the cookie when the request has none (0: a session cookie). */
  | { kind: 'cookie'; name: string; path?: string; ttlSeconds?: number }
  | { kind: 'query'; name: string }
  | { kind: 'sourceIp' };

export type LoadBalancerPolicy =
  | { kind: 'ROUND_ROBIN' }
  /** Envoy's power of two choices (`choice_count` 2) over the active requests per endpoint. */
  | { kind: 'LEAST_REQUEST' }
  | { kind: 'RANDOM' }
  /** Envoy's ring hash; MAGLEV is served by the same ring, sized by Maglev's table size. */
  | { kind: 'RING_HASH'; key: HashKey; minimumRingSize: number };

/** Envoy's circuit breaker thresholds for one backend (cluster); Infinity: no limit (Istio's default). */
export interface PoolLimits {
  /** `tcp.maxConnections`: HTTP/1 connections open to all the backend's endpoints together. */
  maxConnections: number;
  /** `http.http1MaxPendingRequests`: requests waiting for a connection. */
  maxPendingRequests: number;
  /** `http.http2MaxRequests`: requests in flight (HTTP/1 and HTTP/2 alike). */
  maxRequests: number;
  /** `http.maxRequestsPerConnection`: an HTTP/1 connection is closed after this many; Infinity: never. */
  maxRequestsPerConnection: number;
  /** `http.maxRetries`: retries in flight. */
  maxRetries: number;
}

/** Outlier detection as Istio configures Envoy's (success-rate ejection disabled). */
export interface OutlierPolicy {
  /** Consecutive 5xx (and local failures mapped to 503/504) before ejection; 0: off. */
  consecutive5xx: number;
  /** Consecutive 502/503/504 (and connect failures) before ejection; 0: off. */
  consecutiveGateway: number;
  intervalMs: number;
  baseEjectionMs: number;
  /** Envoy's `max_ejection_time` (Istio does not expose it): 300 s, or the base time when larger. */
  maxEjectionMs: number;
  maxEjectionPercent: number;
  /** Envoy's panic threshold: below this share of usable endpoints, all endpoints are used. 0: never. */
  minHealthPercent: number;
}

/**
 * A DestinationRule's `tls` where the waypoint itself originates TLS: to an endpoint outside the mesh (a
 * ServiceEntry's). SIMPLE verifies the server; MUTUAL also presents a client certificate. Mesh endpoints
 * are always reached over HBONE, whatever the rule says.
 */
export interface OriginationTls {
  mode: 'SIMPLE' | 'MUTUAL';
  /** The SNI to send; undefined: the request's host (Envoy's auto_sni), else the ServiceEntry's host. */
  sni?: string;
  /** Files on the waypoint's host: the roots to verify with (default: the system's), and MUTUAL's pair. */
  caCertificates?: string;
  clientCertificate?: string;
  privateKey?: string;
  /** Names one of which the server's certificate must carry; undefined: the SNI (auto SAN validation). */
  subjectAltNames?: string[];
  insecureSkipVerify: boolean;
  /** A Kubernetes Secret's name: Ambit has no secret store, so a rule naming one fails its connections. */
  credentialName?: string;
}

export interface ResolvedTrafficPolicy {
  /** `namespace/name` of the DestinationRule it came from. */
  rule: string;
  loadBalancer: LoadBalancerPolicy;
  pool: PoolLimits;
  /** Undefined: no outlier detection (the rule sets none). */
  outlier?: OutlierPolicy;
  /** Undefined: the rule originates no TLS (unset, DISABLE, or ISTIO_MUTUAL, which HBONE already is). */
  tls?: OriginationTls;
  /** Equal for equal policies: per-backend state is rebuilt only when this changes. */
  fingerprint: string;
}
