// An AuthorizationPolicy as a waypoint enforces it: Istio's whole rule language over one HTTP request,
// compiled once per configuration into matchers (CIDRs into block lists, string matches into tests).
// A rule matches when any `from` matches, any `to` matches and every `when` matches; absent parts match
// all. What cannot be evaluated (a `when` key no request carries) fails closed: it never lets an ALLOW
// rule match, and it makes a DENY or CUSTOM rule match (Istio widens a DENY rather than narrow it).

import type {
  AuthorizationCondition,
  AuthorizationOperation,
  AuthorizationPolicyResource,
  AuthorizationSource,
} from '../config/index.ts';
import { ipInCidr, stringMatches } from './l4-evaluate.ts';
import type { RequestAttributes } from './l7-types.ts';

export type L7Action = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

/** A test of one request. */
type Test = (r: RequestAttributes) => boolean;

export interface CompiledPolicy {
  /** `namespace/name`. */
  id: string;
  namespace: string;
  name: string;
  action: L7Action;
  /** `istio.io/dry-run: "true"`: evaluated and reported, never enforced. */
  dryRun: boolean;
  /** CUSTOM: the extension provider that decides. */
  provider?: string;
  /** The index of the first rule that matches, or -1. */
  match(r: RequestAttributes): number;
}

/** Istio's principal of a peer: its SPIFFE id without `spiffe://`. */
/** What rules read of the peer, worked out once per request (a policy of 100 rules reads it 100 times). */
interface Peer {
  principal: string | undefined;
  namespace: string | undefined;
  serviceAccount: string | undefined;
}

const peers = new WeakMap<RequestAttributes['source'], Peer>();

function peerOf(r: RequestAttributes): Peer {
  let peer = peers.get(r.source);
  if (!peer) {
    const p = r.source.principal;
    const m = /\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(p);
    peer = {
      principal: p === '' ? undefined : p.replace(/^spiffe:\/\//, ''),
      namespace: r.source.namespace || m?.[1],
      serviceAccount: m ? `${m[1]}/${m[2]}` : undefined,
    };
    peers.set(r.source, peer);
  }
  return peer;
}

const principalOf = (r: RequestAttributes) => peerOf(r).principal;
const namespaceOf = (r: RequestAttributes) => peerOf(r).namespace;
const serviceAccountOf = (r: RequestAttributes) => peerOf(r).serviceAccount;

/** The request path without its query, as Envoy's RBAC `url_path` matches it. */
function pathOf(r: RequestAttributes): string {
  const q = r.path.search(/[?#]/);
  return q < 0 ? r.path : r.path.slice(0, q);
}

/** `name` is lower-case (compiled so). */
function headerValues(r: RequestAttributes, name: string): string[] {
  const v = r.headers[name];
  if (v === undefined) return [];
  return typeof v === 'string' ? [v] : [...v];
}

/** `positive` must match one (when set); `negative` must match none (when set); neither set: no test. */
function fieldOf<T>(
  positiveList: readonly T[] | undefined,
  negativeList: readonly T[] | undefined,
  matches: (pattern: T, r: RequestAttributes) => boolean,
): Test | undefined {
  // An empty list is an unset one, as in Istio's protobuf: `methods: []` does not match nothing.
  const positive = positiveList?.length ? positiveList : undefined;
  const negative = negativeList?.length ? negativeList : undefined;
  if (positive === undefined && negative === undefined) return undefined;
  return (r) =>
    (positive === undefined || positive.some((p) => matches(p, r))) &&
    !(negative?.some((p) => matches(p, r)) ?? false);
}

/**
 * Istio's host match: the `:authority` as sent, case-insensitive, exact or with `*` at either end. A
 * host without a port does not match an authority with one: write `example.com:*` for that, as Istio's
 * documentation says.
 */
export function hostMatches(pattern: string, authority: string): boolean {
  return stringMatches(pattern.toLowerCase(), authority.toLowerCase());
}

/**
 * Istio's path match: exact, `prefix*`, `*suffix`, `*`, and templates where `{*}` is one whole segment
 * and `{**}` (last) is the rest of the path.
 */
export function pathMatches(pattern: string, path: string): boolean {
  if (!pattern.includes('{*')) return stringMatches(pattern, path);
  const want = pattern.split('/');
  const got = path.split('/');
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    if (w === '{**}') return i === want.length - 1 && got.length > i && got.slice(i).join('/') !== '';
    if (i >= got.length) return false;
    if (w === '{*}') {
      if (got[i] === '') return false;
    } else if (w !== got[i]) return false;
  }
  return got.length === want.length;
}

/** A test of an HTTP attribute: on a TCP connection it cannot be made, and gives `unknown`. */
function httpOnly(test: Test | undefined, unknown: boolean): Test | undefined {
  return test && ((r) => (r.tcp ? unknown : test(r)));
}

function compileSource(s: AuthorizationSource, unknown: boolean): Test[] {
  return [
    fieldOf(s.principals, s.notPrincipals, (p, r) => stringMatches(p, principalOf(r))),
    httpOnly(
      fieldOf(s.requestPrincipals, s.notRequestPrincipals, (p, r) => stringMatches(p, r.auth?.principal)),
      unknown,
    ),
    fieldOf(s.namespaces, s.notNamespaces, (p, r) => stringMatches(p, namespaceOf(r))),
    fieldOf(s.serviceAccounts, s.notServiceAccounts, (p, r) => p === serviceAccountOf(r)),
    fieldOf(s.ipBlocks, s.notIpBlocks, (c, r) => r.source.ip !== undefined && ipInCidr(r.source.ip, c)),
    fieldOf(s.remoteIpBlocks, s.notRemoteIpBlocks, (c, r) => {
      const ip = r.remoteIp ?? r.source.ip;
      return ip !== undefined && ipInCidr(ip, c);
    }),
  ].filter((t): t is Test => t !== undefined);
}

function compileOperation(o: AuthorizationOperation, unknown: boolean): Test[] {
  return [
    httpOnly(
      fieldOf(o.hosts, o.notHosts, (h, r) => hostMatches(h, r.host)),
      unknown,
    ),
    fieldOf(o.ports, o.notPorts, (p, r) => Number(p) === r.destination.port),
    httpOnly(
      fieldOf(o.methods, o.notMethods, (m, r) => stringMatches(m, r.method)),
      unknown,
    ),
    httpOnly(
      fieldOf(o.paths, o.notPaths, (p, r) => pathMatches(p, pathOf(r))),
      unknown,
    ),
  ].filter((t): t is Test => t !== undefined);
}

/** Claims Istio reads as space-separated lists by default (OAuth 2.0 scopes). */
const SPACE_DELIMITED_CLAIMS = new Set(['scope', 'permission']);

/**
 * A claim by path (`claims[a][b]`): lists match by any element, a top-level `scope` or `permission`
 * string by any of its space-separated words (as Istio), other values by their string form.
 */
function claimValues(
  claims: Readonly<Record<string, unknown>> | undefined,
  path: readonly string[],
): string[] {
  let v: unknown = claims;
  for (const key of path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return [];
    v = (v as Record<string, unknown>)[key];
  }
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v.filter((x) => typeof x === 'string');
  if (typeof v === 'string' && path.length === 1 && SPACE_DELIMITED_CLAIMS.has(path[0]!))
    return v.split(' ').filter((w) => w !== '');
  return typeof v === 'string' ? [v] : typeof v === 'object' ? [] : [String(v)];
}

/**
 * The values a `when` key reads from a request, or undefined when a waypoint cannot evaluate the key:
 * `connection.sni` (the client's HTTP arrives in plaintext inside the mTLS tunnel, with no SNI of its
 * own) and the MySQL filter's keys.
 */
function conditionValues(key: string): ((r: RequestAttributes) => string[]) | undefined {
  const header = /^request\.headers\[([^\]]+)\]$/.exec(key);
  if (header) {
    const name = header[1]!.toLowerCase();
    return (r) => headerValues(r, name);
  }
  if (key.startsWith('request.auth.claims[')) {
    const path = [...key.slice('request.auth.claims'.length).matchAll(/\[([^\]]+)\]/g)].map((m) => m[1]!);
    return (r) => claimValues(r.auth?.claims, path);
  }
  const one = (v: string | undefined) => (v === undefined || v === '' ? [] : [v]);
  switch (key) {
    case 'source.ip':
      return (r) => one(r.source.ip);
    case 'remote.ip':
      return (r) => one(r.remoteIp ?? r.source.ip);
    case 'source.namespace':
      return (r) => one(namespaceOf(r));
    case 'source.principal':
      return (r) => one(principalOf(r));
    case 'destination.ip':
      return (r) => one(r.destination.ip);
    case 'destination.port':
      return (r) => [String(r.destination.port)];
    case 'request.auth.principal':
      return (r) => one(r.auth?.principal);
    case 'request.auth.audiences':
      return (r) => [...(r.auth?.audiences ?? [])];
    case 'request.auth.presenter':
      return (r) => one(r.auth?.presenter);
    default:
      return undefined;
  }
}

const IP_KEYS = new Set(['source.ip', 'remote.ip', 'destination.ip']);

function compileCondition(c: AuthorizationCondition, unknownMatches: boolean): Test {
  const values = conditionValues(c.key);
  if (!values) return () => unknownMatches;
  if (c.key.startsWith('request.')) return httpOnly(conditionTest(c, values), unknownMatches)!;
  return conditionTest(c, values);
}

function conditionTest(c: AuthorizationCondition, values: (r: RequestAttributes) => string[]): Test {
  const positive = c.values?.length ? c.values : undefined;
  const negative = c.notValues?.length ? c.notValues : undefined;
  // For a header, `*` is Envoy's presence match: a header sent with an empty value is present.
  const header = c.key.startsWith('request.headers[');
  const test = IP_KEYS.has(c.key)
    ? (pattern: string, v: string) => ipInCidr(v, pattern)
    : c.key === 'destination.port'
      ? (pattern: string, v: string) => pattern === v
      : (pattern: string, v: string) => (header && pattern === '*') || stringMatches(pattern, v);
  return (r) => {
    const got = values(r);
    const hit = (p: string) => got.some((v) => test(p, v));
    return (positive === undefined || positive.some(hit)) && !(negative?.some(hit) ?? false);
  };
}

const all = (tests: readonly Test[]) => (r: RequestAttributes) => tests.every((t) => t(r));

/** Compiles one AuthorizationPolicy (with targetRefs: a waypoint's) for evaluation on every request. */
export function compileL7Policy(policy: AuthorizationPolicyResource): CompiledPolicy {
  const action = policy.spec.action ?? 'ALLOW';
  const unknownMatches = action !== 'ALLOW' && action !== 'AUDIT';
  const rules = (policy.spec.rules ?? []).map((rule) => {
    const from = rule.from?.map((f) => all(compileSource(f.source, unknownMatches)));
    const to = rule.to?.map((t) => all(compileOperation(t.operation, unknownMatches)));
    const when = all((rule.when ?? []).map((c) => compileCondition(c, unknownMatches)));
    return (r: RequestAttributes) =>
      (from === undefined || from.some((t) => t(r))) && (to === undefined || to.some((t) => t(r))) && when(r);
  });
  const namespace = policy.metadata.namespace ?? 'default';
  return {
    id: `${namespace}/${policy.metadata.name}`,
    namespace,
    name: policy.metadata.name,
    action,
    dryRun: policy.metadata.annotations?.['istio.io/dry-run'] === 'true',
    ...(policy.spec.provider ? { provider: policy.spec.provider.name } : {}),
    // Istio: an ALLOW policy with no rules allows nothing; a `{}` rule matches everything.
    match: (r) => rules.findIndex((m) => m(r)),
  };
}

export interface L7Decision {
  allow: boolean;
  /** Why, in words an operator can act on. */
  reason: string;
  /** The policy (`namespace/name`) and rule index that decided, when one did. */
  policy?: string;
  rule?: number;
  /**
   * Envoy's response code details for a denial: `rbac_access_denied_matched_policy[ns[N]-policy[P]-rule[I]]`,
   * or `...[none]` when no ALLOW policy matched.
   */
  details?: string;
  /** AUDIT policies that matched. */
  audit: string[];
  /** Dry-run policies that would have denied. */
  dryRun: string[];
}

function matchedDetails(p: CompiledPolicy, rule: number): string {
  return `rbac_access_denied_matched_policy[ns[${p.namespace}]-policy[${p.name}]-rule[${rule}]]`;
}

/** The CUSTOM policies whose rules match the request, in order: each one's provider must allow it. */
export function matchingCustom(policies: readonly CompiledPolicy[], r: RequestAttributes): CompiledPolicy[] {
  return policies.filter((p) => p.action === 'CUSTOM' && !p.dryRun && p.match(r) >= 0);
}

/**
 * Decides one request against the DENY, ALLOW and AUDIT policies that bind it, in Istio's order (CUSTOM
 * has been asked before): any DENY that matches denies; with no ALLOW policy the request is allowed;
 * otherwise an ALLOW policy must match.
 */
export function evaluateL7(policies: readonly CompiledPolicy[], r: RequestAttributes): L7Decision {
  const live = policies.filter((p) => !p.dryRun);
  const audit = live.filter((p) => p.action === 'AUDIT' && p.match(r) >= 0).map((p) => p.id);
  const dryRun = dryRunHits(
    policies.filter((p) => p.dryRun),
    r,
  );
  for (const p of live) {
    if (p.action !== 'DENY') continue;
    const rule = p.match(r);
    if (rule >= 0)
      return {
        allow: false,
        reason: `denied by DENY policy ${p.id} (rules[${rule}])`,
        policy: p.id,
        rule,
        details: matchedDetails(p, rule),
        audit,
        dryRun,
      };
  }
  const allows = live.filter((p) => p.action === 'ALLOW');
  if (allows.length === 0) return { allow: true, reason: 'no ALLOW policy applies', audit, dryRun };
  for (const p of allows) {
    const rule = p.match(r);
    if (rule >= 0)
      return {
        allow: true,
        reason: `allowed by ALLOW policy ${p.id} (rules[${rule}])`,
        policy: p.id,
        rule,
        audit,
        dryRun,
      };
  }
  return {
    allow: false,
    reason: `no ALLOW policy matched (${allows.map((p) => p.id).join(', ')} apply)`,
    details: 'rbac_access_denied_matched_policy[none]',
    audit,
    dryRun,
  };
}

function dryRunHits(dry: readonly CompiledPolicy[], r: RequestAttributes): string[] {
  const hits = dry
    .filter((p) => (p.action === 'DENY' || p.action === 'CUSTOM') && p.match(r) >= 0)
    .map((p) => p.id);
  const allows = dry.filter((p) => p.action === 'ALLOW');
  if (allows.length > 0 && !allows.some((p) => p.match(r) >= 0)) hits.push(...allows.map((p) => p.id));
  return hits;
}
