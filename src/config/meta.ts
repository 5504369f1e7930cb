// The Kubernetes envelope every resource shares: apiVersion, kind, metadata, spec and a status the
// control plane owns. `envelope()` builds a kind's full schema from its spec schema.

import { z } from 'zod';
import { annotationMap, dns1123Label, labelMap } from './fields.ts';

/** A status condition, as Kubernetes and Gateway API write them. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
}

const condition = z
  .object({
    type: z.string(),
    status: z.enum(['True', 'False', 'Unknown']),
    reason: z.string(),
    message: z.string(),
    observedGeneration: z.number().int().optional(),
    lastTransitionTime: z.string().optional(),
  })
  .strict();

/** Status is written by the control plane; on input it is accepted (so `get -o yaml` round-trips). */
const status = z.object({ conditions: z.array(condition).optional() }).loose();

/** Fields the store sets; accepted on input so a resource read back can be applied again. */
const storeFields = {
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().int().optional(),
  creationTimestamp: z.string().optional(),
};

/** Metadata of a namespaced kind; `namespace` defaults to `default` during validation. */
export function namespacedMetadata(nameSchema: z.ZodType<string>) {
  return z
    .object({
      name: nameSchema,
      namespace: dns1123Label.optional(),
      labels: labelMap.optional(),
      annotations: annotationMap.optional(),
      ...storeFields,
    })
    .strict();
}

/** Metadata of a cluster-scoped kind (Namespace): no `namespace`. */
export function clusterMetadata(nameSchema: z.ZodType<string>) {
  return z
    .object({
      name: nameSchema,
      labels: labelMap.optional(),
      annotations: annotationMap.optional(),
      ...storeFields,
    })
    .strict();
}

export function envelope<K extends string, M extends z.ZodType, S extends z.ZodType>(
  kind: K,
  meta: M,
  spec: S,
) {
  return z
    .object({
      apiVersion: z.string(),
      kind: z.literal(kind),
      metadata: meta,
      spec,
      status: status.optional(),
    })
    .strict();
}
