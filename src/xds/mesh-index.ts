// What every proxy derives from the streamed workloads and services, and how each streamed type is
// parsed: one definition for the ztunnel and the waypoint, so the two read the mesh the same way.

import { RevocationList } from '../identity/index.ts';
import {
  type AuthorizationResource,
  authorizationResource,
  destinationRuleResource,
  grpcRouteResource,
  httpFaultResource,
  httpRouteResource,
  parseResource,
  type ServiceResource,
  serviceResource,
  trustBundleResource,
  type WorkloadResource,
  workloadResource,
} from './resources.ts';
import { TYPE } from './snapshot.ts';

/** One streamed resource validated (throws naming it: the delta is NACKed), by type. */
export const PARSE = {
  [TYPE.workload]: (name: string, v: unknown): WorkloadResource =>
    parseResource(workloadResource, 'workload', name, v),
  [TYPE.service]: (name: string, v: unknown): ServiceResource =>
    parseResource(serviceResource, 'service', name, v),
  [TYPE.authorization]: (name: string, v: unknown): AuthorizationResource =>
    parseResource(authorizationResource, 'authorization', name, v),
  [TYPE.httpRoute]: (name: string, v: unknown) => parseResource(httpRouteResource, 'HTTPRoute', name, v),
  [TYPE.grpcRoute]: (name: string, v: unknown) => parseResource(grpcRouteResource, 'GRPCRoute', name, v),
  [TYPE.destinationRule]: (name: string, v: unknown) =>
    parseResource(destinationRuleResource, 'DestinationRule', name, v),
  [TYPE.httpFault]: (name: string, v: unknown) => parseResource(httpFaultResource, 'HTTPFault', name, v),
} as const;

/** The trust bundle a delta brings (its one resource, `bundle`), or undefined when it brings none. */
export function bundleOf(delta: {
  upserts: ReadonlyArray<{ name: string; value: unknown }>;
}): { pem: string; revoked: RevocationList } | undefined {
  const bundle = delta.upserts.find((u) => u.name === 'bundle');
  if (!bundle) return undefined;
  const parsed = parseResource(trustBundleResource, 'trust bundle', 'bundle', bundle.value);
  return { pem: parsed.pem, revoked: new RevocationList(parsed.revoked) };
}

export type ServicePortEntry = { service: ServiceResource; port: ServiceResource['ports'][number] };

export interface MeshIndex {
  /** Address → workload (the first listed wins; the registry reports duplicates). */
  readonly workloadByAddress: ReadonlyMap<string, WorkloadResource>;
  /** SPIFFE ID → a workload running as it. */
  readonly workloadByIdentity: ReadonlyMap<string, WorkloadResource>;
  /** `vip:port` → service and the port entry. */
  readonly serviceByVipPort: ReadonlyMap<string, ServicePortEntry>;
  /** VIPs, to tell "a service port that does not exist" from "not a service". */
  readonly vips: ReadonlySet<string>;
  /**
   * VIPs that are also a workload's address, by VIP → service key. The workload wins: these VIPs are
   * left out of `vips` and `serviceByVipPort`, so a Service can never capture traffic to a workload.
   */
  readonly shadowedVips: ReadonlyMap<string, string>;
}

export function indexMesh(
  workloads: ReadonlyMap<string, WorkloadResource>,
  services: ReadonlyMap<string, ServiceResource>,
): MeshIndex {
  const workloadByAddress = new Map<string, WorkloadResource>();
  const workloadByIdentity = new Map<string, WorkloadResource>();
  for (const w of workloads.values()) {
    for (const a of w.addresses) if (!workloadByAddress.has(a)) workloadByAddress.set(a, w);
    if (!workloadByIdentity.has(w.identity)) workloadByIdentity.set(w.identity, w);
  }
  const serviceByVipPort = new Map<string, ServicePortEntry>();
  const vips = new Set<string>();
  const shadowedVips = new Map<string, string>();
  for (const s of services.values()) {
    for (const vip of s.vips) {
      if (workloadByAddress.has(vip)) {
        shadowedVips.set(vip, s.key);
        continue;
      }
      vips.add(vip);
      for (const p of s.ports) serviceByVipPort.set(`${vip}:${p.port}`, { service: s, port: p });
    }
  }
  return { workloadByAddress, workloadByIdentity, serviceByVipPort, vips, shadowedVips };
}
