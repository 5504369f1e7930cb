// The catalogue of kinds Ambit accepts: each kind's API group, version, plural (for Kubernetes-shaped
// admin paths), scope and schema. One table, so the store, the admin API and the CLI agree.

import type { z } from 'zod';
import { namespaceSchema, serviceSchema } from './kinds/core.ts';
import { httpFaultSchema } from './kinds/fault.ts';
import { gatewaySchema } from './kinds/gateway.ts';
import { meshConfigSchema } from './kinds/mesh-config.ts';
import { rateLimitPolicySchema } from './kinds/ratelimit.ts';
import { requestAuthenticationSchema } from './kinds/request-authentication.ts';
import { grpcRouteSchema, httpRouteSchema } from './kinds/routes.ts';
import { authorizationPolicySchema, peerAuthenticationSchema } from './kinds/security.ts';
import { serviceEntrySchema } from './kinds/service-entry.ts';
import { telemetrySchema } from './kinds/telemetry.ts';
import { destinationRuleSchema } from './kinds/traffic.ts';
import { workloadEntrySchema } from './kinds/workload-entry.ts';

export interface KindInfo {
  kind: string;
  /** API group; '' for the core group (`/api/v1/...`). */
  group: string;
  version: string;
  /** `group/version`, or just `version` for the core group. */
  apiVersion: string;
  /** Older apiVersions accepted on input and stored as `apiVersion` (users' existing manifests). */
  acceptedApiVersions: readonly string[];
  plural: string;
  /** Lower-case names the CLI accepts for the kind besides the plural (`ns`, `svc`, `ap`...). */
  shortNames: readonly string[];
  namespaced: boolean;
  schema: z.ZodType;
}

function kind(
  kindName: string,
  group: string,
  version: string,
  plural: string,
  shortNames: string[],
  namespaced: boolean,
  schema: z.ZodType,
  olderVersions: string[] = [],
): KindInfo {
  const apiVersion = group === '' ? version : `${group}/${version}`;
  return {
    kind: kindName,
    group,
    version,
    apiVersion,
    acceptedApiVersions: [apiVersion, ...olderVersions.map((v) => (group === '' ? v : `${group}/${v}`))],
    plural,
    shortNames,
    namespaced,
    schema,
  };
}

export const KINDS: readonly KindInfo[] = [
  kind('Namespace', '', 'v1', 'namespaces', ['ns', 'namespace'], false, namespaceSchema),
  kind('Service', '', 'v1', 'services', ['svc', 'service'], true, serviceSchema),
  kind(
    'WorkloadEntry',
    'networking.istio.io',
    'v1',
    'workloadentries',
    ['we', 'workloadentry'],
    true,
    workloadEntrySchema,
    ['v1beta1', 'v1alpha3'],
  ),
  kind(
    'ServiceEntry',
    'networking.istio.io',
    'v1',
    'serviceentries',
    ['se', 'serviceentry'],
    true,
    serviceEntrySchema,
    ['v1beta1', 'v1alpha3'],
  ),
  kind(
    'PeerAuthentication',
    'security.istio.io',
    'v1',
    'peerauthentications',
    ['pa', 'peerauthentication'],
    true,
    peerAuthenticationSchema,
    ['v1beta1'],
  ),
  kind(
    'AuthorizationPolicy',
    'security.istio.io',
    'v1',
    'authorizationpolicies',
    ['ap', 'authorizationpolicy'],
    true,
    authorizationPolicySchema,
    ['v1beta1'],
  ),
  kind(
    'RequestAuthentication',
    'security.istio.io',
    'v1',
    'requestauthentications',
    ['ra', 'requestauthentication'],
    true,
    requestAuthenticationSchema,
    ['v1beta1'],
  ),
  kind('Gateway', 'gateway.networking.k8s.io', 'v1', 'gateways', ['gtw', 'gateway'], true, gatewaySchema, [
    'v1beta1',
  ]),
  kind('HTTPRoute', 'gateway.networking.k8s.io', 'v1', 'httproutes', ['httproute'], true, httpRouteSchema, [
    'v1beta1',
  ]),
  kind('GRPCRoute', 'gateway.networking.k8s.io', 'v1', 'grpcroutes', ['grpcroute'], true, grpcRouteSchema),
  kind(
    'DestinationRule',
    'networking.istio.io',
    'v1',
    'destinationrules',
    ['dr', 'destinationrule'],
    true,
    destinationRuleSchema,
    ['v1beta1', 'v1alpha3'],
  ),
  kind(
    'RateLimitPolicy',
    'ambit.dev',
    'v1alpha1',
    'ratelimitpolicies',
    ['rlp', 'ratelimitpolicy'],
    true,
    rateLimitPolicySchema,
  ),
  kind('HTTPFault', 'ambit.dev', 'v1alpha1', 'httpfaults', ['hf', 'httpfault'], true, httpFaultSchema),
  kind('Telemetry', 'telemetry.istio.io', 'v1', 'telemetries', ['telemetry'], true, telemetrySchema, [
    'v1alpha1',
  ]),
  kind('MeshConfig', 'ambit.dev', 'v1alpha1', 'meshconfigs', ['meshconfig'], false, meshConfigSchema),
];

const byKind = new Map(KINDS.map((k) => [k.kind, k]));

/** The catalogue entry for a kind name as written in a manifest (`AuthorizationPolicy`). */
export function kindInfo(kindName: string): KindInfo | undefined {
  return byKind.get(kindName);
}

/** The kind for an admin API path's group and plural (`security.istio.io`, `authorizationpolicies`). */
export function kindByPlural(group: string, plural: string): KindInfo | undefined {
  return KINDS.find((k) => k.group === group && k.plural === plural);
}

/** The kind for a name typed on the command line: kind, plural or short name, any case. */
export function kindByCliName(name: string): KindInfo | undefined {
  const lower = name.toLowerCase();
  return KINDS.find(
    (k) => k.kind.toLowerCase() === lower || k.plural === lower || k.shortNames.includes(lower),
  );
}
