// DestinationRule (networking.istio.io/v1): load balancing, connection limits and outlier detection
// for a service host, per subset and per port, and the TLS a waypoint originates to endpoints outside
// the mesh (a ServiceEntry's); to mesh endpoints, HBONE supplies mTLS whatever `tls` says.

import { z } from 'zod';
import {
  dns1123Subdomain,
  duration,
  labelMap,
  nonNegativeInt,
  percentage,
  portNumber,
  positiveInt,
  workloadSelector,
} from '../fields.ts';
import { envelope, namespacedMetadata } from '../meta.ts';

const consistentHash = z
  .object({
    httpHeaderName: z.string().optional(),
    httpCookie: z
      .object({ name: z.string().min(1), path: z.string().optional(), ttl: duration.optional() })
      .strict()
      .optional(),
    useSourceIp: z.boolean().optional(),
    httpQueryParameterName: z.string().optional(),
    ringHash: z.object({ minimumRingSize: positiveInt.optional() }).strict().optional(),
    maglev: z.object({ tableSize: positiveInt.optional() }).strict().optional(),
    minimumRingSize: positiveInt.optional(),
  })
  .strict()
  .superRefine((h, ctx) => {
    const keys = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] as const;
    const set = keys.filter((k) => h[k] !== undefined && h[k] !== false);
    if (set.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `set exactly one of ${keys.join(', ')} (found ${set.length})`,
      });
    }
  });

const loadBalancer = z
  .object({
    simple: z
      .enum(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'])
      .optional(),
    consistentHash: consistentHash.optional(),
    localityLbSetting: z.record(z.string(), z.unknown()).optional(),
    warmupDurationSecs: duration.optional(),
  })
  .strict()
  .superRefine((lb, ctx) => {
    if (lb.simple !== undefined && lb.consistentHash !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['consistentHash'],
        message: 'cannot be set together with simple; pick one',
      });
    }
  });

const connectionPool = z
  .object({
    tcp: z
      .object({
        maxConnections: positiveInt.optional(),
        connectTimeout: duration.optional(),
        tcpKeepalive: z
          .object({
            probes: positiveInt.optional(),
            time: duration.optional(),
            interval: duration.optional(),
          })
          .strict()
          .optional(),
        maxConnectionDuration: duration.optional(),
        idleTimeout: duration.optional(),
      })
      .strict()
      .optional(),
    http: z
      .object({
        http1MaxPendingRequests: positiveInt.optional(),
        http2MaxRequests: positiveInt.optional(),
        maxRequestsPerConnection: nonNegativeInt.optional(),
        maxRetries: nonNegativeInt.optional(),
        idleTimeout: duration.optional(),
        h2UpgradePolicy: z.enum(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']).optional(),
        useClientProtocol: z.boolean().optional(),
        maxConcurrentStreams: positiveInt.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

const outlierDetection = z
  .object({
    consecutiveErrors: nonNegativeInt.optional(),
    consecutive5xxErrors: nonNegativeInt.optional(),
    consecutiveGatewayErrors: nonNegativeInt.optional(),
    consecutiveLocalOriginFailures: nonNegativeInt.optional(),
    splitExternalLocalOriginErrors: z.boolean().optional(),
    interval: duration.optional(),
    baseEjectionTime: duration.optional(),
    maxEjectionPercent: percentage.optional(),
    minHealthPercent: percentage.optional(),
  })
  .strict();

const tls = z
  .object({
    mode: z.enum(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']).optional(),
    clientCertificate: z.string().optional(),
    privateKey: z.string().optional(),
    caCertificates: z.string().optional(),
    credentialName: z.string().optional(),
    subjectAltNames: z.array(z.string()).optional(),
    sni: z.string().optional(),
    insecureSkipVerify: z.boolean().optional(),
  })
  .strict()
  .superRefine((tls, ctx) => {
    // Istio's validation of ClientTLSSettings.
    const files = ['clientCertificate', 'privateKey', 'caCertificates'] as const;
    if (tls.mode === 'ISTIO_MUTUAL') {
      for (const f of files)
        if (tls[f] !== undefined)
          ctx.addIssue({ code: 'custom', path: [f], message: 'cannot be set when mode is ISTIO_MUTUAL' });
    }
    if (tls.credentialName !== undefined) {
      for (const f of files)
        if (tls[f] !== undefined)
          ctx.addIssue({ code: 'custom', path: [f], message: 'cannot be set together with credentialName' });
    } else if (tls.mode === 'MUTUAL') {
      for (const f of ['clientCertificate', 'privateKey'] as const)
        if (tls[f] === undefined)
          ctx.addIssue({ code: 'custom', path: [f], message: 'is required when mode is MUTUAL' });
    }
  });

const settings = {
  loadBalancer: loadBalancer.optional(),
  connectionPool: connectionPool.optional(),
  outlierDetection: outlierDetection.optional(),
  tls: tls.optional(),
};

const trafficPolicy = z
  .object({
    ...settings,
    portLevelSettings: z
      .array(z.object({ port: z.object({ number: portNumber }).strict(), ...settings }).strict())
      .optional(),
  })
  .strict();

const destinationRuleSpec = z
  .object({
    host: z
      .string()
      .min(1, 'is required: the service host, such as reviews or reviews.app.svc.cluster.local'),
    trafficPolicy: trafficPolicy.optional(),
    subsets: z
      .array(
        z
          .object({
            name: dns1123Subdomain,
            labels: labelMap.optional(),
            trafficPolicy: trafficPolicy.optional(),
          })
          .strict(),
      )
      .optional(),
    exportTo: z.array(z.string()).optional(),
    workloadSelector: workloadSelector.optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    const seen = new Map<string, number>();
    spec.subsets?.forEach((s, i) => {
      const first = seen.get(s.name);
      if (first !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['subsets', i, 'name'],
          message: `duplicates the name of subsets[${first}]`,
        });
      else seen.set(s.name, i);
    });
  });

export const destinationRuleSchema = envelope(
  'DestinationRule',
  namespacedMetadata(dns1123Subdomain),
  destinationRuleSpec,
);
export type DestinationRuleResource = z.infer<typeof destinationRuleSchema>;
