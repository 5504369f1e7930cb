// Which service ports a route attaches to. GAMMA's parent is a Service (a parentRef of kind Service);
// as Istio does in ambient mode, a ServiceEntry (group networking.istio.io, named by its metadata.name)
// is one too, standing for every host it holds. A parentRef with `port` attaches to that port only;
// `sectionName` names a port by its name. Parents of other kinds (a Gateway) are not the mesh's and
// are ignored here.

import type { ParentRef } from '../config/index.ts';
import { type AnyRoute, ISTIO_NETWORKING_GROUP, type MeshLookup, routeNamespace } from './shapes.ts';

export interface MeshParent {
  /** The parentRef as the route wrote it. */
  ref: ParentRef;
  kind: 'Service' | 'ServiceEntry';
  namespace: string;
  name: string;
}

/** `Service ns/name` or `ServiceEntry ns/name`, as status messages name a parent. */
export function parentLabel(parent: MeshParent): string {
  return `${parent.kind} ${parent.namespace}/${parent.name}`;
}

/**
 * The mesh kind a parentRef names, if any. Gateway API defaults a parentRef's group to
 * gateway.networking.k8s.io, where neither kind exists, so an omitted group is read as the kind's
 * own group (core for a Service) rather than dropping the route silently.
 */
function parentKind(ref: ParentRef): MeshParent['kind'] | undefined {
  const group = ref.group;
  if (ref.kind === 'Service' && (group === undefined || group === '' || group === 'core')) return 'Service';
  if (ref.kind === 'ServiceEntry' && (group === undefined || group === ISTIO_NETWORKING_GROUP))
    return 'ServiceEntry';
  return undefined;
}

/** The route's parentRefs that name a Service or a ServiceEntry, in the order written. */
export function meshParents(route: AnyRoute): MeshParent[] {
  const namespace = routeNamespace(route);
  const parents: MeshParent[] = [];
  for (const ref of route.spec.parentRefs ?? []) {
    const kind = parentKind(ref);
    if (kind !== undefined)
      parents.push({ ref, kind, namespace: ref.namespace ?? namespace, name: ref.name });
  }
  return parents;
}

/** The registry keys of the services a parent stands for: a Service's own, a ServiceEntry's hosts. */
function parentServiceKeys(parent: MeshParent, mesh: MeshLookup): readonly string[] {
  if (parent.kind === 'Service') return [`${parent.namespace}/${parent.name}`];
  return mesh.entryHosts(parent.namespace, parent.name);
}

/** The ports of one service (by registry key) a route attaches to. */
export interface AttachedService {
  service: string;
  ports: number[];
}

export type Attachment = { ok: true; services: AttachedService[] } | { ok: false; message: string };

function missing(parent: MeshParent): string {
  return parent.kind === 'Service'
    ? `parent ${parentLabel(parent)} does not exist`
    : `parent ${parentLabel(parent)} does not exist or holds no host (an older entry in its namespace may keep them)`;
}

/** The service ports `parent` stands for that the route attaches to, or why it attaches to none. */
export function attachedPorts(parent: MeshParent, mesh: MeshLookup): Attachment {
  const { port, sectionName } = parent.ref;
  let found = false;
  const services: AttachedService[] = [];
  for (const key of parentServiceKeys(parent, mesh)) {
    const service = mesh.services(key);
    if (service === undefined) continue;
    found = true;
    const ports = service.ports.filter(
      (p) => (port === undefined || p.port === port) && (sectionName === undefined || p.name === sectionName),
    );
    if (ports.length > 0) services.push({ service: key, ports: ports.map((p) => p.port) });
  }
  if (!found) return { ok: false, message: missing(parent) };
  if (services.length === 0) {
    const wanted =
      port === undefined && sectionName === undefined
        ? 'ports'
        : ['port', port, sectionName === undefined ? undefined : `named ${sectionName}`]
            .filter((w) => w !== undefined)
            .join(' ');
    return { ok: false, message: `parent ${parentLabel(parent)} has no ${wanted}` };
  }
  return { ok: true, services };
}
