// The parts of a validated HTTPRoute or GRPCRoute the route engine reads, named once so every file
// speaks of a Rule, a Filter or a BackendRefSpec rather than spelling out the config types.

import type { GRPCRouteResource, HTTPRouteResource } from '../config/index.ts';

export type AnyRoute = HTTPRouteResource | GRPCRouteResource;
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

/** What the route engine needs to know of a Service: its ports. `key` is `namespace/name`. */
export type ServiceLookup = (key: string) => { ports: { port: number; name?: string }[] } | undefined;

/** A route's namespace: `metadata.namespace`, or `default` as Kubernetes defaults it. */
export function routeNamespace(route: AnyRoute): string {
  return route.metadata.namespace ?? 'default';
}

/** `namespace/name`, the key routes are named by in decisions, status and precedence. */
export function routeKey(route: AnyRoute): string {
  return `${routeNamespace(route)}/${route.metadata.name}`;
}
