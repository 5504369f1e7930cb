// MeshConfig (ambit.dev/v1alpha1, cluster-scoped, one object named `default`): the mesh-wide settings
// that Istio keeps in its `meshConfig` — extension providers (an external HTTP authorizer for CUSTOM
// AuthorizationPolicies, OpenTelemetry collectors for tracing) and the default tracing provider — in
// Istio's own field names, plus the Redis that global rate limits share, shaped after Envoy Gateway's
// `rateLimit` setting. Applied like any resource, so a change reaches every waypoint without a restart.

import { z } from 'zod';
import { dns1123Subdomain, duration, isDns1123Subdomain, isIpAddress, portNumber } from '../fields.ts';
import { clusterMetadata, envelope } from '../meta.ts';

/** The only name a MeshConfig may have, as Istio has one mesh configuration. */
export const MESH_CONFIG_NAME = 'default';

/** A host a proxy connects to: a Service hostname (`authz.foo.svc.cluster.local`), a DNS name or an IP address. */
const host = z
  .string()
  .min(1, 'is required')
  .refine(
    (s) => isIpAddress(s) || isDns1123Subdomain(s.replace(/^[^/]+\//, '')),
    'must be a hostname such as ext-authz.foo.svc.cluster.local (or namespace/hostname), or an IP address',
  );

const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name')
  .transform((s) => s.toLowerCase());

/** Istio's `envoyExtAuthzHttp`: the authorizer asked, over HTTP, about each request a CUSTOM policy matches. */
const extAuthzHttp = z
  .object({
    service: host,
    port: portNumber,
    timeout: duration.optional(),
    pathPrefix: z
      .string()
      .refine((s) => s.startsWith('/'), 'must start with "/"')
      .optional(),
    failOpen: z.boolean().optional(),
    statusOnError: z
      .string()
      .regex(/^[1-5]\d\d$/, 'must be an HTTP status code such as "403"')
      .optional(),
    includeRequestHeadersInCheck: z.array(headerName).optional(),
    includeAdditionalHeadersInCheck: z.record(headerName, z.string()).optional(),
    headersToUpstreamOnAllow: z.array(headerName).optional(),
    headersToDownstreamOnDeny: z.array(headerName).optional(),
    headersToDownstreamOnAllow: z.array(headerName).optional(),
  })
  .strict();

/** Istio's `opentelemetry` provider: OTLP over HTTP/protobuf when `http` is set, else over gRPC. */
const openTelemetry = z
  .object({
    service: host,
    port: portNumber,
    maxTagLength: z.number().int().min(1).max(65_536).optional(),
    http: z
      .object({
        path: z
          .string()
          .refine((s) => s.startsWith('/'), 'must start with "/"')
          .optional(),
        timeout: duration.optional(),
        headers: z.array(z.object({ name: headerName, value: z.string() }).strict()).optional(),
      })
      .strict()
      .optional(),
    grpc: z
      .object({
        timeout: duration.optional(),
        initialMetadata: z.array(z.object({ name: headerName, value: z.string() }).strict()).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.http && p.grpc)
      ctx.addIssue({
        code: 'custom',
        path: ['grpc'],
        message: 'cannot be set together with http; choose one',
      });
  });

const SUPPORTED_PROVIDERS = ['envoyExtAuthzHttp', 'opentelemetry'] as const;

const extensionProvider = z
  .object({
    name: z.string().min(1, 'is required').max(253),
    envoyExtAuthzHttp: extAuthzHttp.optional(),
    opentelemetry: openTelemetry.optional(),
  })
  .catchall(z.unknown())
  .superRefine((p, ctx) => {
    const set = Object.keys(p).filter((k) => k !== 'name');
    const unknown = set.filter((k) => !(SUPPORTED_PROVIDERS as readonly string[]).includes(k));
    for (const k of unknown) {
      ctx.addIssue({
        code: 'custom',
        path: [k],
        message: `is not a provider type Ambit supports; use ${SUPPORTED_PROVIDERS.join(' or ')}`,
      });
    }
    if (set.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `needs a provider type: ${SUPPORTED_PROVIDERS.join(' or ')}`,
      });
    else if (set.length > 1)
      ctx.addIssue({ code: 'custom', path: [set[1]!], message: 'a provider has exactly one type' });
  });

const redisUrl = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '';
  } catch {
    return false;
  }
}, 'must be a Redis URL such as redis://198.18.0.10:6379');

/** Istio's `outboundTrafficPolicy.mode`: where mesh pods may connect outside the registry. */
export const OUTBOUND_TRAFFIC_MODES = ['ALLOW_ANY', 'REGISTRY_ONLY'] as const;
export type OutboundTrafficMode = (typeof OUTBOUND_TRAFFIC_MODES)[number];

const meshConfigSpec = z
  .object({
    extensionProviders: z.array(extensionProvider).optional(),
    /**
     * ALLOW_ANY (the default): a mesh pod may connect anywhere. REGISTRY_ONLY: ztunnels refuse a
     * connection to an address the registry does not know (no workload, Service VIP or ServiceEntry).
     */
    outboundTrafficPolicy: z
      .object({ mode: z.enum(OUTBOUND_TRAFFIC_MODES).optional() })
      .strict()
      .optional(),
    defaultProviders: z
      .object({
        tracing: z.array(z.string().min(1)).optional(),
        accessLogging: z.array(z.string().min(1)).optional(),
        metrics: z.array(z.string().min(1)).optional(),
      })
      .strict()
      .optional(),
    /** Where RateLimitPolicy `global` rules keep their counters, and what happens when it cannot be reached. */
    rateLimit: z
      .object({
        backend: z.object({ type: z.literal('Redis'), redis: z.object({ url: redisUrl }).strict() }).strict(),
        /** false (the default, as in Envoy Gateway): requests pass when Redis cannot answer; true: 429. */
        failClosed: z.boolean().optional(),
        timeout: duration.optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    const names = new Map<string, number>();
    (spec.extensionProviders ?? []).forEach((p, i) => {
      if (names.has(p.name))
        ctx.addIssue({
          code: 'custom',
          path: ['extensionProviders', i, 'name'],
          message: `"${p.name}" is already the name of extensionProviders[${names.get(p.name)}]`,
        });
      else names.set(p.name, i);
    });
    (spec.defaultProviders?.tracing ?? []).forEach((name, i) => {
      const at = names.get(name);
      const p = at === undefined ? undefined : spec.extensionProviders?.[at];
      if (!p?.opentelemetry)
        ctx.addIssue({
          code: 'custom',
          path: ['defaultProviders', 'tracing', i],
          message: `names no opentelemetry provider in extensionProviders ("${name}")`,
        });
    });
  });

export const meshConfigSchema = envelope(
  'MeshConfig',
  clusterMetadata(
    dns1123Subdomain.refine(
      (n) => n === MESH_CONFIG_NAME,
      `must be "${MESH_CONFIG_NAME}": a mesh has one MeshConfig`,
    ),
  ),
  meshConfigSpec,
);

export type MeshConfigResource = z.infer<typeof meshConfigSchema>;
export type ExtensionProvider = NonNullable<MeshConfigResource['spec']['extensionProviders']>[number];
export type ExtAuthzHttpProvider = z.infer<typeof extAuthzHttp>;
export type OpenTelemetryProvider = z.infer<typeof openTelemetry>;
export type RateLimitBackend = NonNullable<MeshConfigResource['spec']['rateLimit']>;
