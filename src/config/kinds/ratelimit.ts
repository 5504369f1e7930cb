// RateLimitPolicy (ambit.dev/v1alpha1), Ambit's own kind, shaped after the `rateLimit` of Envoy
// Gateway's BackendTrafficPolicy: `local` rules (a token bucket per waypoint replica) and `global`
// rules (a fixed window shared by every replica through the Redis of MeshConfig `spec.rateLimit`),
// each `{ clientSelectors, limit: { requests, unit } }`. Envoy Gateway's field names are kept; the
// selectors Ambit adds (source principal and namespace, header presence) follow their style.

import { z } from 'zod';
import { cidr, dns1123Label, dns1123Subdomain, policyTargetRef } from '../fields.ts';
import { envelope, namespacedMetadata } from '../meta.ts';
import { regexProblem } from '../regexp.ts';

/** Envoy Gateway's RateLimitUnit values that Ambit enforces, and how long each window lasts. */
export const RATE_LIMIT_UNIT_SECONDS = { Second: 1, Minute: 60, Hour: 3_600, Day: 86_400 } as const;
export type RateLimitUnit = keyof typeof RATE_LIMIT_UNIT_SECONDS;

/** Envoy's token buckets count in uint32, as do the rate-limit service's requests_per_unit. */
const MAX_REQUESTS = 4_294_967_295;
/** Envoy Gateway's bounds: value lengths, selectors per rule, headers per selector, rules per kind. */
const MAX_VALUE_LENGTH = 1_024;
const MAX_SELECTORS = 8;
const MAX_HEADERS = 16;
const MAX_LOCAL_RULES = 16;
const MAX_GLOBAL_RULES = 128;

const TARGET_KINDS: Record<string, readonly string[]> = {
  Service: ['', 'core'],
  Gateway: ['gateway.networking.k8s.io'],
  HTTPRoute: ['gateway.networking.k8s.io'],
};

const headerName = z
  .string()
  .min(1, 'is required')
  .max(256)
  .regex(/^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/, 'must be an HTTP header name');

/** Envoy Gateway's HeaderMatch, plus `Present` (the header is sent, whatever its value). */
const headerMatch = z
  .object({
    name: headerName,
    type: z.enum(['Exact', 'RegularExpression', 'Distinct', 'Present']).optional(),
    value: z.string().max(MAX_VALUE_LENGTH).optional(),
    invert: z.boolean().optional(),
  })
  .strict()
  .superRefine((m, ctx) => valueRules(m, ctx));

/**
 * The value rules every match with a type share: Exact and RegularExpression need a value (and a
 * regular expression must be safe), Distinct takes neither value nor invert, Present takes no value.
 */
function valueRules(
  m: { type?: string | undefined; value?: string | undefined; invert?: boolean | undefined },
  ctx: z.RefinementCtx,
): void {
  const type = m.type ?? 'Exact';
  if ((type === 'Exact' || type === 'RegularExpression') && m.value === undefined)
    ctx.addIssue({ code: 'custom', path: ['value'], message: `is required when type is ${type}` });
  if ((type === 'Distinct' || type === 'Present') && m.value !== undefined)
    ctx.addIssue({ code: 'custom', path: ['value'], message: `must not be set when type is ${type}` });
  if (type === 'Distinct' && m.invert !== undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['invert'],
      message: 'must not be set when type is Distinct (every value gets its own bucket)',
    });
  if (type === 'RegularExpression' && m.value !== undefined) {
    const problem = regexProblem(m.value);
    if (problem) ctx.addIssue({ code: 'custom', path: ['value'], message: problem });
  }
}

const methodMatch = z
  .object({
    value: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']),
    invert: z.boolean().optional(),
  })
  .strict();

/** Gateway API's path match (default PathPrefix "/"), with Envoy Gateway's `invert`. */
const pathMatch = z
  .object({
    type: z.enum(['Exact', 'PathPrefix', 'RegularExpression']).optional(),
    value: z.string().max(MAX_VALUE_LENGTH).optional(),
    invert: z.boolean().optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    const value = m.value ?? '/';
    if (m.type === 'RegularExpression') {
      const problem = regexProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', path: ['value'], message: problem });
    } else if (!value.startsWith('/')) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: 'must start with "/"' });
    }
  });

/** Envoy Gateway's SourceMatch: the client address in a CIDR, one bucket for all or per address. */
const sourceCidrMatch = z.object({ type: z.enum(['Exact', 'Distinct']).optional(), value: cidr }).strict();

/**
 * Ambit's: the peer's identity as Istio writes principals (`cluster.local/ns/foo/sa/bar`, without
 * `spiffe://`), matched like a header value.
 */
const sourcePrincipalMatch = z
  .object({
    type: z.enum(['Exact', 'RegularExpression', 'Distinct']).optional(),
    value: z
      .string()
      .max(MAX_VALUE_LENGTH)
      .refine(
        (s) => !s.startsWith('spiffe://'),
        'write principals as Istio does, without "spiffe://" (for example cluster.local/ns/foo/sa/bar)',
      )
      .optional(),
    invert: z.boolean().optional(),
  })
  .strict()
  .superRefine((m, ctx) => valueRules(m, ctx));

/** Ambit's: the peer's namespace (from its identity). */
const sourceNamespaceMatch = z
  .object({
    type: z.enum(['Exact', 'Distinct']).optional(),
    value: dns1123Label.optional(),
    invert: z.boolean().optional(),
  })
  .strict()
  .superRefine((m, ctx) => valueRules(m, ctx));

const SELECTOR_FIELDS = ['headers', 'methods', 'path', 'sourceCIDR', 'sourcePrincipal', 'sourceNamespace'];

/** Envoy Gateway's RateLimitSelectCondition: every condition set must hold. */
const clientSelector = z
  .object({
    headers: z.array(headerMatch).min(1).max(MAX_HEADERS).optional(),
    methods: z.array(methodMatch).min(1).optional(),
    path: pathMatch.optional(),
    sourceCIDR: sourceCidrMatch.optional(),
    sourcePrincipal: sourcePrincipalMatch.optional(),
    sourceNamespace: sourceNamespaceMatch.optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (!SELECTOR_FIELDS.some((f) => (s as Record<string, unknown>)[f] !== undefined))
      ctx.addIssue({ code: 'custom', message: `needs at least one of ${SELECTOR_FIELDS.join(', ')}` });
  });

const limit = z
  .object({
    requests: z
      .number()
      .int('must be a whole number')
      .min(1, 'must be at least 1')
      .max(MAX_REQUESTS, `must be at most ${MAX_REQUESTS}`),
    unit: z.enum(Object.keys(RATE_LIMIT_UNIT_SECONDS) as [RateLimitUnit, ...RateLimitUnit[]]),
  })
  .strict();

const rule = z
  .object({
    /** Ambit's: names the rule in the `ratelimit-policy` / `ratelimit` response headers. */
    name: dns1123Label.optional(),
    /** All must hold for the rule to count a request; none: every request to the target. */
    clientSelectors: z.array(clientSelector).max(MAX_SELECTORS).optional(),
    limit,
  })
  .strict();

const rateLimitPolicySpec = z
  .object({
    targetRefs: z
      .array(policyTargetRef)
      .min(1, 'needs at least one target (a Service, Gateway or HTTPRoute)'),
    local: z
      .object({ rules: z.array(rule).min(1, 'needs at least one rule').max(MAX_LOCAL_RULES) })
      .strict()
      .optional(),
    global: z
      .object({ rules: z.array(rule).min(1, 'needs at least one rule').max(MAX_GLOBAL_RULES) })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    spec.targetRefs.forEach((ref, i) => {
      const groups = TARGET_KINDS[ref.kind];
      if (!groups) {
        ctx.addIssue({
          code: 'custom',
          path: ['targetRefs', i, 'kind'],
          message: 'must be Service, Gateway or HTTPRoute',
        });
      } else if (ref.group !== undefined && !groups.includes(ref.group)) {
        ctx.addIssue({
          code: 'custom',
          path: ['targetRefs', i, 'group'],
          message: `must be ${groups.map((g) => `"${g}"`).join(' or ')} for a ${ref.kind}`,
        });
      }
    });
    if (!spec.local && !spec.global)
      ctx.addIssue({ code: 'custom', path: [], message: 'needs local or global rules (or both)' });
    // Unnamed rules are named `local-<i>` / `global-<i>`; every name must be unique in the policy.
    const names = new Map<string, string>();
    const all = (['local', 'global'] as const).flatMap((scope) =>
      (spec[scope]?.rules ?? []).map((r, i) => ({
        scope,
        i,
        given: r.name,
        name: rateLimitRuleName(scope, i, r),
      })),
    );
    for (const r of [...all.filter((r) => !r.given), ...all.filter((r) => r.given)]) {
      const first = names.get(r.name);
      if (first && r.given)
        ctx.addIssue({
          code: 'custom',
          path: [r.scope, 'rules', r.i, 'name'],
          message: `"${r.name}" is already the name of ${first}`,
        });
      else names.set(r.name, `${r.scope}.rules[${r.i}]`);
    }
  });

/** A rule's name in the response headers: its own `name`, else `local-<index>` / `global-<index>`. */
export function rateLimitRuleName(
  scope: 'local' | 'global',
  index: number,
  rule: { name?: string | undefined },
): string {
  return rule.name ?? `${scope}-${index}`;
}

export const rateLimitPolicySchema = envelope(
  'RateLimitPolicy',
  namespacedMetadata(dns1123Subdomain),
  rateLimitPolicySpec,
);
export type RateLimitPolicyResource = z.infer<typeof rateLimitPolicySchema>;
export type RateLimitRule = z.infer<typeof rule>;
export type RateLimitClientSelector = z.infer<typeof clientSelector>;
