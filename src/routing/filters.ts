// A rule's filters (or a backendRef's) compiled once into what a forward or redirect needs: header
// edits, a redirect, a URL rewrite, mirrors and ExtensionRefs. Backend-level filters apply only when
// that backend is chosen, after the rule's own (so a backend's `set` of a header wins over the rule's).

import { resolveMirror } from './backends.ts';
import type { Filter, MeshLookup, MirrorSpec, PathModifierSpec, RedirectSpec } from './shapes.ts';
import { type ExtensionRef, type HeaderEdits, type MirrorTarget, NO_HEADER_EDITS } from './types.ts';

export interface Rewrite {
  path: PathModifierSpec | undefined;
  hostname: string | undefined;
}

export interface CompiledFilters {
  requestHeaders: HeaderEdits;
  responseHeaders: HeaderEdits;
  redirect: RedirectSpec | undefined;
  rewrite: Rewrite | undefined;
  /** Valid mirror targets only: a mirror whose backend cannot be resolved is dropped, as the spec says. */
  mirrors: readonly MirrorTarget[];
  extensionRefs: readonly ExtensionRef[];
}

export const NO_FILTERS: CompiledFilters = {
  requestHeaders: NO_HEADER_EDITS,
  responseHeaders: NO_HEADER_EDITS,
  redirect: undefined,
  rewrite: undefined,
  mirrors: [],
  extensionRefs: [],
};

type Modifier = NonNullable<Filter['requestHeaderModifier']>;

function headerEdits(modifiers: readonly Modifier[]): HeaderEdits {
  if (modifiers.length === 0) return NO_HEADER_EDITS;
  const set: Array<readonly [string, string]> = [];
  const add: Array<readonly [string, string]> = [];
  const remove: string[] = [];
  for (const m of modifiers) {
    for (const h of m.set ?? []) set.push([h.name.toLowerCase(), h.value]);
    for (const h of m.add ?? []) add.push([h.name.toLowerCase(), h.value]);
    for (const name of m.remove ?? []) remove.push(name.toLowerCase());
  }
  return { set, add, remove };
}

/**
 * The share of requests a RequestMirror copies: `percent`/100, or `fraction` numerator/denominator
 * (the denominator defaults to 100, as in Gateway API's Fraction); all of them when neither is set.
 */
export function mirrorFraction(spec: MirrorSpec): number {
  let share = 1;
  if (spec.percent !== undefined) share = spec.percent / 100;
  else if (spec.fraction !== undefined) share = spec.fraction.numerator / (spec.fraction.denominator ?? 100);
  return Math.min(1, Math.max(0, share));
}

export function compileFilters(
  filters: readonly Filter[] | undefined,
  routeNamespace: string,
  mesh: MeshLookup,
): CompiledFilters {
  if (filters === undefined || filters.length === 0) return NO_FILTERS;
  const request: Modifier[] = [];
  const response: Modifier[] = [];
  const mirrors: MirrorTarget[] = [];
  const extensionRefs: ExtensionRef[] = [];
  let redirect: RedirectSpec | undefined;
  let rewrite: Rewrite | undefined;
  for (const f of filters) {
    if (f.requestHeaderModifier) request.push(f.requestHeaderModifier);
    if (f.responseHeaderModifier) response.push(f.responseHeaderModifier);
    if (f.requestRedirect) redirect = f.requestRedirect;
    if (f.urlRewrite) rewrite = { path: f.urlRewrite.path, hostname: f.urlRewrite.hostname };
    if (f.requestMirror) {
      const target = resolveMirror(f.requestMirror, routeNamespace, mesh);
      if (target.ok) mirrors.push({ backend: target.backend, fraction: mirrorFraction(f.requestMirror) });
    }
    if (f.extensionRef) extensionRefs.push({ ...f.extensionRef, namespace: routeNamespace });
  }
  return {
    requestHeaders: headerEdits(request),
    responseHeaders: headerEdits(response),
    redirect,
    rewrite,
    mirrors,
    extensionRefs,
  };
}

function concatEdits(a: HeaderEdits, b: HeaderEdits): HeaderEdits {
  return { set: [...a.set, ...b.set], add: [...a.add, ...b.add], remove: [...a.remove, ...b.remove] };
}

/** The filters in force when a backend with its own `backend` filters is chosen under `rule`'s. */
export function mergeFilters(rule: CompiledFilters, backend: CompiledFilters): CompiledFilters {
  if (backend === NO_FILTERS) return rule;
  const rewrite =
    rule.rewrite === undefined && backend.rewrite === undefined
      ? undefined
      : {
          path: backend.rewrite?.path ?? rule.rewrite?.path,
          hostname: backend.rewrite?.hostname ?? rule.rewrite?.hostname,
        };
  return {
    requestHeaders: concatEdits(rule.requestHeaders, backend.requestHeaders),
    responseHeaders: concatEdits(rule.responseHeaders, backend.responseHeaders),
    redirect: backend.redirect ?? rule.redirect,
    rewrite,
    mirrors: [...rule.mirrors, ...backend.mirrors],
    extensionRefs: [...rule.extensionRefs, ...backend.extensionRefs],
  };
}
