// The status a route gets for each Service it names as a parent, as the control plane writes it
// (Gateway API RouteParentStatus): Accepted — is there a parent that will carry this route out — and
// ResolvedRefs — can every backend it names be sent to.
//
// Accepted reasons: `Accepted`; `NoMatchingParent` (Gateway API's reason for a parent, or a port or
// sectionName of it, that does not match) when the Service or the named port does not exist; and two
// of Ambit's own — Gateway API allows implementation-specific reasons — when the Service exists but
// nothing enforces the route: `NoWaypoint` (no waypoint serves the Service) and `WaypointNotRunning`.
// Neither is a missing parent, which is what NoMatchingParent says, and each has its own fix.

import type { Condition, ParentRef } from '../config/index.ts';
import { attachedPorts, type ServiceParent, serviceParents } from './attach.ts';
import { type BackendProblem, resolveBackend, resolveMirror } from './backends.ts';
import { type AnyRoute, type Filter, routeNamespace, type ServiceLookup } from './shapes.ts';

export const CONTROLLER_NAME = 'ambit.dev/waypoint';

export interface RouteParentStatus {
  parentRef: ParentRef;
  controllerName: typeof CONTROLLER_NAME;
  conditions: Condition[];
}

export interface StatusContext {
  services: ServiceLookup;
  /** The waypoint that serves a Service (`namespace/name`), if any. */
  waypointFor: (serviceKey: string) => { name: string; running: boolean } | undefined;
}

interface Problem {
  reason: BackendProblem;
  message: string;
}

function condition(
  type: string,
  ok: boolean,
  reason: string,
  message: string,
  generation: number | undefined,
): Condition {
  return {
    type,
    status: ok ? 'True' : 'False',
    reason,
    message,
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  };
}

function accepted(parent: ServiceParent, ctx: StatusContext, generation: number | undefined): Condition {
  const attached = attachedPorts(parent, ctx.services);
  if (!attached.ok) return condition('Accepted', false, 'NoMatchingParent', attached.message, generation);
  const waypoint = ctx.waypointFor(parent.service);
  if (waypoint === undefined) {
    const message = `no waypoint serves Service ${parent.service}, so nothing enforces this route; bind one with the istio.io/use-waypoint label on the Service or its namespace`;
    return condition('Accepted', false, 'NoWaypoint', message, generation);
  }
  if (!waypoint.running) {
    const message = `waypoint ${waypoint.name}, which serves Service ${parent.service}, is not running, so nothing enforces this route until it runs`;
    return condition('Accepted', false, 'WaypointNotRunning', message, generation);
  }
  return condition(
    'Accepted',
    true,
    'Accepted',
    `accepted by waypoint ${waypoint.name} for Service ${parent.service}`,
    generation,
  );
}

function mirrorProblems(filters: readonly Filter[] | undefined, namespace: string, services: ServiceLookup) {
  const problems: Problem[] = [];
  for (const f of filters ?? []) {
    if (f.requestMirror === undefined) continue;
    const r = resolveMirror(f.requestMirror, namespace, services);
    if (!r.ok) problems.push({ reason: r.problem, message: `mirror: ${r.message}` });
  }
  return problems;
}

/** Every backendRef and mirror the route names that cannot be sent to, in the order written. */
export function backendProblems(route: AnyRoute, services: ServiceLookup): Problem[] {
  const namespace = routeNamespace(route);
  const problems: Problem[] = [];
  for (const rule of route.spec.rules ?? []) {
    problems.push(...mirrorProblems(rule.filters, namespace, services));
    for (const ref of rule.backendRefs ?? []) {
      const r = resolveBackend(ref, namespace, services);
      if (!r.ok) problems.push({ reason: r.problem, message: r.message });
      // Validated with the rule's filter schema; typed unknown[] by routes.ts (see rules.ts).
      problems.push(...mirrorProblems(ref.filters as Filter[] | undefined, namespace, services));
    }
  }
  return problems;
}

function resolvedRefs(problems: readonly Problem[], generation: number | undefined): Condition {
  if (problems.length === 0) {
    return condition('ResolvedRefs', true, 'ResolvedRefs', 'all references resolved', generation);
  }
  const message = problems.map((p) => p.message).join('; ');
  return condition('ResolvedRefs', false, problems[0]!.reason, message, generation);
}

/** One status per Service parentRef of `route` (parents of other kinds are another controller's). */
export function routeParentStatuses(route: AnyRoute, ctx: StatusContext): RouteParentStatus[] {
  const generation = route.metadata.generation;
  const refs = resolvedRefs(backendProblems(route, ctx.services), generation);
  return serviceParents(route).map((parent) => ({
    parentRef: parent.ref,
    controllerName: CONTROLLER_NAME,
    conditions: [accepted(parent, ctx, generation), refs],
  }));
}
