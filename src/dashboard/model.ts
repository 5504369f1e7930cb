// What the dashboard's server answers on /api/…: the one definition its handlers build and its page
// reads. Every answer says where its data came from and whether it is stale, so the page can say what is
// missing instead of showing nothing.

/** The time windows the dashboard and `ambit stat` offer (a PromQL range: `rate(…[window])`). */
export const WINDOWS = ['1m', '5m', '15m', '1h'] as const;
export type Window = (typeof WINDOWS)[number];

/** One data source: reachable at the last attempt, or why not. */
export interface SourceState {
  ok: boolean;
  /** Why the last attempt failed (the source's own words, and where it was asked). */
  error?: string;
  /** When the data shown from it was read (ISO time): the oldest remembered answer standing in for a failed read, else its last answer; absent if it never answered. */
  lastOk?: string;
}

/** Carried by every answer. */
export interface Envelope {
  generatedAt: string;
  window: Window;
  sources: { control: SourceState; prometheus: SourceState & { url: string } };
  /** True when some part of the answer is the last good one, not fresh (a source failed just now). */
  stale: boolean;
  /** Plain sentences: what is missing or odd (no Prometheus data yet, a source down, a cut-off list). */
  warnings: string[];
}

export type NodeKind = 'namespace' | 'app' | 'service' | 'workload' | 'waypoint' | 'unknown';

/**
 * A node of the service graph. Namespaces and apps are boxes (compound nodes); workloads of one app with
 * several versions sit in that app's box, one node per version.
 */
export interface GraphNode {
  /** `ns:<ns>`, `app:<ns>/<app>`, `svc:<ns>/<name>`, `wl:<ns>/<name>`, `wp:<ns>/<name>`, or `unknown`. */
  id: string;
  kind: NodeKind;
  label: string;
  /** The box this node is drawn in (a namespace or app node's id). */
  parent?: string;
  namespace?: string;
  /** The workload's, service's or waypoint's own name. */
  name?: string;
  app?: string;
  version?: string;
  /** Workloads: `ambient` (its node's ztunnel), `sidecar` (its own proxy), `none` (or not in the registry). */
  mesh?: 'ambient' | 'sidecar' | 'none';
  /** Whether any traffic in the window touched it (a registered but idle node is drawn faded). */
  traffic: boolean;
  /** From its inbound edges' error and denial rates: `idle` when it received nothing. */
  health: 'healthy' | 'degraded' | 'failing' | 'idle';
}

/** How an edge's traffic was carried: mutual TLS, plaintext, or some of each. */
export type Security = 'mtls' | 'plaintext' | 'mixed';

export interface GraphEdge {
  /** `<source id>-><target id>:<protocol>`. */
  id: string;
  source: string;
  target: string;
  protocol: 'http' | 'grpc' | 'tcp';
  /** HTTP/gRPC: requests per second over the window. */
  requestsPerSecond?: number;
  /** HTTP/gRPC: the share of requests answered 5xx (HTTP) or with a non-OK gRPC status, 0..1. */
  errorRate?: number;
  /** HTTP/gRPC: the 99th percentile of request duration, ms; absent when too few requests to say. */
  p99Ms?: number;
  /** TCP: bytes per second, both directions. */
  bytesPerSecond?: number;
  /** TCP: connections opened per second. */
  connectionsPerSecond?: number;
  /** Denied per second: requests answered 403 by authorization, or connections refused (`DENY`). */
  deniedPerSecond: number;
  security: Security;
}

export interface Graph extends Envelope {
  /** The namespaces asked for (empty: all). */
  namespaces: string[];
  /** Every namespace the mesh has (the registry's and the traffic's), for a namespace picker. */
  allNamespaces: string[];
  nodes: GraphNode[];
  edges: GraphEdge[];
}

/** A series of [unix seconds, value] points. */
export type Points = Array<[number, number]>;

/** Golden signals over time, for a detail page's charts (range queries over the window). */
export interface Signals {
  /** The step between points, in seconds. */
  step: number;
  requestsPerSecond: Points;
  /** 0..1; a point only where there were requests. */
  successRate: Points;
  p50Ms: Points;
  p90Ms: Points;
  p99Ms: Points;
  /** TCP bytes per second, both directions: what the L4 mesh sees, with or without a waypoint. */
  tcpBytesPerSecond: Points;
}

/** An inbound or outbound neighbour of a service or workload, with the traffic between them. */
export interface Neighbour {
  /** The neighbour's graph node id (a detail page links to it). */
  id: string;
  kind: NodeKind;
  namespace?: string;
  name: string;
  protocol: 'http' | 'grpc' | 'tcp';
  requestsPerSecond?: number;
  errorRate?: number;
  p99Ms?: number;
  bytesPerSecond?: number;
  deniedPerSecond: number;
  security: Security;
}

/** A route's configured backend weights beside the share of requests each backend received. */
export interface RouteSplit {
  /** `<kind> <namespace>/<name>`, e.g. `HTTPRoute shop/catalog-split`. */
  route: string;
  rule: number;
  backends: Array<{
    name: string;
    namespace: string;
    weight: number;
    /** weight ÷ the rule's total weight, 0..1. */
    configuredShare: number;
    /** Of the requests to the route's service in the window, the share that reached this backend's workloads. */
    observedShare?: number;
  }>;
}

export interface ServiceDetail extends Envelope {
  kind: 'service';
  namespace: string;
  name: string;
  hostname: string;
  vips: string[];
  ports: Array<{ name?: string; port: number; targetPort: number | string }>;
  endpoints: Array<{ name: string; address: string; node?: string; enrolled: boolean }>;
  waypoint?: string;
  signals: Signals;
  inbound: Neighbour[];
  outbound: Neighbour[];
  routes: RouteSplit[];
  /** What `ambit describe service` says, line by line. */
  explanation: string[];
}

export interface CertificateInfo {
  identity: string;
  serial: string;
  notBefore?: string;
  notAfter: string;
  /** Seconds until notAfter (negative once expired). */
  expiresInSeconds: number;
  /** The node whose ztunnel holds it, or where the sidecar that holds it runs. */
  node: string;
  /** The sidecar pod (`namespace/name`) that holds it, when a sidecar does rather than the node's ztunnel. */
  sidecar?: string;
}

export interface WorkloadDetail extends Envelope {
  kind: 'workload';
  namespace: string;
  name: string;
  workloadKind: string;
  identity: string;
  node?: string;
  addresses: string[];
  mesh: 'ambient' | 'sidecar' | 'none';
  waypoint?: string;
  services: string[];
  mtls: string;
  signals: Signals;
  inbound: Neighbour[];
  outbound: Neighbour[];
  /** What `ambit describe workload` says, line by line. */
  explanation: string[];
  /** The certificate the workload's node holds for it; absent when none is held (or unreadable). */
  certificate?: CertificateInfo;
}

/** What may be wrong with the mesh itself. */
export interface MeshHealth extends Envelope {
  replicas: Array<{
    replica: string;
    grpc: string;
    writable: boolean;
    duties: string[];
    proxies: number;
    at: string;
    error?: string;
  }>;
  proxies: Array<{
    name: string;
    kind: string;
    state: string;
    controlPlane?: string;
    connectedAt: string;
    /** NACKed types with the proxy's error text. */
    nacks: Array<{ type: string; version: string; error: string }>;
  }>;
  /** Workload certificates held by ztunnels that expire within `nearExpirySeconds`, soonest first. */
  certificates: CertificateInfo[];
  nearExpirySeconds: number;
  /** Resources with a condition that is not True (Accepted, Programmed, ResolvedRefs, …). */
  resources: Array<{
    kind: string;
    namespace?: string;
    name: string;
    condition: string;
    status: string;
    reason?: string;
    message?: string;
  }>;
  /** What the registry found wrong or ignored (`ambit get issues`). */
  issues: Array<{ object: string; message: string }>;
}
