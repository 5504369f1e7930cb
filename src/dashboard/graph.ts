// The service graph, built from what Prometheus answered and what the registry holds: workloads and
// services as nodes (boxed by namespace; the versions of one app boxed together), the traffic between
// them as edges. A request is drawn along the path it took — its client, the waypoint that handled it,
// the service it was addressed to, the workload that answered — so a waypoint appears where traffic
// passes it. Pure: the same answers give the same graph.

import { meshMode } from '../xds/index.ts';
import type { GraphEdge, GraphNode, Security } from './model.ts';
import type { Sample } from './prometheus-api.ts';

/** The parts of the registry's workload view the graph reads. */
export interface RegistryWorkload {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  enrolled: boolean;
  sidecar?: boolean;
  isWaypoint?: boolean;
}

/** The parts of the registry's service view the graph reads. */
export interface RegistryService {
  name: string;
  namespace: string;
}

export interface GraphInput {
  requests: Sample[];
  durations: Sample[];
  /** Both directions' byte rates (sent and received series alike). */
  tcpBytes: Sample[];
  tcpOpened: Sample[];
  workloads: RegistryWorkload[];
  services: RegistryService[];
  /** Only these namespaces' nodes, and what they talk to (empty: all). */
  namespaces: readonly string[];
}

/** Kiali's default thresholds: above 0.1 % errors a node is degraded, above 20 % failing. */
export const DEGRADED_ERROR_RATE = 0.001;
export const FAILING_ERROR_RATE = 0.2;

/** The label a waypoint replica's pod carries, naming its Gateway. */
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
const UNKNOWN = 'unknown';

interface Acc {
  source: string;
  target: string;
  protocol: GraphEdge['protocol'];
  requests: number;
  errors: number;
  denied: number;
  mtls: number;
  plaintext: number;
  buckets: Map<number, number>;
  bytes: number;
  connections: number;
}

const known = (v: string | undefined): v is string => v !== undefined && v !== '' && v !== UNKNOWN;

export const workloadId = (namespace: string, name: string) => `wl:${namespace}/${name}`;
export const serviceId = (namespace: string, name: string) => `svc:${namespace}/${name}`;
export const waypointId = (namespace: string, name: string) => `wp:${namespace}/${name}`;
const namespaceId = (namespace: string) => `ns:${namespace}`;
const appId = (namespace: string, app: string) => `app:${namespace}/${app}`;

export function buildGraph(input: GraphInput): { nodes: GraphNode[]; edges: GraphEdge[] } {
  const nodes = new Map<string, GraphNode>();
  const edges = new Map<string, Acc>();
  // A waypoint replica's workload name → its waypoint's node (TCP to and from it is the waypoint's).
  const waypointOf = new Map<string, string>();
  for (const w of input.workloads) {
    const gateway = w.labels[GATEWAY_NAME_LABEL];
    if (w.isWaypoint && gateway) waypointOf.set(`${w.namespace}/${w.name}`, waypointId(w.namespace, gateway));
  }
  const registered = new Map(input.workloads.map((w) => [`${w.namespace}/${w.name}`, w]));

  const workloadNode = (ns: string | undefined, name: string | undefined, app?: string, version?: string) => {
    if (!known(ns) || !known(name)) return node({ id: UNKNOWN, kind: 'unknown', label: 'unknown' });
    const wp = waypointOf.get(`${ns}/${name}`);
    if (wp) return waypointNode(ns, wp.slice(wp.indexOf('/') + 1));
    const reg = registered.get(`${ns}/${name}`);
    const a = reg?.labels.app ?? (known(app) ? app : undefined);
    const v = reg?.labels.version ?? (known(version) ? version : undefined);
    return node({
      id: workloadId(ns, name),
      kind: 'workload',
      label: name,
      namespace: ns,
      name,
      ...(a ? { app: a } : {}),
      ...(v ? { version: v } : {}),
      mesh: reg ? meshMode(reg) : 'none',
    });
  };
  const serviceNode = (ns: string, name: string) =>
    node({ id: serviceId(ns, name), kind: 'service', label: name, namespace: ns, name });
  const waypointNode = (ns: string, name: string) =>
    node({ id: waypointId(ns, name), kind: 'waypoint', label: name, namespace: ns, name });
  function node(n: Omit<GraphNode, 'traffic' | 'health'>): string {
    if (!nodes.has(n.id)) nodes.set(n.id, { ...n, traffic: false, health: 'idle' });
    return n.id;
  }
  const edgeOf = (source: string, target: string, protocol: GraphEdge['protocol']): Acc => {
    const id = `${source}->${target}:${protocol}`;
    let e = edges.get(id);
    if (!e) {
      e = {
        source,
        target,
        protocol,
        requests: 0,
        errors: 0,
        denied: 0,
        mtls: 0,
        plaintext: 0,
        buckets: new Map(),
        bytes: 0,
        connections: 0,
      };
      edges.set(id, e);
    }
    return e;
  };

  const sourceNode = (m: Record<string, string>) =>
    workloadNode(m.source_workload_namespace, m.source_workload, m.source_app, m.source_version);
  const destinationNode = (m: Record<string, string>) =>
    workloadNode(
      m.destination_workload_namespace,
      m.destination_workload,
      m.destination_app,
      m.destination_version,
    );

  /** The nodes a request passed, in order: client, waypoint, service, answering workload. */
  const requestPath = (m: Record<string, string>): string[] => {
    const path = [sourceNode(m)];
    if (known(m.gateway_networking_k8s_io_gateway_name) && known(m.namespace))
      path.push(waypointNode(m.namespace, m.gateway_networking_k8s_io_gateway_name));
    if (known(m.destination_service_name) && known(m.destination_service_namespace))
      path.push(serviceNode(m.destination_service_namespace, m.destination_service_name));
    // An answer from the proxy itself (a fault, no healthy endpoint) reached no workload.
    if (known(m.destination_workload)) path.push(destinationNode(m));
    return path;
  };
  const hops = (path: string[]) => path.slice(1).map((to, i) => [path[i]!, to] as const);

  // Which requests count: a client side's report (a sidecar's `source`, a waypoint's), and a server side's
  // (a sidecar's `destination`) only for requests no client side reported: from an ambient client with no
  // waypoint between, whose ztunnel saw bytes, not requests. Through a waypoint, the waypoint's report
  // stands for the request (the sidecar behind it names the waypoint as its client).
  const pair = (m: Record<string, string>) =>
    `${m.source_workload_namespace}/${m.source_workload}>${m.destination_workload_namespace}/${m.destination_workload}`;
  const workloadOf = (m: Record<string, string>) =>
    `${m.destination_workload_namespace}/${m.destination_workload}`;
  const reportedByClient = new Set<string>();
  const behindWaypoint = new Set<string>();
  for (const { metric: m } of input.requests) {
    if (m.reporter === 'destination') continue;
    reportedByClient.add(pair(m));
    if (m.reporter === 'waypoint') behindWaypoint.add(workloadOf(m));
  }
  // A sidecar's report of a request it sent to a waypoint names the waypoint replica as its destination:
  // the waypoint's own report draws that request (client → waypoint → service → workload).
  const waypointPods = new Set(
    input.workloads.filter((w) => w.isWaypoint).map((w) => `${w.namespace}/${w.name}`),
  );
  const counted = (m: Record<string, string>) =>
    !waypointPods.has(workloadOf(m)) &&
    (m.reporter !== 'destination' || (!reportedByClient.has(pair(m)) && !behindWaypoint.has(workloadOf(m))));

  for (const { metric: m, value } of input.requests) {
    if (!(value > 0) || !counted(m)) continue;
    const protocol = m.request_protocol === 'grpc' ? 'grpc' : 'http';
    const code = m.response_code ?? '';
    const grpcStatus = m.grpc_response_status ?? '';
    const failed = /^5/.test(code) || (protocol === 'grpc' && grpcStatus !== '' && grpcStatus !== '0');
    for (const [from, to] of hops(requestPath(m))) {
      const e = edgeOf(from, to, protocol);
      e.requests += value;
      if (failed) e.errors += value;
      if (code === '403') e.denied += value;
      carried(e, m, value);
    }
  }
  for (const { metric: m, value } of input.durations) {
    if (!counted(m)) continue;
    const le = m.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(m.le);
    // Empty buckets count: the one below the quantile's bucket is where its interpolation starts.
    if (!(value >= 0) || Number.isNaN(le)) continue;
    for (const [from, to] of hops(requestPath(m))) {
      for (const protocol of ['http', 'grpc'] as const) {
        const e = edges.get(`${from}->${to}:${protocol}`);
        if (e) e.buckets.set(le, (e.buckets.get(le) ?? 0) + value);
      }
    }
  }

  // TCP: the server side's report, which sees refused and plaintext connections; the client side's only
  // where no server side reported (a destination outside the mesh, or not enrolled).
  const reportedByServer = new Set(
    [...input.tcpBytes, ...input.tcpOpened]
      .filter((s) => s.metric.reporter === 'destination')
      .map((s) => pair(s.metric)),
  );
  // The server side does not know which service the client addressed; the client side does.
  const serviceOfPair = new Map<string, [string, string]>();
  for (const { metric: m } of [...input.tcpBytes, ...input.tcpOpened]) {
    if (
      m.reporter === 'source' &&
      known(m.destination_service_name) &&
      known(m.destination_service_namespace)
    )
      serviceOfPair.set(pair(m), [m.destination_service_namespace, m.destination_service_name]);
  }
  const tcpPath = (m: Record<string, string>): string[] => {
    const path = [sourceNode(m)];
    const svc: [string, string] | undefined =
      known(m.destination_service_name) && known(m.destination_service_namespace)
        ? [m.destination_service_namespace, m.destination_service_name]
        : serviceOfPair.get(pair(m));
    if (svc) path.push(serviceNode(...svc));
    if (known(m.destination_workload) || !svc) path.push(destinationNode(m));
    return path;
  };
  const useTcp = (m: Record<string, string>) =>
    m.reporter === 'destination' || (m.reporter === 'source' && !reportedByServer.has(pair(m)));
  for (const { metric: m, value } of input.tcpBytes) {
    if (!(value > 0) || !useTcp(m)) continue;
    for (const [from, to] of hops(tcpPath(m))) {
      const e = edgeOf(from, to, 'tcp');
      e.bytes += value;
      carried(e, m, value);
    }
  }
  for (const { metric: m, value } of input.tcpOpened) {
    if (!(value > 0) || !useTcp(m)) continue;
    for (const [from, to] of hops(tcpPath(m))) {
      const e = edgeOf(from, to, 'tcp');
      e.connections += value;
      if (m.response_flags === 'DENY') e.denied += value;
      // A connection that moved no bytes still says how it was carried.
      if (e.bytes === 0) {
        carried(e, m, value);
      }
    }
  }
  // A connection that carried requests is drawn once, as those requests: a TCP edge is dropped when
  // requests went from its source to its target (directly, or through a waypoint and a service).
  const httpNext = new Map<string, string[]>();
  for (const e of edges.values())
    if (e.protocol !== 'tcp') httpNext.set(e.source, [...(httpNext.get(e.source) ?? []), e.target]);
  const requestsReach = (from: string, to: string) => {
    const seen = new Set([from]);
    const queue = [from];
    while (queue.length > 0) {
      for (const next of httpNext.get(queue.shift()!) ?? []) {
        if (next === to) return true;
        if (!seen.has(next)) seen.add(next) && queue.push(next);
      }
    }
    return false;
  };
  for (const [id, e] of edges)
    if (e.protocol === 'tcp' && requestsReach(e.source, e.target)) edges.delete(id);

  // What the registry has that no traffic touched, in the namespaces asked for.
  const inScope = (ns: string | undefined) =>
    input.namespaces.length === 0 || (ns !== undefined && input.namespaces.includes(ns));
  for (const w of input.workloads) {
    if (!inScope(w.namespace)) continue;
    if (w.isWaypoint && w.labels[GATEWAY_NAME_LABEL]) waypointNode(w.namespace, w.labels[GATEWAY_NAME_LABEL]);
    else workloadNode(w.namespace, w.name);
  }
  for (const s of input.services) if (inScope(s.namespace)) serviceNode(s.namespace, s.name);

  // Keep the namespaces asked for and what they talk to.
  const keptEdges = [...edges.values()].filter(
    (e) => inScope(nodes.get(e.source)?.namespace) || inScope(nodes.get(e.target)?.namespace),
  );
  const keptIds = new Set<string>();
  for (const n of nodes.values()) if (n.namespace !== undefined && inScope(n.namespace)) keptIds.add(n.id);
  for (const e of keptEdges) keptIds.add(e.source).add(e.target);
  if (input.namespaces.length === 0 && nodes.has(UNKNOWN)) keptIds.add(UNKNOWN);

  const out = [...keptIds].map((id) => nodes.get(id)!);
  for (const e of keptEdges) {
    const from = nodes.get(e.source)!;
    const to = nodes.get(e.target)!;
    from.traffic = true;
    to.traffic = true;
  }
  // Health, from what each node received (summed in one pass over the edges).
  const received = new Map<string, { requests: number; errors: number; denied: number }>();
  for (const e of keptEdges) {
    const r = received.get(e.target) ?? { requests: 0, errors: 0, denied: 0 };
    r.requests += e.requests;
    r.errors += e.errors;
    r.denied += e.denied;
    received.set(e.target, r);
  }
  for (const n of out) {
    const { requests, errors, denied } = received.get(n.id) ?? { requests: 0, errors: 0, denied: 0 };
    const rate = requests > 0 ? errors / requests : 0;
    n.health = !n.traffic
      ? 'idle'
      : rate > FAILING_ERROR_RATE
        ? 'failing'
        : rate > DEGRADED_ERROR_RATE || denied > 0
          ? 'degraded'
          : 'healthy';
  }
  return { nodes: withBoxes(out), edges: keptEdges.map(finish) };
}

/** Namespace boxes around everything namespaced, and an app box around the versions of one app. */
function withBoxes(nodes: GraphNode[]): GraphNode[] {
  const boxes: GraphNode[] = [];
  const byApp = new Map<string, GraphNode[]>();
  for (const n of nodes) {
    if (n.kind === 'workload' && n.app && n.namespace) {
      const key = `${n.namespace}/${n.app}`;
      byApp.set(key, [...(byApp.get(key) ?? []), n]);
    }
  }
  const namespaces = new Set<string>();
  for (const n of nodes) {
    if (n.namespace === undefined) continue;
    namespaces.add(n.namespace);
    n.parent = namespaceId(n.namespace);
  }
  for (const [key, members] of byApp) {
    if (new Set(members.map((m) => m.version ?? '')).size < 2) continue;
    const [namespace, app] = [members[0]!.namespace!, members[0]!.app!];
    const traffic = members.some((m) => m.traffic);
    boxes.push({
      id: appId(namespace, app),
      kind: 'app',
      label: app,
      namespace,
      app,
      parent: namespaceId(namespace),
      traffic,
      health: worst(members.map((m) => m.health)),
    });
    for (const m of members) m.parent = appId(...(key.split('/') as [string, string]));
  }
  for (const ns of [...namespaces].sort()) {
    const members = nodes.filter((n) => n.namespace === ns);
    boxes.push({
      id: namespaceId(ns),
      kind: 'namespace',
      label: ns,
      namespace: ns,
      traffic: members.some((m) => m.traffic),
      health: worst(members.map((m) => m.health)),
    });
  }
  return [...boxes, ...nodes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))];
}

/** Counts `value` of traffic on `e` as carried over mutual TLS or not, as its series says. */
function carried(e: Acc, m: Record<string, string>, value: number): void {
  if (m.connection_security_policy === 'mutual_tls') e.mtls += value;
  else e.plaintext += value;
}

const HEALTH_ORDER: GraphNode['health'][] = ['idle', 'healthy', 'degraded', 'failing'];
function worst(hs: GraphNode['health'][]): GraphNode['health'] {
  return hs.reduce((w, h) => (HEALTH_ORDER.indexOf(h) > HEALTH_ORDER.indexOf(w) ? h : w), 'idle');
}

function finish(e: Acc): GraphEdge {
  const security: Security = e.plaintext === 0 ? 'mtls' : e.mtls === 0 ? 'plaintext' : 'mixed';
  const base = {
    id: `${e.source}->${e.target}:${e.protocol}`,
    source: e.source,
    target: e.target,
    protocol: e.protocol,
    deniedPerSecond: e.denied,
    security,
  };
  if (e.protocol === 'tcp') return { ...base, bytesPerSecond: e.bytes, connectionsPerSecond: e.connections };
  const p99 = histogramQuantile(0.99, e.buckets);
  return {
    ...base,
    requestsPerSecond: e.requests,
    errorRate: e.requests > 0 ? e.errors / e.requests : 0,
    ...(p99 === undefined ? {} : { p99Ms: p99 }),
  };
}

/**
 * Prometheus's `histogram_quantile` over cumulative bucket rates (upper bound → rate): the bucket the
 * rank falls in, linear interpolation inside it, the lowest bucket's lower bound 0, and the highest finite
 * bound when the rank falls in the +Inf bucket. Undefined without a +Inf bucket or any observation.
 */
export function histogramQuantile(q: number, buckets: ReadonlyMap<number, number>): number | undefined {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const last = sorted.at(-1);
  if (!last || last[0] !== Number.POSITIVE_INFINITY || sorted.length < 2) return undefined;
  // Cumulative counts can dip from rounding of separately computed rates; Prometheus evens them out.
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i]![1] < sorted[i - 1]![1]) sorted[i]![1] = sorted[i - 1]![1];
  const total = last[1];
  if (!(total > 0)) return undefined;
  if (q <= 0) return 0;
  if (q >= 1) return sorted.at(-2)![0];
  const rank = q * total;
  const i = sorted.findIndex(([, count]) => count >= rank);
  if (i === sorted.length - 1) return sorted.at(-2)![0];
  const [upper, count] = sorted[i]!;
  const [lower, below] = i === 0 ? [0, 0] : sorted[i - 1]!;
  if (i === 0 && upper <= 0) return upper;
  return lower + (upper - lower) * ((rank - below) / (count - below));
}
