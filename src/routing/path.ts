// Request paths as Gateway API reads them: the path without its query, PathPrefix matching on whole
// `/`-separated segments, and the ReplaceFullPath / ReplacePrefixMatch modifiers of redirects and rewrites.

import type { PathModifierSpec } from './shapes.ts';

/** A request target split into its path and its query (`?a=b`, or '' when there is none). */
export interface Target {
  path: string;
  query: string;
}

const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/?]*/i;

/** Splits a request target. An absolute-form target (`http://host/p`, sent to proxies) keeps its path. */
export function splitTarget(target: string): Target {
  const origin = ABSOLUTE_FORM.exec(target);
  const rest = origin ? target.slice(origin[0].length) || '/' : target;
  const q = rest.indexOf('?');
  return q < 0 ? { path: rest, query: '' } : { path: rest.slice(0, q), query: rest.slice(q) };
}

const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

/**
 * A request target with its path normalized as Envoy's `normalize_path` does for Istio (RFC 3986 dot
 * segments removed, `%2e` read as `.` in them, `\` as `/`), so that routes and authorization see the path
 * the backend will; the query is kept as sent. Targets that are not a path (`*`, absolute form) are kept.
 */
export function normalizeTarget(target: string): string {
  if (!target.startsWith('/')) return target;
  const q = target.search(/[?#]/);
  const raw = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q);
  if (!/[.\\%]/.test(raw)) return target;
  const out: string[] = [];
  const segments = raw.replaceAll('\\', '/').split('/').slice(1);
  segments.forEach((seg, i) => {
    const last = i === segments.length - 1;
    if (DOT_SEGMENT.test(seg)) {
      if (seg.replace(/%2e/gi, '.') === '..') out.pop();
      if (last) out.push('');
      return;
    }
    out.push(seg);
  });
  return `/${out.join('/')}${query}`;
}

/** A PathPrefix value as it matches: trailing `/` ignored, so `/` becomes '' (every path). */
export function normalizePrefix(prefix: string): string {
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === '/') end--;
  return prefix.slice(0, end);
}

/** True when `path` starts with the (normalized) prefix on a segment boundary: `/foo` takes `/foo/x`, not `/foox`. */
export function hasPathPrefix(path: string, prefix: string): boolean {
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || path[prefix.length] === '/';
}

/**
 * Replaces the matched prefix of `path` with `replacement`, element by element, as the Gateway API
 * table for ReplacePrefixMatch reads: `/foo/bar` with `/foo`→`/xyz` is `/xyz/bar`; `/foo` with
 * `/foo`→'' is `/`; a trailing `/` on either the prefix or the replacement changes nothing.
 */
export function replacePrefix(path: string, prefix: string, replacement: string): string {
  const rest = path.slice(prefix.length);
  const joined = normalizePrefix(replacement) + rest;
  if (joined === '') return '/';
  return joined.startsWith('/') ? joined : `/${joined}`;
}

/**
 * The path after a redirect or rewrite `modifier`. `matchedPrefix` is the normalized PathPrefix that
 * matched, or undefined when the match was a regular expression: Gateway API allows
 * ReplacePrefixMatch only with a PathPrefix match, so with none to replace the path is kept.
 */
export function modifyPath(
  path: string,
  modifier: PathModifierSpec,
  matchedPrefix: string | undefined,
): string {
  if (modifier.type === 'ReplaceFullPath') return modifier.replaceFullPath ?? path;
  if (matchedPrefix === undefined || !hasPathPrefix(path, matchedPrefix)) return path;
  return replacePrefix(path, matchedPrefix, modifier.replacePrefixMatch ?? '');
}
