// Status conditions the control plane attaches to accepted resources, and the split of
// AuthorizationPolicy fields into what a ztunnel can enforce at L4 and what needs a waypoint.

import { WAYPOINT_CLASSES } from './kinds/gateway.ts';
import type { AuthorizationPolicyResource, AuthorizationRule } from './kinds/security.ts';
import type { Condition } from './meta.ts';
import type { Resource } from './resource.ts';

/** `when` keys a ztunnel can evaluate; every other key needs a waypoint. */
export const L4_WHEN_KEYS: ReadonlySet<string> = new Set([
  'source.ip',
  'source.namespace',
  'source.principal',
  'destination.ip',
  'destination.port',
]);

const L7_SOURCE_FIELDS = [
  'requestPrincipals',
  'notRequestPrincipals',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
] as const;
const L7_OPERATION_FIELDS = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;

/** The L7-only fields a rule uses (`methods`, `when request.headers[x]`...), sorted; [] for a pure L4 rule. */
export function l7FieldsOfRule(rule: AuthorizationRule): string[] {
  const found = new Set<string>();
  for (const { source } of rule.from ?? []) {
    for (const f of L7_SOURCE_FIELDS) if (source[f] !== undefined) found.add(f);
  }
  for (const { operation } of rule.to ?? []) {
    for (const f of L7_OPERATION_FIELDS) if (operation[f] !== undefined) found.add(f);
  }
  for (const c of rule.when ?? []) if (!L4_WHEN_KEYS.has(c.key)) found.add(`when ${c.key}`);
  return [...found].sort();
}

/** True when the policy is enforced by waypoints (it has targetRefs) rather than by ztunnels. */
export function isWaypointPolicy(policy: AuthorizationPolicyResource): boolean {
  return policy.spec.targetRef !== undefined || (policy.spec.targetRefs?.length ?? 0) > 0;
}

/** An `Accepted` condition (with the resource's generation, when it has one). */
function condition(
  status: Condition['status'],
  reason: string,
  message: string,
  generation: number | undefined,
): Condition {
  return {
    type: 'Accepted',
    status,
    reason,
    message,
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  };
}

function accepted(message: string, generation: number | undefined): Condition {
  return condition('True', 'Accepted', message, generation);
}

/**
 * Valid and stored, but no proxy acts on it yet: Gateway API's initial state for a route no controller
 * has taken (`Accepted` `Unknown`, reason `Pending`), never a claim that it is enforced.
 */
function pending(message: string, generation: number | undefined): Condition {
  return condition('Unknown', 'Pending', message, generation);
}

function unsupported(message: string, generation: number | undefined): Condition {
  return condition('True', 'UnsupportedValue', message, generation);
}

/**
 * The targetRefs (by index, as `targetRefs[i]` or `targetRef`) that name another namespace. Istio
 * resolves targetRefs only in the policy's own namespace (its CRD refuses the field with "cross
 * namespace referencing is not currently supported"), so Ambit never binds these.
 */
export function crossNamespaceTargetRefs(policy: AuthorizationPolicyResource): string[] {
  const own = policy.metadata.namespace ?? 'default';
  const out: string[] = [];
  // An empty namespace is the policy's own, as in Istio.
  if (policy.spec.targetRef?.namespace && policy.spec.targetRef.namespace !== own) out.push('targetRef');
  (policy.spec.targetRefs ?? []).forEach((ref, i) => {
    if (ref.namespace && ref.namespace !== own) out.push(`targetRefs[${i}]`);
  });
  return out;
}

/** The `when` keys a waypoint evaluates; others (`connection.sni`, the MySQL filter's) fail closed. */
const WAYPOINT_WHEN_KEY =
  /^(source\.ip|source\.namespace|source\.principal|remote\.ip|destination\.ip|destination\.port|request\.auth\.(principal|audiences|presenter)|request\.headers\[[^\]]+\]|request\.auth\.claims(\[[^\]]+\])+)$/;

function targetRefConditions(policy: AuthorizationPolicyResource): Condition[] {
  const gen = policy.metadata.generation;
  const foreign = crossNamespaceTargetRefs(policy);
  if (foreign.length === 0) {
    const keys = [
      ...new Set(
        (policy.spec.rules ?? [])
          .flatMap((r) => (r.when ?? []).map((c) => c.key))
          .filter((k) => !WAYPOINT_WHEN_KEY.test(k)),
      ),
    ];
    if (keys.length > 0)
      return [
        unsupported(
          `valid, but a waypoint cannot evaluate ${keys.join(', ')} (plaintext HTTP inside the tunnel carries no such value): it fails closed — ALLOW rules with it match nothing, DENY and CUSTOM rules match as if it held`,
          gen,
        ),
      ];
    return [
      accepted(
        'valid; enforced at L7 by the waypoints its targetRefs bind it to (condition WaypointAccepted says which)',
        gen,
      ),
    ];
  }
  const all = (policy.spec.targetRefs?.length ?? 0) + (policy.spec.targetRef ? 1 : 0);
  const message = `${foreign.join(', ')}: cross namespace referencing is not currently supported; as in Istio, a policy binds only targets in its own namespace (${policy.metadata.namespace ?? 'default'}), so ${foreign.length === all ? 'this policy binds nothing' : 'those are ignored'}`;
  return foreign.length === all
    ? [condition('False', 'TargetNotFound', message, gen)]
    : [unsupported(message, gen)];
}

function authorizationConditions(policy: AuthorizationPolicyResource): Condition[] {
  const gen = policy.metadata.generation;
  if (isWaypointPolicy(policy)) return targetRefConditions(policy);
  const action = policy.spec.action ?? 'ALLOW';
  if (action === 'AUDIT') {
    return [
      unsupported('AUDIT is not enforced by ztunnel: it changes no decision at L4 and is only logged', gen),
    ];
  }
  const rules = policy.spec.rules ?? [];
  const l7 = rules.map((r, i) => ({ i, fields: l7FieldsOfRule(r) })).filter((r) => r.fields.length > 0);
  const notes: string[] = [];
  if (action === 'CUSTOM') {
    notes.push(
      'CUSTOM needs an external authorizer, which ztunnel does not call: connections its rules match are denied (stricter than written)',
    );
  }
  if (l7.length > 0) {
    const fields = [...new Set(l7.flatMap((r) => r.fields))].sort().join(', ');
    const which = l7.map((r) => `rules[${r.i}]`).join(', ');
    notes.push(
      action === 'ALLOW'
        ? `ztunnel cannot enforce HTTP attributes (found: ${fields}); at L4 ${which} match nothing, which is stricter than written. Enforce them at a waypoint with targetRefs (a sidecar pod's own proxy enforces them on its HTTP ports)`
        : `ztunnel cannot enforce HTTP attributes (found: ${fields}); at L4 ${which} ignore them and so ${action === 'DENY' ? 'deny' : 'match'} more than written (stricter). Enforce them at a waypoint with targetRefs (a sidecar pod's own proxy enforces them on its HTTP ports)`,
    );
  }
  if (notes.length === 0)
    return [accepted("enforced at L4 by ztunnel (and by a sidecar pod's own proxy)", gen)];
  return [unsupported(notes.join('; '), gen)];
}

/** The conditions a freshly accepted resource carries. */
export function statusConditions(resource: Resource): Condition[] {
  if (resource.kind === 'AuthorizationPolicy') return authorizationConditions(resource);
  if (resource.kind === 'Gateway') {
    // A waypoint Gateway's status follows its replicas when it is read (Programmed, addresses).
    const message = WAYPOINT_CLASSES.includes(resource.spec.gatewayClassName)
      ? 'valid and stored; the control plane deploys this waypoint, and its status follows its replicas'
      : 'valid and stored; Ambit runs Gateways of class istio-waypoint or ambit-waypoint only (the control plane deploys those), so nothing acts on this one';
    return [pending(message, resource.metadata.generation)];
  }
  if (resource.kind === 'HTTPRoute' || resource.kind === 'GRPCRoute') {
    return [
      pending(
        'valid and stored; the waypoints of its parent Services route it (and the sidecars of client pods), and its status follows the waypoints when read (status.parents)',
        resource.metadata.generation,
      ),
    ];
  }
  if (resource.kind === 'HTTPFault') {
    return [
      accepted(
        'valid; waypoints and sidecars inject it into the requests of routes whose ExtensionRef filters name it (group ambit.dev, kind HTTPFault)',
        resource.metadata.generation,
      ),
    ];
  }
  if (resource.kind === 'DestinationRule') {
    // As in Istio's ambient mode, a DestinationRule applies where L7 traffic is handled: at waypoints.
    return [
      accepted(
        "applied where L7 traffic is handled: by the waypoints that send to its host and by sidecars (load balancing, connection pool, outlier detection); traffic between ambient pods that takes no waypoint is not affected, as in Istio's ambient mode",
        resource.metadata.generation,
      ),
    ];
  }
  if (resource.kind === 'RequestAuthentication') {
    const refs = resource.spec.targetRefs?.length ?? (resource.spec.targetRef ? 1 : 0);
    if (refs === 0)
      return [
        unsupported(
          'valid, but Ambit enforces RequestAuthentication at waypoints only: give it targetRefs (a Service or the waypoint Gateway); with a selector or none, nothing enforces it',
          resource.metadata.generation,
        ),
      ];
    return [
      accepted(
        'valid; the waypoints its targetRefs bind it to check JWTs (condition WaypointAccepted says which)',
        resource.metadata.generation,
      ),
    ];
  }
  if (resource.kind === 'RateLimitPolicy') {
    return [
      accepted(
        'valid; enforced by the waypoints its targetRefs bind it to (condition WaypointAccepted says which); global rules need MeshConfig spec.rateLimit',
        resource.metadata.generation,
      ),
    ];
  }
  if (resource.kind === 'MeshConfig') {
    return [
      accepted(
        'valid; waypoints use its extension providers (CUSTOM authorization) and its rate-limit Redis',
        resource.metadata.generation,
      ),
    ];
  }
  if (resource.kind === 'Telemetry') {
    const message = resource.spec.selector
      ? "valid; a selector picks workloads, and Ambit applies Telemetry at waypoints only (root namespace, the waypoint's namespace, or targetRefs to its Gateway or a Service): nothing applies this one"
      : "valid; waypoints apply its tracing and access logging with Istio's precedence (mesh, namespace, targetRefs)";
    return [
      resource.spec.selector
        ? unsupported(message, resource.metadata.generation)
        : accepted(message, resource.metadata.generation),
    ];
  }
  return [accepted('accepted', resource.metadata.generation)];
}
