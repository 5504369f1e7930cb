// What a matched rule does with one request: answer a redirect, or choose a backend by weight and
// forward with the filters in force for it; an invalid choice gets the invalid-backend answer.

import { pickWeighted } from './backends.ts';
import type { RequestView } from './match.ts';
import { modifyPath } from './path.ts';
import { redirectLocation } from './redirect.ts';
import { invalidBackend, redirect } from './responses.ts';
import type { CompiledRule } from './rules.ts';
import type { RedirectSpec } from './shapes.ts';
import type { MirrorTarget, RouteDecision, RouteRequest } from './types.ts';

/** Where the request came in and how to draw random numbers, as `decide` received them. */
export interface Arrival {
  req: RouteRequest;
  view: RequestView;
  servicePort: number;
  /** Answer in gRPC's terms (the request is gRPC and the rule is a GRPCRoute's). */
  grpc: boolean;
  random: () => number;
}

function redirectTo(rule: CompiledRule, spec: RedirectSpec, prefix: string | undefined, a: Arrival) {
  const location = redirectLocation(
    spec,
    { path: a.view.path, query: a.view.query, authority: a.req.authority, servicePort: a.servicePort },
    prefix,
  );
  return redirect(rule.route, spec.statusCode ?? 302, location);
}

/**
 * The mirrors this request is copied to: each mirror is drawn for on its own with `random`, so
 * the list holds only the targets chosen for this request (the proxy sends to all of them; their
 * `fraction` is the configured share, for information). A share of 1 takes no draw.
 */
export function chooseMirrors(
  mirrors: readonly MirrorTarget[],
  random: () => number,
): readonly MirrorTarget[] {
  if (mirrors.every((m) => m.fraction >= 1)) return mirrors;
  return mirrors.filter((m) => m.fraction >= 1 || (m.fraction > 0 && random() < m.fraction));
}

/** The decision of `rule`, whose match had `prefix` (for ReplacePrefixMatch), for one request. */
export function act(rule: CompiledRule, prefix: string | undefined, a: Arrival): RouteDecision {
  if (rule.filters.redirect) return redirectTo(rule, rule.filters.redirect, prefix, a);
  const chosen = pickWeighted(rule.backends, a.random());
  if (chosen === undefined || !chosen.resolved.ok) return invalidBackend(rule.route, a.grpc);
  const f = chosen.filters;
  if (f.redirect) return redirectTo(rule, f.redirect, prefix, a);
  const rewritePath = f.rewrite?.path;
  const decision: RouteDecision = {
    kind: 'forward',
    route: rule.route,
    backend: chosen.resolved.backend,
    path: rewritePath ? modifyPath(a.view.path, rewritePath, prefix) + a.view.query : a.req.path,
    requestHeaders: f.requestHeaders,
    responseHeaders: f.responseHeaders,
    mirrors: chooseMirrors(f.mirrors, a.random),
    extensionRefs: f.extensionRefs,
  };
  if (f.rewrite?.hostname !== undefined) decision.authority = f.rewrite.hostname;
  if (rule.timeoutMs !== undefined) decision.timeoutMs = rule.timeoutMs;
  if (rule.backendTimeoutMs !== undefined) decision.backendTimeoutMs = rule.backendTimeoutMs;
  if (rule.retry !== undefined) decision.retry = rule.retry;
  return decision;
}
