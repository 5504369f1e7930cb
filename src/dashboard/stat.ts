// `ambit stat`'s table, like `linkerd viz stat`: per namespace, service or workload, the success rate,
// requests per second and latency percentiles of the requests it received (or, with --to, sent) over a
// window, from Prometheus, with a row for every one the registry has even when it saw no traffic.

import { AmbitError } from '../errors/index.ts';
import { DASHBOARD_ERRORS } from './errors.ts';
import type { Window } from './model.ts';
import type { PrometheusApi, Sample } from './prometheus-api.ts';
import { type Matcher, type StatKind, statLabels, statQueries } from './promql.ts';

/** What the rows are, and which: `ns` (every namespace), `ns/shop` (shop's workloads), `svc/catalog`, … */
export interface StatTarget {
  kind: StatKind;
  namespace?: string;
  name?: string;
}

/** The other end, for --to and --from: `svc/catalog`, `workload/frontend` or `ns/shop`. */
export interface StatPeer {
  kind: StatKind;
  namespace: string;
  name?: string;
}

export interface StatRow {
  namespace?: string;
  name: string;
  /** Enrolled of all: `2/2`. */
  meshed: string;
  successRate?: number;
  requestsPerSecond?: number;
  p50Ms?: number;
  p95Ms?: number;
  p99Ms?: number;
  /** Open TCP connections the server side counts (absent for services: the server side does not know them). */
  tcpConnections?: number;
}

const KINDS: Record<string, StatKind> = {
  ns: 'namespace',
  namespace: 'namespace',
  namespaces: 'namespace',
  svc: 'service',
  service: 'service',
  services: 'service',
  workload: 'workload',
  workloads: 'workload',
  wl: 'workload',
  deploy: 'workload',
  deployment: 'workload',
  deployments: 'workload',
};
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function split(text: string, what: string): { kind: StatKind; name?: string } {
  const [k, name, extra] = text.split('/');
  const kind = KINDS[k ?? ''];
  if (!kind || extra !== undefined || (name !== undefined && !NAME.test(name)))
    throw new AmbitError(
      DASHBOARD_ERRORS.BAD_FLAG,
      `${what} "${text}" is not ns[/NAME], svc[/NAME] or workload[/NAME] (NAME a Kubernetes name)`,
    );
  return { kind, ...(name !== undefined ? { name } : {}) };
}

/** `ns` → every namespace; `ns/shop` → shop's workloads; `svc[/x]` and `workload[/x]` in `namespace`. */
export function parseStatTarget(text: string, namespace: string): StatTarget {
  const { kind, name } = split(text, 'the resource');
  if (kind === 'namespace') return name ? { kind: 'workload', namespace: name } : { kind: 'namespace' };
  return { kind, namespace, ...(name ? { name } : {}) };
}

export function parseStatPeer(text: string, namespace: string, flag: string): StatPeer {
  const { kind, name } = split(text, flag);
  if (kind === 'namespace') {
    if (!name) throw new AmbitError(DASHBOARD_ERRORS.BAD_FLAG, `${flag} ns needs a name: ns/NAME`);
    return { kind, namespace: name };
  }
  return { kind, namespace, ...(name ? { name } : {}) };
}

/** The matchers for one end of the requests: which labels name `end` on `side`. */
function endMatchers(
  end: StatPeer | StatTarget,
  side: 'destination' | 'source',
): Record<string, Matcher | undefined> {
  if (end.kind === 'service') {
    if (side === 'source')
      throw new AmbitError(
        DASHBOARD_ERRORS.BAD_FLAG,
        'a service sends nothing of its own: ask for its workloads (workload/NAME) with --to',
      );
    return { destination_service_namespace: end.namespace, destination_service_name: end.name };
  }
  if (end.kind === 'namespace') return { [`${side}_workload_namespace`]: end.name ?? end.namespace };
  return { [`${side}_workload_namespace`]: end.namespace, [`${side}_workload`]: end.name };
}

/** The queries for a table: rows of `target`, the requests they received (or, with `to`, sent). */
export function statPlan(
  target: StatTarget,
  window: Window,
  peers: { to?: StatPeer; from?: StatPeer } = {},
): { side: 'destination' | 'source'; groupBy: string[]; queries: ReturnType<typeof statQueries> } {
  if (peers.to && peers.from)
    throw new AmbitError(DASHBOARD_ERRORS.BAD_FLAG, 'give --to or --from, not both');
  const side = peers.to ? 'source' : 'destination';
  const matchers = {
    ...endMatchers(target, side),
    ...(peers.to ? endMatchers(peers.to, 'destination') : {}),
    ...(peers.from ? endMatchers(peers.from, 'source') : {}),
  };
  // (endMatchers has refused a service as the sender, which statLabels cannot name.)
  const groupBy = statLabels(target.kind, side);
  return { side, groupBy, queries: statQueries(matchers, groupBy, window) };
}

/** The registry's rows for a table: what exists, so idle ones are listed too. */
export interface StatInventory {
  workloads: Array<{ name: string; namespace: string; enrolled: boolean; isWaypoint?: boolean }>;
  services: Array<{ name: string; namespace: string; endpoints: Array<{ enrolled: boolean }> }>;
}

/** Asks Prometheus and builds the rows, sorted by namespace and name. */
export async function statRows(
  prometheus: PrometheusApi,
  inventory: StatInventory,
  target: StatTarget,
  window: Window,
  peers: { to?: StatPeer; from?: StatPeer } = {},
): Promise<StatRow[]> {
  const { groupBy, queries } = statPlan(target, window, peers);
  // One evaluation time for every query, so the success rate divides two rates of the same instant.
  const at = Date.now() / 1000;
  const ask = (q: string) => (q === '' ? Promise.resolve([] as Sample[]) : prometheus.query(q, at));
  const [requests, successes, p50, p95, p99, tcpOpen] = await Promise.all([
    ask(queries.requests),
    ask(queries.successes),
    ask(queries.p50),
    ask(queries.p95),
    ask(queries.p99),
    ask(queries.tcpOpen),
  ]);
  return buildStatRows(target, groupBy, inventory, { requests, successes, p50, p95, p99, tcpOpen });
}

/** Pure: the rows from the answers and the inventory. */
export function buildStatRows(
  target: StatTarget,
  groupBy: readonly string[],
  inventory: StatInventory,
  answers: Record<'requests' | 'successes' | 'p50' | 'p95' | 'p99' | 'tcpOpen', Sample[]>,
): StatRow[] {
  const keyOf = (m: Record<string, string>) => groupBy.map((l) => m[l] ?? '').join('/');
  const rows = new Map<string, StatRow>();
  const row = (key: string): StatRow => {
    let r = rows.get(key);
    if (!r) {
      const parts = key.split('/');
      const [namespace, name] =
        target.kind === 'namespace' ? [undefined, parts[0]!] : [parts[0], parts[1] ?? ''];
      r = { ...(namespace !== undefined ? { namespace } : {}), name, meshed: '-' };
      rows.set(key, r);
    }
    return r;
  };
  const wanted = (ns: string, name: string) =>
    (target.namespace === undefined || ns === target.namespace) &&
    (target.name === undefined || name === target.name);
  // Every one the registry has, idle or not.
  const workloads = inventory.workloads.filter((w) => !w.isWaypoint);
  if (target.kind === 'namespace') {
    for (const ns of new Set(workloads.map((w) => w.namespace))) {
      const in_ = workloads.filter((w) => w.namespace === ns);
      row(ns).meshed = `${in_.filter((w) => w.enrolled).length}/${in_.length}`;
    }
  } else if (target.kind === 'service') {
    for (const s of inventory.services.filter((s) => wanted(s.namespace, s.name)))
      row(`${s.namespace}/${s.name}`).meshed =
        `${s.endpoints.filter((e) => e.enrolled).length}/${s.endpoints.length}`;
  } else {
    for (const w of workloads.filter((w) => wanted(w.namespace, w.name)))
      row(`${w.namespace}/${w.name}`).meshed = w.enrolled ? '1/1' : '0/1';
  }
  const each = (samples: Sample[], set: (r: StatRow, v: number) => void) => {
    for (const s of samples) {
      if (!Number.isFinite(s.value)) continue;
      const key = keyOf(s.metric);
      if (key.split('/').some((p) => p === '' || p === 'unknown')) continue;
      set(row(key), s.value);
    }
  };
  each(answers.requests, (r, v) => {
    r.requestsPerSecond = v;
  });
  const ok = new Map(answers.successes.map((s) => [keyOf(s.metric), s.value]));
  for (const [key, r] of rows) {
    if (r.requestsPerSecond !== undefined && r.requestsPerSecond > 0)
      r.successRate = Math.min(1, (ok.get(key) ?? 0) / r.requestsPerSecond);
  }
  each(answers.p50, (r, v) => {
    r.p50Ms = v;
  });
  each(answers.p95, (r, v) => {
    r.p95Ms = v;
  });
  each(answers.p99, (r, v) => {
    r.p99Ms = v;
  });
  each(answers.tcpOpen, (r, v) => {
    r.tcpConnections = Math.max(0, Math.round(v));
  });
  return [...rows.values()].sort(
    (a, b) => (a.namespace ?? '').localeCompare(b.namespace ?? '') || a.name.localeCompare(b.name),
  );
}
