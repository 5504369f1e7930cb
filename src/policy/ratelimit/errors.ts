// The rate-limit error catalogue: what a global rule's Redis can fail at. The limiter never throws
// these at its caller: they are the `error` of its status, its log lines, and what decides a
// fail-open or fail-closed answer.

export const RATELIMIT_ERRORS = {
  /** A global rule was checked but MeshConfig `spec.rateLimit` names no Redis. */
  NO_BACKEND: 'AMBIT_ERR_RATELIMIT_NO_BACKEND',
  /** Redis cannot be reached (refused, reset, DNS, TLS) or the client cannot be loaded. */
  REDIS_UNREACHABLE: 'AMBIT_ERR_RATELIMIT_REDIS_UNREACHABLE',
  /** Redis did not answer a check within MeshConfig `spec.rateLimit.timeout`. */
  REDIS_TIMEOUT: 'AMBIT_ERR_RATELIMIT_REDIS_TIMEOUT',
  /** Redis answered a check with something other than the counters asked for. */
  REDIS_BAD_REPLY: 'AMBIT_ERR_RATELIMIT_REDIS_BAD_REPLY',
} as const;
