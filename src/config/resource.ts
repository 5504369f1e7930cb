// The Resource union (one typed shape per kind) and the key that names a resource in the store:
// `kind/namespace/name`, or `kind/name` for cluster-scoped kinds (Namespace, MeshConfig).

import type { NamespaceResource, ServiceResource } from './kinds/core.ts';
import type { HTTPFaultResource } from './kinds/fault.ts';
import type { GatewayResource } from './kinds/gateway.ts';
import type { MeshConfigResource } from './kinds/mesh-config.ts';
import type { RateLimitPolicyResource } from './kinds/ratelimit.ts';
import type { RequestAuthenticationResource } from './kinds/request-authentication.ts';
import type { GRPCRouteResource, HTTPRouteResource } from './kinds/routes.ts';
import type { AuthorizationPolicyResource, PeerAuthenticationResource } from './kinds/security.ts';
import type { ServiceEntryResource } from './kinds/service-entry.ts';
import type { TelemetryResource } from './kinds/telemetry.ts';
import type { DestinationRuleResource } from './kinds/traffic.ts';
import type { WorkloadEntryResource } from './kinds/workload-entry.ts';

export type Resource =
  | NamespaceResource
  | ServiceResource
  | WorkloadEntryResource
  | ServiceEntryResource
  | PeerAuthenticationResource
  | AuthorizationPolicyResource
  | RequestAuthenticationResource
  | GatewayResource
  | HTTPRouteResource
  | GRPCRouteResource
  | DestinationRuleResource
  | RateLimitPolicyResource
  | HTTPFaultResource
  | TelemetryResource
  | MeshConfigResource;

export type ResourceKind = Resource['kind'];

/** The resource of one kind, e.g. `ResourceOf<'Service'>`. */
export type ResourceOf<K extends ResourceKind> = Extract<Resource, { kind: K }>;

/** The namespace a resource lives in; undefined for cluster-scoped kinds. */
export function resourceNamespace(resource: Resource): string | undefined {
  return 'namespace' in resource.metadata ? resource.metadata.namespace : undefined;
}

/** `kind/namespace/name` (or `kind/name` for a cluster-scoped kind). */
export function resourceKey(resource: Resource): string {
  const ns = resourceNamespace(resource);
  return ns === undefined
    ? `${resource.kind}/${resource.metadata.name}`
    : `${resource.kind}/${ns}/${resource.metadata.name}`;
}

/** `namespace/name`, or `name` for a cluster-scoped kind: how errors and the CLI name a resource. */
export function resourceName(resource: Resource): string {
  const ns = resourceNamespace(resource);
  return ns === undefined ? resource.metadata.name : `${ns}/${resource.metadata.name}`;
}

/** Narrow a snapshot to one kind. */
export function ofKind<K extends ResourceKind>(resources: readonly Resource[], kind: K): ResourceOf<K>[] {
  return resources.filter((r): r is ResourceOf<K> => r.kind === kind);
}
