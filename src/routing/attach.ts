// Which Service ports a route attaches to (GAMMA: a parentRef of kind Service). A parentRef with
// `port` attaches to that service port only; `sectionName` on a Service names a port by its name.
// Parents of other kinds (a Gateway) are not the mesh's and are ignored here.

import type { ParentRef } from '../config/index.ts';
import { type AnyRoute, routeNamespace, type ServiceLookup } from './shapes.ts';

export interface ServiceParent {
  /** The parentRef as the route wrote it. */
  ref: ParentRef;
  /** `namespace/name` of the Service. */
  service: string;
}

/**
 * True for a parentRef naming a core Service. Gateway API defaults a parentRef's group to
 * gateway.networking.k8s.io, where no kind Service exists, so an omitted group is read as the core
 * group rather than dropping the route silently.
 */
function isServiceParent(ref: ParentRef): boolean {
  return ref.kind === 'Service' && (ref.group === undefined || ref.group === '' || ref.group === 'core');
}

export function serviceParents(route: AnyRoute): ServiceParent[] {
  const namespace = routeNamespace(route);
  return (route.spec.parentRefs ?? [])
    .filter(isServiceParent)
    .map((ref) => ({ ref, service: `${ref.namespace ?? namespace}/${ref.name}` }));
}

export type Attachment = { ok: true; ports: number[] } | { ok: false; message: string };

/** The ports of `parent`'s Service the route attaches to, or why it attaches to none. */
export function attachedPorts(parent: ServiceParent, services: ServiceLookup): Attachment {
  const service = services(parent.service);
  if (service === undefined) return { ok: false, message: `parent Service ${parent.service} does not exist` };
  const { port, sectionName } = parent.ref;
  const ports = service.ports.filter(
    (p) => (port === undefined || p.port === port) && (sectionName === undefined || p.name === sectionName),
  );
  if (ports.length === 0) {
    const wanted = [
      port === undefined ? '' : `port ${port}`,
      sectionName === undefined ? '' : `a port named ${sectionName}`,
    ]
      .filter(Boolean)
      .join(' and ');
    return { ok: false, message: `parent Service ${parent.service} has no ${wanted || 'ports'}` };
  }
  return { ok: true, ports: ports.map((p) => p.port) };
}
