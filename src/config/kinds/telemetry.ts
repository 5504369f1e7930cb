// Telemetry (telemetry.istio.io/v1): tracing sampling, access logging and metrics settings for a
// namespace, selected workloads, or the waypoint of its targetRefs.

import { z } from 'zod';
import {
  dns1123Subdomain,
  percentage,
  policyTargetRef,
  refinePolicyAttachment,
  workloadSelector,
} from '../fields.ts';
import { envelope, namespacedMetadata } from '../meta.ts';

const providers = z.array(z.object({ name: z.string().min(1) }).strict());
const workloadMode = z
  .object({ mode: z.enum(['CLIENT_AND_SERVER', 'CLIENT', 'SERVER']).optional() })
  .strict();

const customTag = z
  .object({
    literal: z.object({ value: z.string() }).strict().optional(),
    environment: z.object({ name: z.string(), defaultValue: z.string().optional() }).strict().optional(),
    header: z.object({ name: z.string(), defaultValue: z.string().optional() }).strict().optional(),
  })
  .strict();

const tracing = z
  .object({
    match: workloadMode.optional(),
    providers: providers.optional(),
    randomSamplingPercentage: percentage.optional(),
    disableSpanReporting: z.boolean().optional(),
    customTags: z.record(z.string(), customTag).optional(),
    useRequestIdForTraceSampling: z.boolean().optional(),
  })
  .strict();

const accessLogging = z
  .object({
    match: workloadMode.optional(),
    providers: providers.optional(),
    disabled: z.boolean().optional(),
    filter: z.object({ expression: z.string() }).strict().optional(),
  })
  .strict();

const metrics = z
  .object({
    providers: providers.optional(),
    overrides: z
      .array(
        z
          .object({
            match: z
              .object({
                metric: z.string().optional(),
                customMetric: z.string().optional(),
                mode: z.enum(['CLIENT_AND_SERVER', 'CLIENT', 'SERVER']).optional(),
              })
              .strict()
              .optional(),
            disabled: z.boolean().optional(),
            tagOverrides: z
              .record(
                z.string(),
                z
                  .object({
                    operation: z.enum(['UPSERT', 'REMOVE']).optional(),
                    value: z.string().optional(),
                  })
                  .strict(),
              )
              .optional(),
          })
          .strict(),
      )
      .optional(),
    reportingInterval: z.string().optional(),
  })
  .strict();

const telemetrySpec = z
  .object({
    selector: workloadSelector.optional(),
    targetRef: policyTargetRef.optional(),
    targetRefs: z.array(policyTargetRef).optional(),
    tracing: z.array(tracing).optional(),
    accessLogging: z.array(accessLogging).optional(),
    metrics: z.array(metrics).optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    refinePolicyAttachment(spec, ctx, ['Service', 'Gateway', 'GatewayClass', 'ServiceEntry']);
  });

export const telemetrySchema = envelope('Telemetry', namespacedMetadata(dns1123Subdomain), telemetrySpec);
export type TelemetryResource = z.infer<typeof telemetrySchema>;
