// Endpoint choice and the retry budget: the per-backend state a request consults before an attempt.
// Kept behind small functions so DestinationRule load balancing can replace round robin later.

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
