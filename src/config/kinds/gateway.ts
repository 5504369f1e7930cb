// Gateway API Gateway (gateway.networking.k8s.io/v1). A Gateway of class `ambit-waypoint` (or
// Istio's `istio-waypoint`) declares a waypoint; `istio.io/waypoint-for` says what traffic it takes.

import { z } from 'zod';
import { dns1123Label, dns1123Subdomain, labelMap, portNumber } from '../fields.ts';
import { envelope, namespacedMetadata } from '../meta.ts';
import { PORTS } from '../ports.ts';

/** Gateway classes that declare a waypoint. */
export const WAYPOINT_CLASSES: readonly string[] = ['ambit-waypoint', 'istio-waypoint'];

/** Values of the `istio.io/waypoint-for` label; `service` is the default. */
export const WAYPOINT_FOR = ['service', 'workload', 'all', 'none'] as const;

/** The label that makes a pod a replica of the waypoint Gateway it names (as Istio labels them). */
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';

/** How many replicas of a waypoint run (default 1, at most `MAX_WAYPOINT_REPLICAS`). */
export const WAYPOINT_REPLICAS_ANNOTATION = 'ambit.dev/waypoint-replicas';
export const MAX_WAYPOINT_REPLICAS = 10;
/** The service account a waypoint runs as (its identity), as Istio's annotation; default the Gateway's name. */
export const WAYPOINT_SERVICE_ACCOUNT_ANNOTATION = 'gateway.istio.io/service-account';

/** The replicas a waypoint Gateway asks for (its annotation, validated at apply), default 1. */
export function waypointReplicas(gw: { metadata: { annotations?: Record<string, string> } }): number {
  const v = gw.metadata.annotations?.[WAYPOINT_REPLICAS_ANNOTATION];
  return v === undefined ? 1 : Number(v);
}

/** The service account, and so the identity, of a waypoint's replicas. */
export function waypointServiceAccount(gw: {
  metadata: { name: string; annotations?: Record<string, string> };
}): string {
  return gw.metadata.annotations?.[WAYPOINT_SERVICE_ACCOUNT_ANNOTATION] ?? gw.metadata.name;
}
export type WaypointFor = (typeof WAYPOINT_FOR)[number];

const objectRef = z
  .object({
    group: z.string().optional(),
    kind: z.string().optional(),
    name: dns1123Subdomain,
    namespace: dns1123Label.optional(),
  })
  .strict();

const labelSelector = z
  .object({
    matchLabels: labelMap.optional(),
    matchExpressions: z
      .array(
        z
          .object({
            key: z.string(),
            operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
            values: z.array(z.string()).optional(),
          })
          .strict(),
      )
      .optional(),
  })
  .strict();

const listener = z
  .object({
    name: dns1123Subdomain,
    hostname: z.string().optional(),
    port: portNumber,
    protocol: z.string().min(1, 'is required, for example HTTP, HTTPS, TCP or HBONE'),
    tls: z
      .object({
        mode: z.enum(['Terminate', 'Passthrough']).optional(),
        certificateRefs: z.array(objectRef).optional(),
        options: z.record(z.string(), z.string()).optional(),
      })
      .strict()
      .optional(),
    allowedRoutes: z
      .object({
        namespaces: z
          .object({
            from: z.enum(['All', 'Same', 'Selector']).optional(),
            selector: labelSelector.optional(),
          })
          .strict()
          .optional(),
        kinds: z.array(z.object({ group: z.string().optional(), kind: z.string() }).strict()).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

const gatewaySpec = z
  .object({
    gatewayClassName: z.string().min(1, 'is required; use ambit-waypoint to declare a waypoint'),
    listeners: z.array(listener).min(1, 'needs at least one listener'),
    addresses: z.array(z.object({ type: z.string().optional(), value: z.string() }).strict()).optional(),
    infrastructure: z
      .object({
        labels: labelMap.optional(),
        annotations: z.record(z.string(), z.string()).optional(),
        parametersRef: z
          .object({ group: z.string(), kind: z.string(), name: z.string() })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    const seen = new Map<string, number>();
    spec.listeners.forEach((l, i) => {
      const first = seen.get(l.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['listeners', i, 'name'],
          message: `duplicates the name of listeners[${first}]`,
        });
      } else seen.set(l.name, i);
    });
    if (
      WAYPOINT_CLASSES.includes(spec.gatewayClassName) &&
      !spec.listeners.some((l) => l.protocol === 'HBONE' && l.port === PORTS.hbone)
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['listeners'],
        message:
          'a waypoint Gateway needs a listener with protocol HBONE on port 15008 (for example name: mesh)',
      });
    }
  });

export const gatewaySchema = envelope(
  'Gateway',
  namespacedMetadata(dns1123Subdomain),
  gatewaySpec,
).superRefine((gw, ctx) => {
  const waypointFor = gw.metadata.labels?.['istio.io/waypoint-for'];
  if (waypointFor !== undefined && !(WAYPOINT_FOR as readonly string[]).includes(waypointFor)) {
    ctx.addIssue({
      code: 'custom',
      path: ['metadata', 'labels', 'istio.io/waypoint-for'],
      message: `must be one of ${WAYPOINT_FOR.join(', ')}`,
    });
  }
  const replicas = gw.metadata.annotations?.[WAYPOINT_REPLICAS_ANNOTATION];
  if (
    replicas !== undefined &&
    !(/^\d{1,2}$/.test(replicas) && +replicas >= 1 && +replicas <= MAX_WAYPOINT_REPLICAS)
  ) {
    ctx.addIssue({
      code: 'custom',
      path: ['metadata', 'annotations', WAYPOINT_REPLICAS_ANNOTATION],
      message: `must be a whole number from 1 to ${MAX_WAYPOINT_REPLICAS}, got "${replicas}"`,
    });
  }
  const account = gw.metadata.annotations?.[WAYPOINT_SERVICE_ACCOUNT_ANNOTATION];
  if (account !== undefined && !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(account)) {
    ctx.addIssue({
      code: 'custom',
      path: ['metadata', 'annotations', WAYPOINT_SERVICE_ACCOUNT_ANNOTATION],
      message: 'must be a DNS-1123 label (a service account name)',
    });
  }
});

export type GatewayResource = z.infer<typeof gatewaySchema>;
