// The waypoint's request gate: for each request, the policies that bind it (by targetRefs, see bind.ts),
// applied in Envoy's filter order as Istio configures a waypoint — CUSTOM (the external authorizer), then
// DENY, then ALLOW, with AUDIT and dry-run policies only reported. Policies are compiled once per
// configuration; a request to a target that nothing binds costs one map lookup.

import type { AuthorizationPolicyResource, MeshConfigResource } from '../../config/index.ts';
import { describeError } from '../../errors/index.ts';
import type { Logger } from '../../log/index.ts';
import {
  type CompiledPolicy,
  compileL7Policy,
  evaluateL7,
  matchingCustom,
  type RequestAttributes,
} from '../../policy/index.ts';
import type { Headers } from '../http/headers.ts';
import {
  type GateReply,
  type GateRequest,
  type GateUpstream,
  type GateVerdict,
  type RequestGate,
  workloadTargetAddress,
} from '../http/types.ts';
import { bindsTarget, type PolicyTarget } from './bind.ts';
import { type AuthorizerAddress, checkExternal } from './ext-authz.ts';

/** Envoy's RBAC denial: 403 with this body; it sets no response flag (`-`). */
export const RBAC_DENIED_BODY = 'RBAC: access denied';

/** Bound policies per target key kept at most (a client walking workload addresses cannot grow it). */
const MAX_CACHED_TARGETS = 4096;

export interface PolicyGateOptions {
  log: Logger;
  /** This replica's Gateway, `namespace/name`; undefined until its pod is in the configuration. */
  gateway: () => string | undefined;
  /** Where an extension provider's `service:port` is reached (a mesh Service's endpoints, or an address). */
  resolve: (service: string, port: number) => AuthorizerAddress | undefined;
  random?: () => number;
}

/** What the gate holds for one configuration. */
interface Compiled {
  authorization: Array<{ policy: AuthorizationPolicyResource; compiled: CompiledPolicy }>;
  mesh: MeshConfigResource | undefined;
  /** Bound policies by target key (`gateway|service`). */
  bound: Map<string, CompiledPolicy[]>;
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

export function attributesOf(req: GateRequest): RequestAttributes {
  const { meta } = req;
  return {
    method: req.method,
    path: req.path,
    host: req.authority,
    headers: req.headers,
    source: { principal: meta.source.principal, ...(meta.source.ip ? { ip: meta.source.ip } : {}) },
    ...(meta.source.ip ? { remoteIp: meta.source.ip } : {}),
    destination: { port: meta.port, ...(meta.address ? { ip: meta.address } : {}) },
    ...(req.tcp ? { tcp: true } : {}),
  };
}

export class PolicyGate implements RequestGate {
  private readonly opts: PolicyGateOptions;
  private compiled: Compiled = { authorization: [], mesh: undefined, bound: new Map() };

  constructor(opts: PolicyGateOptions) {
    this.opts = opts;
  }

  /** Compiles a new configuration's policies; requests after this see them. */
  update(config: {
    authorizationPolicies: Iterable<AuthorizationPolicyResource>;
    meshConfig: MeshConfigResource | undefined;
  }): void {
    const authorization = [...config.authorizationPolicies].map((policy) => ({
      policy,
      compiled: compileL7Policy(policy),
    }));
    this.compiled = { authorization, mesh: config.meshConfig, bound: new Map() };
  }

  /** The authorization policies that bind a target, as compiled (what `waypoint config policies` shows). */
  boundTo(target: PolicyTarget): CompiledPolicy[] {
    const { bound, authorization } = this.compiled;
    const key = `${target.gateway}|${target.service ?? ''}`;
    let found = bound.get(key);
    if (!found) {
      if (bound.size >= MAX_CACHED_TARGETS) bound.clear();
      found = authorization.filter((a) => bindsTarget(a.policy, target)).map((a) => a.compiled);
      bound.set(key, found);
    }
    return found;
  }

  admit(req: GateRequest, upstream: GateUpstream): GateVerdict | Promise<GateVerdict> | undefined {
    const service = workloadTargetAddress(req.meta.service) === undefined ? req.meta.service : undefined;
    const policies = this.boundTo({ gateway: this.opts.gateway(), service });
    if (policies.length === 0) return undefined;
    return this.decide(req, policies, upstream);
  }

  private async decide(
    req: GateRequest,
    policies: readonly CompiledPolicy[],
    upstream: GateUpstream,
  ): Promise<GateVerdict> {
    const attrs = attributesOf(req);
    let headers: Headers | undefined;
    const responseHeaders: Headers = {};
    for (const custom of matchingCustom(policies, attrs)) {
      const outcome = await this.askProvider(custom, req, upstream);
      if (outcome.reply) return { reply: outcome.reply, log: { policy: custom.id, ...outcome.log } };
      if (outcome.upstreamHeaders) headers = { ...(headers ?? req.headers), ...outcome.upstreamHeaders };
      Object.assign(responseHeaders, outcome.downstreamHeaders);
    }
    const decision = evaluateL7(policies, attrs);
    const log = {
      ...(decision.policy ? { policy: decision.policy } : {}),
      ...(decision.audit.length > 0 ? { audit: decision.audit } : {}),
      ...(decision.dryRun.length > 0 ? { dry_run: decision.dryRun } : {}),
    };
    if (!decision.allow)
      return { reply: rbacDenied(decision.details), log: { ...log, reason: decision.reason } };
    return {
      ...(headers ? { headers } : {}),
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
