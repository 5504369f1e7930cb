// RateLimitPolicy (ambit.dev/v1alpha1), Ambit's own kind: token-bucket limits enforced by a waypoint,
// for a whole target, per route, per source identity or per request header.

import { z } from 'zod';
import { dns1123Subdomain, duration, parseDuration, policyTargetRef, positiveInt } from '../fields.ts';
import { envelope, namespacedMetadata } from '../meta.ts';

const limit = z
  .object({
    name: dns1123Subdomain.optional(),
    /** Only requests routed by this HTTPRoute (and rule, when named). */
    route: z.object({ name: dns1123Subdomain, rule: dns1123Subdomain.optional() }).strict().optional(),
    /** What a bucket is kept per: one for all (Global), per source principal, or per value of a header. */
    key: z
      .object({ type: z.enum(['Global', 'SourcePrincipal', 'Header']), header: z.string().min(1).optional() })
      .strict()
      .superRefine((k, ctx) => {
        if (k.type === 'Header' && k.header === undefined)
          ctx.addIssue({ code: 'custom', path: ['header'], message: 'is required when type is Header' });
        if (k.type !== 'Header' && k.header !== undefined)
          ctx.addIssue({ code: 'custom', path: ['header'], message: 'is only allowed when type is Header' });
      })
      .optional(),
    bucket: z
      .object({ maxTokens: positiveInt, tokensPerFill: positiveInt.optional(), fillInterval: duration })
      .strict()
      .superRefine((b, ctx) => {
        if ((parseDuration(b.fillInterval) ?? 0) <= 0)
          ctx.addIssue({ code: 'custom', path: ['fillInterval'], message: 'must be longer than 0' });
        if (b.tokensPerFill !== undefined && b.tokensPerFill > b.maxTokens) {
          ctx.addIssue({ code: 'custom', path: ['tokensPerFill'], message: 'must not exceed maxTokens' });
        }
      }),
  })
  .strict();

const rateLimitPolicySpec = z
  .object({
    targetRefs: z
      .array(policyTargetRef)
      .min(1, 'needs at least one target (a Service, Gateway or HTTPRoute)'),
    limits: z.array(limit).min(1, 'needs at least one limit'),
  })
  .strict()
  .superRefine((spec, ctx) => {
    spec.targetRefs.forEach((ref, i) => {
      if (!['Service', 'Gateway', 'HTTPRoute', 'GRPCRoute'].includes(ref.kind)) {
        ctx.addIssue({
          code: 'custom',
          path: ['targetRefs', i, 'kind'],
          message: 'must be Service, Gateway, HTTPRoute or GRPCRoute',
        });
      }
    });
  });

export const rateLimitPolicySchema = envelope(
  'RateLimitPolicy',
  namespacedMetadata(dns1123Subdomain),
  rateLimitPolicySpec,
);
export type RateLimitPolicyResource = z.infer<typeof rateLimitPolicySchema>;
