// Envoy's outlier detector for one backend, consecutive-error kinds only (istiod turns success-rate
// ejection off). Results are reported per endpoint; the Nth consecutive 5xx (or gateway error) ejects
// it at once if that keeps ejections within max_ejection_percent. Envoy's interval timer is replayed
// lazily from an injected clock: at each tick an ejected endpoint whose time is up (base × its ejection
// backoff, capped at max_ejection_time) returns, and one that stayed in a whole interval has its backoff
// lowered by one. Below minHealthPercent usable endpoints, the balancer uses them all (Envoy's panic).

import { type Addressed, endpointName } from './balancers.ts';
import type { OutlierPolicy } from './types.ts';

interface Monitor {
  consecutive5xx: number;
  consecutiveGateway: number;
  ejectedAt?: number;
  /** Envoy's eject_time_backoff: ejections, lowered by one per interval spent in service. */
  backoff: number;
  unejectedAt?: number;
  /** Times ejected, for the admin and tests. */
  ejections: number;
}

const isGatewayError = (status: number) => status === 502 || status === 503 || status === 504;

/** Envoy's mapping of a gRPC status (trailers-only response) to an HTTP status for outlier detection. */
export function grpcToHttpStatus(grpcStatus: number): number {
  const map: Record<number, number> = {
    0: 200,
    1: 499,
    2: 500,
    3: 400,
    4: 504,
    5: 404,
    6: 409,
    7: 403,
    8: 429,
    9: 400,
    10: 409,
    11: 400,
    12: 501,
    13: 500,
    14: 503,
    15: 500,
    16: 401,
  };
  return map[grpcStatus] ?? 500;
}

/** What an attempt ended in, as the detector counts it. Local failures map to 503 / 504, as in Envoy. */
export type OutlierResult = { status: number } | 'connect-failed' | 'timeout';

export class OutlierDetector {
  private readonly policy: OutlierPolicy;
  private readonly now: () => number;
  private readonly monitors = new Map<string, Monitor>();
  private hosts = 0;
  private ejected = 0;
  private nextTick: number;

  constructor(policy: OutlierPolicy, now: () => number) {
    this.policy = policy;
    this.now = now;
    this.nextTick = now() + policy.intervalMs;
  }

  private monitor(name: string): Monitor {
    let m = this.monitors.get(name);
    if (!m) {
      m = { consecutive5xx: 0, consecutiveGateway: 0, backoff: 0, ejections: 0 };
      this.monitors.set(name, m);
    }
    return m;
  }

  /** Records one attempt's outcome at `endpoint`. */
  report(endpoint: Addressed, result: OutlierResult): void {
    this.advance();
    const status = result === 'connect-failed' ? 503 : result === 'timeout' ? 504 : result.status;
    const m = this.monitor(endpointName(endpoint));
    if (status < 500 || status > 599) {
      m.consecutive5xx = 0;
      m.consecutiveGateway = 0;
      return;
    }
    if (isGatewayError(status)) {
      m.consecutiveGateway += 1;
      if (m.consecutiveGateway === this.policy.consecutiveGateway) this.eject(m);
    } else {
      m.consecutiveGateway = 0;
    }
    m.consecutive5xx += 1;
    if (m.consecutive5xx === this.policy.consecutive5xx) this.eject(m);
  }

  private eject(m: Monitor): void {
    if (m.ejectedAt !== undefined || this.hosts === 0) return;
    // Envoy (without always_eject_one_host): eject only if the ejected share stays within the maximum.
    if ((100 * (this.ejected + 1)) / this.hosts > this.policy.maxEjectionPercent) return;
    const { baseEjectionMs, maxEjectionMs } = this.policy;
    if (m.backoff * baseEjectionMs < maxEjectionMs + baseEjectionMs) m.backoff += 1;
    m.ejectedAt = this.now();
    m.ejections += 1;
    this.ejected += 1;
  }

  /** Replays the interval ticks that fell due since the last call. */
  private advance(): void {
    const now = this.now();
    const { intervalMs, baseEjectionMs, maxEjectionMs } = this.policy;
    while (this.nextTick <= now) {
      const tick = this.nextTick;
      let busy = false;
      for (const m of this.monitors.values()) {
        if (m.ejectedAt === undefined) {
          if (m.backoff > 0 && m.unejectedAt !== undefined && tick - m.unejectedAt >= intervalMs)
            m.backoff -= 1;
        } else if (tick - m.ejectedAt >= Math.min(baseEjectionMs * m.backoff, maxEjectionMs)) {
          m.ejectedAt = undefined;
          m.unejectedAt = tick;
          m.consecutive5xx = 0;
          m.consecutiveGateway = 0;
          this.ejected -= 1;
        }
        if (m.ejectedAt !== undefined || m.backoff > 0) busy = true;
      }
      // Nothing left that a tick changes: skip to the first tick after now.
      this.nextTick = busy
        ? tick + intervalMs
        : tick + (Math.floor((now - tick) / intervalMs) + 1) * intervalMs;
    }
  }

  isEjected(endpoint: Addressed): boolean {
    this.advance();
    return this.monitors.get(endpointName(endpoint))?.ejectedAt !== undefined;
  }

  /**
   * The endpoints a balancer may choose from: the ones not ejected, or all of them when fewer than
   * minHealthPercent are (panic). Also learns the endpoint set: monitors of removed endpoints go.
   */
  usable<T extends Addressed>(endpoints: readonly T[]): readonly T[] {
    this.advance();
    this.learn(endpoints);
    if (this.ejected === 0) return endpoints;
    const healthy = endpoints.filter((e) => this.monitors.get(endpointName(e))?.ejectedAt === undefined);
    const panic = (100 * healthy.length) / Math.max(1, endpoints.length) < this.policy.minHealthPercent;
    return panic ? endpoints : healthy;
  }

  private learn(endpoints: readonly Addressed[]): void {
    this.hosts = endpoints.length;
    if (this.monitors.size <= endpoints.length) return;
    const names = new Set(endpoints.map(endpointName));
    for (const [name, m] of this.monitors) {
      if (names.has(name)) continue;
      if (m.ejectedAt !== undefined) this.ejected -= 1;
      this.monitors.delete(name);
    }
  }

  /** Per endpoint: ejected now, times ejected, current consecutive counts (admin, tests). */
  stats(): Record<string, { ejected: boolean; ejections: number; consecutive5xx: number }> {
    this.advance();
    const out: Record<string, { ejected: boolean; ejections: number; consecutive5xx: number }> = {};
    for (const [name, m] of this.monitors)
      out[name] = {
        ejected: m.ejectedAt !== undefined,
        ejections: m.ejections,
        consecutive5xx: m.consecutive5xx,
      };
    return out;
  }
}
