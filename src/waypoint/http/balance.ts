// Endpoint choice and the retry budget: the per-backend state a request consults before an attempt.
// Each backend (Service port) gets the load balancer, outlier detector and circuit breakers its
// DestinationRule asks for (LEAST_REQUEST and no limits without one), rebuilt when the policy changes.

import type { BackendRef } from '../route-types.ts';
import {
  CircuitBreakers,
  createBalancer,
  DEFAULT_TRAFFIC_POLICY,
  endpointName,
  type LoadBalancer,
  OutlierDetector,
  type ResolvedTrafficPolicy,
} from '../traffic-policy/index.ts';
import type { Endpoint } from './types.ts';

/** Chooses one endpoint of a backend; `key` names the backend (`namespace/name:port`). */
export type Picker = (key: string, endpoints: readonly Endpoint[]) => Endpoint | undefined;

/** Round robin per backend: each backend's own counter, so one busy backend does not skew another. */
export function roundRobin(): Picker {
  const next = new Map<string, number>();
  return (key, endpoints) => {
    if (endpoints.length === 0) return undefined;
    const i = next.get(key) ?? 0;
    next.set(key, (i + 1) % endpoints.length);
    return endpoints[i % endpoints.length];
  };
}

/** Envoy's default retry budget: retries in flight at most 20 % of active requests, at least 3. */
export const RETRY_BUDGET_PERCENT = 20;
export const RETRY_BUDGET_MIN_CONCURRENCY = 3;

/**
 * A backend's retry budget (Envoy's `retry_budget`): a retry may start only while the retries in flight
 * stay within a share of the requests in flight, so retries cannot multiply an overload.
 */
export class RetryBudget {
  private active = 0;
  private retrying = 0;
  private readonly percent: number;
  private readonly minConcurrency: number;

  constructor(percent = RETRY_BUDGET_PERCENT, minConcurrency = RETRY_BUDGET_MIN_CONCURRENCY) {
    this.percent = percent;
    this.minConcurrency = minConcurrency;
  }

  requestStarted(): void {
    this.active += 1;
  }

  requestFinished(): void {
    this.active -= 1;
  }

  /** Takes a retry slot when the budget allows one; the caller releases it when the retry ends. */
  tryRetry(): boolean {
    const allowed = Math.max(this.minConcurrency, Math.floor((this.active * this.percent) / 100));
    if (this.retrying >= allowed) return false;
    this.retrying += 1;
    return true;
  }

  retryFinished(): void {
    this.retrying -= 1;
  }

  get stats(): { active: number; retrying: number } {
    return { active: this.active, retrying: this.retrying };
  }
}

/** What one backend (cluster) keeps across requests: its policy and the state that policy needs. */
export class BackendState {
  readonly key: string;
  readonly policy: ResolvedTrafficPolicy;
  readonly budget = new RetryBudget();
  readonly breakers: CircuitBreakers;
  readonly outlier: OutlierDetector | undefined;
  private readonly balancer: LoadBalancer<Endpoint>;
  private readonly active = new Map<string, number>();

  constructor(key: string, policy: ResolvedTrafficPolicy, random: () => number, now: () => number) {
    this.key = key;
    this.policy = policy;
    this.breakers = new CircuitBreakers(policy.pool);
    this.outlier = policy.outlier ? new OutlierDetector(policy.outlier, now) : undefined;
    this.balancer = createBalancer<Endpoint>(policy.loadBalancer, {
      random,
      active: (e) => this.active.get(endpointName(e)) ?? 0,
    });
  }

  /** One endpoint among those not ejected (all of them in panic); `hashKey` for consistent hashing. */
  choose(endpoints: readonly Endpoint[], hashKey?: string): Endpoint | undefined {
    const usable = this.outlier ? this.outlier.usable(endpoints) : endpoints;
    return this.balancer.pick(usable, hashKey);
  }

  /** An attempt to `endpoint` started (least request counts these); call the result when it ends. */
  attemptStarted(endpoint: Endpoint): () => void {
    const name = endpointName(endpoint);
    this.active.set(name, (this.active.get(name) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.active.get(name) ?? 1) - 1;
      if (n <= 0) this.active.delete(name);
      else this.active.set(name, n);
    };
  }

  activeRequests(endpoint: Endpoint): number {
    return this.active.get(endpointName(endpoint)) ?? 0;
  }
}

/** The state of every backend, each rebuilt when its resolved policy's fingerprint changes. */
export class Backends {
  private readonly states = new Map<string, BackendState>();
  private readonly policyOf: (backend: BackendRef) => ResolvedTrafficPolicy | undefined;
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(
    policyOf: ((backend: BackendRef) => ResolvedTrafficPolicy | undefined) | undefined,
    random: () => number,
    now: () => number,
  ) {
    this.policyOf = policyOf ?? (() => undefined);
    this.random = random;
    this.now = now;
  }

  /** How many backends have state now. */
  get size(): number {
    return this.states.size;
  }

  of(backend: BackendRef): BackendState {
    const key = `${backend.service}:${backend.port}`;
    const policy = this.policyOf(backend) ?? DEFAULT_TRAFFIC_POLICY;
    let state = this.states.get(key);
    if (!state || state.policy.fingerprint !== policy.fingerprint) {
      state = new BackendState(key, policy, this.random, this.now);
      this.states.set(key, state);
      // Bounded: the backends least recently added go first (their requests in flight keep their
      // state object; the next request starts afresh), so no client can grow this without end.
      if (this.states.size > MAX_BACKEND_STATES) {
        const oldest = this.states.keys().next().value;
        if (oldest !== undefined && oldest !== key) this.states.delete(oldest);
      }
    }
    return state;
  }
}

/** Backends whose balancer, breakers and outlier state are kept at most. */
const MAX_BACKEND_STATES = 4096;
