// WorkloadEntry (networking.istio.io/v1): a workload that is not a Kubernetes pod, with its address,
// labels and service account. `spec.node` is an Ambit addition naming the node whose ztunnel serves it.

import { z } from 'zod';
import {
  dns1123Label,
  dns1123Subdomain,
  labelMap,
  portName,
  portNumber,
  workloadAddress,
} from '../fields.ts';
import { envelope, namespacedMetadata } from '../meta.ts';

const workloadEntrySpec = z
  .object({
    address: workloadAddress.optional(),
    ports: z
      .record(z.string(), portNumber)
      .superRefine((ports, ctx) => {
        for (const name of Object.keys(ports)) {
          if (!portName.safeParse(name).success) {
            ctx.addIssue({
              code: 'custom',
              path: [name],
              message: 'port names must be at most 15 lower-case letters, digits and "-"',
            });
          }
        }
      })
      .optional(),
    labels: labelMap.optional(),
    network: z.string().optional(),
    locality: z.string().optional(),
    weight: z.number().int().min(0).max(4294967295).optional(),
    serviceAccount: dns1123Subdomain.optional(),
    node: dns1123Label.optional(),
  })
  .strict();

export const workloadEntrySchema = envelope(
  'WorkloadEntry',
  namespacedMetadata(dns1123Subdomain),
  workloadEntrySpec,
);

export type WorkloadEntryResource = z.infer<typeof workloadEntrySchema>;
