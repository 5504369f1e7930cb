// A rule's clientSelectors, compiled once per policy into one function of a request: undefined when
// the rule does not count the request, else the descriptor entries that pick its bucket (one per
// Distinct selector; none when one bucket serves every request the rule counts).

import { isIP } from 'node:net';
import { fullMatchRegExp, type RateLimitClientSelector } from '../../config/index.ts';
import { ipInCidr } from '../l4-evaluate.ts';
import type { RequestAttributes } from '../l7-types.ts';

/** One key/value pair of a descriptor, as the rate-limit service names them. */
export interface DescriptorEntry {
  key: string;
  value: string;
}

export type RuleMatcher = (req: RequestAttributes) => DescriptorEntry[] | undefined;

type Test = (req: RequestAttributes, out: DescriptorEntry[]) => boolean;

/** Envoy and RE2 match a header value or path against the whole pattern. */
const fullMatch = fullMatchRegExp;

/** Envoy joins a repeated header's values with ","; absent is undefined, present-but-empty is "". */
function headerValue(req: RequestAttributes, name: string): string | undefined {
  const v = req.headers[name];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v.join(',');
}

/** Node reports IPv4 peers on dual-stack sockets as `::ffff:a.b.c.d`; one client is one address. */
function clientIp(req: RequestAttributes): string | undefined {
  const ip = req.remoteIp ?? req.source.ip;
  if (!ip) return undefined;
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

/** The peer's principal as Istio writes it (`cluster.local/ns/a/sa/b`); "" when it has none. */
function principalOf(req: RequestAttributes): string {
  const p = req.source.principal;
  return p.startsWith('spiffe://') ? p.slice('spiffe://'.length) : p;
}

function namespaceOf(req: RequestAttributes): string {
  return req.source.namespace ?? /\/ns\/([^/]+)\//.exec(principalOf(req))?.[1] ?? '';
}

/** The path without its query or fragment, as Gateway API path matches see it. */
function pathOf(req: RequestAttributes): string {
  const end = req.path.search(/[?#]/);
  return end < 0 ? req.path : req.path.slice(0, end);
}

/** Gateway API PathPrefix: whole path elements, so `/api` matches `/api` and `/api/x`, not `/apix`. */
function prefixMatches(path: string, prefix: string): boolean {
  const p = prefix.length > 1 && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  if (p === '/') return true;
  return path === p || path.startsWith(`${p}/`);
}

/**
 * A value test (Exact, RegularExpression, Distinct, Present) over what `read` finds in a request.
 * `read` returns undefined when the request has no such value: then Exact and RegularExpression do
 * not match even inverted, and Distinct does not apply, as Envoy treats a missing header.
 */
function valueTest(
  key: string,
  m: { type?: string | undefined; value?: string | undefined; invert?: boolean | undefined },
  read: (req: RequestAttributes) => string | undefined,
): Test {
  const invert = m.invert === true;
  switch (m.type ?? 'Exact') {
    case 'Distinct':
      return (req, out) => {
        const v = read(req);
        if (v === undefined) return false;
        out.push({ key, value: v });
        return true;
      };
    case 'Present':
      return (req) => (read(req) !== undefined) !== invert;
    case 'RegularExpression': {
      const re = fullMatch(m.value ?? '');
      return (req) => {
        const v = read(req);
        return v !== undefined && re.test(v) !== invert;
      };
    }
    default: {
      const want = m.value ?? '';
      return (req) => {
        const v = read(req);
        return v !== undefined && (v === want) !== invert;
      };
    }
  }
}

function selectorTests(s: RateLimitClientSelector): Test[] {
  const tests: Test[] = [];
  for (const h of s.headers ?? []) {
    const name = h.name.toLowerCase();
    tests.push(valueTest(`header.${name}`, h, (req) => headerValue(req, name)));
  }
  if (s.methods) {
    const methods = s.methods;
    tests.push((req) => {
      const method = req.method.toUpperCase();
      return methods.some((m) => (method === m.value) !== (m.invert === true));
    });
  }
  if (s.path) {
    const { type = 'PathPrefix', value = '/', invert = false } = s.path;
    const re = type === 'RegularExpression' ? fullMatch(value) : undefined;
    tests.push((req) => {
      const path = pathOf(req);
      const hit = re ? re.test(path) : type === 'Exact' ? path === value : prefixMatches(path, value);
      return hit !== invert;
    });
  }
  if (s.sourceCIDR) {
    const { type = 'Exact', value } = s.sourceCIDR;
    tests.push((req, out) => {
      const ip = clientIp(req);
      if (ip === undefined || !ipInCidr(ip, value)) return false;
      if (type === 'Distinct') out.push({ key: 'remote_address', value: ip });
      return true;
    });
  }
  // A request without an identity reads as "": it is never the principal or namespace named, so an
  // inverted selector counts it and a Distinct one gives all such requests one shared bucket.
  if (s.sourcePrincipal) tests.push(valueTest('source.principal', s.sourcePrincipal, principalOf));
  if (s.sourceNamespace) tests.push(valueTest('source.namespace', s.sourceNamespace, namespaceOf));
  return tests;
}

/** Compiles a rule's clientSelectors (all must hold; none: every request) into its matcher. */
export function compileSelectors(selectors: readonly RateLimitClientSelector[] | undefined): RuleMatcher {
  const tests = (selectors ?? []).flatMap(selectorTests);
  return (req) => {
    const out: DescriptorEntry[] = [];
    for (const t of tests) if (!t(req, out)) return undefined;
    return out;
  };
}
