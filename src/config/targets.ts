// Which policies bind a target. As in Istio's ambient mode, a policy with `targetRefs` binds a waypoint's
// Gateway (all traffic through it), a Service (traffic to it, at its waypoint), or — for rate limits — a
// route (the requests it matched); always in the policy's own namespace (Istio refuses cross-namespace
// targetRefs). One definition, for the waypoint that enforces, the control plane that reports where a
// policy is bound, and the CLI that describes it.

import type { PolicyTargetRef } from './fields.ts';

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';

/** The group each kind a policy may target lives in; Istio writes the core group "" or "core". */
export const TARGET_GROUPS: Readonly<Record<string, string>> = {
  Service: 'core',
  ServiceEntry: 'networking.istio.io',
  Gateway: GATEWAY_API_GROUP,
  GatewayClass: GATEWAY_API_GROUP,
  HTTPRoute: GATEWAY_API_GROUP,
  GRPCRoute: GATEWAY_API_GROUP,
};

/** True when the ref names its kind's group, or none (its kind's group is meant). */
export function targetGroupMatches(ref: PolicyTargetRef): boolean {
  if (ref.group === undefined) return true;
  return (ref.group === '' ? 'core' : ref.group) === TARGET_GROUPS[ref.kind];
}

/** Where a request is going, as targetRefs name it: each `namespace/name`. */
export interface PolicyTarget {
  /** The waypoint's Gateway. */
  gateway: string | undefined;
  /** The destination Service; undefined for traffic addressed to a workload. */
  service: string | undefined;
  /** The ServiceEntry whose host the destination is, `namespace/name` (its own name, not the host). */
  serviceEntry?: string;
  /** The route that matched (HTTPRoute or GRPCRoute), when one did. */
  route?: string;
}

interface Targeted {
  metadata: { name: string; namespace?: string };
  spec: { targetRef?: PolicyTargetRef; targetRefs?: readonly PolicyTargetRef[] };
}

export function targetRefsOf(policy: Targeted): readonly PolicyTargetRef[] {
  return policy.spec.targetRefs ?? (policy.spec.targetRef ? [policy.spec.targetRef] : []);
}

/** True when one of the policy's targetRefs names the target's Gateway, Service, ServiceEntry or route. */
export function bindsTarget(policy: Targeted, target: PolicyTarget): boolean {
  const ns = policy.metadata.namespace ?? 'default';
  for (const ref of targetRefsOf(policy)) {
    if ((ref.namespace && ref.namespace !== ns) || !targetGroupMatches(ref)) continue;
    const key = `${ns}/${ref.name}`;
    if (ref.kind === 'Gateway' && key === target.gateway) return true;
    if (ref.kind === 'Service' && key === target.service) return true;
    if (ref.kind === 'ServiceEntry' && key === target.serviceEntry) return true;
    if ((ref.kind === 'HTTPRoute' || ref.kind === 'GRPCRoute') && key === target.route) return true;
  }
  return false;
}
