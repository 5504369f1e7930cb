// Istio security kinds (security.istio.io/v1): PeerAuthentication (STRICT / PERMISSIVE mTLS per
// workload and port) and AuthorizationPolicy (ALLOW / DENY / AUDIT / CUSTOM over from / to / when).

import { z } from 'zod';
import {
  cidr,
  dns1123Subdomain,
  isStringMatch,
  policyTargetRef,
  portString,
  principal,
  refinePolicyAttachment,
  serviceAccountRef,
  stringMatch,
  workloadSelector,
} from '../fields.ts';
import { envelope, namespacedMetadata } from '../meta.ts';

const mtls = z.object({ mode: z.enum(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT']).optional() }).strict();

const peerAuthenticationSpec = z
  .object({
    selector: workloadSelector.optional(),
    mtls: mtls.optional(),
    portLevelMtls: z.record(z.string(), mtls).optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    const ports = Object.keys(spec.portLevelMtls ?? {});
    for (const port of ports) {
      if (!portString.safeParse(port).success) {
        ctx.addIssue({
          code: 'custom',
          path: ['portLevelMtls', port],
          message: 'keys must be port numbers from 1 to 65535',
        });
      }
    }
    if (ports.length > 0 && Object.keys(spec.selector?.matchLabels ?? {}).length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['portLevelMtls'],
        message:
          'needs a workload selector: set spec.selector.matchLabels (port-level modes apply to workloads only)',
      });
    }
  });

export const peerAuthenticationSchema = envelope(
  'PeerAuthentication',
  namespacedMetadata(dns1123Subdomain),
  peerAuthenticationSpec,
);

const source = z
  .object({
    principals: z.array(principal).optional(),
    notPrincipals: z.array(principal).optional(),
    requestPrincipals: z.array(stringMatch).optional(),
    notRequestPrincipals: z.array(stringMatch).optional(),
    namespaces: z.array(stringMatch).optional(),
    notNamespaces: z.array(stringMatch).optional(),
    serviceAccounts: z.array(serviceAccountRef).optional(),
    notServiceAccounts: z.array(serviceAccountRef).optional(),
    ipBlocks: z.array(cidr).optional(),
    notIpBlocks: z.array(cidr).optional(),
    remoteIpBlocks: z.array(cidr).optional(),
    notRemoteIpBlocks: z.array(cidr).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (Object.values(s).every((v) => v === undefined || v.length === 0)) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: 'must set at least one field (principals, namespaces, ipBlocks, ...)',
      });
    }
    const hasPrincipals = (s.principals?.length ?? 0) + (s.notPrincipals?.length ?? 0) > 0;
    const hasAccounts = (s.serviceAccounts?.length ?? 0) + (s.notServiceAccounts?.length ?? 0) > 0;
    if (hasPrincipals && hasAccounts) {
      ctx.addIssue({
        code: 'custom',
        path: ['serviceAccounts'],
        message:
          'cannot be combined with principals or notPrincipals in the same source; use one or the other',
      });
    }
  });

/** Signs of a regular expression, which Istio's paths are not: they would match only literally. */
const REGEX_LOOKING = /^\^|\$$|\.[*+]|\\|\[.*\]|\(.*\)|\|/;

/** An operation path: Istio's exact, `prefix*`, `*suffix`, `*`, or a template of `{*}` / `{**}` segments. */
const authzPath = z.string().superRefine((p, ctx) => {
  const problem = REGEX_LOOKING.test(p)
    ? 'looks like a regular expression, which Istio matches only literally; write an exact path, "prefix*", "*suffix", or a template with {*} (one segment) and {**} (the rest)'
    : p.includes('{')
      ? templateProblem(p)
      : isStringMatch(p)
        ? undefined
        : 'must be an exact path, "prefix*", "*suffix" or "*" ("*" only at one end), or a template with {*} and {**}';
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

function templateProblem(p: string): string | undefined {
  if (p.includes('*') && !/^[^*]*$/.test(p.replace(/\{\*\*?\}/g, '')))
    return 'a path template cannot also use "*" outside {*} and {**}';
  const segments = p.split('/');
  for (const [i, seg] of segments.entries()) {
    if (!seg.includes('{')) continue;
    if (seg !== '{*}' && seg !== '{**}') return `segment "${seg}" must be exactly {*} or {**}`;
    if (seg === '{**}' && i !== segments.length - 1) return '{**} may only be the last segment';
  }
  return undefined;
}

const operation = z
  .object({
    hosts: z.array(stringMatch).optional(),
    notHosts: z.array(stringMatch).optional(),
    ports: z.array(portString).optional(),
    notPorts: z.array(portString).optional(),
    methods: z.array(stringMatch).optional(),
    notMethods: z.array(stringMatch).optional(),
    paths: z.array(authzPath).optional(),
    notPaths: z.array(authzPath).optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (Object.values(o).every((v) => v === undefined || v.length === 0)) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: 'must set at least one field (ports, methods, paths, hosts, ...)',
      });
    }
  });

/** The `when` keys Istio documents; `request.headers[...]` and `request.auth.claims[...]` take an argument. */
const WHEN_KEYS = new Set([
  'source.ip',
  'source.namespace',
  'source.principal',
  'remote.ip',
  'destination.ip',
  'destination.port',
  'connection.sni',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'experimental.envoy.filters.network.mysql_proxy[db.table]',
]);
const WHEN_KEY_WITH_ARG = /^(request\.headers|request\.auth\.claims)\[[^\]]+\](\[[^\]]+\])*$/;

const condition = z
  .object({
    key: z.string().refine((k) => WHEN_KEYS.has(k) || WHEN_KEY_WITH_ARG.test(k), {
      message:
        'unknown key; use source.ip, source.namespace, source.principal, destination.ip, destination.port, remote.ip, request.headers[NAME], request.auth.* ...',
    }),
    values: z.array(z.string()).optional(),
    notValues: z.array(z.string()).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if ((c.values?.length ?? 0) + (c.notValues?.length ?? 0) === 0) {
      ctx.addIssue({ code: 'custom', path: ['values'], message: 'set values or notValues' });
    }
    const check =
      c.key === 'source.ip' || c.key === 'destination.ip' || c.key === 'remote.ip'
        ? cidr
        : c.key === 'destination.port'
          ? portString
          : undefined;
    if (!check) return;
    for (const field of ['values', 'notValues'] as const) {
      c[field]?.forEach((v, i) => {
        const r = check.safeParse(v);
        if (!r.success)
          ctx.addIssue({
            code: 'custom',
            path: [field, i],
            message: r.error.issues[0]?.message ?? 'invalid value',
          });
      });
    }
  });

const rule = z
  .object({
    from: z
      .array(z.object({ source: source }).strict())
      .min(1, 'must not be empty when set; remove it to match any source')
      .optional(),
    to: z
      .array(z.object({ operation: operation }).strict())
      .min(1, 'must not be empty when set; remove it to match any operation')
      .optional(),
    when: z.array(condition).min(1, 'must not be empty when set').optional(),
  })
  .strict();

/** What an AuthorizationPolicy may target, as Istio's CRD lists it. */
const AUTHORIZATION_TARGETS = ['Service', 'Gateway', 'GatewayClass', 'ServiceEntry'];

const authorizationPolicySpec = z
  .object({
    selector: workloadSelector.optional(),
    targetRef: policyTargetRef.optional(),
    targetRefs: z.array(policyTargetRef).optional(),
    action: z.enum(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']).optional(),
    provider: z
      .object({ name: z.string().min(1) })
      .strict()
      .optional(),
    rules: z.array(rule).optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    refinePolicyAttachment(spec, ctx, AUTHORIZATION_TARGETS);
    if (spec.action === 'CUSTOM' && spec.provider === undefined) {
      ctx.addIssue({ code: 'custom', path: ['provider'], message: 'is required when action is CUSTOM' });
    }
    if (spec.action !== 'CUSTOM' && spec.provider !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['provider'], message: 'is only allowed when action is CUSTOM' });
    }
  });

export const authorizationPolicySchema = envelope(
  'AuthorizationPolicy',
  namespacedMetadata(dns1123Subdomain),
  authorizationPolicySpec,
);

export type PeerAuthenticationResource = z.infer<typeof peerAuthenticationSchema>;
export type AuthorizationPolicyResource = z.infer<typeof authorizationPolicySchema>;
export type AuthorizationRule = NonNullable<AuthorizationPolicyResource['spec']['rules']>[number];
export type AuthorizationSource = NonNullable<AuthorizationRule['from']>[number]['source'];
export type AuthorizationOperation = NonNullable<AuthorizationRule['to']>[number]['operation'];
export type AuthorizationCondition = NonNullable<AuthorizationRule['when']>[number];
