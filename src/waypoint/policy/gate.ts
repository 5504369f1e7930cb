// The waypoint's request gate: for each request, the policies that bind it (by targetRefs: config's bindsTarget),
// applied in Envoy's filter order as Istio configures a waypoint — JWT authentication
// (RequestAuthentication), CUSTOM (the external authorizer), DENY, ALLOW (AUDIT and dry-run policies
// only reported), then rate limits (RateLimitPolicy). Policies are compiled once per configuration; a
// request to a target that nothing binds costs one map lookup.

import {
  type AuthorizationPolicyResource,
  bindsTarget,
  type MeshConfigResource,
  type PolicyTarget,
  type RateLimitPolicyResource,
  type RequestAuthenticationResource,
} from '../../config/index.ts';
import { describeError } from '../../errors/index.ts';
import type { Logger } from '../../log/index.ts';
import {
  type CompiledPolicy,
  compileL7Policy,
  evaluateL7,
  JwtAuthenticator,
  type JwtResult,
  matchingCustom,
  RateLimiter,
  type RequestAttributes,
} from '../../policy/index.ts';
import { type Headers, withoutHopByHop } from '../http/headers.ts';
import {
  type GateReply,
  type GateRequest,
  type GateUpstream,
  type GateVerdict,
  type RequestGate,
  workloadTargetAddress,
} from '../http/types.ts';
import { type AuthorizerAddress, checkExternal } from './ext-authz.ts';

/** Envoy's RBAC denial: 403 with this body; it sets no response flag (`-`). */
const RBAC_DENIED_BODY = 'RBAC: access denied';

/** A connection passed through as TCP to a target with HTTP-only policy: reset, with these details. */
const TCP_REFUSED: GateReply = {
  status: 403,
  body: '',
  flags: '-',
  headers: {},
  details: 'http_policy_on_tcp: rate limits, JWT or CUSTOM authorization bind this target',
};

/** Bound policies per target key kept at most (a client walking workload addresses cannot grow it). */
const MAX_CACHED_TARGETS = 4096;

export interface PolicyGateOptions {
  log: Logger;
  /** This replica's Gateway, `namespace/name`; undefined until its pod is in the configuration. */
  gateway: () => string | undefined;
  /** Where an extension provider's `service:port` is reached (a mesh Service's endpoints, or an address). */
  resolve: (service: string, port: number) => AuthorizerAddress | undefined;
  /** The ServiceEntry (`namespace/name`) whose host a service key is, for targetRefs of that kind. */
  serviceEntryOf?: (service: string) => string | undefined;
  /**
   * Whether a policy binds a target; default its targetRefs (`bindsTarget`), as a waypoint binds. A sidecar
   * binds by its workload instead (mesh-wide, namespace and selector policies, as the registry lists them).
   */
  binds?: (policy: { metadata: { name: string; namespace?: string } }, target: PolicyTarget) => boolean;
  /**
   * `deny`: a CUSTOM policy's matches are denied without asking its provider (a sidecar, which does not
   * reach external authorizers), whatever the provider's failOpen says. Default: ask the provider.
   */
  custom?: 'ask' | 'deny';
  random?: () => number;
}

/** What binds one target (`gateway|service`). */
interface Bound {
  authorization: CompiledPolicy[];
  authentication: RequestAuthenticationResource[];
  /** Rate limits bound by the Gateway or the Service (those naming a route are picked per request). */
  rateLimits: RateLimitPolicyResource[];
}

/** What the gate holds for one configuration. */
interface Compiled {
  authorization: Array<{ policy: AuthorizationPolicyResource; compiled: CompiledPolicy }>;
  authentication: RequestAuthenticationResource[];
  rateLimits: RateLimitPolicyResource[];
  /** RateLimitPolicies that name a route: checked per request against the route that matched. */
  routeRateLimits: RateLimitPolicyResource[];
  mesh: MeshConfigResource | undefined;
  bound: Map<string, Bound>;
}

const NOTHING: Compiled = {
  authorization: [],
  authentication: [],
  rateLimits: [],
  routeRateLimits: [],
  mesh: undefined,
  bound: new Map(),
};

function namesRoute(p: RateLimitPolicyResource): boolean {
  return p.spec.targetRefs.some((r) => r.kind === 'HTTPRoute' || r.kind === 'GRPCRoute');
}

/** Envoy's response code details for a JWT refusal: `jwt_authn_access_denied{Jwt_is_expired}`. */
function jwtDetails(body: string): string {
  return `jwt_authn_access_denied{${body.replace(/[^A-Za-z0-9]+/g, '_')}}`;
}

/** The request headers after JWT authentication's edits (its output headers, the token removed). */
function editedHeaders(headers: Headers, edits: { set: Array<[string, string]>; remove: string[] }): Headers {
  if (edits.set.length === 0 && edits.remove.every((h) => headers[h] === undefined)) return headers;
  const out: Headers = { ...headers };
  for (const name of edits.remove) delete out[name];
  for (const [name, value] of edits.set) out[name] = value;
  return out;
}

function rbacDenied(details: string | undefined): GateReply {
  return {
    status: 403,
    body: RBAC_DENIED_BODY,
    flags: '-',
    headers: {},
    ...(details ? { details } : {}),
  };
}

/**
 * The headers policy reads: as Envoy's filters see them, without hop-by-hop headers (and those
 * `connection` names), so a client cannot make policy see a header the backend will not get.
 */
function policyHeaders(headers: Headers): Headers {
  const out = withoutHopByHop(headers);
  if (headers.host !== undefined) out.host = headers.host;
  return out;
}

function attributesOf(req: GateRequest): RequestAttributes {
  const { meta } = req;
  return {
    method: req.method,
    path: req.path,
    host: req.authority,
    headers: req.tcp ? req.headers : policyHeaders(req.headers),
    source: { principal: meta.source.principal, ...(meta.source.ip ? { ip: meta.source.ip } : {}) },
    ...(meta.source.ip ? { remoteIp: meta.source.ip } : {}),
    destination: { port: meta.policyPort ?? meta.port, ...(meta.address ? { ip: meta.address } : {}) },
    ...(req.tcp ? { tcp: true } : {}),
  };
}

export class PolicyGate implements RequestGate {
  private readonly opts: PolicyGateOptions;
  private compiled: Compiled = NOTHING;
  readonly jwt: JwtAuthenticator;
  readonly limiter: RateLimiter;

  constructor(opts: PolicyGateOptions) {
    this.opts = opts;
    this.jwt = new JwtAuthenticator({ log: opts.log });
    this.limiter = new RateLimiter({ log: opts.log, backend: () => this.compiled.mesh?.spec.rateLimit });
  }

  /** Compiles a new configuration's policies; requests after this see them. */
  update(config: {
    authorizationPolicies: Iterable<AuthorizationPolicyResource>;
    requestAuthentications?: Iterable<RequestAuthenticationResource>;
    rateLimitPolicies?: Iterable<RateLimitPolicyResource>;
    meshConfig: MeshConfigResource | undefined;
  }): void {
    const authorization = [...config.authorizationPolicies].map((policy) => ({
      policy,
      compiled: compileL7Policy(policy),
    }));
    const limits = [...(config.rateLimitPolicies ?? [])];
    this.compiled = {
      authorization,
      authentication: [...(config.requestAuthentications ?? [])],
      rateLimits: limits,
      routeRateLimits: limits.filter(namesRoute),
      mesh: config.meshConfig,
      bound: new Map(),
    };
  }

  /** The policies that bind a target (what `waypoint config policies` shows); route-bound limits aside. */
  boundTo(target: PolicyTarget): Bound {
    const { bound } = this.compiled;
    const key = `${target.gateway}|${target.service ?? ''}`;
    let found = bound.get(key);
    if (!found) {
      if (bound.size >= MAX_CACHED_TARGETS) bound.clear();
      const serviceEntry =
        target.serviceEntry ??
        (target.service === undefined ? undefined : this.opts.serviceEntryOf?.(target.service));
      const at = { gateway: target.gateway, service: target.service, serviceEntry };
      const binds = this.opts.binds ?? bindsTarget;
      found = {
        authorization: this.compiled.authorization.filter((a) => binds(a.policy, at)).map((a) => a.compiled),
        authentication: this.compiled.authentication.filter((p) => binds(p, at)),
        rateLimits: this.compiled.rateLimits.filter((p) => binds(p, at)),
      };
      bound.set(key, found);
    }
    return found;
  }

  admit(req: GateRequest, upstream: GateUpstream): GateVerdict | Promise<GateVerdict> | undefined {
    const service = workloadTargetAddress(req.meta.service) === undefined ? req.meta.service : undefined;
    const gateway = this.opts.gateway();
    const bound = this.boundTo({ gateway, service });
    if (req.tcp) {
      // A connection passed through as TCP (not HTTP, or it waited past sniffing) cannot be counted,
      // authenticated or shown to an HTTP authorizer: where any of that binds, it is refused, else any
      // number of requests could ride on it unchecked.
      const httpOnly =
        bound.rateLimits.length > 0 ||
        bound.authentication.length > 0 ||
        bound.authorization.some((p) => p.action === 'CUSTOM' && !p.dryRun);
      if (httpOnly) return { reply: { ...TCP_REFUSED } };
      if (bound.authorization.length === 0) return undefined;
      return this.decide(req, bound.authorization, [], [], upstream);
    }
    const byRoute =
      req.route === undefined
        ? []
        : this.compiled.routeRateLimits.filter((p) => bindsTarget(p, { gateway, service, route: req.route }));
    const limits = byRoute.length > 0 ? [...new Set([...bound.rateLimits, ...byRoute])] : bound.rateLimits;
    const authentication = bound.authentication;
    if (bound.authorization.length === 0 && authentication.length === 0 && limits.length === 0)
      return undefined;
    return this.decide(req, bound.authorization, authentication, limits, upstream);
  }

  /** Stops key refreshes and Redis. */
  async close(): Promise<void> {
    this.jwt.close();
    await this.limiter.close();
  }

  private async decide(
    req: GateRequest,
    policies: readonly CompiledPolicy[],
    authentication: readonly RequestAuthenticationResource[],
    limits: readonly RateLimitPolicyResource[],
    upstream: GateUpstream,
  ): Promise<GateVerdict> {
    const attrs = attributesOf(req);
    let headers: Headers | undefined;
    let path: string | undefined;
    const responseHeaders: Headers = {};
    if (authentication.length > 0) {
      const jwt: JwtResult = await this.jwt.authenticate(
        { headers: attrs.headers, path: req.path, method: req.method, scheme: 'http' },
        authentication,
      );
      if (jwt.kind === 'denied') {
        return {
          reply: {
            status: jwt.status,
            body: jwt.body,
            flags: '-',
            headers: jwt.headers,
            details: jwtDetails(jwt.body),
          },
        };
      }
      // What JWT authentication wrote (or took out) is what every later stage reads, as in Envoy's
      // filter chain: a client cannot forge an output header for authorization, an authorizer or a limit.
      // The backend gets the client's headers with the same edits (it strips hop-by-hop ones itself).
      headers = editedHeaders(req.headers, jwt.headers);
      attrs.headers = editedHeaders(attrs.headers as Headers, jwt.headers);
      if (jwt.kind === 'authenticated') {
        attrs.auth = jwt.auth;
        if (jwt.path !== undefined) {
          path = jwt.path;
          attrs.path = path;
        }
      }
    }
    for (const custom of matchingCustom(policies, attrs)) {
      const outcome = await this.askProvider(
        custom,
        { ...req, headers: attrs.headers as Headers, path: attrs.path },
        upstream,
      );
      if (outcome.reply) return { reply: outcome.reply, log: { policy: custom.id, ...outcome.log } };
      if (outcome.upstreamHeaders && Object.keys(outcome.upstreamHeaders).length > 0) {
        headers = { ...(headers ?? req.headers), ...outcome.upstreamHeaders };
        attrs.headers = { ...attrs.headers, ...outcome.upstreamHeaders };
      }
      Object.assign(responseHeaders, outcome.downstreamHeaders);
    }
    const decision = evaluateL7(policies, attrs);
    const log: Record<string, unknown> = {
      ...(attrs.auth ? { request_principal: attrs.auth.principal } : {}),
      ...(decision.policy ? { policy: decision.policy } : {}),
      ...(decision.audit.length > 0 ? { audit: decision.audit } : {}),
      ...(decision.dryRun.length > 0 ? { dry_run: decision.dryRun } : {}),
    };
    if (!decision.allow)
      return { reply: rbacDenied(decision.details), log: { ...log, reason: decision.reason } };
    if (limits.length > 0) {
      const limit = await this.limiter.check(limits, attrs);
      if (limit.limited) {
        const reply = { status: limit.status, body: limit.body, flags: limit.flags, headers: limit.headers };
        return { reply: { ...reply, details: 'rate_limited' }, log };
      }
      Object.assign(responseHeaders, limit.headers);
      if (limit.failedOpen) log.rate_limit = 'failed open: Redis did not answer in time';
    }
    return {
      ...(headers && headers !== req.headers ? { headers } : {}),
      ...(path !== undefined ? { path } : {}),
      ...(Object.keys(responseHeaders).length > 0 ? { responseHeaders } : {}),
      log,
    };
  }

  /** One CUSTOM policy's provider: undefined reply when it allows. */
  private async askProvider(
    custom: CompiledPolicy,
    req: GateRequest,
    upstream: GateUpstream,
  ): Promise<{
    reply?: GateReply;
    upstreamHeaders?: Headers;
    downstreamHeaders?: Headers;
    log?: Record<string, unknown>;
  }> {
    if (this.opts.custom === 'deny') {
      return {
        reply: rbacDenied('ext_authz_not_supported'),
        log: { error: `CUSTOM policy ${custom.id}: this proxy does not call external authorizers; denied` },
      };
    }
    const provider = this.compiled.mesh?.spec.extensionProviders?.find((p) => p.name === custom.provider);
    if (!provider?.envoyExtAuthzHttp) {
      // Istio: a CUSTOM policy whose provider the mesh does not define denies what it matches.
      return {
        reply: rbacDenied('ext_authz_provider_not_found'),
        log: {
          error: `extension provider "${custom.provider}" is not an envoyExtAuthzHttp provider in MeshConfig`,
        },
      };
    }
    const settings = provider.envoyExtAuthzHttp;
    let address: AuthorizerAddress | undefined;
    try {
      address = this.opts.resolve(settings.service, settings.port);
    } catch (err) {
      this.opts.log.warn(
        { err: describeError(err), provider: provider.name },
        'cannot resolve the authorizer',
      );
    }
    const outcome = await checkExternal(
      settings,
      address,
      { method: req.method, path: req.path, authority: req.authority, headers: req.headers },
      upstream,
      this.opts.random,
    );
    const log = outcome.error ? { ext_authz_error: outcome.error } : {};
    if (!outcome.allow) return { reply: outcome.reply, log };
    return { upstreamHeaders: outcome.upstreamHeaders, downstreamHeaders: outcome.downstreamHeaders, log };
  }
}
