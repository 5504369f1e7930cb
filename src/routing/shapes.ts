// The parts of a validated HTTPRoute or GRPCRoute the route engine reads, named once so every file
// speaks of a Rule, a Filter or a BackendRefSpec rather than spelling out the config types.

import type { GRPCRouteResource, HTTPRouteResource } from '../config/index.ts';

export type AnyRoute = HTTPRouteResource | GRPCRouteResource;

/** Istio's API group, of the ServiceEntry kind and of the `Hostname` backend kind Istio adds. */
export const ISTIO_NETWORKING_GROUP = 'networking.istio.io';
export type HttpRule = NonNullable<HTTPRouteResource['spec']['rules']>[number];
export type GrpcRule = NonNullable<GRPCRouteResource['spec']['rules']>[number];
export type HttpMatchSpec = NonNullable<HttpRule['matches']>[number];
export type GrpcMatchSpec = NonNullable<GrpcRule['matches']>[number];
export type HeaderMatchSpec = NonNullable<HttpMatchSpec['headers']>[number];
export type QueryMatchSpec = NonNullable<HttpMatchSpec['queryParams']>[number];
/** An HTTPRoute filter; a GRPCRoute filter is the same shape with fewer types. */
export type Filter = NonNullable<HttpRule['filters']>[number];
export type BackendRefSpec = NonNullable<HttpRule['backendRefs']>[number];
export type RedirectSpec = NonNullable<Filter['requestRedirect']>;
export type RewriteSpec = NonNullable<Filter['urlRewrite']>;
export type PathModifierSpec = NonNullable<RedirectSpec['path']>;
export type MirrorSpec = NonNullable<Filter['requestMirror']>;
export type TimeoutsSpec = NonNullable<HttpRule['timeouts']>;
export type RetrySpec = NonNullable<HttpRule['retry']>;

/**
 * What the route engine needs to know of a service: its ports. `key` is the registry's: `namespace/name`
 * for a Service, `ServiceEntry/<namespace>/<host>` for one host of a ServiceEntry.
 */
export type ServiceLookup = (key: string) => { ports: { port: number; name?: string }[] } | undefined;

/**
 * The registry keys of the hosts a ServiceEntry holds, by the entry's namespace and name: none when it
 * does not exist (or an older entry in its namespace keeps each of its hosts).
 */
export type EntryHostsLookup = (namespace: string, name: string) => readonly string[];

/** The registry as the route engine reads it. */
export interface MeshLookup {
  services: ServiceLookup;
  entryHosts: EntryHostsLookup;
}

const NO_ENTRIES: EntryHostsLookup = () => [];

/** A caller's lookups as a MeshLookup: without `entryHosts`, no ServiceEntry is known. */
export function meshLookup(from: { services: ServiceLookup; entryHosts?: EntryHostsLookup }): MeshLookup {
  return { services: from.services, entryHosts: from.entryHosts ?? NO_ENTRIES };
}

/** A route's namespace: `metadata.namespace`, or `default` as Kubernetes defaults it. */
export function routeNamespace(route: AnyRoute): string {
  return route.metadata.namespace ?? 'default';
}

/** `namespace/name`, the key routes are named by in decisions, status and precedence. */
export function routeKey(route: AnyRoute): string {
  return `${routeNamespace(route)}/${route.metadata.name}`;
}
