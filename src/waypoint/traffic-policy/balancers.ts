// Envoy's load balancers for one backend (cluster), each choosing among the endpoints that may take
// traffic now: round robin, least request (two random choices, the one with fewer active requests),
// random, and ring hash. Randomness and the active-request counts are injected, so choices are testable.

import { entriesPerItem, HashRing, hashKey } from './ring.ts';
import type { LoadBalancerPolicy } from './types.ts';

export interface Addressed {
  address: string;
  port: number;
}

export const endpointName = (e: Addressed): string => `${e.address}:${e.port}`;

export interface LoadBalancer<T extends Addressed> {
  /** One of `endpoints`, or undefined when there is none; `key` is the request's hash key, if any. */
  pick(endpoints: readonly T[], key?: string): T | undefined;
}

export interface BalancerDeps<T> {
  /** In [0, 1). */
  random: () => number;
  /** Requests in flight to an endpoint of this backend. */
  active: (endpoint: T) => number;
}

const at = <T>(list: readonly T[], random: () => number): T =>
  list[Math.floor(random() * list.length) % list.length] as T;

export function roundRobinBalancer<T extends Addressed>(): LoadBalancer<T> {
  let next = 0;
  return {
    pick(endpoints) {
      if (endpoints.length === 0) return undefined;
      const i = next % endpoints.length;
      next = (i + 1) % endpoints.length;
      return endpoints[i];
    },
  };
}

export function randomBalancer<T extends Addressed>(deps: BalancerDeps<T>): LoadBalancer<T> {
  return { pick: (endpoints) => (endpoints.length === 0 ? undefined : at(endpoints, deps.random)) };
}

/**
 * Envoy's unweighted least request: `choice_count` (2) random draws with replacement, keeping the one
 * with fewer active requests (the first on a tie).
 */
export function leastRequestBalancer<T extends Addressed>(
  deps: BalancerDeps<T>,
  choices = 2,
): LoadBalancer<T> {
  return {
    pick(endpoints) {
      if (endpoints.length === 0) return undefined;
      let best: T | undefined;
      for (let i = 0; i < choices; i++) {
        const c = at(endpoints, deps.random);
        if (best === undefined || deps.active(c) < deps.active(best)) best = c;
      }
      return best;
    },
  };
}

/**
 * Ring hash over the endpoints given; the ring is rebuilt only when that set changes. When the set only
 * shrinks (an endpoint ejected or removed) the others keep their entries per endpoint, so only the keys
 * of the ones gone move; Envoy would add entries to reach minimumRingSize again, moving a few more.
 */
export function ringHashBalancer<T extends Addressed>(
  deps: BalancerDeps<T>,
  minimumRingSize: number,
): LoadBalancer<T> {
  let ring: HashRing<T> | undefined;
  let names = new Set<string>();
  let signature = '';
  let perItem = 0;
  return {
    pick(endpoints, key) {
      if (endpoints.length === 0) return undefined;
      const list = endpoints.map(endpointName).sort();
      const now = list.join(',');
      if (!ring || now !== signature) {
        const shrunk = ring !== undefined && list.every((n) => names.has(n));
        if (!shrunk) perItem = entriesPerItem(endpoints.length, minimumRingSize);
        signature = now;
        names = new Set(list);
        ring = new HashRing(endpoints, endpointName, perItem);
      }
      // No key: Envoy hashes a random number instead, i.e. a random endpoint.
      const h = key === undefined ? Math.floor(deps.random() * 2 ** 48) : hashKey(key);
      return ring.find(h);
    },
  };
}

export function createBalancer<T extends Addressed>(
  policy: LoadBalancerPolicy,
  deps: BalancerDeps<T>,
): LoadBalancer<T> {
  switch (policy.kind) {
    case 'ROUND_ROBIN':
      return roundRobinBalancer();
    case 'RANDOM':
      return randomBalancer(deps);
    case 'LEAST_REQUEST':
      return leastRequestBalancer(deps);
    case 'RING_HASH':
      return ringHashBalancer(deps, policy.minimumRingSize);
  }
}
