// Envoy's circuit breakers for one backend (cluster): counters checked before a request, a wait for a
// connection, or a retry may start. Over a limit the request is not sent: 503 `UO`, "reset reason:
// overflow". Connections (maxConnections, maxRequestsPerConnection) are enforced by the upstream pool.

import type { PoolLimits } from './types.ts';

export class CircuitBreakers {
  readonly limits: PoolLimits;
  private requests = 0;
  private pending = 0;
  private retries = 0;

  constructor(limits: PoolLimits) {
    this.limits = limits;
  }

  /** Takes a request slot (max_requests); false: overflow. */
  tryRequest(): boolean {
    if (this.requests >= this.limits.maxRequests) return false;
    this.requests += 1;
    return true;
  }

  requestDone(): void {
    this.requests -= 1;
  }

  /** Takes a place among the requests waiting for a connection (max_pending_requests); false: overflow. */
  tryPending(): boolean {
    if (this.pending >= this.limits.maxPendingRequests) return false;
    this.pending += 1;
    return true;
  }

  pendingDone(): void {
    this.pending -= 1;
  }

  /** Takes a retry slot (max_retries); false: the retry is not made. */
  tryRetry(): boolean {
    if (this.retries >= this.limits.maxRetries) return false;
    this.retries += 1;
    return true;
  }

  retryDone(): void {
    this.retries -= 1;
  }

  get stats(): { requests: number; pending: number; retries: number } {
    return { requests: this.requests, pending: this.pending, retries: this.retries };
  }
}
