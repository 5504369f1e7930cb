// Local rules' token buckets, as Envoy's local_ratelimit keeps them (its AtomicTokenBucket): a bucket
// holds at most `requests` tokens and refills continuously at `requests` per unit, so
// max_tokens = tokens_per_fill = requests and fill_interval = unit. A bucket is one number, the
// moment it was (or would have been) empty; a full bucket is the same as none, so forgetting the
// least recently used bucket beyond the cap changes nothing for a client that is not over its limit.
// Each rule keeps its own buckets under its own cap: a client that sends many distinct values to one
// rule can push out only that rule's buckets, never another rule's (another tenant's).

import { createHash } from 'node:crypto';
import type { CompiledRule } from './compile.ts';
import type { DescriptorEntry } from './selectors.ts';

/** What one bucket says after a request took (or failed to take) a token. */
export interface BucketState {
  /** Whole tokens left. */
  remaining: number;
  /** Seconds until the bucket is full again. */
  reset: number;
  /** Seconds until it holds one token (0 when it holds one now). */
  nextToken: number;
}

/** Distinct values longer than this are kept as their digest, so a bucket's key stays small. */
const MAX_KEY_VALUES = 256;

/** Floating-point slack: a bucket refilled to 0.9999999999 of a token holds one. */
const EPSILON = 1e-9;

/** Rules whose buckets are kept at most (a changed limit is a new rule); the least recently used go. */
const MAX_RULES = 4096;

export class TokenBuckets {
  readonly #max: number;
  /**
   * Per rule (its id), bucket key → the time (s, from #epoch) at which it held no token; both Maps'
   * order is recency.
   */
  readonly #rules = new Map<string, Map<string, number>>();
  #epoch: number | undefined;
  #last = 0;

  /** `max`: buckets kept per rule. */
  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    let n = 0;
    for (const buckets of this.#rules.values()) n += buckets.size;
    return n;
  }

  static #ruleId(rule: CompiledRule): string {
    return `${rule.policy}\n${rule.name}\n${rule.requests}/${rule.windowSeconds}`;
  }

  /** The rule's buckets, made the most recently used rule. */
  #bucketsOf(rule: CompiledRule): Map<string, number> {
    const id = TokenBuckets.#ruleId(rule);
    let buckets = this.#rules.get(id);
    if (buckets) this.#rules.delete(id);
    else buckets = new Map();
    this.#rules.set(id, buckets);
    while (this.#rules.size > MAX_RULES) this.#rules.delete(this.#rules.keys().next().value as string);
    return buckets;
  }

  /** The key of a rule's bucket: a changed limit is a new bucket, as a new Envoy filter config is. */
  static key(rule: CompiledRule, entries: readonly DescriptorEntry[]): string {
    const id = TokenBuckets.#ruleId(rule);
    if (entries.length === 0) return id;
    const values = JSON.stringify(entries);
    return `${id}\n${values.length > MAX_KEY_VALUES ? createHash('sha256').update(values).digest('base64') : values}`;
  }

  /** Seconds since the first call; never goes back, so a clock step back cannot empty a bucket. */
  #seconds(nowMs: number): number {
    this.#epoch ??= nowMs;
    this.#last = Math.max(this.#last, (nowMs - this.#epoch) / 1000);
    return this.#last;
  }

  #tokens(rule: CompiledRule, buckets: Map<string, number>, key: string, now: number): number {
    const emptyAt = buckets.get(key) ?? now - rule.windowSeconds;
    return Math.min(rule.requests, (now - emptyAt) * rule.fillRate);
  }

  #state(rule: CompiledRule, tokens: number): BucketState {
    return {
      remaining: Math.floor(tokens + EPSILON),
      reset: Math.max(0, Math.ceil((rule.requests - tokens) / rule.fillRate - EPSILON)),
      nextToken: tokens + EPSILON >= 1 ? 0 : Math.ceil((1 - tokens) / rule.fillRate - EPSILON),
    };
  }

  /** Takes a token when there is one; `taken` false means the request is over the limit. */
  take(rule: CompiledRule, key: string, nowMs: number): BucketState & { taken: boolean } {
    const now = this.#seconds(nowMs);
    const buckets = this.#bucketsOf(rule);
    const tokens = this.#tokens(rule, buckets, key, now);
    const taken = tokens + EPSILON >= 1;
    const left = taken ? Math.max(0, tokens - 1) : tokens;
    buckets.delete(key);
    buckets.set(key, now - left / rule.fillRate);
    while (buckets.size > this.#max) buckets.delete(buckets.keys().next().value as string);
    return { taken, ...this.#state(rule, left) };
  }

  /** A bucket's state without taking from it (for the headers of rules not reached). */
  peek(rule: CompiledRule, key: string, nowMs: number): BucketState {
    const now = this.#seconds(nowMs);
    const buckets = this.#rules.get(TokenBuckets.#ruleId(rule)) ?? new Map<string, number>();
    return this.#state(rule, this.#tokens(rule, buckets, key, now));
  }
}
