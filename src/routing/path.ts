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

const DOT_SEGMENT = /^\.{1,2}$/;
/** Percent-encoded unreserved characters (RFC 3986 §2.3), which mean the same decoded. */
const ENCODED_UNRESERVED = /%(2[dDeE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|5[fF]|7[eE])/g;

/** A request target as the waypoint takes it, or why it refuses it (answered 400). */
export type RequestTarget = { path: string; authority?: string } | { invalid: string };

/**
 * A request target as Envoy's connection manager takes it for Istio, before routes and policies read
 * it: an absolute-form target (`http://host/p`) becomes its path, with its authority; a fragment (`#`),
 * an encoded NUL and anything that is not a path (but `*` for OPTIONS) are refused; in the path,
 * percent-encoded unreserved characters are decoded, `\` is `/`, and dot segments are removed (Istio's
 * default path normalization). The query is kept as sent. What routes and policies read is what the
 * backend gets, so the two never disagree on a path.
 */
export function requestTarget(target: string, method: string): RequestTarget {
  if (target.includes('#')) return { invalid: 'the request target carries a fragment (#)' };
  let authority: string | undefined;
  let rest = target;
  const origin = ABSOLUTE_FORM.exec(target);
  if (origin) {
    authority = origin[0].slice(origin[0].indexOf('//') + 2);
    rest = target.slice(origin[0].length) || '/';
    if (rest.startsWith('?')) rest = `/${rest}`;
  } else if (target === '*') {
    return method === 'OPTIONS' ? { path: '*' } : { invalid: '"*" is a request target for OPTIONS only' };
  }
  if (!rest.startsWith('/')) return { invalid: 'the request target is not a path' };
  const q = rest.indexOf('?');
  const raw = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? '' : rest.slice(q);
  if (/%00/.test(raw)) return { invalid: 'the path carries an encoded NUL (%00)' };
  return { path: `${normalizePath(raw)}${query}`, ...(authority ? { authority } : {}) };
}

function normalizePath(raw: string): string {
  if (!/[.\\%]/.test(raw)) return raw;
  const decoded = raw.replace(ENCODED_UNRESERVED, (e) =>
    String.fromCharCode(Number.parseInt(e.slice(1), 16)),
  );
  const out: string[] = [];
  const segments = decoded.replaceAll('\\', '/').split('/').slice(1);
  segments.forEach((seg, i) => {
    if (DOT_SEGMENT.test(seg)) {
      if (seg === '..') out.pop();
      if (i === segments.length - 1) out.push('');
      return;
    }
    out.push(seg);
  });
  return `/${out.join('/')}`;
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
