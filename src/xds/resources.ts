// The shapes of the resources on the config stream, as proxies validate them. A proxy checks every
// resource it receives and NACKs a delta with a bad one, keeping its last good state. Unknown
// fields are dropped rather than refused, so a newer control plane can add fields to older proxies.
// These schemas are the one definition of each resource: the control plane's registry types extend
// the inferred types (so its objects must satisfy them), and the L4 authorization and PeerAuthentication
// parts are policy's own schemas, which evaluate them.

import { isIP } from 'node:net';
import { z } from 'zod';
import {
  authorizationPolicySchema,
  destinationRuleSchema,
  grpcRouteSchema,
  httpFaultSchema,
  httpRouteSchema,
  meshConfigSchema,
  rateLimitPolicySchema,
  requestAuthenticationSchema,
  telemetrySchema,
} from '../config/index.ts';
import { l4Authorization, peerAuthSettings } from '../policy/index.ts';

// Whatever the configuration accepts, the proxies accept: an address they could not take would
// NACK the whole type on every proxy and freeze every later change behind it.
const ip = z.string().refine((v) => isIP(v) !== 0, 'an IP address');
const port = z.number().int().min(1).max(65535);

/** The waypoint a workload's or service's traffic goes through. */
export const waypointRef = z.object({
  name: z.string(),
  namespace: z.string(),
  declared: z.boolean(),
  for: z.string(),
});

/** An AuthorizationPolicy bound to a workload, and who enforces it. */
export const policyRef = z.object({ policy: z.string(), scope: z.string(), enforcedBy: z.string() });

export const workloadResource = z.object({
  uid: z.string().min(1),
  kind: z.string(),
  name: z.string().min(1),
  namespace: z.string().min(1),
  serviceAccount: z.string().min(1),
  trustDomain: z.string().min(1),
  identity: z.string().startsWith('spiffe://'),
  node: z.string().optional(),
  addresses: z.array(ip),
  labels: z.record(z.string(), z.string()),
  ports: z.record(z.string(), port).default({}),
  enrolled: z.boolean(),
  /**
   * An enrolled workload whose own proxy, in its pod, captures and carries its traffic (Istio's sidecar
   * mode): the node's ztunnel neither captures it nor answers for it, and peers reach it over HBONE at
   * its own address. Absent from an older control plane: false.
   */
  sidecar: z.boolean().default(false),
  isWaypoint: z.boolean().default(false),
  waypoint: waypointRef.optional(),
  services: z.array(z.string()),
  authorizationPolicies: z.array(policyRef),
  peerAuthentication: peerAuthSettings,
});

export const servicePort = z.object({
  name: z.string().optional(),
  port,
  targetPort: z.union([port, z.string()]),
  protocol: z.string().default('TCP'),
  /** Kubernetes' `appProtocol` (`http`, `http2`, `grpc`, `kubernetes.io/h2c`, `tcp`...): how a waypoint speaks to it. */
  appProtocol: z.string().optional(),
});

/** One workload behind a service; `ports` maps each service port to the workload port it reaches. */
export const serviceEndpoint = z.object({
  workload: z.string(),
  name: z.string(),
  address: ip,
  node: z.string().optional(),
  enrolled: z.boolean(),
  /** Its own sidecar carries its traffic (see workloadResource.sidecar). */
  sidecar: z.boolean().default(false),
  ports: z.record(z.string(), port),
});

/** A ServiceEntry endpoint found by DNS (resolution DNS): the proxy resolves `hostname` when it connects. */
export const dnsEndpoint = z.object({
  hostname: z.string().min(1).max(253),
  ports: z.record(z.string(), port),
});

/** How a ServiceEntry host's key begins: `ServiceEntry/<namespace>/<host>` (a Service's is `namespace/name`). */
export const SERVICE_ENTRY_KEY_PREFIX = 'ServiceEntry/';

/**
 * A service key's namespace and name as Istio labels them: a Service's own; for a ServiceEntry host, the
 * entry's namespace and the host (`destination_service_name` is the host for a ServiceEntry).
 */
export function serviceKeyParts(key: string): { namespace: string; name: string; entry: boolean } {
  if (key.startsWith(SERVICE_ENTRY_KEY_PREFIX)) {
    const rest = key.slice(SERVICE_ENTRY_KEY_PREFIX.length);
    const slash = rest.indexOf('/');
    return { namespace: rest.slice(0, slash), name: rest.slice(slash + 1), entry: true };
  }
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1), entry: false };
}

export const serviceResource = z.object({
  key: z.string().min(1),
  name: z.string().min(1),
  namespace: z.string().min(1),
  hostname: z.string(),
  vips: z.array(ip),
  ports: z.array(servicePort),
  endpoints: z.array(serviceEndpoint),
  waypoint: waypointRef.optional(),
  // `ServiceEntry` for a ServiceEntry host (absent for a Service). Strings, not enums: a value a newer
  // control plane adds must not NACK every service; a proxy treats a resolution it does not know as STATIC.
  kind: z.string().optional(),
  /** `MESH_EXTERNAL` or `MESH_INTERNAL`. */
  location: z.string().optional(),
  /** `NONE` (to the original destination), `STATIC` (`endpoints`), `DNS` or `DNS_ROUND_ROBIN` (`dnsEndpoints`). */
  resolution: z.string().optional(),
  dnsEndpoints: z.array(dnsEndpoint).optional(),
});

/** The L4 form of an AuthorizationPolicy: policy's schema, which its evaluation reads. */
export const authorizationResource = l4Authorization;

/** Most revoked certificates one bundle carries (the CA keeps at most 4,096 live ones per revoked node). */
export const MAX_REVOKED_CERTIFICATES = 200_000;

/** One revoked certificate as it travels and is kept (the trust bundle, the CA's records, an export). */
export const revokedCertificateEntry = z.object({
  issuer: z.string().min(1).max(4096),
  serial: z.string().regex(/^[0-9A-Fa-f]{1,40}$/, 'a hexadecimal serial number'),
  notAfter: z.string(),
});

export const trustBundleResource = z.object({
  pem: z.string().includes('BEGIN CERTIFICATE'),
  // Certificates that chain to `pem` but are refused (their node was revoked), until they expire.
  revoked: z.array(revokedCertificateEntry).max(MAX_REVOKED_CERTIFICATES).default([]),
});

/** Routes travel as applied (validated again by the waypoint): the configuration's schema is their one definition. */
export const httpRouteResource = httpRouteSchema;
export const grpcRouteResource = grpcRouteSchema;
export const destinationRuleResource = destinationRuleSchema;
export const httpFaultResource = httpFaultSchema;
/** AuthorizationPolicies with targetRefs travel as applied too: the waypoint compiles Istio's whole rule language. */
export const waypointAuthorizationResource = authorizationPolicySchema;
export const meshConfigResource = meshConfigSchema;
export const requestAuthenticationResource = requestAuthenticationSchema;
export const rateLimitPolicyResource = rateLimitPolicySchema;
export const telemetryResource = telemetrySchema;

/** The control plane's own mesh-wide settings (flags, not resources): what waypoints resolve policy by. */
export const meshSettingsResource = z.object({
  rootNamespace: z.string().min(1),
  trustDomain: z.string().min(1),
});
export type MeshSettingsResource = z.infer<typeof meshSettingsResource>;

export type WaypointRef = z.infer<typeof waypointRef>;
export type PolicyRef = z.infer<typeof policyRef>;
export type WorkloadResource = z.infer<typeof workloadResource>;
export type ServicePort = z.infer<typeof servicePort>;
export type ServiceEndpoint = z.infer<typeof serviceEndpoint>;
export type DnsEndpoint = z.infer<typeof dnsEndpoint>;
export type ServiceResource = z.infer<typeof serviceResource>;
export type AuthorizationResource = z.infer<typeof authorizationResource>;
export type TrustBundleResource = z.infer<typeof trustBundleResource>;

/** Parses `value` as `schema`, or throws an Error naming the resource and the first problems. */
export function parseResource<T>(schema: z.ZodType<T>, type: string, name: string, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const problems = r.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
  throw new Error(`${type} "${name}" is invalid: ${problems}`);
}

/**
 * A copy of `current` with a delta applied; every upsert is parsed before anything is copied, so a bad
 * one throws (the delta is NACKed) and the proxy keeps its last good state.
 */
export function mergeDelta<T>(
  current: ReadonlyMap<string, T>,
  delta: { upserts: ReadonlyArray<{ name: string; value: unknown }>; removed: readonly string[] },
  parse: (name: string, v: unknown) => T,
): Map<string, T> {
  const parsed = delta.upserts.map((u) => [u.name, parse(u.name, u.value)] as const);
  const next = new Map(current);
  for (const [name, value] of parsed) next.set(name, value);
  for (const name of delta.removed) next.delete(name);
  return next;
}

/** How a workload is in the mesh: `ambient` (its node's ztunnel), `sidecar` (its own proxy) or `none`. */
export function meshMode(w: { enrolled: boolean; sidecar?: boolean }): 'ambient' | 'sidecar' | 'none' {
  return !w.enrolled ? 'none' : w.sidecar ? 'sidecar' : 'ambient';
}
