// Where a rule looks for its token (headers with a prefix, query parameters, cookies, or Istio's
// defaults) and how a token is found there, the way Envoy's jwt_authn extractor finds it.

import type { JwtRule } from '../../config/index.ts';
import type { RequestHeaders } from '../l7-types.ts';

export type TokenLocation =
  | { kind: 'header'; name: string; prefix: string }
  | { kind: 'param'; name: string }
  | { kind: 'cookie'; name: string };

export interface FoundToken {
  token: string;
  location: TokenLocation;
}

/** RFC 6750's two places, used when a rule names none: `Authorization: Bearer` and `access_token`. */
const DEFAULT_LOCATIONS: readonly TokenLocation[] = [
  { kind: 'header', name: 'authorization', prefix: 'Bearer ' },
  { kind: 'param', name: 'access_token' },
];

export function locationsOf(rule: JwtRule): readonly TokenLocation[] {
  const out: TokenLocation[] = [
    ...(rule.fromHeaders ?? []).map(
      (h): TokenLocation => ({ kind: 'header', name: h.name.toLowerCase(), prefix: h.prefix ?? '' }),
    ),
    ...(rule.fromParams ?? []).map((name): TokenLocation => ({ kind: 'param', name })),
    ...(rule.fromCookies ?? []).map((name): TokenLocation => ({ kind: 'cookie', name })),
  ];
  return out.length > 0 ? out : DEFAULT_LOCATIONS;
}

/** Base64url characters and the dot: where a token starts after its prefix. */
const TOKEN_CHAR = /[A-Za-z0-9_.-]/;

/**
 * The token in one header value: Envoy finds the prefix anywhere in the value (case-sensitive) and
 * takes everything from the first token character after it; with no such character, the whole value.
 */
function fromHeaderValue(value: string, prefix: string): string | undefined {
  if (prefix === '') return value;
  const at = value.indexOf(prefix);
  if (at < 0) return undefined;
  const rest = value.slice(at + prefix.length);
  const start = rest.search(TOKEN_CHAR);
  return start < 0 ? value : rest.slice(start);
}

function headerValues(headers: RequestHeaders, name: string): readonly string[] {
  const v = headers[name];
  if (v === undefined) return [];
  return typeof v === 'string' ? [v] : v;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The first value of each query parameter, decoded as Envoy decodes them (no `+` to space). */
function queryParams(path: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = path.indexOf('?');
  if (q < 0) return out;
  const end = path.indexOf('#', q);
  for (const pair of path.slice(q + 1, end < 0 ? undefined : end).split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = decode(eq < 0 ? pair : pair.slice(0, eq));
    if (!out.has(key)) out.set(key, eq < 0 ? '' : decode(pair.slice(eq + 1)));
  }
  return out;
}

/** Cookies by name, first one wins, surrounding quotes dropped (Envoy's parseCookies). */
function cookies(headers: RequestHeaders): Map<string, string> {
  const out = new Map<string, string>();
  for (const header of headerValues(headers, 'cookie')) {
    for (const part of header.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      const name = part.slice(0, eq).trim();
      let value = part.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      if (!out.has(name)) out.set(name, value);
    }
  }
  return out;
}

/** Every token at `locations`, in order: headers, then query parameters, then cookies. */
export function extractTokens(
  locations: readonly TokenLocation[],
  req: { headers: RequestHeaders; path: string },
): FoundToken[] {
  const found: FoundToken[] = [];
  for (const location of locations) {
    if (location.kind !== 'header') continue;
    for (const value of headerValues(req.headers, location.name)) {
      const token = fromHeaderValue(value, location.prefix);
      if (token !== undefined) found.push({ token, location });
    }
  }
  const params = locations.some((l) => l.kind === 'param') ? queryParams(req.path) : undefined;
  for (const location of locations) {
    if (location.kind !== 'param') continue;
    const token = params?.get(location.name);
    if (token !== undefined) found.push({ token, location });
  }
  const jar = locations.some((l) => l.kind === 'cookie') ? cookies(req.headers) : undefined;
  for (const location of locations) {
    if (location.kind !== 'cookie') continue;
    const token = jar?.get(location.name);
    if (token !== undefined) found.push({ token, location });
  }
  return found;
}

/** The request path without the query parameter `name` (every occurrence), other parameters untouched. */
export function withoutParam(path: string, name: string): string {
  const q = path.indexOf('?');
  if (q < 0) return path;
  const kept = path
    .slice(q + 1)
    .split('&')
    .filter((pair) => {
      const eq = pair.indexOf('=');
      return decode(eq < 0 ? pair : pair.slice(0, eq)) !== name;
    });
  return kept.length === 0 ? path.slice(0, q) : `${path.slice(0, q)}?${kept.join('&')}`;
}
