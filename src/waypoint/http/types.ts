// What the waypoint's HTTP core is given: who and what each accepted connection is for (ConnectionMeta),
// and what it works with (ProxyDeps: the route table, endpoints, the upstream connector, metrics, logs).

import type { Duplex } from 'node:stream';
import type { HTTPFaultResource } from '../../config/index.ts';
import type { Logger } from '../../log/index.ts';
import type { RequestMetrics, RequestSettings, RequestTracer } from '../../telemetry/index.ts';
import type { BackendRef, RouteTable } from '../route-types.ts';
import type { OriginationTls, ResolvedTrafficPolicy } from '../traffic-policy/index.ts';
import type { Headers } from './headers.ts';
import type { UpstreamExchange, UpstreamHead } from './upstream.ts';

/** Workload labels as Istio's metrics name them; any left out is written `unknown`. */
export interface WorkloadLabels {
  workload?: string;
  namespace?: string;
  app?: string;
  version?: string;
  canonicalService?: string;
  canonicalRevision?: string;
  cluster?: string;
}

/** The client side of a connection, as the ztunnel's HBONE tunnel told the waypoint. */
export interface SourceMeta extends WorkloadLabels {
  /** The client's SPIFFE id (its mTLS identity), e.g. `spiffe://cluster.local/ns/shop/sa/web`. */
  principal: string;
  /** The client's IP for policy (`source.ip`): its workload address when the tunnel proves it, else the peer's. */
  ip?: string;
}

/**
 * The `service` of a connection addressed to a workload rather than a Service (a waypoint for
 * `workload` or `all`): no route attaches to it, so it goes to that workload itself. `@` cannot begin a
 * `namespace/name` key; an IPv6 address's colons are written `_` (keys are split on `:`).
 */
export const WORKLOAD_TARGET = '@';

export function workloadTarget(address: string): string {
  return `${WORKLOAD_TARGET}${address.replaceAll(':', '_')}`;
}

/** The address a `workloadTarget` key names, or undefined for a Service key. */
export function workloadTargetAddress(service: string): string | undefined {
  return service.startsWith(WORKLOAD_TARGET) ? service.slice(1).replaceAll('_', ':') : undefined;
}

/**
 * One accepted CONNECT stream: the Service port it was sent to (the *logical* destination), the protocol
 * that port declares, and who sent it.
 */
export interface ConnectionMeta {
  /** The Service asked for, `namespace/name`. */
  service: string;
  /** The Service port asked for (the original destination's port). */
  port: number;
  /**
   * The port's protocol (Service `appProtocol` / port name): `http` serves HTTP/1.1, `http2` and `grpc`
   * serve h2c (prior knowledge), `auto` sniffs the first bytes (HTTP/2 preface, an HTTP/1 request line,
   * anything else is passed through as TCP to the service itself).
   */
  protocol: 'http' | 'http2' | 'grpc' | 'auto';
  source: SourceMeta;
  /** The address the tunnel was for: the Service's VIP, or the workload's own address (`destination.ip`). */
  address?: string;
  /**
   * The Service's own labels for metrics; `hostname` defaults to `<name>.<namespace>.svc.cluster.local`.
   * At a sidecar, coming in, also the workload it serves (the destination of every request, even one
   * refused before an endpoint was chosen) and its identity.
   */
  destination?: { hostname?: string; cluster?: string; workload?: WorkloadLabels; principal?: string };
  /** The client's address as the tunnel reported it, for the access log. */
  peerAddress?: string;
  /**
   * The port policy matches as `destination.port` when it is not `port`: at a sidecar, the workload's own
   * port (Istio's sidecar matches the port the application listens on, not the Service's).
   */
  policyPort?: number;
  /** How the client reached the proxy (`connection_security_policy` coming in); default mutual TLS (HBONE). */
  security?: 'mutual_tls' | 'none';
}

/** One backend address (the *endpoint*): where `connect` opens a tunnel to, and whose it is. */
export interface Endpoint {
  /** An IP address; for a ServiceEntry's DNS endpoint, the name, resolved when a connection is opened. */
  address: string;
  port: number;
  /**
   * The endpoint's SPIFFE id, which the connector verifies over HBONE; also `destination_principal`.
   * Undefined: the endpoint is outside the mesh (a ServiceEntry's), reached directly, in plain TCP or
   * over the TLS that `tls` says the waypoint originates.
   */
  identity?: string;
  /** `address` is a name to resolve (a ServiceEntry with resolution DNS). */
  resolve?: boolean;
  /** TLS the waypoint originates to this endpoint outside the mesh (DestinationRule `tls` SIMPLE/MUTUAL). */
  tls?: OriginationTls;
  /** The host an originated TLS names when no request does (a TCP connection): the ServiceEntry's. */
  host?: string;
  /**
   * The HBONE tunnel's authority when not `address:port`: a sidecar sends a backend Service that uses a
   * waypoint to a replica of it (`address`), asking for the Service's `VIP:port`.
   */
  authority?: string;
  labels?: WorkloadLabels;
}

/** How a connection to an endpoint is opened, beyond where: for originated TLS, the name and ALPN. */
export interface ConnectOptions {
  /** The SNI (and the name verified) when the rule sets none: the request's host. */
  serverName?: string;
  /** ALPN to offer: `h2` for an HTTP/2 upstream. */
  alpn?: string[];
}

/** One request (or a connection passed through as TCP) as the request gate sees it. */
export interface GateRequest {
  method: string;
  /** Path and query, normalized. */
  path: string;
  authority: string;
  headers: Headers;
  meta: ConnectionMeta;
  /** `namespace/name` of the route that matched, when one did. */
  route?: string;
  /** A connection passed through as TCP: HTTP attributes are unknown (policy fails closed on them). */
  tcp?: boolean;
}

/** A local answer the gate gives instead of forwarding (401, 403, 429...). */
export interface GateReply {
  status: number;
  body: string;
  /** Envoy's response flag (`UAEX`, `RL`, or `-`). */
  flags: string;
  headers: Headers;
  /** Envoy's response code details (`rbac_access_denied_matched_policy[...]`), for the access log. */
  details?: string;
}

export interface GateVerdict {
  reply?: GateReply;
  /** The request headers to send upstream instead of the client's (JWT outputs, an authorizer's additions). */
  headers?: Headers;
  /** The request target to route and send instead (JWT authentication removed a token from the query). */
  path?: string;
  /** Added to the response the client gets (rate-limit headers, an authorizer's additions). */
  responseHeaders?: Headers;
  /** What the access log says of the gate's decisions (policy, audit, dry-run hits). */
  log?: Record<string, unknown>;
}

/** What the gate may send through (an external authorizer in the mesh): the proxy's upstream connections. */
export interface GateUpstream {
  request(endpoint: Endpoint, head: UpstreamHead): UpstreamExchange;
}

/**
 * Request-level policy ahead of every request's forwarding, in Envoy's filter order: JWT authentication,
 * CUSTOM (an external authorizer), DENY and ALLOW authorization, rate limits. Returns undefined
 * synchronously when nothing binds the request, so unpoliced traffic pays nothing.
 */
export interface RequestGate {
  admit(req: GateRequest, upstream: GateUpstream): GateVerdict | Promise<GateVerdict> | undefined;
}

export interface ProxyDeps {
  /** Request-level policy (authentication, authorization, rate limits); none: every request passes. */
  gate?: RequestGate;
  /** The tracer and its settings for requests on this connection, when a Telemetry turns tracing on. */
  tracing?: (meta: ConnectionMeta) => { tracer: RequestTracer; settings: RequestSettings } | undefined;
  /** Whether requests on this connection are written to the access log (Telemetry); default yes. */
  accessLogging?: (meta: ConnectionMeta) => boolean;
  /** The current route table (read per request, so a new configuration applies to the next request). */
  routes: () => RouteTable;
  /** The HTTPFault a route's ExtensionRef filter names (`ambit.dev/v1alpha1`), if it exists. */
  faults?: (namespace: string, name: string) => HTTPFaultResource | undefined;
  /** The endpoints of a backend Service port that may take traffic now (healthy); empty: none. */
  endpoints: (backend: BackendRef) => readonly Endpoint[];
  /**
   * Opens a byte stream to `endpoint` (an HBONE tunnel under the waypoint's identity; to an endpoint
   * outside the mesh, TCP or originated TLS); rejects when it cannot (the proxy answers 503 `UF`).
   * Aborting `signal` abandons the attempt.
   */
  connect: (endpoint: Endpoint, signal: AbortSignal, opts?: ConnectOptions) => Promise<Duplex>;
  metrics: RequestMetrics;
  /** Who reports the request metrics: `waypoint` (default); a sidecar is `source` going out, `destination` coming in. */
  reporter?: 'waypoint' | 'source' | 'destination';
  log: Logger;
  /** Where the access log goes; default the `access` component logger. */
  accessLog?: Logger;
  /** In [0, 1): weights and mirror fractions. Default Math.random. */
  random?: () => number;
  /** The Service's hostname for `destination_service`; default `<name>.<namespace>.svc.cluster.local`. */
  serviceHost?: (service: string) => string;
  /** How long `auto` waits for the first bytes before it treats the connection as TCP. Default 5000 ms. */
  sniffTimeoutMs?: number;
  /** How long an upstream connect may take. Default 10000 ms (Envoy's and Istio's connect_timeout). */
  connectTimeoutMs?: number;
  /**
   * The DestinationRule traffic policy of a backend (load balancer, pool limits, outlier detection);
   * undefined: Istio's defaults (LEAST_REQUEST, no limits, no outlier detection). Read per request.
   */
  trafficPolicy?: (backend: BackendRef) => ResolvedTrafficPolicy | undefined;
  /** A monotonic clock in ms, for outlier detection. Default performance.now. */
  now?: () => number;
}
