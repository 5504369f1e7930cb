// Route matches compiled once into predicates: HTTPRoute path, method, headers and query parameters;
// GRPCRoute service, method and headers. Regular expressions are built here, never per request, and
// match the whole value (as Envoy's safe_regex does), not a substring.

import { fullMatchRegExp } from '../config/index.ts';
import { hasPathPrefix, normalizePrefix, splitTarget } from './path.ts';
import type { GrpcMatchSpec, HeaderMatchSpec, HttpMatchSpec, QueryMatchSpec } from './shapes.ts';
import type { RouteRequest } from './types.ts';

/** A request as matching reads it, built once per decision; the query is parsed only if a match asks. */
export interface RequestView {
  method: string;
  /** The path without the query. */
  path: string;
  /** `?a=b`, or '' when there is none. */
  query: string;
  headers: RouteRequest['headers'];
  params(): URLSearchParams;
}

export function viewRequest(req: RouteRequest): RequestView {
  const { path, query } = splitTarget(req.path);
  let params: URLSearchParams | undefined;
  return {
    method: req.method,
    path,
    query,
    headers: req.headers,
    params: () => {
      params ??= new URLSearchParams(query);
      return params;
    },
  };
}

/** A header's value; a repeated header reads as its values joined by `, ` (RFC 9110 §5.3). */
export function headerValue(headers: RouteRequest['headers'], name: string): string | undefined {
  const value = headers[name];
  if (value === undefined || typeof value === 'string') return value;
  return value.length === 0 ? undefined : value.join(', ');
}

/** One named value to test (a header or a query parameter). */
interface ValueTest {
  name: string;
  test: (value: string) => boolean;
}

const fullMatch = fullMatchRegExp;

function valueTest(
  name: string,
  type: 'Exact' | 'RegularExpression' | undefined,
  expected: string,
): ValueTest {
  if (type === 'RegularExpression') {
    const regex = fullMatch(expected);
    return { name, test: (v) => regex.test(v) };
  }
  return { name, test: (v) => v === expected };
}

/** Header tests with lower-case names; a repeated name counts once, its first entry (as the spec says). */
function headerTests(specs: readonly HeaderMatchSpec[] | undefined): ValueTest[] {
  const seen = new Set<string>();
  const tests: ValueTest[] = [];
  for (const h of specs ?? []) {
    const name = h.name.toLowerCase();
    if (seen.has(name)) continue;
    seen.add(name);
    tests.push(valueTest(name, h.type, h.value));
  }
  return tests;
}

/** Query tests; names compare exactly, a repeated name counts once (its first entry). */
function queryTests(specs: readonly QueryMatchSpec[] | undefined): ValueTest[] {
  const seen = new Set<string>();
  const tests: ValueTest[] = [];
  for (const q of specs ?? []) {
    if (seen.has(q.name)) continue;
    seen.add(q.name);
    tests.push(valueTest(q.name, q.type, q.value));
  }
  return tests;
}

function headersMatch(tests: readonly ValueTest[], req: RequestView): boolean {
  for (const t of tests) {
    const value = headerValue(req.headers, t.name);
    if (value === undefined || !t.test(value)) return false;
  }
  return true;
}

function queryMatches(tests: readonly ValueTest[], req: RequestView): boolean {
  if (tests.length === 0) return true;
  const params = req.params();
  for (const t of tests) {
    // A repeated parameter is matched on its first value, as the spec recommends.
    const value = params.get(t.name);
    if (value === null || !t.test(value)) return false;
  }
  return true;
}

export type PathTest =
  | { type: 'Exact'; value: string }
  | { type: 'PathPrefix'; prefix: string }
  | { type: 'RegularExpression'; regex: RegExp };

/** What HTTPRoute precedence compares (precedence.ts). */
export interface HttpRank {
  /** 0 Exact, 1 PathPrefix, 2 RegularExpression. */
  pathType: 0 | 1 | 2;
  /** Characters in the PathPrefix (trailing `/` ignored); 0 otherwise. */
  prefixLength: number;
  hasMethod: boolean;
  headers: number;
  query: number;
}

export interface HttpMatch {
  path: PathTest;
  method: string | undefined;
  headers: readonly ValueTest[];
  query: readonly ValueTest[];
  /** The prefix ReplacePrefixMatch replaces: the PathPrefix, or an Exact path; none for a regex. */
  prefix: string | undefined;
  rank: HttpRank;
}

function pathTest(spec: HttpMatchSpec['path']): PathTest {
  const value = spec?.value ?? '/';
  switch (spec?.type ?? 'PathPrefix') {
    case 'Exact':
      return { type: 'Exact', value };
    case 'RegularExpression':
      return { type: 'RegularExpression', regex: fullMatch(value) };
    default:
      return { type: 'PathPrefix', prefix: normalizePrefix(value) };
  }
}

/** A compiled HTTPRoute match; `undefined` is a rule without matches, which is `PathPrefix /`. */
export function compileHttpMatch(spec: HttpMatchSpec | undefined): HttpMatch {
  const path = pathTest(spec?.path);
  const headers = headerTests(spec?.headers);
  const query = queryTests(spec?.queryParams);
  const prefix =
    path.type === 'PathPrefix'
      ? path.prefix
      : path.type === 'Exact'
        ? normalizePrefix(path.value)
        : undefined;
  return {
    path,
    method: spec?.method,
    headers,
    query,
    prefix,
    rank: {
      pathType: path.type === 'Exact' ? 0 : path.type === 'PathPrefix' ? 1 : 2,
      prefixLength: path.type === 'PathPrefix' ? path.prefix.length : 0,
      hasMethod: spec?.method !== undefined,
      headers: headers.length,
      query: query.length,
    },
  };
}

function pathMatches(test: PathTest, path: string): boolean {
  switch (test.type) {
    case 'Exact':
      return path === test.value;
    case 'PathPrefix':
      return hasPathPrefix(path, test.prefix);
    case 'RegularExpression':
      return test.regex.test(path);
  }
}

export function httpMatches(m: HttpMatch, req: RequestView): boolean {
  if (m.method !== undefined && m.method !== req.method) return false;
  return pathMatches(m.path, req.path) && headersMatch(m.headers, req) && queryMatches(m.query, req);
}

/** What GRPCRoute precedence compares (precedence.ts). */
export interface GrpcRank {
  /** 0 Exact method match, 1 RegularExpression, 2 no method match (every method). */
  methodType: 0 | 1 | 2;
  /** Characters in an Exact service; 0 when the service is a wildcard or a regex. */
  serviceLength: number;
  /** Characters in an Exact method; 0 when the method is a wildcard or a regex. */
  methodLength: number;
  headers: number;
}

export interface GrpcMatch {
  service: ((s: string) => boolean) | undefined;
  method: ((m: string) => boolean) | undefined;
  headers: readonly ValueTest[];
  rank: GrpcRank;
}

/** A compiled GRPCRoute match; `undefined` is a rule without matches, which matches every request. */
export function compileGrpcMatch(spec: GrpcMatchSpec | undefined): GrpcMatch {
  const m = spec?.method;
  const regex = m?.type === 'RegularExpression';
  const part = (value: string | undefined): ((s: string) => boolean) | undefined => {
    // An unset or empty service or method matches any (the spec: "If left empty or omitted").
    if (value === undefined || value === '') return undefined;
    if (!regex) return (s) => s === value;
    const re = fullMatch(value);
    return (s) => re.test(s);
  };
  const headers = headerTests(spec?.headers);
  return {
    service: part(m?.service),
    method: part(m?.method),
    headers,
    rank: {
      methodType: m === undefined ? 2 : regex ? 1 : 0,
      serviceLength: regex ? 0 : (m?.service?.length ?? 0),
      methodLength: regex ? 0 : (m?.method?.length ?? 0),
      headers: headers.length,
    },
  };
}

/** `/<service>/<method>` split in two, or undefined when the path is not a gRPC method path. */
export function grpcMethodOf(path: string): { service: string; method: string } | undefined {
  const slash = path.indexOf('/', 1);
  if (!path.startsWith('/') || slash < 0 || path.indexOf('/', slash + 1) >= 0) return undefined;
  return { service: path.slice(1, slash), method: path.slice(slash + 1) };
}

export function grpcMatches(m: GrpcMatch, req: RequestView): boolean {
  if (m.service !== undefined || m.method !== undefined) {
    const call = grpcMethodOf(req.path);
    if (call === undefined) return false;
    if (m.service !== undefined && !m.service(call.service)) return false;
    if (m.method !== undefined && !m.method(call.method)) return false;
  }
  return headersMatch(m.headers, req);
}
