// A RateLimitPolicy compiled once per resource object (never per request): each rule with its
// matcher, its limit as a rate, the identity its buckets and counters are kept under, and the name
// clients see in the ratelimit headers.

import {
  type RateLimitPolicyResource,
  type RateLimitRule,
  type RateLimitUnit,
  rateLimitRuleName,
} from '../../config/index.ts';
import { compileSelectors, type RuleMatcher } from './selectors.ts';

export const UNIT_SECONDS: Record<RateLimitUnit, number> = {
  Second: 1,
  Minute: 60,
  Hour: 3_600,
  Day: 86_400,
};

export interface CompiledRule {
  scope: 'local' | 'global';
  /** `namespace/policy`: with `name`, what a bucket or counter is kept per. */
  policy: string;
  /** The rule's name in its policy (`local-0` when unnamed). */
  name: string;
  /** The item name in `ratelimit-policy` / `ratelimit`: `policy/rule`. */
  headerName: string;
  requests: number;
  windowSeconds: number;
  /** Tokens per second, what Envoy orders local buckets by (strictest first). */
  fillRate: number;
  match: RuleMatcher;
}

export interface CompiledRateLimitPolicy {
  local: CompiledRule[];
  global: CompiledRule[];
}

const compiled = new WeakMap<RateLimitPolicyResource, CompiledRateLimitPolicy>();

function compileRule(
  policy: RateLimitPolicyResource,
  scope: 'local' | 'global',
  rule: RateLimitRule,
  index: number,
): CompiledRule {
  const name = rateLimitRuleName(scope, index, rule);
  const windowSeconds = UNIT_SECONDS[rule.limit.unit];
  return {
    scope,
    policy: `${policy.metadata.namespace ?? 'default'}/${policy.metadata.name}`,
    name,
    headerName: `${policy.metadata.name}/${name}`,
    requests: rule.limit.requests,
    windowSeconds,
    fillRate: rule.limit.requests / windowSeconds,
    match: compileSelectors(rule.clientSelectors),
  };
}

/** The compiled form of a validated policy, cached on the object (a new version is a new object). */
export function compileRateLimitPolicy(policy: RateLimitPolicyResource): CompiledRateLimitPolicy {
  let c = compiled.get(policy);
  if (!c) {
    c = {
      local: (policy.spec.local?.rules ?? []).map((r, i) => compileRule(policy, 'local', r, i)),
      global: (policy.spec.global?.rules ?? []).map((r, i) => compileRule(policy, 'global', r, i)),
    };
    compiled.set(policy, c);
  }
  return c;
}
