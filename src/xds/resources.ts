// The shapes of the resources on the config stream, as proxies validate them. A proxy checks every
// resource it receives and NACKs a delta with a bad one, keeping its last good state. Unknown
// fields are dropped rather than refused, so a newer control plane can add fields to older proxies.

import { isIP } from 'node:net';
import { z } from 'zod';

// Whatever the configuration accepts, the proxies accept: an address they could not take would
// NACK the whole type on every proxy and freeze every later change behind it.
const ip = z.string().refine((v) => isIP(v) !== 0, 'an IP address');
const port = z.number().int().min(1).max(65535);
const mtlsMode = z.enum(['STRICT', 'PERMISSIVE']);

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
  isWaypoint: z.boolean().default(false),
  waypoint: z
    .object({ name: z.string(), namespace: z.string(), declared: z.boolean(), for: z.string() })
    .optional(),
  services: z.array(z.string()),
  authorizationPolicies: z.array(z.object({ policy: z.string(), scope: z.string(), enforcedBy: z.string() })),
  peerAuthentication: z.object({ mode: mtlsMode, portModes: z.record(z.string(), mtlsMode).default({}) }),
});

export const serviceResource = z.object({
  key: z.string().min(1),
  name: z.string().min(1),
  namespace: z.string().min(1),
  hostname: z.string(),
  vips: z.array(ip),
  ports: z.array(
    z.object({
      name: z.string().optional(),
      port,
      targetPort: z.union([port, z.string()]),
      protocol: z.string().default('TCP'),
    }),
  ),
  endpoints: z.array(
    z.object({
      workload: z.string(),
      name: z.string(),
      address: ip,
      node: z.string().optional(),
      enrolled: z.boolean(),
      ports: z.record(z.string(), port),
    }),
  ),
  waypoint: z
    .object({ name: z.string(), namespace: z.string(), declared: z.boolean(), for: z.string() })
    .optional(),
});

const stringList = z.array(z.string()).optional();
const l4Source = z.object({
  principals: stringList,
  notPrincipals: stringList,
  namespaces: stringList,
  notNamespaces: stringList,
  serviceAccounts: stringList,
  notServiceAccounts: stringList,
  ipBlocks: stringList,
  notIpBlocks: stringList,
});

export const authorizationResource = z.object({
  name: z.string().min(1),
  namespace: z.string().min(1),
  scope: z.enum(['global', 'namespace', 'workload']),
  action: z.enum(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']),
  dryRun: z.boolean().default(false),
  rules: z.array(
    z.object({
      from: z.array(l4Source).optional(),
      to: z
        .array(z.object({ ports: z.array(port).optional(), notPorts: z.array(port).optional() }))
        .optional(),
      when: z
        .array(
          z.object({
            key: z.enum([
              'source.ip',
              'source.namespace',
              'source.principal',
              'destination.ip',
              'destination.port',
            ]),
            values: stringList,
            notValues: stringList,
          }),
        )
        .optional(),
    }),
  ),
});

/** Most revoked certificates one bundle carries (the CA keeps at most 4,096 live ones per revoked node). */
export const MAX_REVOKED_CERTIFICATES = 200_000;

export const trustBundleResource = z.object({
  pem: z.string().includes('BEGIN CERTIFICATE'),
  // Certificates that chain to `pem` but are refused (their node was revoked), until they expire.
  revoked: z
    .array(
      z.object({
        issuer: z.string().min(1).max(4096),
        serial: z.string().regex(/^[0-9A-Fa-f]{1,40}$/, 'a hexadecimal serial number'),
        notAfter: z.string(),
      }),
    )
    .max(MAX_REVOKED_CERTIFICATES)
    .default([]),
});

export type WorkloadResource = z.infer<typeof workloadResource>;
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
