// The live status of a policy that waypoints enforce (targetRefs): besides `Accepted` (valid), Istio's
// `WaypointAccepted` condition says which waypoint each target binds it to, or why none does — a
// Service with no waypoint, a Gateway that is not a waypoint, a target that does not exist — so an
// operator can tell an enforced policy from one that nothing enforces.

import { type Condition, type PolicyTargetRef, targetGroupMatches } from '../config/index.ts';
import type { StoredObject } from './store/index.ts';

export interface PolicyStatusContext {
  /** The waypoint a Service (`namespace/name`) uses, `namespace/name`; null: the Service has none; undefined: no such Service. */
  serviceWaypoint: (key: string) => string | null | undefined;
  /** The same for a ServiceEntry (`namespace/name` of the entry): the waypoint its hosts use. */
  entryWaypoint?: (key: string) => string | null | undefined;
  /** True when `namespace/name` is a Gateway of a waypoint class. */
  isWaypoint: (key: string) => boolean;
  /** Extra problems that make the policy fail closed (a CUSTOM provider MeshConfig does not define). */
  problems?: (object: StoredObject) => string[];
}

interface Targeted {
  spec?: { targetRef?: PolicyTargetRef; targetRefs?: PolicyTargetRef[] };
}

function refsOf(object: StoredObject): PolicyTargetRef[] {
  const spec = (object as unknown as Targeted).spec;
  return spec?.targetRefs ?? (spec?.targetRef ? [spec.targetRef] : []);
}

/** Where each targetRef binds: a waypoint, or why not. */
function bindings(object: StoredObject, ctx: PolicyStatusContext): { bound: string[]; unbound: string[] } {
  const ns = (object.metadata as { namespace?: string }).namespace ?? 'default';
  const bound = new Set<string>();
  const unbound: string[] = [];
  for (const ref of refsOf(object)) {
    const key = `${ns}/${ref.name}`;
    if (ref.namespace && ref.namespace !== ns) {
      unbound.push(`${ref.kind} ${ref.namespace}/${ref.name}: another namespace`);
    } else if (!targetGroupMatches(ref)) {
      unbound.push(`${ref.kind} ${key}: group "${ref.group}" is not the group of ${ref.kind}`);
    } else if (ref.kind === 'Gateway') {
      if (ctx.isWaypoint(key)) bound.add(key);
      else unbound.push(`Gateway ${key}: not a waypoint Gateway that exists`);
    } else if (ref.kind === 'Service') {
      const wp = ctx.serviceWaypoint(key);
      if (wp) bound.add(wp);
      else unbound.push(wp === null ? `Service ${key}: uses no waypoint` : `Service ${key}: not found`);
    } else if (ref.kind === 'ServiceEntry') {
      const wp = ctx.entryWaypoint?.(key);
      if (wp) bound.add(wp);
      else
        unbound.push(
          wp === null ? `ServiceEntry ${key}: uses no waypoint` : `ServiceEntry ${key}: not found`,
        );
    } else if (ref.kind === 'HTTPRoute' || ref.kind === 'GRPCRoute') {
      // A route binds at the waypoints of its parent Services; the route's own status tells which.
      bound.add(`the waypoints of ${ref.kind} ${key}`);
    } else {
      unbound.push(
        `${ref.kind} ${key}: Ambit's waypoints bind Gateway, Service and ServiceEntry targets only`,
      );
    }
  }
  return { bound: [...bound].sort(), unbound };
}

/** `WaypointAccepted` for a policy with targetRefs (undefined for one without), after its stored conditions. */
export function waypointPolicyStatus(
  object: StoredObject,
  ctx: PolicyStatusContext,
): NonNullable<StoredObject['status']> | undefined {
  if (refsOf(object).length === 0) return undefined;
  const { bound, unbound } = bindings(object, ctx);
  const problems = ctx.problems?.(object) ?? [];
  const generation = object.metadata.generation;
  const notes = [...unbound.map((u) => `not bound: ${u}`), ...problems];
  const condition: Condition = {
    type: 'WaypointAccepted',
    status: bound.length > 0 ? 'True' : 'False',
    reason: bound.length > 0 ? (problems.length > 0 ? 'Invalid' : 'Accepted') : 'TargetNotFound',
    message: [
      bound.length > 0 ? `bound to ${bound.join(', ')}` : 'bound to no waypoint: nothing enforces it',
      ...notes,
    ].join('; '),
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  };
  const stored = (object.status?.conditions ?? []).filter((c) => c.type !== 'WaypointAccepted');
  return { ...object.status, conditions: [...stored, condition] };
}
