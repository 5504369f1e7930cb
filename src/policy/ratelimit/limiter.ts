// RateLimiter: the waypoint's decision for one request under the RateLimitPolicies that bind it, in
// Envoy Gateway's filter order — local rules first (this replica's token buckets), then global rules
// (Redis, shared by every replica) only if the local ones let the request through.
//
// Answers, as Envoy gives them:
//   local limit   429, body `local_rate_limited`, flag RL (envoy.filters.http.local_ratelimit)
//   global limit  429, empty body, `x-envoy-ratelimited: true`, flag RL (envoy.filters.http.ratelimit)
//   Redis failing 500, empty body, flag RLSE when MeshConfig failClosed is true (failure_mode_deny);
//                 otherwise the request passes, is logged and counted (failure_mode_allow).
// A limited answer also carries `retry-after` (seconds, at least 1) and every answer of a rule that
// counted the request carries `ratelimit-policy` / `ratelimit` (headers.ts).

import { parseDuration, type RateLimitBackend, type RateLimitPolicyResource } from '../../config/index.ts';
import { AmbitError, describeError } from '../../errors/index.ts';
import type { Logger } from '../../log/index.ts';
import type { RequestAttributes } from '../l7-types.ts';
import { type CompiledRule, compileRateLimitPolicy } from './compile.ts';
import { RATELIMIT_ERRORS } from './errors.ts';
import { windowKey, windowState } from './fixed-window.ts';
import { type RuleReport, rateLimitHeaders } from './headers.ts';
import { RedisCounter } from './redis.ts';
import type { DescriptorEntry } from './selectors.ts';
import { TokenBuckets } from './token-buckets.ts';

/** A policy that binds the request; the waypoint resolves targetRefs before it asks. */
export interface RateLimitTarget {
  policy: RateLimitPolicyResource;
}

export type RateLimitVerdict =
  | {
      limited: false;
      /** The ratelimit headers to add to the response (empty when no rule counted the request). */
      headers: Record<string, string>;
      /** Set when the request passed only because Redis could not answer (fail-open): count it. */
      failedOpen?: true;
    }
  | { limited: true; status: number; body: string; headers: Record<string, string>; flags: string };

export interface RateLimiterOptions {
  log: Logger;
  /** Milliseconds since the epoch (Date.now by default); tests inject a clock. */
  now?: () => number;
  /** MeshConfig `spec.rateLimit`, read on every check that has global rules (it can change). */
  backend: () => RateLimitBackend | undefined;
  /** At most this many local buckets (Distinct values) are kept per rule; the least recently used go first. */
  maxLocalBuckets?: number;
}

/** Envoy Gateway's rate-limit service is given 20 ms; a Node waypoint talking to Redis itself gets 100. */
export const DEFAULT_REDIS_TIMEOUT_MS = 100;
export const DEFAULT_MAX_LOCAL_BUCKETS = 10_000;

const LOCAL_BODY = 'local_rate_limited';
const RATE_LIMITED = 'RL';
const RATE_LIMIT_SERVICE_ERROR = 'RLSE';

interface Matched {
  rule: CompiledRule;
  entries: DescriptorEntry[];
}

function matchedRules(
  policies: readonly RateLimitPolicyResource[],
  scope: 'local' | 'global',
  req: RequestAttributes,
): Matched[] {
  const out: Matched[] = [];
  for (const policy of policies) {
    for (const rule of compileRateLimitPolicy(policy)[scope]) {
      const entries = rule.match(req);
      if (entries) out.push({ rule, entries });
    }
  }
  return out;
}

function limited(status: number, body: string, headers: Record<string, string>): RateLimitVerdict {
  return {
    limited: true,
    status,
    body,
    headers,
    flags: status === 500 ? RATE_LIMIT_SERVICE_ERROR : RATE_LIMITED,
  };
}

export class RateLimiter {
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #backend: () => RateLimitBackend | undefined;
  readonly #buckets: TokenBuckets;
  #redis: RedisCounter | undefined;
  #failures = 0;
  /** The last check's Redis failure, until a check succeeds again. */
  #lastFailure: string | undefined;
  #warnedNoBackend = false;
  #closed = false;

  constructor(opts: RateLimiterOptions) {
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    this.#backend = opts.backend;
    this.#buckets = new TokenBuckets(opts.maxLocalBuckets ?? DEFAULT_MAX_LOCAL_BUCKETS);
  }

  /** The verdict for a request under the policies that bind it. Never rejects. */
  async check(
    policies: readonly RateLimitPolicyResource[],
    req: RequestAttributes,
  ): Promise<RateLimitVerdict> {
    if (policies.length === 0) return { limited: false, headers: {} };
    let local: { verdict?: RateLimitVerdict; reports: RuleReport[] };
    try {
      local = this.#checkLocal(policies, req);
    } catch (err) {
      // Only a bug gets here (policies are validated); limiting nothing would open a hole silently.
      this.#log.error({ err: describeError(err) }, 'rate limit: local rules failed; refusing the request');
      return limited(500, '', {});
    }
    if (local.verdict) return local.verdict;
    const global = matchedRules(policies, 'global', req);
    if (global.length === 0) return { limited: false, headers: rateLimitHeaders(local.reports) };
    return this.#checkGlobal(global, local.reports);
  }

  /** For the admin view and status: Redis reachable or its last error, buckets held. */
  status(): { redis?: { url: string; ok: boolean; error?: string; failures: number }; localBuckets: number } {
    if (!this.#redis) return { localBuckets: this.#buckets.size };
    const redis = this.#redis.status();
    const error = this.#lastFailure ?? redis.error;
    return {
      redis: {
        url: redis.url,
        ok: redis.ok && this.#lastFailure === undefined,
        ...(error === undefined ? {} : { error }),
        failures: this.#failures,
      },
      localBuckets: this.#buckets.size,
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    const redis = this.#redis;
    this.#redis = undefined;
    await redis?.close();
  }

  /** Envoy's order: the strictest bucket first; stop at the first empty one (later ones keep their tokens). */
  #checkLocal(
    policies: readonly RateLimitPolicyResource[],
    req: RequestAttributes,
  ): { verdict?: RateLimitVerdict; reports: RuleReport[] } {
    const matched = matchedRules(policies, 'local', req).sort((a, b) => a.rule.fillRate - b.rule.fillRate);
    const now = this.#now();
    const reports: RuleReport[] = [];
    let denied: { retryAfter: number } | undefined;
    for (const { rule, entries } of matched) {
      const key = TokenBuckets.key(rule, entries);
      if (denied) {
        const s = this.#buckets.peek(rule, key, now);
        reports.push({ rule, remaining: s.remaining, reset: s.reset });
        continue;
      }
      const s = this.#buckets.take(rule, key, now);
      reports.push({ rule, remaining: s.remaining, reset: s.reset });
      if (!s.taken) denied = { retryAfter: Math.max(1, s.nextToken) };
    }
    if (!denied) return { reports };
    return {
      reports,
      verdict: limited(429, LOCAL_BODY, {
        'retry-after': String(denied.retryAfter),
        ...rateLimitHeaders(reports),
      }),
    };
  }

  async #checkGlobal(matched: Matched[], localReports: RuleReport[]): Promise<RateLimitVerdict> {
    const backend = this.#backend();
    if (!backend) return this.#noBackend(matched, localReports);
    const counter = this.#counterFor(backend.backend.redis.url);
    const timeoutMs = (backend.timeout && parseDuration(backend.timeout)) || DEFAULT_REDIS_TIMEOUT_MS;
    const nowSeconds = Math.floor(this.#now() / 1000);
    const items = matched.map(({ rule, entries }) => ({
      key: windowKey(rule, entries, nowSeconds),
      expireSeconds: rule.windowSeconds,
    }));
    let counts: number[];
    try {
      counts = await counter.increment(items, timeoutMs);
    } catch (err) {
      return this.#redisFailed(err, backend, localReports);
    }
    this.#lastFailure = undefined;
    const reports = [...localReports];
    let retryAfter = 0;
    matched.forEach(({ rule }, i) => {
      const w = windowState(rule, counts[i]!, nowSeconds);
      reports.push({ rule, remaining: w.remaining, reset: w.reset });
      // Every window over its limit must end before the request can pass.
      if (w.over) retryAfter = Math.max(retryAfter, w.reset);
    });
    const headers = rateLimitHeaders(reports);
    if (retryAfter === 0) return { limited: false, headers };
    return limited(429, '', {
      'x-envoy-ratelimited': 'true',
      'retry-after': String(Math.max(1, retryAfter)),
      ...headers,
    });
  }

  #counterFor(url: string): RedisCounter {
    if (this.#redis?.url !== url) {
      const old = this.#redis;
      this.#redis = new RedisCounter(url, this.#log);
      this.#lastFailure = undefined;
      old?.close().catch(() => {});
      if (this.#closed) this.#redis.close().catch(() => {});
    }
    return this.#redis;
  }

  #redisFailed(err: unknown, backend: RateLimitBackend, localReports: RuleReport[]): RateLimitVerdict {
    this.#failures++;
    this.#lastFailure = describeError(err);
    const code = err instanceof AmbitError ? err.code : RATELIMIT_ERRORS.REDIS_UNREACHABLE;
    this.#log.debug(
      { err: describeError(err), code, failClosed: backend.failClosed === true },
      'rate limit: Redis failed',
    );
    if (backend.failClosed === true) return limited(500, '', {});
    return { limited: false, headers: rateLimitHeaders(localReports), failedOpen: true };
  }

  /** Global rules without MeshConfig spec.rateLimit: the default fail-open, said once in the log. */
  #noBackend(matched: Matched[], localReports: RuleReport[]): RateLimitVerdict {
    this.#failures++;
    if (!this.#warnedNoBackend) {
      this.#warnedNoBackend = true;
      this.#log.warn(
        { code: RATELIMIT_ERRORS.NO_BACKEND, policy: matched[0]!.rule.policy },
        'global rate-limit rules are not enforced: MeshConfig "default" has no spec.rateLimit.backend.redis; requests pass (fail-open)',
      );
    }
    return { limited: false, headers: rateLimitHeaders(localReports), failedOpen: true };
  }
}
