// DestinationRule traffic policy at the waypoint: which rule applies to a backend Service port (Istio's
// lookup), and the mechanisms it configures — load balancers, the hash ring, outlier detection, pool limits.

export {
  type Addressed,
  type BalancerDeps,
  createBalancer,
  endpointName,
  type LoadBalancer,
  leastRequestBalancer,
  randomBalancer,
  ringHashBalancer,
  roundRobinBalancer,
} from './balancers.ts';
export { type HashChoice, type HashInput, hashChoice, newConnectionId, setCookieValue } from './hash-key.ts';
export { domainOf, hostMatches, mostSpecificHost, resolveHost } from './hosts.ts';
export { CircuitBreakers } from './limits.ts';
export { grpcToHttpStatus, OutlierDetector, type OutlierResult } from './outlier.ts';
export {
  DEFAULT_RING_SIZE,
  DEFAULT_TRAFFIC_POLICY,
  type LookupOptions,
  loadBalancerOf,
  MAX_RING_SIZE,
  originationOf,
  outlierOf,
  poolOf,
  trafficPolicyFor,
  trafficPolicyLookup,
  UNLIMITED_POOL,
} from './resolve.ts';
export { entriesPerItem, HashRing, hashKey } from './ring.ts';
export type {
  HashKey,
  LoadBalancerPolicy,
  OriginationTls,
  OutlierPolicy,
  PoolLimits,
  ResolvedTrafficPolicy,
} from './types.ts';
