// Global rules' counters, as the envoyproxy/ratelimit service keeps them in Redis: a fixed window per
// unit, one key per rule, descriptor and window start, INCRBY by the request's hits and EXPIRE after
// the window; a request is over the limit when the count after its own increment exceeds `requests`.
// Key shape: `<domain>_<key>_<value>_..._<window start, unix seconds>`, with domain `ambit` and the
// entries `policy` (namespace/name), `rule`, then one per Distinct selector.

import { createHash } from 'node:crypto';
import type { CompiledRule } from './compile.ts';
import type { DescriptorEntry } from './selectors.ts';

const DOMAIN = 'ambit';
/** A Distinct value longer than this (clients choose it) is counted under its SHA-256 instead. */
const MAX_VALUE_IN_KEY = 128;

/**
 * Distinct values come from clients; "_" (the key's separator) and "%" are percent-encoded so that
 * no value can pose as another descriptor's entries.
 */
function keyPart(s: string): string {
  return s.replace(/[%_]/g, (c) => (c === '%' ? '%25' : '%5F'));
}

export function windowKey(
  rule: CompiledRule,
  entries: readonly DescriptorEntry[],
  nowSeconds: number,
): string {
  const start = Math.floor(nowSeconds / rule.windowSeconds) * rule.windowSeconds;
  let key = `${DOMAIN}_policy_${keyPart(rule.policy)}_rule_${keyPart(rule.name)}_`;
  for (const e of entries) {
    const value =
      e.value.length > MAX_VALUE_IN_KEY
        ? `sha256:${createHash('sha256').update(e.value).digest('hex')}`
        : e.value;
    key += `${keyPart(e.key)}_${keyPart(value)}_`;
  }
  return key + start;
}

export interface WindowState {
  over: boolean;
  remaining: number;
  /** Seconds until the window ends (at least 1). */
  reset: number;
}

/** What a window's count after this request's increment means for it. */
export function windowState(rule: CompiledRule, count: number, nowSeconds: number): WindowState {
  return {
    over: count > rule.requests,
    remaining: Math.max(0, rule.requests - count),
    reset: rule.windowSeconds - (Math.floor(nowSeconds) % rule.windowSeconds),
  };
}
