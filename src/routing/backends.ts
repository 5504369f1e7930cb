// Backend references: which ones Ambit can send to, why the others cannot be, and the weighted choice
// among a rule's backends. The same resolution feeds `decide` (an invalid backend's share of traffic
// gets a 500) and the route's ResolvedRefs condition, so the two never disagree.

import { SERVICE_ENTRY_KEY_PREFIX } from '../xds/index.ts';
import { type BackendRefSpec, ISTIO_NETWORKING_GROUP, type MeshLookup, type MirrorSpec } from './shapes.ts';
import type { BackendRef } from './types.ts';

/** Why a backendRef cannot be used, named by the ResolvedRefs reason Gateway API gives it. */
export type BackendProblem = 'InvalidKind' | 'RefNotPermitted' | 'BackendNotFound';

export type Resolved =
  | { ok: true; backend: BackendRef }
  | { ok: false; problem: BackendProblem; message: string };

type ObjectRef = Pick<BackendRefSpec, 'group' | 'kind' | 'name' | 'namespace' | 'port'>;

/**
 * The backend kinds Ambit sends to, as Istio's ambient mode: a core Service (kind `Service`, the
 * default, group '' or `core`) and Istio's `Hostname` (a ServiceEntry's host, by name), which exists
 * only in networking.istio.io, so an omitted group is read as that one. Istio has no ServiceEntry
 * backend kind (it reports it unsupported), and neither does Ambit.
 */
type BackendKind = 'Service' | 'Hostname';

function backendKind(group: string | undefined, kind: string | undefined): BackendKind | undefined {
  const k = kind ?? 'Service';
  if (k === 'Service') return group === undefined || group === '' || group === 'core' ? k : undefined;
  if (k === 'Hostname') return group === undefined || group === ISTIO_NETWORKING_GROUP ? k : undefined;
  return undefined;
}

const notFound = (message: string): Resolved => ({ ok: false, problem: 'BackendNotFound', message });

/** The registry key a backendRef of `kind` in `namespace` sends to. */
function backendKey(kind: BackendKind, ref: ObjectRef, namespace: string): { key: string; label: string } {
  if (kind === 'Service')
    return { key: `${namespace}/${ref.name}`, label: `Service ${namespace}/${ref.name}` };
  return {
    key: `${SERVICE_ENTRY_KEY_PREFIX}${namespace}/${ref.name}`,
    label: `Hostname ${ref.name} (a ServiceEntry host in ${namespace})`,
  };
}

/**
 * Resolves a backendRef (or a mirror's backendRef) written in `routeNamespace`. A reference into
 * another namespace needs a ReferenceGrant in Gateway API; Ambit has no ReferenceGrant, so such a
 * reference is never permitted (RefNotPermitted) and is treated as any other invalid backend.
 */
export function resolveBackend(ref: ObjectRef, routeNamespace: string, mesh: MeshLookup): Resolved {
  const namespace = ref.namespace ?? routeNamespace;
  const named = `${namespace}/${ref.name}`;
  const kind = backendKind(ref.group, ref.kind);
  if (kind === undefined) {
    const gk = ref.group ? `${ref.kind ?? 'Service'}.${ref.group}` : (ref.kind ?? 'Service');
    return {
      ok: false,
      problem: 'InvalidKind',
      message: `backendRef ${named} is a ${gk}: only core Services (group "", kind Service) and Istio's Hostname (group ${ISTIO_NETWORKING_GROUP}) are supported`,
    };
  }
  if (namespace !== routeNamespace) {
    return {
      ok: false,
      problem: 'RefNotPermitted',
      message: `backendRef ${named} is in another namespace: Ambit has no ReferenceGrant, so a route may only send to Services in its own namespace (${routeNamespace})`,
    };
  }
  const target = backendKey(kind, ref, namespace);
  const service = mesh.services(target.key);
  if (service === undefined) return notFound(`backendRef ${target.label} does not exist`);
  // Validation requires a port on every backendRef kind Ambit sends to; without one there is nothing to send to.
  if (ref.port === undefined || !service.ports.some((p) => p.port === ref.port)) {
    return notFound(`backendRef ${target.label} has no port ${ref.port ?? '(none given)'}`);
  }
  return { ok: true, backend: { service: target.key, port: ref.port } };
}

/** A mirror's backendRef, resolved the same way. */
export function resolveMirror(spec: MirrorSpec, routeNamespace: string, mesh: MeshLookup): Resolved {
  return resolveBackend(spec.backendRef, routeNamespace, mesh);
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
