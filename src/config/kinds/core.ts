// Core Kubernetes kinds (apiVersion v1): Namespace, which enrolls and picks a waypoint by label,
// and Service, which names a set of workloads behind a virtual IP and ports.

import { z } from 'zod';
import {
  dns1035Label,
  dns1123Label,
  ipAddress,
  labelMap,
  portName,
  portNumber,
  portNumberOrName,
} from '../fields.ts';
import { clusterMetadata, envelope, namespacedMetadata } from '../meta.ts';

/** Istio's per-pod sidecar injection label (`"true"` or `"false"`): sidecar mode for that pod. */
export const SIDECAR_INJECT = 'sidecar.istio.io/inject';
/** Istio's namespace label for sidecar injection (`enabled`): sidecar mode for its pods. */
export const NAMESPACE_INJECTION = 'istio-injection';

export const namespaceSchema = envelope(
  'Namespace',
  clusterMetadata(dns1123Label),
  z
    .object({ finalizers: z.array(z.string()).optional() })
    .strict()
    .optional(),
);

const servicePort = z
  .object({
    name: portName.optional(),
    protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
    appProtocol: z.string().optional(),
    port: portNumber,
    targetPort: portNumberOrName.optional(),
    nodePort: portNumber.optional(),
  })
  .strict();

const serviceSpec = z
  .object({
    type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']).optional(),
    selector: labelMap.optional(),
    ports: z.array(servicePort).optional(),
    clusterIP: z
      .union([z.literal('None'), z.literal(''), ipAddress], {
        error: 'must be an IP address, "None" (headless) or empty (allocate one)',
      })
      .optional(),
    clusterIPs: z
      .array(z.union([z.literal('None'), ipAddress], { error: 'must be an IP address or "None"' }))
      .optional(),
    ipFamilies: z.array(z.enum(['IPv4', 'IPv6'])).optional(),
    ipFamilyPolicy: z.enum(['SingleStack', 'PreferDualStack', 'RequireDualStack']).optional(),
    externalName: z.string().optional(),
    sessionAffinity: z.enum(['None', 'ClientIP']).optional(),
    internalTrafficPolicy: z.enum(['Cluster', 'Local']).optional(),
    externalTrafficPolicy: z.enum(['Cluster', 'Local']).optional(),
    trafficDistribution: z.string().optional(),
    publishNotReadyAddresses: z.boolean().optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    const ports = spec.ports ?? [];
    const seenNames = new Map<string, number>();
    const seenPorts = new Map<string, number>();
    ports.forEach((p, i) => {
      if (ports.length > 1 && p.name === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['ports', i, 'name'],
          message: 'is required when a Service has more than one port',
        });
      }
      if (p.name !== undefined) {
        const first = seenNames.get(p.name);
        if (first !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['ports', i, 'name'],
            message: `duplicates the name of ports[${first}]`,
          });
        } else seenNames.set(p.name, i);
      }
      const portKey = `${p.protocol ?? 'TCP'}/${p.port}`;
      const firstPort = seenPorts.get(portKey);
      if (firstPort !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['ports', i, 'port'],
          message: `duplicates ports[${firstPort}] (${portKey})`,
        });
      } else seenPorts.set(portKey, i);
    });
    if (spec.type === 'ExternalName' && !spec.externalName) {
      ctx.addIssue({
        code: 'custom',
        path: ['externalName'],
        message: 'is required when type is ExternalName',
      });
    }
    if (spec.clusterIP && spec.clusterIPs?.[0] !== undefined && spec.clusterIPs[0] !== spec.clusterIP) {
      ctx.addIssue({
        code: 'custom',
        path: ['clusterIPs', 0],
        message: 'must equal clusterIP when both are set',
      });
    }
  });

export const serviceSchema = envelope('Service', namespacedMetadata(dns1035Label), serviceSpec);

export type NamespaceResource = z.infer<typeof namespaceSchema>;
export type ServiceResource = z.infer<typeof serviceSchema>;
