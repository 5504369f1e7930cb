// Which policies bind a request at this waypoint. As in Istio's ambient mode, a waypoint enforces the
// policies whose `targetRefs` name its own Gateway (all traffic through it) or a Service it serves
// (traffic to that Service); a RateLimitPolicy may also name the HTTPRoute that routed the request.
// A policy binds targets in its own namespace only (Istio refuses cross-namespace targetRefs).

import type { PolicyTargetRef } from '../../config/index.ts';

const GATEWAY_GROUP = 'gateway.networking.k8s.io';

/** Where a request is going, as targetRefs name it: each `namespace/name`. */
export interface PolicyTarget {
  /** This replica's Gateway. */
  gateway: string | undefined;
  /** The destination Service; undefined for traffic addressed to a workload. */
  service: string | undefined;
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

/** True when one of the policy's targetRefs names the target's Gateway, Service or route. */
export function bindsTarget(policy: Targeted, target: PolicyTarget): boolean {
  const ns = policy.metadata.namespace ?? 'default';
  for (const ref of targetRefsOf(policy)) {
    if (ref.namespace && ref.namespace !== ns) continue;
    const key = `${ns}/${ref.name}`;
    const group = ref.group ?? '';
    if (ref.kind === 'Gateway' && (group === GATEWAY_GROUP || group === '') && key === target.gateway)
      return true;
    if (ref.kind === 'Service' && (group === '' || group === 'core') && key === target.service) return true;
    if (
      (ref.kind === 'HTTPRoute' || ref.kind === 'GRPCRoute') &&
      (group === GATEWAY_GROUP || group === '') &&
      key === target.route
    )
      return true;
  }
  return false;
}
