// The PromQL the dashboard and `ambit stat` ask, over Istio's standard metrics as Ambit's proxies export
// them. Request metrics come from the proxy that saw the request as HTTP (`reporter="waypoint"`, or
// `"source"` for a client-side proxy); the graph also asks for the server side's (`"destination"`, a
// sidecar's) and uses it only where no client side reported the request, so nothing is counted twice; TCP
// metrics come from the server side (`reporter="destination"`), which sees plaintext and refused
// connections too, and from the client side only for destinations outside the mesh.

import type { Window } from './model.ts';

/** A label matcher: `=` for a string, `=~` for `{ re }`, `!=`/`!~` for `{ not }`/`{ notRe }`. */
export type Matcher = string | { re: string } | { not: string } | { notRe: string };

/** PromQL's double-quoted string: backslash and double quote escaped, newlines written as \n. */
export function quote(value: string): string {
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')}"`;
}

/** `{a="x",b=~"y"}` from matchers, in the order given; labels whose matcher is undefined are left out. */
export function selector(matchers: Record<string, Matcher | undefined>): string {
  const parts: string[] = [];
  for (const [label, m] of Object.entries(matchers)) {
    if (m === undefined) continue;
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(label)) throw new Error(`not a Prometheus label name: ${label}`);
    if (typeof m === 'string') parts.push(`${label}=${quote(m)}`);
    else if ('re' in m) parts.push(`${label}=~${quote(m.re)}`);
    else if ('not' in m) parts.push(`${label}!=${quote(m.not)}`);
    else parts.push(`${label}!~${quote(m.notRe)}`);
  }
  return `{${parts.join(',')}}`;
}

/** A regular expression that matches exactly this text (for `=~` alternations of names). */
export function literalRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The labels that name an edge's two ends (workloads and the service between them). */
export const EDGE_LABELS = [
  'source_workload',
  'source_workload_namespace',
  'source_app',
  'source_version',
  'destination_workload',
  'destination_workload_namespace',
  'destination_app',
  'destination_version',
  'destination_service_name',
  'destination_service_namespace',
] as const;

/**
 * The waypoint a request passed: the target labels Prometheus's `kubernetes-pods` job gives a waypoint
 * replica (its pod's namespace and `gateway.networking.k8s.io/gateway-name` label). Absent on series a
 * differently configured Prometheus scraped; the graph then draws no waypoint node.
 */
export const WAYPOINT_LABELS = ['gateway_networking_k8s_io_gateway_name', 'namespace'] as const;

/** Request metrics from the proxy that saw the request as HTTP. */
export const HTTP_REPORTERS: Matcher = { re: 'source|waypoint' };

const by = (labels: readonly string[]) => `sum by (${labels.join(',')})`;

/** What the service graph asks, over one window. */
export function graphQueries(
  window: Window,
): Record<'requests' | 'durations' | 'tcpSent' | 'tcpReceived' | 'tcpOpened', string> {
  const http = selector({ reporter: { re: 'source|waypoint|destination' } });
  const reporters = { reporter: { re: 'source|destination' } };
  const edge = ['reporter', ...EDGE_LABELS, ...WAYPOINT_LABELS];
  return {
    requests: `${by([...edge, 'request_protocol', 'response_code', 'grpc_response_status', 'connection_security_policy'])} (rate(istio_requests_total${http}[${window}])) > 0`,
    // Every bucket, the empty ones too: a quantile interpolates from the bucket below the one it falls in.
    durations: `${by(['le', ...edge])} (rate(istio_request_duration_milliseconds_bucket${http}[${window}]))`,
    // Each direction on its own: rate() drops the metric name, so one query over both names would give
    // two series with the same labels.
    tcpSent: `${by(['reporter', ...EDGE_LABELS, 'connection_security_policy'])} (rate(istio_tcp_sent_bytes_total${selector(reporters)}[${window}])) > 0`,
    tcpReceived: `${by(['reporter', ...EDGE_LABELS, 'connection_security_policy'])} (rate(istio_tcp_received_bytes_total${selector(reporters)}[${window}])) > 0`,
    tcpOpened: `${by(['reporter', ...EDGE_LABELS, 'connection_security_policy', 'response_flags'])} (rate(istio_tcp_connections_opened_total${selector(reporters)}[${window}])) > 0`,
  };
}

/** Which requests a detail page or `ambit stat` is about: to (or from) a service or a workload. */
export type Subject =
  | { kind: 'service'; namespace: string; name: string }
  | { kind: 'workload'; namespace: string; name: string }
  | { kind: 'namespace'; namespace: string };

/** Matchers for requests received by the subject (inbound), optionally only from `from`. */
export function inboundMatchers(subject: Subject, from?: Subject): Record<string, Matcher | undefined> {
  const to: Record<string, Matcher | undefined> =
    subject.kind === 'service'
      ? { destination_service_namespace: subject.namespace, destination_service_name: subject.name }
      : subject.kind === 'workload'
        ? { destination_workload_namespace: subject.namespace, destination_workload: subject.name }
        : { destination_workload_namespace: subject.namespace };
  return { ...to, ...(from ? sourceMatchers(from) : {}) };
}

/** Matchers for requests the subject sent (outbound), optionally only to `to`. */
export function outboundMatchers(subject: Subject, to?: Subject): Record<string, Matcher | undefined> {
  return { ...sourceMatchers(subject), ...(to ? inboundMatchers(to) : {}) };
}

function sourceMatchers(s: Subject): Record<string, Matcher | undefined> {
  // A service sends nothing itself: what its workloads send is what leaves it.
  if (s.kind === 'workload') return { source_workload_namespace: s.namespace, source_workload: s.name };
  return { source_workload_namespace: s.namespace };
}

/** The golden signals of the requests `matchers` select, as instant or range queries. */
export function signalQueries(
  matchers: Record<string, Matcher | undefined>,
  window: Window,
  groupBy: readonly string[] = [],
): Record<'requests' | 'successes' | 'p50' | 'p90' | 'p99', string> {
  const sel = selector({ reporter: HTTP_REPORTERS, ...matchers });
  const ok = selector({
    reporter: HTTP_REPORTERS,
    ...matchers,
    response_code: { notRe: '5..' },
    // gRPC errors ride on 200: the status trailer says (Istio's dashboards count only non-5xx; Linkerd
    // and Kiali count gRPC statuses other than OK as failures too, which is what a reader expects).
    grpc_response_status: { re: '|0' },
  });
  const sum = groupBy.length > 0 ? by(groupBy) : 'sum';
  const quantile = (q: number) =>
    `histogram_quantile(${q}, ${by(['le', ...groupBy])} (rate(istio_request_duration_milliseconds_bucket${sel}[${window}])))`;
  return {
    requests: `${sum} (rate(istio_requests_total${sel}[${window}]))`,
    successes: `${sum} (rate(istio_requests_total${ok}[${window}]))`,
    p50: quantile(0.5),
    p90: quantile(0.9),
    p99: quantile(0.99),
  };
}

/**
 * TCP bytes per second (both directions) to a workload, as its server side reports them, or to a service,
 * as the clients' side does (the server side does not know which service a client addressed).
 */
export function tcpBytesQuery(subject: Subject, window: Window): string {
  const reporter = subject.kind === 'service' ? 'source' : 'destination';
  const sel = selector({ reporter, ...inboundMatchers(subject) });
  // Either direction may have no series yet (or none left in the window): each counts as 0 then.
  return `(sum (rate(istio_tcp_sent_bytes_total${sel}[${window}])) or vector(0)) + (sum (rate(istio_tcp_received_bytes_total${sel}[${window}])) or vector(0))`;
}

/** Seconds in a window. */
export function windowSeconds(window: Window): number {
  const n = Number(window.slice(0, -1));
  return window.endsWith('h') ? n * 3600 : window.endsWith('m') ? n * 60 : n;
}

/** What `ambit stat` groups by: a row per namespace, per service or per workload. */
export type StatKind = 'namespace' | 'service' | 'workload';

/** The labels naming a row of `kind`, on the receiving side (inbound) or the sending side (`--to`). */
export function statLabels(kind: StatKind, side: 'destination' | 'source'): string[] {
  if (kind === 'namespace') return [`${side}_workload_namespace`];
  if (kind === 'service') {
    if (side === 'source') throw new Error('a service sends nothing of its own');
    return ['destination_service_namespace', 'destination_service_name'];
  }
  return [`${side}_workload_namespace`, `${side}_workload`];
}

/** The queries behind one `ambit stat` table. */
export function statQueries(
  matchers: Record<string, Matcher | undefined>,
  groupBy: readonly string[],
  window: Window,
): Record<'requests' | 'successes' | 'p50' | 'p95' | 'p99' | 'tcpOpen', string> {
  const q = signalQueries(matchers, window, groupBy);
  const sel = selector({ reporter: HTTP_REPORTERS, ...matchers });
  // Open connections as the server side counts them: opened minus closed, over all time. The server side
  // does not know the service a client addressed, so rows of (or requests to) a service have none. A
  // group whose connections never closed has no closed series yet: it counts as 0.
  const knowsService = [...Object.keys(matchers), ...groupBy].some((l) =>
    l.startsWith('destination_service'),
  );
  const tcpSel = selector({ reporter: 'destination', ...matchers });
  const opened = `${by(groupBy)} (istio_tcp_connections_opened_total${tcpSel})`;
  const closed = `${by(groupBy)} (istio_tcp_connections_closed_total${tcpSel})`;
  return {
    requests: q.requests,
    successes: q.successes,
    p50: q.p50,
    p95: `histogram_quantile(0.95, ${by(['le', ...groupBy])} (rate(istio_request_duration_milliseconds_bucket${sel}[${window}])))`,
    p99: q.p99,
    tcpOpen: knowsService ? '' : `${opened} - (${closed} or ${opened} * 0)`,
  };
}
