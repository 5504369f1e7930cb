// Backend references: which ones Ambit can send to, why the others cannot be, and the weighted choice
// among a rule's backends. The same resolution feeds `decide` (an invalid backend's share of traffic
// gets a 500) and the route's ResolvedRefs condition, so the two never disagree.

import type { BackendRefSpec, MirrorSpec, ServiceLookup } from './shapes.ts';
import type { BackendRef } from './types.ts';

/** Why a backendRef cannot be used, named by the ResolvedRefs reason Gateway API gives it. */
export type BackendProblem = 'InvalidKind' | 'RefNotPermitted' | 'BackendNotFound';

export type Resolved =
  | { ok: true; backend: BackendRef }
  | { ok: false; problem: BackendProblem; message: string };

type ObjectRef = Pick<BackendRefSpec, 'group' | 'kind' | 'name' | 'namespace' | 'port'>;

/** True for the core Service kind: kind `Service` (the default), group '' or `core` (the default is ''). */
export function isCoreService(group: string | undefined, kind: string | undefined): boolean {
  return (kind ?? 'Service') === 'Service' && (group === undefined || group === '' || group === 'core');
}

/**
 * Resolves a backendRef (or a mirror's backendRef) written in `routeNamespace`. A reference into
 * another namespace needs a ReferenceGrant in Gateway API; Ambit has no ReferenceGrant, so such a
 * reference is never permitted (RefNotPermitted) and is treated as any other invalid backend.
 */
export function resolveBackend(ref: ObjectRef, routeNamespace: string, services: ServiceLookup): Resolved {
  const namespace = ref.namespace ?? routeNamespace;
  const key = `${namespace}/${ref.name}`;
  if (!isCoreService(ref.group, ref.kind)) {
    const gk = ref.group ? `${ref.kind ?? 'Service'}.${ref.group}` : (ref.kind ?? 'Service');
    return {
      ok: false,
      problem: 'InvalidKind',
      message: `backendRef ${key} is a ${gk}: only core Services (group "", kind Service) are supported`,
    };
  }
  if (namespace !== routeNamespace) {
    return {
      ok: false,
      problem: 'RefNotPermitted',
      message: `backendRef ${key} is in another namespace: Ambit has no ReferenceGrant, so a route may only send to Services in its own namespace (${routeNamespace})`,
    };
  }
  const service = services(key);
  if (service === undefined) {
    return { ok: false, problem: 'BackendNotFound', message: `backendRef Service ${key} does not exist` };
  }
  // Validation requires a port on a Service backendRef; without one there is nothing to send to.
  if (ref.port === undefined || !service.ports.some((p) => p.port === ref.port)) {
    return {
      ok: false,
      problem: 'BackendNotFound',
      message: `backendRef Service ${key} has no port ${ref.port ?? '(none given)'}`,
    };
  }
  return { ok: true, backend: { service: key, port: ref.port } };
}

/** A mirror's backendRef, resolved the same way. */
export function resolveMirror(spec: MirrorSpec, routeNamespace: string, services: ServiceLookup): Resolved {
  return resolveBackend(spec.backendRef, routeNamespace, services);
}

/** A weighted entry of a rule: weight 0 is never chosen. */
export interface Weighted {
  weight: number;
}

/**
 * The entry `random` (in [0, 1)) falls on, each owning a share of [0, 1) proportional to its weight,
 * in list order; undefined when every weight is 0 (or there is no entry).
 */
export function pickWeighted<T extends Weighted>(entries: readonly T[], random: number): T | undefined {
  let total = 0;
  for (const e of entries) total += e.weight;
  if (total <= 0) return undefined;
  const point = random * total;
  let upTo = 0;
  for (const e of entries) {
    upTo += e.weight;
    if (point < upTo) return e;
  }
  // Only reached if random() broke its contract and returned 1 or more: take the last weighted entry.
  for (let i = entries.length - 1; i >= 0; i--) if (entries[i]!.weight > 0) return entries[i];
  return undefined;
}
