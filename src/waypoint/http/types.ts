// What the waypoint's HTTP core is given: who and what each accepted connection is for (ConnectionMeta),
// and what it works with (ProxyDeps: the route table, endpoints, the upstream connector, metrics, logs).

import type { Duplex } from 'node:stream';
import type { HTTPFaultResource } from '../../config/index.ts';
import type { Logger } from '../../log/index.ts';
import type { RequestMetrics } from '../../telemetry/index.ts';
import type { BackendRef, RouteTable } from '../route-types.ts';
import type { ResolvedTrafficPolicy } from '../traffic-policy/index.ts';

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
  /** The Service's own labels for metrics; `hostname` defaults to `<name>.<namespace>.svc.cluster.local`. */
  destination?: { hostname?: string; cluster?: string };
  /** The client's address as the tunnel reported it, for the access log. */
  peerAddress?: string;
}

/** One backend address (the *endpoint*): where `connect` opens a tunnel to, and whose it is. */
export interface Endpoint {
  address: string;
  port: number;
  /** The endpoint's SPIFFE id, which the connector verifies; also `destination_principal`. */
  identity: string;
  labels?: WorkloadLabels;
}

export interface ProxyDeps {
  /** The current route table (read per request, so a new configuration applies to the next request). */
  routes: () => RouteTable;
  /** The HTTPFault a route's ExtensionRef filter names (`ambit.dev/v1alpha1`), if it exists. */
  faults?: (namespace: string, name: string) => HTTPFaultResource | undefined;
  /** The endpoints of a backend Service port that may take traffic now (healthy); empty: none. */
  endpoints: (backend: BackendRef) => readonly Endpoint[];
  /**
   * Opens a byte stream to `endpoint` (an HBONE tunnel under the waypoint's identity); rejects when it
   * cannot (the proxy answers 503 `UF`). Aborting `signal` abandons the attempt.
   */
  connect: (endpoint: Endpoint, signal: AbortSignal) => Promise<Duplex>;
  metrics: RequestMetrics;
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
