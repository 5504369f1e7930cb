// The status a route gets for each Service or ServiceEntry it names as a parent (one per parentRef,
// however many hosts an entry holds), as the control plane writes it
// (Gateway API RouteParentStatus): Accepted — is there a parent that will carry this route out — and
// ResolvedRefs — can every backend it names be sent to.
//
// Accepted reasons: `Accepted`; `NoMatchingParent` (Gateway API's reason for a parent, or a port or
// sectionName of it, that does not match) when the parent or the named port does not exist; and two
// of Ambit's own — Gateway API allows implementation-specific reasons — when the parent exists but
// nothing enforces the route: `NoWaypoint` (no waypoint serves the Service, or one of the entry's
// hosts) and `WaypointNotRunning`.
// Neither is a missing parent, which is what NoMatchingParent says, and each has its own fix.

import type { Condition, ParentRef } from '../config/index.ts';
import { type AttachedService, attachedPorts, type MeshParent, meshParents, parentLabel } from './attach.ts';
import { type BackendProblem, resolveBackend, resolveMirror } from './backends.ts';
import {
  type AnyRoute,
  type EntryHostsLookup,
  type Filter,
  type MeshLookup,
  meshLookup,
  routeNamespace,
  type ServiceLookup,
} from './shapes.ts';

export const CONTROLLER_NAME = 'ambit.dev/waypoint';

export interface RouteParentStatus {
  parentRef: ParentRef;
  controllerName: typeof CONTROLLER_NAME;
  conditions: Condition[];
}

export interface StatusContext {
  services: ServiceLookup;
  /** A ServiceEntry's host keys, for ServiceEntry parents and backends; without it none is known. */
  entryHosts?: EntryHostsLookup;
  /** The waypoint that serves a service (by registry key: a Service's, or a ServiceEntry host's), if any. */
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

type Enforcement =
  | { ok: true; waypoints: string[] }
  | { ok: false; reason: 'NoWaypoint'; service: string }
  | { ok: false; reason: 'WaypointNotRunning'; service: string; waypoint: string };

/** The waypoints that enforce the route on every service of `attached`, or the first service none does. */
function enforcement(attached: readonly AttachedService[], ctx: StatusContext): Enforcement {
  const names = new Set<string>();
  for (const { service } of attached) {
    const waypoint = ctx.waypointFor(service);
    if (waypoint === undefined) return { ok: false, reason: 'NoWaypoint', service };
    if (!waypoint.running)
      return { ok: false, reason: 'WaypointNotRunning', service, waypoint: waypoint.name };
    names.add(waypoint.name);
  }
  return { ok: true, waypoints: [...names] };
}

/** How a status message names one service of a parent: the parent itself, or an entry's host. */
function servedLabel(parent: MeshParent, service: string): string {
  if (parent.kind === 'Service') return parentLabel(parent);
  return `host ${service.slice(service.lastIndexOf('/') + 1)} of ${parentLabel(parent)}`;
}

function accepted(
  parent: MeshParent,
  ctx: StatusContext,
  mesh: MeshLookup,
  generation: number | undefined,
): Condition {
  const attached = attachedPorts(parent, mesh);
  if (!attached.ok) return condition('Accepted', false, 'NoMatchingParent', attached.message, generation);
  const enforced = enforcement(attached.services, ctx);
  if (!enforced.ok && enforced.reason === 'NoWaypoint') {
    const message = `no waypoint serves ${servedLabel(parent, enforced.service)}, so only the sidecars of client pods enforce this route, on ports declared HTTP, HTTP/2 or gRPC (ambient clients do not); bind one with the istio.io/use-waypoint label on the ${parent.kind} or its namespace`;
    return condition('Accepted', false, 'NoWaypoint', message, generation);
  }
  if (!enforced.ok) {
    const message = `waypoint ${enforced.waypoint}, which serves ${servedLabel(parent, enforced.service)}, is not running, so nothing enforces this route until it runs`;
    return condition('Accepted', false, 'WaypointNotRunning', message, generation);
  }
  return condition(
    'Accepted',
    true,
    'Accepted',
    `accepted by waypoint ${enforced.waypoints.join(', ')} for ${parentLabel(parent)}`,
    generation,
  );
}

function mirrorProblems(filters: readonly Filter[] | undefined, namespace: string, mesh: MeshLookup) {
  const problems: Problem[] = [];
  for (const f of filters ?? []) {
    if (f.requestMirror === undefined) continue;
    const r = resolveMirror(f.requestMirror, namespace, mesh);
    if (!r.ok) problems.push({ reason: r.problem, message: `mirror: ${r.message}` });
  }
  return problems;
}

/** Every backendRef and mirror the route names that cannot be sent to, in the order written. */
export function backendProblems(route: AnyRoute, mesh: MeshLookup): Problem[] {
  const namespace = routeNamespace(route);
  const problems: Problem[] = [];
  for (const rule of route.spec.rules ?? []) {
    problems.push(...mirrorProblems(rule.filters, namespace, mesh));
    for (const ref of rule.backendRefs ?? []) {
      const r = resolveBackend(ref, namespace, mesh);
      if (!r.ok) problems.push({ reason: r.problem, message: r.message });
      // Validated with the rule's filter schema; typed unknown[] by routes.ts (see rules.ts).
      problems.push(...mirrorProblems(ref.filters as Filter[] | undefined, namespace, mesh));
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

/**
 * One status per Service or ServiceEntry parentRef of `route` (parents of other kinds are another
 * controller's).
 */
export function routeParentStatuses(route: AnyRoute, ctx: StatusContext): RouteParentStatus[] {
  const generation = route.metadata.generation;
  const mesh = meshLookup(ctx);
  const refs = resolvedRefs(backendProblems(route, mesh), generation);
  return meshParents(route).map((parent) => ({
    parentRef: parent.ref,
    controllerName: CONTROLLER_NAME,
    conditions: [accepted(parent, ctx, mesh, generation), refs],
  }));
}
