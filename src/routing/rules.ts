// One route rule compiled once: its filters, its backends (each resolved, weighted, and carrying the
// filters in force when it is chosen), its timeouts and its retry policy.

import { parseDuration } from '../config/index.ts';
import { type Resolved, resolveBackend } from './backends.ts';
import { type CompiledFilters, compileFilters, mergeFilters } from './filters.ts';
import type { Filter, GrpcRule, HttpRule, MeshLookup, RetrySpec, TimeoutsSpec } from './shapes.ts';
import type { RetryPolicy } from './types.ts';

export interface CompiledBackend {
  /** Gateway API weight (default 1); 0 is never chosen. */
  weight: number;
  resolved: Resolved;
  /** The rule's filters with this backendRef's own applied after them. */
  filters: CompiledFilters;
}

export interface CompiledRule {
  /** `namespace/name` of the route. */
  route: string;
  filters: CompiledFilters;
  backends: readonly CompiledBackend[];
  timeoutMs: number | undefined;
  backendTimeoutMs: number | undefined;
  retry: RetryPolicy | undefined;
}

/** Retries when `retry` is given without `attempts` (the spec leaves it to the implementation; Istio's default). */
export const DEFAULT_RETRIES = 2;
/** Wait before a retry when `retry.backoff` is unset (Envoy's default base interval). */
export const DEFAULT_BACKOFF_MS = 25;

/** A Gateway API timeout in ms; `0s` disables it ("Setting a timeout to the zero duration ... SHOULD disable the timeout"). */
export function timeoutMs(duration: string | undefined): number | undefined {
  const ms = duration === undefined ? undefined : parseDuration(duration);
  return ms === undefined || ms === 0 ? undefined : ms;
}

/**
 * HTTPRoute `retry` as a RetryPolicy: `attempts` counts retries, the policy counts attempts in all.
 * "An explicit zero value MUST disable retries": no policy then. Without `codes`, only failures to
 * reach the backend are retried (the spec's SHOULD), not any response status.
 */
export function retryPolicy(spec: RetrySpec | undefined): RetryPolicy | undefined {
  if (spec === undefined) return undefined;
  const retries = spec.attempts ?? DEFAULT_RETRIES;
  if (retries === 0) return undefined;
  const backoff = spec.backoff === undefined ? undefined : parseDuration(spec.backoff);
  return { attempts: retries + 1, codes: spec.codes ?? [], backoffMs: backoff ?? DEFAULT_BACKOFF_MS };
}

function timeouts(spec: TimeoutsSpec | undefined) {
  return { timeoutMs: timeoutMs(spec?.request), backendTimeoutMs: timeoutMs(spec?.backendRequest) };
}

/**
 * A backendRef's filters. routes.ts validates them with the same filter schema as a rule's, but
 * builds the backendRef schema from a `z.ZodType` parameter, so their inferred type is `unknown[]`.
 */
function backendFilters(ref: NonNullable<HttpRule['backendRefs']>[number]): Filter[] | undefined {
  return ref.filters as Filter[] | undefined;
}

export function compileRule(
  rule: HttpRule | GrpcRule,
  route: string,
  routeNamespace: string,
  mesh: MeshLookup,
): CompiledRule {
  const filters = compileFilters(rule.filters, routeNamespace, mesh);
  const backends = (rule.backendRefs ?? []).map(
    (ref): CompiledBackend => ({
      weight: ref.weight ?? 1,
      resolved: resolveBackend(ref, routeNamespace, mesh),
      filters: mergeFilters(filters, compileFilters(backendFilters(ref), routeNamespace, mesh)),
    }),
  );
  return { route, filters, backends, ...timeouts(rule.timeouts), retry: retryPolicy(rule.retry) };
}
