// Rate limits: the RateLimitPolicy rules that bind a request, enforced as Envoy Gateway enforces its
// BackendTrafficPolicy rateLimit — local token buckets per replica, global fixed windows in Redis.

export type { RequestAttributes } from '../l7-types.ts';
export { type CompiledRateLimitPolicy, type CompiledRule, compileRateLimitPolicy } from './compile.ts';
export { RATELIMIT_ERRORS } from './errors.ts';
export { windowKey, windowState } from './fixed-window.ts';
export { type RuleReport, rateLimitHeaders } from './headers.ts';
export {
  DEFAULT_MAX_LOCAL_BUCKETS,
  DEFAULT_REDIS_TIMEOUT_MS,
  RateLimiter,
  type RateLimiterOptions,
  type RateLimitTarget,
  type RateLimitVerdict,
} from './limiter.ts';
export type { DescriptorEntry, RuleMatcher } from './selectors.ts';
export { type BucketState, TokenBuckets } from './token-buckets.ts';
