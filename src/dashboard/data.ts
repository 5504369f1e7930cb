// What each dashboard page shows, read from the control plane's admin API and Prometheus: the service
// graph, a service's or a workload's detail, and the mesh's own health. Read-only: it only ever GETs.

import { KINDS } from '../config/index.ts';
import { CONTROL_ERRORS } from '../control/index.ts';
import { AmbitError, hasCode } from '../errors/index.ts';
import { meshMode } from '../xds/index.ts';
import { DASHBOARD_ERRORS } from './errors.ts';
import { buildGraph, GATEWAY_NAME_LABEL, serviceId, waypointId, workloadId } from './graph.ts';
import type {
  CertificateInfo,
  Graph,
  GraphEdge,
  MeshHealth,
  Neighbour,
  Points,
  RouteSplit,
  ServiceDetail,
  Signals,
  Window,
  WorkloadDetail,
} from './model.ts';
import type { PrometheusApi, Series } from './prometheus-api.ts';
import {
  graphQueries,
  inboundMatchers,
  type Subject,
  signalQueries,
  tcpBytesQuery,
  windowSeconds,
} from './promql.ts';
import type { Reading, Sources } from './sources.ts';

/** A graph larger than this keeps the nodes with traffic and drops idle ones, and says so. */
export const MAX_GRAPH_NODES = 1500;
/** Certificates expiring within this are listed on the health page (a ztunnel renews at half life). */
export const NEAR_EXPIRY_SECONDS = 6 * 3600;
/** The rate interval of each chart point (Grafana's `$__rate_interval` for a 15 s scrape). */
const POINT_RATE = '1m';

/** A certificate as a ztunnel's `/certs` lists it. */
export interface CertStatus {
  identity: string;
  serial?: string;
  notBefore?: string;
  notAfter?: string;
}

/** The control plane's admin API, read only. */
export interface AdminApi {
  call<T>(method: 'GET', path: string): Promise<T>;
}

/** The parts of the registry's workload view the pages read. */
export interface WorkloadView {
  name: string;
  namespace: string;
  kind: string;
  identity: string;
  node?: string;
  addresses: string[];
  enrolled: boolean;
  sidecar?: boolean;
  labels: Record<string, string>;
  isWaypoint?: boolean;
  waypoint?: { name: string; namespace: string };
  services: string[];
  peerAuthentication: { mode: string };
}

/** The parts of the registry's service view the pages read. */
export interface ServiceView {
  name: string;
  namespace: string;
  hostname: string;
  vips: string[];
  ports: Array<{ name?: string; port: number; targetPort: number | string }>;
  endpoints: Array<{ name: string; address: string; node?: string; enrolled: boolean; sidecar?: boolean }>;
  waypoint?: { name: string; namespace: string };
}

/** What `ambit describe` says of a workload or service, and the view it said it of. */
export type Describe = (
  kind: 'workload' | 'service',
  namespace: string,
  name: string,
) => Promise<{ lines: string[]; workload?: WorkloadView; service?: ServiceView }>;

export interface DashboardDataOptions {
  admin: AdminApi;
  prometheus: PrometheusApi;
  sources: Sources;
  describe: Describe;
  /**
   * The certificates a node's ztunnel holds, or with `sidecar` that sidecar's, where this machine can
   * reach its admin (the lab's); else undefined.
   */
  certificates?: (
    node: string,
    sidecar?: { namespace: string; name: string },
  ) => Promise<CertStatus[] | undefined>;
  /** Above this many nodes the graph leaves out those without traffic (default MAX_GRAPH_NODES). */
  maxGraphNodes?: number;
  now?: () => number;
}

type Condition = { type: string; status: string; reason?: string; message?: string };
interface AnyResource {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: { parentRefs?: Array<{ kind?: string; name: string; namespace?: string }>; rules?: RouteRule[] };
  status?: {
    conditions?: Condition[];
    parents?: Array<{ conditions?: Condition[] }>;
    ancestors?: Array<{ conditions?: Condition[] }>;
  };
}
interface RouteRule {
  backendRefs?: Array<{ name: string; namespace?: string; kind?: string; weight?: number }>;
}

export class DashboardData {
  private readonly admin: AdminApi;
  private readonly prometheus: PrometheusApi;
  private readonly sources: Sources;
  private readonly describer: Describe;
  private readonly readCertificates: NonNullable<DashboardDataOptions['certificates']>;
  private readonly maxGraphNodes: number;
  private readonly now: () => number;

  constructor(opts: DashboardDataOptions) {
    this.maxGraphNodes = opts.maxGraphNodes ?? MAX_GRAPH_NODES;
    this.admin = opts.admin;
    this.prometheus = opts.prometheus;
    this.sources = opts.sources;
    this.describer = opts.describe;
    this.readCertificates = opts.certificates ?? (async () => undefined);
    this.now = opts.now ?? Date.now;
  }

  async graph(window: Window, namespace?: string): Promise<Graph> {
    const r = this.sources.begin(window);
    const built = await this.buildGraph(r, window, namespace ? [namespace] : []);
    return { ...r.envelope(), ...built };
  }

  async service(namespace: string, name: string, window: Window): Promise<ServiceDetail> {
    const r = this.sources.begin(window);
    // Side by side, so the answer takes one read's deadline at most.
    const [described, graph, signals, routes] = await Promise.all([
      this.describe(r, 'service', namespace, name),
      this.buildGraph(r, window, []),
      this.signals(r, { kind: 'service', namespace, name }, window),
      this.routes(r, namespace, name),
    ]);
    const s = described.service as ServiceView;
    const id = serviceId(namespace, name);
    if (signals.requestsPerSecond.length === 0 && routes.length > 0)
      r.warn(
        `Requests to ${name} that a route sends to other backends are counted under those backends, as Istio's metrics name them: see the route splits.`,
      );
    return {
      ...r.envelope(),
      kind: 'service',
      namespace,
      name,
      hostname: s.hostname,
      vips: s.vips,
      ports: s.ports,
      endpoints: s.endpoints,
      ...(s.waypoint ? { waypoint: `${s.waypoint.namespace}/${s.waypoint.name}` } : {}),
      signals,
      inbound: neighbours(graph, id, 'in'),
      outbound: neighbours(graph, id, 'out'),
      routes: routes.map((route) => observe(route, graph.edges)),
      explanation: described.lines,
    };
  }

  async workload(namespace: string, name: string, window: Window): Promise<WorkloadDetail> {
    const r = this.sources.begin(window);
    // Side by side; the certificate once the node is known (a read's deadline, then a short one).
    const described = this.describeWorkload(r, namespace, name);
    const [{ pod, lines, workload }, graph, signals, certificate] = await Promise.all([
      described,
      this.buildGraph(r, window, []),
      described.then(({ pod }) => this.signals(r, { kind: 'workload', namespace, name: pod }, window)),
      described.then(({ workload: w }) =>
        w?.node ? this.certificateOf(r, w.node, w.identity, w.sidecar ? w : undefined) : undefined,
      ),
    ]);
    const w = workload as WorkloadView;
    const id = pod === name ? workloadId(namespace, name) : waypointId(namespace, name);
    return {
      ...r.envelope(),
      kind: 'workload',
      namespace,
      name,
      workloadKind: w.kind,
      identity: w.identity,
      ...(w.node ? { node: w.node } : {}),
      addresses: w.addresses,
      mesh: meshMode(w),
      ...(w.waypoint ? { waypoint: `${w.waypoint.namespace}/${w.waypoint.name}` } : {}),
      services: w.services,
      mtls: w.peerAuthentication.mode,
      signals,
      inbound: neighbours(graph, id, 'in'),
      outbound: neighbours(graph, id, 'out'),
      explanation: lines,
      ...(certificate ? { certificate } : {}),
    };
  }

  async health(): Promise<MeshHealth> {
    const r = this.sources.begin('5m');
    const control = <T>(key: string, path: string, fallback: T) =>
      r.get('control', key, () => this.admin.call<T>('GET', path), fallback);
    const [replicas, proxies, issues, resources] = await Promise.all([
      control('replicas', '/ambit/v1/replicas', { self: '', items: [] as ReplicaRow[] }),
      control('proxies', '/ambit/v1/proxies', { version: '', items: [] as ProxyRow[] }),
      control('issues', '/ambit/v1/issues', { items: [] as Array<{ object: string; message: string }> }),
      r.get('control', 'resources', () => this.notReady(), [] as MeshHealth['resources']),
    ]);
    const nodes = [...new Set(proxies.items.filter((p) => p.kind === 'ztunnel').map((p) => p.name))].sort();
    const certificates = (await Promise.all(nodes.map((node) => this.certificates(r, node)))).flat();
    return {
      ...r.envelope(),
      replicas: replicas.items.map((x) => ({
        replica: x.replica,
        grpc: x.grpc,
        writable: x.store.writable,
        duties: x.duties,
        proxies: x.proxies,
        at: x.at,
        ...(x.store.error ? { error: x.store.error } : {}),
      })),
      proxies: proxies.items.map((p) => ({
        name: p.name,
        kind: p.kind,
        state: p.state,
        ...(p.controlPlane ? { controlPlane: p.controlPlane } : {}),
        connectedAt: p.connectedAt,
        nacks: Object.entries(p.types)
          .filter(([, t]) => t.nack)
          .map(([type, t]) => ({ type, version: t.nack!.version, error: t.nack!.error })),
      })),
      certificates: certificates
        .filter((c) => c.expiresInSeconds < NEAR_EXPIRY_SECONDS)
        .sort((a, b) => a.expiresInSeconds - b.expiresInSeconds),
      nearExpirySeconds: NEAR_EXPIRY_SECONDS,
      resources,
      issues: issues.items,
    };
  }

  private async buildGraph(r: Reading, window: Window, namespaces: string[]) {
    const q = graphQueries(window);
    // One evaluation time for every query: an edge's requests and their durations are of the same instant.
    const at = this.now() / 1000;
    const prom = (key: keyof typeof q) =>
      r.get('prometheus', `graph|${window}|${key}`, () => this.prometheus.query(q[key], at), []);
    const [workloads, services, requests, durations, tcpSent, tcpReceived, tcpOpened] = await Promise.all([
      r.get(
        'control',
        'workloads',
        async () => (await this.admin.call<{ items: WorkloadView[] }>('GET', '/ambit/v1/workloads')).items,
        [],
      ),
      r.get(
        'control',
        'services',
        async () => (await this.admin.call<{ items: ServiceView[] }>('GET', '/ambit/v1/services')).items,
        [],
      ),
      prom('requests'),
      prom('durations'),
      prom('tcpSent'),
      prom('tcpReceived'),
      prom('tcpOpened'),
    ]);
    const tcpBytes = [...tcpSent, ...tcpReceived];
    let { nodes, edges } = buildGraph({
      requests,
      durations,
      tcpBytes,
      tcpOpened,
      workloads,
      services,
      namespaces,
    });
    if (requests.length + tcpBytes.length + tcpOpened.length === 0 && r.ok('prometheus'))
      r.warn(
        `Prometheus (${this.prometheus.url}) has no mesh traffic in the last ${window}: nothing was sent, or it has not scraped the proxies yet (it needs two scrapes for a rate).`,
      );
    const leaves = nodes.filter((n) => n.kind !== 'namespace' && n.kind !== 'app');
    if (leaves.length > this.maxGraphNodes) {
      const idle = new Set(leaves.filter((n) => !n.traffic).map((n) => n.id));
      nodes = nodes.filter((n) => !idle.has(n.id));
      r.warn(
        `The graph has ${leaves.length} nodes; the ${idle.size} without traffic in the window are left out.`,
      );
    }
    const allNamespaces = [
      ...new Set(
        [...workloads, ...services].map((o) => o.namespace).concat(nodes.flatMap((n) => n.namespace ?? [])),
      ),
    ].sort();
    const drawn = new Set(nodes.map((n) => n.id));
    edges = edges.filter((e) => drawn.has(e.source) && drawn.has(e.target));
    return { namespaces, allNamespaces, nodes, edges };
  }

  /**
   * A workload described, as `pod`; a waypoint, drawn by its Gateway's name, is described by its first
   * replica's pod.
   */
  private async describeWorkload(r: Reading, namespace: string, name: string) {
    try {
      return { pod: name, ...(await this.describe(r, 'workload', namespace, name)) };
    } catch (err) {
      if (!hasCode(err, DASHBOARD_ERRORS.NOT_FOUND)) throw err;
      const workloads = await r.get(
        'control',
        `workloads|${namespace}`,
        async () =>
          (
            await this.admin.call<{ items: WorkloadView[] }>(
              'GET',
              `/ambit/v1/workloads?namespace=${namespace}`,
            )
          ).items,
        [],
      );
      const pod = workloads
        .filter((w) => w.isWaypoint && w.labels[GATEWAY_NAME_LABEL] === name)
        .map((w) => w.name)
        .sort()[0];
      if (pod === undefined) throw err;
      return { pod, ...(await this.describe(r, 'workload', namespace, pod)) };
    }
  }

  /** `ambit describe`'s lines and view; a subject the mesh does not have is a 404. */
  private async describe(r: Reading, kind: 'service' | 'workload', namespace: string, name: string) {
    const described = await this.sources.read(
      'control',
      `describe|${kind}|${namespace}/${name}`,
      async () => {
        try {
          return await this.describer(kind, namespace, name);
        } catch (err) {
          // An answer, not a failure of the source.
          if (hasCode(err, CONTROL_ERRORS.API_NOT_FOUND)) return null;
          throw err;
        }
      },
    );
    if (described.value === null)
      throw new AmbitError(DASHBOARD_ERRORS.NOT_FOUND, `the mesh has no ${kind} ${namespace}/${name}`);
    if (described.value === undefined)
      throw new AmbitError(
        DASHBOARD_ERRORS.CONTROL_UNAVAILABLE,
        `cannot describe ${kind} ${namespace}/${name}: ${described.error ?? 'the control plane did not answer'}`,
      );
    if (described.error)
      r.warn(`The control plane did not answer (${described.error}); showing its last answer.`);
    return described.value;
  }

  private async signals(r: Reading, subject: Subject, window: Window): Promise<Signals> {
    const span = windowSeconds(window);
    const step = Math.max(5, Math.round(span / 60));
    const end = Math.floor(this.now() / 1000);
    const start = end - span;
    const q = signalQueries(inboundMatchers(subject), POINT_RATE);
    const range = (key: string, promql: string) =>
      r.get(
        'prometheus',
        `signals|${subject.kind}|${subject.namespace}|${'name' in subject ? subject.name : ''}|${window}|${key}`,
        () => this.prometheus.queryRange(promql, start, end, step),
        [] as Series[],
      );
    const [requests, successes, p50, p90, p99, tcp] = await Promise.all([
      range('requests', q.requests),
      range('successes', q.successes),
      range('p50', q.p50),
      range('p90', q.p90),
      range('p99', q.p99),
      range('tcp', tcpBytesQuery(subject, POINT_RATE)),
    ]);
    const rps = points(requests);
    const ok = new Map(points(successes));
    return {
      step,
      requestsPerSecond: rps,
      successRate: rps.filter(([, v]) => v > 0).map(([t, v]) => [t, Math.min(1, (ok.get(t) ?? 0) / v)]),
      p50Ms: points(p50),
      p90Ms: points(p90),
      p99Ms: points(p99),
      tcpBytesPerSecond: points(tcp),
    };
  }

  /** The HTTPRoutes and GRPCRoutes whose parentRefs name the Service, rule by rule, with their weights. */
  private async routes(r: Reading, namespace: string, name: string): Promise<RouteSplit[]> {
    const read = async () => {
      const out: RouteSplit[] = [];
      for (const plural of ['httproutes', 'grpcroutes']) {
        // Every namespace's (consumer routes live in the clients' namespaces), or the Service's own where
        // the token may read only some.
        const base = '/apis/gateway.networking.k8s.io/v1';
        const { items } = await this.admin
          .call<{ items: AnyResource[] }>('GET', `${base}/${plural}`)
          .catch(() =>
            this.admin.call<{ items: AnyResource[] }>('GET', `${base}/namespaces/${namespace}/${plural}`),
          );
        for (const route of items) {
          const own = route.metadata.namespace ?? 'default';
          const attached = (route.spec?.parentRefs ?? []).some(
            (p) => p.kind === 'Service' && p.name === name && (p.namespace ?? own) === namespace,
          );
          if (!attached) continue;
          (route.spec?.rules ?? []).forEach((rule, i) => {
            const refs = (rule.backendRefs ?? []).filter((b) => (b.kind ?? 'Service') === 'Service');
            const total = refs.reduce((s, b) => s + (b.weight ?? 1), 0);
            if (refs.length === 0) return;
            out.push({
              route: `${route.kind} ${own}/${route.metadata.name}`,
              rule: i,
              backends: refs.map((b) => ({
                name: b.name,
                namespace: b.namespace ?? own,
                weight: b.weight ?? 1,
                configuredShare: total > 0 ? (b.weight ?? 1) / total : 0,
              })),
            });
          });
        }
      }
      return out;
    };
    return r.get('control', `routes|${namespace}/${name}`, read, []);
  }

  /** Every resource with a condition that is not True, from every kind that has status. */
  private async notReady(): Promise<MeshHealth['resources']> {
    const out: MeshHealth['resources'] = [];
    const lists = await Promise.all(
      KINDS.map(async (k) => {
        const base = k.group === '' ? '/api/v1' : `/apis/${k.group}/${k.version}`;
        return {
          k,
          items: (await this.admin.call<{ items: AnyResource[] }>('GET', `${base}/${k.plural}`)).items,
        };
      }),
    );
    for (const { k, items } of lists) {
      for (const item of items) {
        const conditions = [
          ...(item.status?.conditions ?? []),
          ...(item.status?.parents ?? []).flatMap((p) => p.conditions ?? []),
          ...(item.status?.ancestors ?? []).flatMap((p) => p.conditions ?? []),
        ];
        for (const c of conditions) {
          if (c.status === 'True') continue;
          out.push({
            kind: k.kind,
            ...(item.metadata.namespace ? { namespace: item.metadata.namespace } : {}),
            name: item.metadata.name,
            condition: c.type,
            status: c.status,
            ...(c.reason ? { reason: c.reason } : {}),
            ...(c.message ? { message: c.message } : {}),
          });
        }
      }
    }
    return out;
  }

  private async certificates(
    r: Reading,
    node: string,
    sidecar?: { namespace: string; name: string },
  ): Promise<CertificateInfo[]> {
    let held: CertStatus[] | undefined;
    const where = sidecar ? `the sidecar of ${sidecar.namespace}/${sidecar.name}` : `${node}'s ztunnel`;
    try {
      held = await this.readCertificates(node, sidecar);
    } catch (err) {
      r.warn(
        `Certificates held by ${where} could not be read: ${err instanceof Error ? err.message : String(err)}`,
      );
      return [];
    }
    if (held === undefined) {
      r.warn(`Certificates held by ${where} are not shown: its admin socket is not on this machine.`);
      return [];
    }
    const now = this.now();
    return held
      .filter((c) => c.serial && c.notAfter)
      .map((c) => ({
        identity: c.identity,
        serial: c.serial!,
        ...(c.notBefore ? { notBefore: c.notBefore } : {}),
        notAfter: c.notAfter!,
        expiresInSeconds: Math.round((Date.parse(c.notAfter!) - now) / 1000),
        node,
        ...(sidecar ? { sidecar: `${sidecar.namespace}/${sidecar.name}` } : {}),
      }));
  }

  private async certificateOf(
    r: Reading,
    node: string,
    identity: string,
    sidecar?: { namespace: string; name: string },
  ): Promise<CertificateInfo | undefined> {
    return (await this.certificates(r, node, sidecar)).find((c) => c.identity === identity);
  }
}

interface ReplicaRow {
  replica: string;
  grpc: string;
  duties: string[];
  proxies: number;
  at: string;
  store: { writable: boolean; error?: string };
}
interface ProxyRow {
  name: string;
  kind: string;
  state: string;
  controlPlane?: string;
  connectedAt: string;
  types: Record<string, { nack?: { version: string; error: string } }>;
}

/** The first series' points, without the NaN a quantile of nothing gives. */
function points(series: Series[]): Points {
  return (series[0]?.points ?? []).filter(([, v]) => Number.isFinite(v));
}

/** The nodes next to `id` in the graph, with the traffic between them. */
function neighbours(
  graph: { nodes: Graph['nodes']; edges: GraphEdge[] },
  id: string,
  way: 'in' | 'out',
): Neighbour[] {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  return graph.edges
    .filter((e) => (way === 'in' ? e.target === id : e.source === id))
    .map((e) => {
      const other = byId.get(way === 'in' ? e.source : e.target)!;
      return {
        id: other.id,
        kind: other.kind,
        ...(other.namespace ? { namespace: other.namespace } : {}),
        name: other.name ?? other.label,
        protocol: e.protocol,
        ...(e.requestsPerSecond !== undefined ? { requestsPerSecond: e.requestsPerSecond } : {}),
        ...(e.errorRate !== undefined ? { errorRate: e.errorRate } : {}),
        ...(e.p99Ms !== undefined ? { p99Ms: e.p99Ms } : {}),
        ...(e.bytesPerSecond !== undefined ? { bytesPerSecond: e.bytesPerSecond } : {}),
        deniedPerSecond: e.deniedPerSecond,
        security: e.security,
      };
    });
}

/** A rule's backends with the share of the requests each received in the window (from the graph's edges). */
export function observe(route: RouteSplit, edges: GraphEdge[]): RouteSplit {
  const received = route.backends.map((b) =>
    edges
      .filter((e) => e.target === serviceId(b.namespace, b.name) && e.protocol !== 'tcp')
      .reduce((s, e) => s + (e.requestsPerSecond ?? 0), 0),
  );
  const total = received.reduce((s, v) => s + v, 0);
  return {
    ...route,
    backends: route.backends.map((b, i) => (total > 0 ? { ...b, observedShare: received[i]! / total } : b)),
  };
}
