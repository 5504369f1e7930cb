// Services: hostname, ports, and endpoints — the workloads in the same namespace whose labels carry
// the selector, each with every service port resolved to the workload port it reaches.

import type { ServiceResource } from '../../config/index.ts';
import type { Endpoint, RegistryService, RegistryServicePort, WaypointBinding } from './types.ts';
import type { VipAssignment } from './vips.ts';
import type { BaseWorkload } from './workloads.ts';
import { selects } from './workloads.ts';

export function servicePorts(svc: ServiceResource): RegistryServicePort[] {
  return (svc.spec.ports ?? []).map((p) => ({
    name: p.name,
    port: p.port,
    targetPort: p.targetPort ?? p.port,
    protocol: p.protocol ?? 'TCP',
    appProtocol: p.appProtocol,
  }));
}

/**
 * The endpoint a workload gives a service, or undefined when it gives none: not selected, no
 * address, or (for a service with ports) no port it can serve. A named targetPort the workload does
 * not declare leaves that port out, as Kubernetes does.
 */
/** A workload as an endpoint of a Service or ServiceEntry: where it is and how it is in the mesh. */
export function workloadEndpoint(w: BaseWorkload, address: string, ports: Record<string, number>): Endpoint {
  return {
    workload: w.uid,
    name: w.name,
    address,
    node: w.node,
    enrolled: w.enrolled,
    sidecar: w.sidecar,
    ports,
  };
}

function endpointOf(ports: readonly RegistryServicePort[], w: BaseWorkload): Endpoint | undefined {
  const address = w.addresses[0];
  if (address === undefined) return undefined;
  const resolved: Record<string, number> = {};
  for (const p of ports) {
    const target = typeof p.targetPort === 'number' ? p.targetPort : w.ports[p.targetPort];
    if (target !== undefined) resolved[String(p.port)] = target;
  }
  if (ports.length > 0 && Object.keys(resolved).length === 0) return undefined;
  return workloadEndpoint(w, address, resolved);
}

/**
 * Workloads by (namespace, label=value), built once per derivation, so each Service looks only at the
 * workloads carrying its rarest selector label instead of scanning them all (services × workloads).
 */
export type WorkloadIndex = (
  namespace: string,
  selector: Record<string, string> | undefined,
) => readonly BaseWorkload[];

export function indexWorkloads(workloads: readonly BaseWorkload[]): WorkloadIndex {
  const byLabel = new Map<string, BaseWorkload[]>();
  for (const w of workloads) {
    for (const [k, v] of Object.entries(w.labels)) {
      const key = `${w.namespace}\u0000${k}=${v}`;
      const list = byLabel.get(key);
      if (list) list.push(w);
      else byLabel.set(key, [w]);
    }
  }
  return (namespace, selector) => {
    let best: readonly BaseWorkload[] | undefined;
    for (const [k, v] of Object.entries(selector ?? {})) {
      const list = byLabel.get(`${namespace}\u0000${k}=${v}`) ?? [];
      if (!best || list.length < best.length) best = list;
    }
    return best ?? [];
  };
}

export function buildService(
  key: string,
  svc: ServiceResource,
  vip: VipAssignment,
  candidates: WorkloadIndex,
  waypoint: WaypointBinding | undefined,
): RegistryService {
  const namespace = svc.metadata.namespace ?? 'default';
  const ports = servicePorts(svc);
  const endpoints: Endpoint[] = [];
  if (svc.spec.type !== 'ExternalName') {
    for (const w of candidates(namespace, svc.spec.selector)) {
      if (w.namespace !== namespace || !selects(svc.spec.selector, w.labels)) continue;
      const ep = endpointOf(ports, w);
      if (ep) endpoints.push(ep);
    }
  }
  return {
    key,
    name: svc.metadata.name,
    namespace,
    hostname: `${svc.metadata.name}.${namespace}.svc.cluster.local`,
    vips: vip.vips,
    vipSource: vip.source,
    ports,
    selector: svc.spec.selector,
    endpoints,
    waypoint,
    labels: { ...svc.metadata.labels },
  };
}
