// Which DestinationRule's trafficPolicy applies to a backend Service port, as istiod decides it for a
// proxy (PushContext.destinationRule): the rules of the proxy's own namespace first, then the rules the
// service's namespace exports to it, then those the root namespace exports; within each, the most
// specific host; for one host, the oldest rule's policy (Istio merges same-host rules, first one wins).
// Per-port settings replace the top-level component they set (Istio's MergeTrafficPolicy).

import { type DestinationRuleResource, parseDuration } from '../../config/index.ts';
import { serviceKeyParts } from '../../xds/index.ts';
import type { BackendRef } from '../route-types.ts';
import { domainOf, mostSpecificHost, resolveHost } from './hosts.ts';
import type {
  HashKey,
  LoadBalancerPolicy,
  OriginationTls,
  OutlierPolicy,
  PoolLimits,
  ResolvedTrafficPolicy,
} from './types.ts';

type Spec = DestinationRuleResource['spec'];
type Policy = NonNullable<Spec['trafficPolicy']>;
type Settings = Pick<Policy, 'loadBalancer' | 'connectionPool' | 'outlierDetection' | 'tls'>;

export interface LookupOptions {
  /** The waypoint's namespace (the "client" namespace of the lookup); default: the service's. */
  proxyNamespace?: string;
  /** Istio's root configuration namespace. Default `istio-system`. */
  rootNamespace?: string;
  /** The backend's namespace, where its key does not begin with it (a ServiceEntry host's). */
  serviceNamespace?: string;
}

/** Istio's circuit breaker defaults: every threshold at its maximum (not Envoy's 1024). */
export const UNLIMITED_POOL: PoolLimits = {
  maxConnections: Number.POSITIVE_INFINITY,
  maxPendingRequests: Number.POSITIVE_INFINITY,
  maxRequests: Number.POSITIVE_INFINITY,
  maxRequestsPerConnection: Number.POSITIVE_INFINITY,
  maxRetries: Number.POSITIVE_INFINITY,
};

/** What applies with no DestinationRule: LEAST_REQUEST (Istio's default since 1.14), no limits. */
export const DEFAULT_TRAFFIC_POLICY: ResolvedTrafficPolicy = {
  rule: '',
  loadBalancer: { kind: 'LEAST_REQUEST' },
  pool: UNLIMITED_POOL,
  fingerprint: 'default',
};

/** Envoy's ring hash `minimum_ring_size` default, and its `maximum_ring_size`. */
export const DEFAULT_RING_SIZE = 1024;
export const MAX_RING_SIZE = 8 * 1024 * 1024;

const ms = (d: string | undefined, fallback: number): number =>
  d === undefined ? fallback : (parseDuration(d) ?? fallback);

const keyOf = (r: DestinationRuleResource) => `${r.metadata.namespace ?? 'default'}/${r.metadata.name}`;

/** Whether a rule in `owner` is visible to `client` (exportTo; unset: everywhere). */
function exportedTo(spec: Spec, owner: string, client: string): boolean {
  const to = spec.exportTo;
  if (!to || to.length === 0) return true;
  return to.some((ns) => ns === '*' || ns === client || (ns === '.' && owner === client));
}

function hashKey(h: NonNullable<NonNullable<Settings['loadBalancer']>['consistentHash']>): HashKey {
  if (h.httpHeaderName !== undefined) return { kind: 'header', name: h.httpHeaderName.toLowerCase() };
  if (h.httpCookie !== undefined) {
    const c = h.httpCookie;
    return {
      kind: 'cookie',
      name: c.name,
      ...(c.path !== undefined ? { path: c.path } : {}),
      ...(c.ttl !== undefined ? { ttlSeconds: Math.floor(ms(c.ttl, 0) / 1000) } : {}),
    };
  }
  if (h.httpQueryParameterName !== undefined) return { kind: 'query', name: h.httpQueryParameterName };
  return { kind: 'sourceIp' };
}

/** `loadBalancer` → Envoy's lb_policy. LEAST_CONN is LEAST_REQUEST's old name; PASSTHROUGH: see below. */
export function loadBalancerOf(lb: Settings['loadBalancer']): LoadBalancerPolicy {
  const h = lb?.consistentHash;
  if (h) {
    const size = h.maglev?.tableSize ?? h.ringHash?.minimumRingSize ?? h.minimumRingSize ?? DEFAULT_RING_SIZE;
    return { kind: 'RING_HASH', key: hashKey(h), minimumRingSize: Math.min(size, MAX_RING_SIZE) };
  }
  switch (lb?.simple) {
    case 'ROUND_ROBIN':
    // PASSTHROUGH is Envoy's ORIGINAL_DST cluster: at a waypoint the original destination is the
    // Service VIP, which is what is being balanced; we balance it round robin rather than refuse it.
    case 'PASSTHROUGH':
      return { kind: 'ROUND_ROBIN' };
    case 'RANDOM':
      return { kind: 'RANDOM' };
    default:
      return { kind: 'LEAST_REQUEST' };
  }
}

const limit = (n: number | undefined) => (n !== undefined && n > 0 ? n : Number.POSITIVE_INFINITY);

/** `connectionPool` → circuit breaker thresholds; unset and 0 mean unlimited, as Istio passes them. */
export function poolOf(cp: Settings['connectionPool']): PoolLimits {
  return {
    maxConnections: limit(cp?.tcp?.maxConnections),
    maxPendingRequests: limit(cp?.http?.http1MaxPendingRequests),
    maxRequests: limit(cp?.http?.http2MaxRequests),
    maxRequestsPerConnection: limit(cp?.http?.maxRequestsPerConnection),
    maxRetries: limit(cp?.http?.maxRetries),
  };
}

/** `outlierDetection` → Envoy's, as istiod writes it (enforcing 100 % where a count is set). */
export function outlierOf(od: Settings['outlierDetection']): OutlierPolicy | undefined {
  if (!od) return undefined;
  // Envoy's defaults: consecutive_5xx 5 (enforced), consecutive_gateway_failure 5 (not enforced).
  let consecutive5xx = 5;
  let consecutiveGateway = 0;
  if (od.consecutiveErrors !== undefined && od.consecutiveErrors > 0) {
    // The deprecated field counts gateway errors and turns the 5xx count off.
    consecutiveGateway = od.consecutiveErrors;
    consecutive5xx = 0;
  }
  if (od.consecutive5xxErrors !== undefined) consecutive5xx = od.consecutive5xxErrors;
  if (od.consecutiveGatewayErrors !== undefined) consecutiveGateway = od.consecutiveGatewayErrors;
  const baseEjectionMs = ms(od.baseEjectionTime, 30_000);
  return {
    consecutive5xx,
    consecutiveGateway,
    intervalMs: Math.max(1, ms(od.interval, 10_000)),
    baseEjectionMs,
    maxEjectionMs: Math.max(300_000, baseEjectionMs),
    maxEjectionPercent:
      od.maxEjectionPercent !== undefined && od.maxEjectionPercent > 0 ? od.maxEjectionPercent : 10,
    minHealthPercent: od.minHealthPercent ?? 0,
  };
}

/** `tls` → what the waypoint originates to an endpoint outside the mesh; undefined: nothing. */
export function originationOf(tls: Settings['tls']): OriginationTls | undefined {
  if (tls?.mode !== 'SIMPLE' && tls?.mode !== 'MUTUAL') return undefined;
  return {
    mode: tls.mode,
    insecureSkipVerify: tls.insecureSkipVerify ?? false,
    ...(tls.sni !== undefined ? { sni: tls.sni } : {}),
    ...(tls.caCertificates !== undefined ? { caCertificates: tls.caCertificates } : {}),
    ...(tls.clientCertificate !== undefined ? { clientCertificate: tls.clientCertificate } : {}),
    ...(tls.privateKey !== undefined ? { privateKey: tls.privateKey } : {}),
    ...(tls.subjectAltNames?.length ? { subjectAltNames: tls.subjectAltNames } : {}),
    ...(tls.credentialName !== undefined ? { credentialName: tls.credentialName } : {}),
  };
}

/** The top-level settings with a matching `portLevelSettings` entry's components in their place. */
function settingsFor(policy: Policy, port: number): Settings {
  const at = policy.portLevelSettings?.find((p) => p.port.number === port);
  return {
    loadBalancer: at?.loadBalancer ?? policy.loadBalancer,
    connectionPool: at?.connectionPool ?? policy.connectionPool,
    outlierDetection: at?.outlierDetection ?? policy.outlierDetection,
    tls: at?.tls ?? policy.tls,
  };
}

function resolved(rule: DestinationRuleResource, port: number): ResolvedTrafficPolicy | undefined {
  const policy = rule.spec.trafficPolicy;
  if (!policy) return undefined;
  const s = settingsFor(policy, port);
  const tls = originationOf(s.tls);
  const out = {
    rule: keyOf(rule),
    loadBalancer: loadBalancerOf(s.loadBalancer),
    pool: poolOf(s.connectionPool),
    ...(s.outlierDetection ? { outlier: outlierOf(s.outlierDetection) } : {}),
    ...(tls ? { tls } : {}),
  };
  // Infinity does not survive JSON; the fingerprint only has to tell policies apart.
  const fingerprint = JSON.stringify({ ...out, rule: undefined }, (_k, v) =>
    v === Number.POSITIVE_INFINITY ? 'inf' : v,
  );
  return { ...out, fingerprint };
}

/** Oldest first, then by namespace/name: the order in which istiod merges same-host rules. */
function byAge(a: DestinationRuleResource, b: DestinationRuleResource): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  return keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0;
}

/** Among `rules`, those for the most specific host covering `hostname`, oldest first. */
function bestMatch(
  rules: readonly DestinationRuleResource[],
  hostname: string,
  domain: string,
): DestinationRuleResource[] {
  const byHost = new Map<string, DestinationRuleResource[]>();
  for (const r of rules) {
    const host = resolveHost(r.spec.host, r.metadata.namespace ?? 'default', domain);
    const list = byHost.get(host);
    if (list) list.push(r);
    else byHost.set(host, [r]);
  }
  const host = mostSpecificHost(hostname, byHost.keys());
  return host === undefined ? [] : (byHost.get(host) ?? []).sort(byAge);
}

/**
 * The traffic policy for `backend` (`namespace/name` and service port) whose hostname is
 * `serviceHostname`, from the DestinationRules the waypoint holds; undefined when none applies (the
 * caller uses DEFAULT_TRAFFIC_POLICY). Rules with a workloadSelector select sidecars, not waypoints,
 * and are skipped; subsets are not consulted (routes name Services, not subsets).
 */
export function trafficPolicyFor(
  rules: Iterable<DestinationRuleResource>,
  backend: BackendRef,
  serviceHostname: string,
  opts: LookupOptions = {},
): ResolvedTrafficPolicy | undefined {
  const serviceNs = opts.serviceNamespace ?? (serviceKeyParts(backend.service).namespace || 'default');
  const client = opts.proxyNamespace ?? serviceNs;
  const root = opts.rootNamespace ?? 'istio-system';
  const domain = domainOf(serviceHostname);
  const byNs = new Map<string, DestinationRuleResource[]>();
  for (const r of rules) {
    if (r.spec.workloadSelector) continue;
    const ns = r.metadata.namespace ?? 'default';
    const list = byNs.get(ns);
    if (list) list.push(r);
    else byNs.set(ns, [r]);
  }
  // 1. the proxy's namespace, every rule there; 2. the service's namespace, 3. the root namespace:
  // only the rules they export to the proxy's namespace.
  const steps: Array<[string, boolean]> = [
    [client, false],
    [serviceNs, true],
    [root, true],
  ];
  const seen = new Set<string>();
  for (const [ns, exportedOnly] of steps) {
    if (seen.has(ns)) continue;
    seen.add(ns);
    const candidates = (byNs.get(ns) ?? []).filter((r) => !exportedOnly || exportedTo(r.spec, ns, client));
    const found = bestMatch(candidates, serviceHostname, domain);
    if (found.length === 0) continue;
    // Same-host rules merge; the oldest rule that sets a trafficPolicy gives it.
    for (const r of found) {
      const p = resolved(r, backend.port);
      if (p) return p;
    }
    return undefined;
  }
  return undefined;
}

/**
 * `trafficPolicyFor` memoised per configuration: the answer for a backend is computed once per rule
 * set (compared by identity: the state's map is replaced when DestinationRules change) and reused.
 */
export function trafficPolicyLookup(
  rules: () => ReadonlyMap<string, DestinationRuleResource>,
  serviceOf: (service: string) => { hostname: string; namespace: string } | undefined,
  opts: LookupOptions = {},
): (backend: BackendRef) => ResolvedTrafficPolicy | undefined {
  let current: ReadonlyMap<string, DestinationRuleResource> | undefined;
  let cache = new Map<string, ResolvedTrafficPolicy | undefined>();
  return (backend) => {
    const now = rules();
    if (now !== current) {
      current = now;
      cache = new Map();
    }
    const service = serviceOf(backend.service);
    const { namespace: ns, name, entry } = serviceKeyParts(backend.service);
    const hostname = service?.hostname ?? (entry ? name : `${name}.${ns}.svc.cluster.local`);
    const key = `${backend.service}:${backend.port}|${hostname}|${opts.rootNamespace ?? ''}`;
    if (cache.has(key)) return cache.get(key);
    const found = trafficPolicyFor(now.values(), backend, hostname, {
      proxyNamespace: opts.proxyNamespace,
      rootNamespace: opts.rootNamespace,
      serviceNamespace: service?.namespace ?? ns,
    });
    cache.set(key, found);
    return found;
  };
}
