// RequestAuthentication at the waypoint: the JWT rules of every policy that applies are merged (sorted by
// issuer, as Istio merges them into one Envoy jwt_authn filter with `requires_any: [each provider,
// allow_missing]`), and the request gets one of three answers: no token (passes, no request
// principal), a valid token (who it names and what to change upstream), or an invalid one (Envoy's 401).

import { createHash } from 'node:crypto';
import type { JwtRule, RequestAuthenticationResource } from '../../config/index.ts';
import { parseDuration } from '../../config/index.ts';
import { type Logger, logger } from '../../log/index.ts';
import type { RequestAuth, RequestHeaders } from '../l7-types.ts';
import { DEFAULT_FETCH_TIMEOUT_MS, DEFAULT_REFRESH_MS, JwksCache, type JwksStatus } from './jwks-cache.ts';
import { type KeySet, verifySignature } from './keys.ts';
import { extractTokens, type FoundToken, locationsOf, type TokenLocation } from './locations.ts';
import { editsFor, type HeaderEdits, outputHeaderNames } from './outputs.ts';
import { JWT_STATUS, type JwtStatus } from './status.ts';
import { audiencesAllowed, checkTime, type ParsedJwt, type ParseResult, parseJwt } from './token.ts';

/**
 * The largest token read. Envoy bounds a token only by its request-header limit (60 KiB, which the
 * waypoint shares); a longer one is refused unread, with the status Envoy's parser once gave oversized
 * tokens (JwtBadFormat).
 */
export const DEFAULT_MAX_TOKEN_BYTES = 60 * 1024;

/** Verified tokens remembered per key set (Envoy's jwt_cache default size is 100; a waypoint serves more). */
const MAX_VERIFIED_TOKENS = 4096;

/** Envoy cuts the path in the `www-authenticate` realm to this many characters. */
const MAX_REALM_PATH = 256;

export type JwtResult =
  /** No token where any rule looks: the request passes with no request principal (Istio). */
  | { kind: 'none'; headers: HeaderEdits }
  | {
      kind: 'authenticated';
      auth: RequestAuth;
      /** The issuer of the rule that accepted the token. */
      issuer: string;
      headers: HeaderEdits;
      /** The path to send upstream, when a token in a query parameter was removed from it. */
      path?: string;
    }
  | { kind: 'denied'; status: 401 | 403; body: string; headers: Record<string, string> };

export interface JwtRequest {
  headers: RequestHeaders;
  /** The request target as sent: path and query. */
  path: string;
  /** Lets a CORS preflight through untouched, as Istio's filter does (`bypass_cors_preflight`). */
  method?: string;
  /** For the `www-authenticate` realm; a waypoint serves plaintext HTTP inside HBONE. */
  scheme?: string;
}

export interface JwtAuthenticatorOptions {
  /** Milliseconds since the epoch; token times and key refresh read it. */
  now?: () => number;
  log?: Logger;
  /** JWKS fetch timeout when a rule gives none (Istio: 5 s). */
  fetchTimeoutMs?: number;
  /** How often fetched key sets are refreshed (Istio: 20 min). */
  refreshMs?: number;
  maxTokenBytes?: number;
  fetch?: typeof fetch;
}

type Check = { status: 'Ok'; jwt: ParsedJwt } | { status: Exclude<JwtStatus, 'Ok'> };

export class JwtAuthenticator {
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #fetchTimeoutMs: number;
  readonly #maxTokenBytes: number;
  readonly #keys: JwksCache;
  readonly #locations = new WeakMap<JwtRule, readonly TokenLocation[]>();
  /**
   * Tokens whose signature a key set verified (their SHA-256), as Envoy's jwt_authn cache keeps verified
   * tokens: a client sends the same token on every request, and checking its signature again is most of
   * the cost. Issuer, time and audiences are checked on every request all the same; a new key set (a
   * rotation, a refetch) starts empty.
   */
  readonly #verified = new WeakMap<KeySet, Set<string>>();

  constructor(opts: JwtAuthenticatorOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log ?? logger('jwt');
    this.#fetchTimeoutMs = opts.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
    this.#maxTokenBytes = opts.maxTokenBytes ?? DEFAULT_MAX_TOKEN_BYTES;
    this.#keys = new JwksCache({
      now: this.#now,
      log: this.#log,
      refreshMs: opts.refreshMs ?? DEFAULT_REFRESH_MS,
      fetch: opts.fetch ?? fetch,
    });
  }

  /**
   * `policies`: every RequestAuthentication that applies to the request (the waypoint picks them); their
   * jwtRules are merged, as Istio merges them into one Envoy jwt_authn config. Never throws.
   */
  async authenticate(
    req: JwtRequest,
    policies: readonly RequestAuthenticationResource[],
  ): Promise<JwtResult> {
    try {
      return await this.#authenticate(req, policies);
    } catch (err) {
      this.#log.error({ err }, 'JWT authentication failed unexpectedly; refusing the request');
      return denied('JwtVerificationFail', req);
    }
  }

  /** Per jwksUri asked for: ok with key count and fetched-at, or the last fetch error. */
  jwksStatus(): JwksStatus[] {
    return this.#keys.status();
  }

  /** Stops refresh timers and aborts fetches in flight. */
  close(): void {
    this.#keys.close();
  }

  async #authenticate(
    req: JwtRequest,
    policies: readonly RequestAuthenticationResource[],
  ): Promise<JwtResult> {
    const rules = mergedRules(policies);
    const sanitized = outputHeaderNames(rules);
    const none: JwtResult = { kind: 'none', headers: { set: [], remove: sanitized } };
    if (rules.length === 0 || isCorsPreflight(req)) return none;
    const found = rules.map((rule) => extractTokens(this.#locationsOf(rule), req));
    if (found.every((tokens) => tokens.length === 0)) return none;

    // Envoy's requires_any: the first rule that verifies every token at its locations wins; otherwise the
    // answer is the failure of the first rule (by issuer) that found a token.
    const parsed = new Map<string, ParseResult>();
    let failure: Exclude<JwtStatus, 'Ok'> | undefined;
    for (const [i, rule] of rules.entries()) {
      const tokens = found[i]!;
      if (tokens.length === 0) continue;
      const checked = await this.#checkAll(rule, tokens, parsed);
      if (checked.status === 'Ok') {
        const edits = editsFor(rule, checked.jwt, tokens, req.path, sanitized);
        return { kind: 'authenticated', auth: requestAuth(checked.jwt), issuer: rule.issuer, ...edits };
      }
      failure ??= checked.status;
    }
    const status = failure ?? 'JwtVerificationFail';
    this.#log.debug({ status: JWT_STATUS[status], path: req.path.slice(0, MAX_REALM_PATH) }, 'JWT refused');
    return denied(status, req);
  }

  #locationsOf(rule: JwtRule): readonly TokenLocation[] {
    let found = this.#locations.get(rule);
    if (!found) {
      found = locationsOf(rule);
      this.#locations.set(rule, found);
    }
    return found;
  }

  /** Every token the rule found must verify (a good token beside a bad one is refused, as in Envoy). */
  async #checkAll(
    rule: JwtRule,
    tokens: readonly FoundToken[],
    parsed: Map<string, ParseResult>,
  ): Promise<Check> {
    let first: ParsedJwt | undefined;
    for (const { token } of tokens) {
      const checked = await this.#check(rule, token, parsed);
      if (checked.status !== 'Ok') return checked;
      first ??= checked.jwt;
    }
    return { status: 'Ok', jwt: first! };
  }

  /** One token against one rule, in Envoy's order: parse, issuer, time, audiences, keys, signature. */
  async #check(rule: JwtRule, token: string, parsed: Map<string, ParseResult>): Promise<Check> {
    if (token.length > this.#maxTokenBytes) return { status: 'JwtBadFormat' };
    let result = parsed.get(token);
    if (!result) {
      result = parseJwt(token);
      parsed.set(token, result);
    }
    if (!result.ok) return { status: result.status as Exclude<JwtStatus, 'Ok'> };
    const jwt = result.jwt;
    if (jwt.iss !== rule.issuer) return { status: 'JwtUnknownIssuer' };
    const time = checkTime(jwt, Math.floor(this.#now() / 1000));
    if (time !== 'Ok') return { status: time };
    if (!audiencesAllowed(rule.audiences, jwt)) return { status: 'JwtAudienceNotAllowed' };
    const keys = await this.#keysFor(rule, jwt);
    if ('status' in keys) return keys;
    const digest = createHash('sha256').update(token).digest('base64');
    let verified = this.#verified.get(keys);
    if (verified?.has(digest)) return { status: 'Ok', jwt };
    const signature = await verifySignature(jwt, keys);
    if (signature !== 'Ok') return { status: signature };
    if (!verified) {
      verified = new Set();
      this.#verified.set(keys, verified);
    }
    if (verified.size >= MAX_VERIFIED_TOKENS) verified.clear();
    verified.add(digest);
    return { status: 'Ok', jwt };
  }

  /** The rule's keys: its inline JWKS when set (as Istio prefers it), else its jwksUri's. */
  async #keysFor(rule: JwtRule, jwt: ParsedJwt): Promise<KeySet | { status: Exclude<JwtStatus, 'Ok'> }> {
    if (rule.jwks) return this.#keys.inline(rule.jwks) ?? { status: 'JwksNoValidKeys' };
    if (!rule.jwksUri) return { status: 'JwksFetchFail' };
    const timeout = (rule.timeout && parseDuration(rule.timeout)) || this.#fetchTimeoutMs;
    let keys = await this.#keys.remote(rule.jwksUri, timeout);
    if (keys && jwt.kid !== '' && !keys.hasKid(jwt.kid)) {
      keys = (await this.#keys.refetchForKid(rule.jwksUri, timeout)) ?? keys;
    }
    return keys ?? { status: 'JwksFetchFail' };
  }
}

/** The jwtRules of every policy, sorted by issuer as Istio sorts them (stable, so ties keep their order). */
function mergedRules(policies: readonly RequestAuthenticationResource[]): JwtRule[] {
  const rules = policies.flatMap((p) => p.spec.jwtRules ?? []);
  return rules.length < 2
    ? rules
    : [...rules].sort((a, b) => (a.issuer < b.issuer ? -1 : a.issuer > b.issuer ? 1 : 0));
}

function header(headers: RequestHeaders, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : v?.[0];
}

function isCorsPreflight(req: JwtRequest): boolean {
  return (
    req.method === 'OPTIONS' &&
    !!header(req.headers, 'origin') &&
    !!header(req.headers, 'access-control-request-method')
  );
}

function requestAuth(jwt: ParsedJwt): RequestAuth {
  const azp = jwt.payload.azp;
  return {
    principal: `${jwt.iss}/${jwt.sub}`,
    audiences: jwt.audiences,
    ...(typeof azp === 'string' ? { presenter: azp } : {}),
    claims: jwt.payload,
  };
}

/** Envoy's local reply: 401 with the status text (403 for audiences), and a Bearer challenge. */
function denied(status: Exclude<JwtStatus, 'Ok'>, req: JwtRequest): JwtResult {
  const host = header(req.headers, ':authority') ?? header(req.headers, 'host') ?? '';
  const realm = `${req.scheme ?? 'http'}://${host}${req.path.slice(0, MAX_REALM_PATH)}`;
  return {
    kind: 'denied',
    status: status === 'JwtAudienceNotAllowed' ? 403 : 401,
    body: JWT_STATUS[status],
    headers: {
      'content-type': 'text/plain',
      'www-authenticate': `Bearer realm="${realm}", error="invalid_token"`,
    },
  };
}
