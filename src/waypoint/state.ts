// The waypoint's view of the mesh, fed by the config stream: workloads (the endpoints it sends to, and
// who its clients are), services (by VIP and port: what a tunnel was for), the trust bundle, and the
// routes. One writer (`apply`) validates a whole delta before changing anything; a bad resource NACKs
// it and the last good state keeps serving.

import type {
  DestinationRuleResource,
  GRPCRouteResource,
  HTTPFaultResource,
  HTTPRouteResource,
} from '../config/index.ts';
import { RevocationList } from '../identity/index.ts';
import {
  type Delta,
  destinationRuleResource,
  grpcRouteResource,
  httpFaultResource,
  httpRouteResource,
  mergeDelta,
  parseResource,
  type ServiceResource,
  serviceResource,
  TYPE,
  type TypeUrl,
  trustBundleResource,
  type WorkloadResource,
  workloadResource,
} from '../xds/index.ts';

export interface WaypointSnapshot {
  readonly workloads: ReadonlyMap<string, WorkloadResource>;
  readonly services: ReadonlyMap<string, ServiceResource>;
  readonly httpRoutes: ReadonlyMap<string, HTTPRouteResource>;
  readonly grpcRoutes: ReadonlyMap<string, GRPCRouteResource>;
  /** DestinationRules by `namespace/name` (traffic policy for the backends). */
  readonly destinationRules: ReadonlyMap<string, DestinationRuleResource>;
  /** HTTPFaults by `namespace/name` (what routes' ExtensionRef filters inject). */
  readonly httpFaults: ReadonlyMap<string, HTTPFaultResource>;
  readonly trustBundlePem: string | undefined;
  readonly revoked: RevocationList;
  readonly workloadByAddress: ReadonlyMap<string, WorkloadResource>;
  readonly workloadByIdentity: ReadonlyMap<string, WorkloadResource>;
  /** `vip:port` → the service and its port entry. */
  readonly serviceByVipPort: ReadonlyMap<
    string,
    { service: ServiceResource; port: ServiceResource['ports'][number] }
  >;
  readonly version: number;
}

export const WAYPOINT_TYPES: readonly TypeUrl[] = [
  TYPE.trustBundle,
  TYPE.workload,
  TYPE.service,
  TYPE.httpRoute,
  TYPE.grpcRoute,
  TYPE.destinationRule,
  TYPE.httpFault,
];

type Maps = {
  -readonly [K in
    | 'workloads'
    | 'services'
    | 'httpRoutes'
    | 'grpcRoutes'
    | 'destinationRules'
    | 'httpFaults']: WaypointSnapshot[K];
};

function index(
  maps: Maps,
  trustBundlePem: string | undefined,
  revoked: RevocationList,
  version: number,
): WaypointSnapshot {
  const workloadByAddress = new Map<string, WorkloadResource>();
  const workloadByIdentity = new Map<string, WorkloadResource>();
  for (const w of maps.workloads.values()) {
    for (const a of w.addresses) if (!workloadByAddress.has(a)) workloadByAddress.set(a, w);
    if (!workloadByIdentity.has(w.identity)) workloadByIdentity.set(w.identity, w);
  }
  const serviceByVipPort = new Map<
    string,
    { service: ServiceResource; port: ServiceResource['ports'][number] }
  >();
  for (const s of maps.services.values()) {
    for (const vip of s.vips)
      for (const p of s.ports) serviceByVipPort.set(`${vip}:${p.port}`, { service: s, port: p });
  }
  return {
    ...maps,
    trustBundlePem,
    revoked,
    workloadByAddress,
    workloadByIdentity,
    serviceByVipPort,
    version,
  };
}

export class WaypointState {
  private current: WaypointSnapshot = index(
    {
      workloads: new Map(),
      services: new Map(),
      httpRoutes: new Map(),
      grpcRoutes: new Map(),
      destinationRules: new Map(),
      httpFaults: new Map(),
    },
    undefined,
    RevocationList.EMPTY,
    0,
  );
  private readonly listeners = new Set<(s: WaypointSnapshot) => void>();
  onListenerError: ((err: unknown) => void) | undefined;

  get snapshot(): WaypointSnapshot {
    return this.current;
  }

  onChange(fn: (s: WaypointSnapshot) => void): void {
    this.listeners.add(fn);
  }

  /** The one mutator: throws (NACK) without changing anything when a resource is invalid. */
  apply(type: TypeUrl, delta: Delta): void {
    const s = this.current;
    const maps: Maps = {
      workloads: s.workloads,
      services: s.services,
      httpRoutes: s.httpRoutes,
      grpcRoutes: s.grpcRoutes,
      destinationRules: s.destinationRules,
      httpFaults: s.httpFaults,
    };
    let { trustBundlePem, revoked } = s;
    switch (type) {
      case TYPE.workload:
        maps.workloads = mergeDelta(s.workloads, delta, (n, v) =>
          parseResource(workloadResource, 'workload', n, v),
        );
        break;
      case TYPE.service:
        maps.services = mergeDelta(s.services, delta, (n, v) =>
          parseResource(serviceResource, 'service', n, v),
        );
        break;
      case TYPE.httpRoute:
        maps.httpRoutes = mergeDelta(s.httpRoutes, delta, (n, v) =>
          parseResource(httpRouteResource, 'HTTPRoute', n, v),
        );
        break;
      case TYPE.grpcRoute:
        maps.grpcRoutes = mergeDelta(s.grpcRoutes, delta, (n, v) =>
          parseResource(grpcRouteResource, 'GRPCRoute', n, v),
        );
        break;
      case TYPE.destinationRule:
        maps.destinationRules = mergeDelta(s.destinationRules, delta, (n, v) =>
          parseResource(destinationRuleResource, 'DestinationRule', n, v),
        );
        break;
      case TYPE.httpFault:
        maps.httpFaults = mergeDelta(s.httpFaults, delta, (n, v) =>
          parseResource(httpFaultResource, 'HTTPFault', n, v),
        );
        break;
      case TYPE.trustBundle: {
        const bundle = delta.upserts.find((u) => u.name === 'bundle');
        if (bundle) {
          const parsed = parseResource(trustBundleResource, 'trust bundle', 'bundle', bundle.value);
          trustBundlePem = parsed.pem;
          revoked = new RevocationList(parsed.revoked);
        }
        break;
      }
      default:
        throw new Error(`unknown resource type ${type}`);
    }
    this.current = index(maps, trustBundlePem, revoked, s.version + 1);
    for (const fn of this.listeners) {
      try {
        fn(this.current);
      } catch (err) {
        this.onListenerError?.(err);
      }
    }
  }

  /** What the waypoint holds, as JSON (its admin's config dump). */
  dump(): Record<string, unknown> {
    const s = this.current;
    return {
      version: s.version,
      workloads: [...s.workloads.values()],
      services: [...s.services.values()],
      httpRoutes: [...s.httpRoutes.values()],
      grpcRoutes: [...s.grpcRoutes.values()],
      destinationRules: [...s.destinationRules.values()],
      httpFaults: [...s.httpFaults.values()],
    };
  }
}
