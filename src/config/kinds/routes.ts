// Gateway API routes (gateway.networking.k8s.io/v1): HTTPRoute and GRPCRoute — matches, filters,
// weighted backends, timeouts and retries, attached to a Service or waypoint by parentRefs (or, as in
// Istio's ambient mode, to a ServiceEntry, and sending to a ServiceEntry's host by Istio's `Hostname`).

import { z } from 'zod';
import { dns1123Label, dns1123Subdomain, duration, parentRef, parseDuration, portNumber } from '../fields.ts';
import { envelope, namespacedMetadata } from '../meta.ts';
import { regexProblem } from '../regexp.ts';

const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/, 'must be an HTTP header name');

const headerMatch = z
  .object({ type: z.enum(['Exact', 'RegularExpression']).optional(), name: headerName, value: z.string() })
  .strict()
  .superRefine((m, ctx) => {
    const problem = m.type === 'RegularExpression' ? regexProblem(m.value) : undefined;
    if (problem) ctx.addIssue({ code: 'custom', path: ['value'], message: problem });
  });

const pathMatch = z
  .object({
    type: z.enum(['Exact', 'PathPrefix', 'RegularExpression']).optional(),
    value: z.string().optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    const value = m.value ?? '/';
    if ((m.type ?? 'PathPrefix') !== 'RegularExpression' && !value.startsWith('/')) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: 'must start with "/"' });
    }
    const problem = m.type === 'RegularExpression' ? regexProblem(value) : undefined;
    if (problem) ctx.addIssue({ code: 'custom', path: ['value'], message: problem });
  });

const httpMatch = z
  .object({
    path: pathMatch.optional(),
    headers: z.array(headerMatch).optional(),
    queryParams: z
      .array(
        z
          .object({
            type: z.enum(['Exact', 'RegularExpression']).optional(),
            name: z.string().min(1),
            value: z.string(),
          })
          .strict(),
      )
      .optional(),
    method: z
      .enum(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'])
      .optional(),
  })
  .strict();

const header = z.object({ name: headerName, value: z.string() }).strict();
const headerModifier = z
  .object({
    set: z.array(header).optional(),
    add: z.array(header).optional(),
    remove: z.array(headerName).optional(),
  })
  .strict();

const pathModifier = z
  .object({
    type: z.enum(['ReplaceFullPath', 'ReplacePrefixMatch']),
    replaceFullPath: z.string().optional(),
    replacePrefixMatch: z.string().optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    const field = p.type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
    if (p[field] === undefined)
      ctx.addIssue({ code: 'custom', path: [field], message: `is required when type is ${p.type}` });
  });

const backendObjectRef = {
  group: z.string().optional(),
  kind: z.string().optional(),
  name: dns1123Subdomain,
  namespace: dns1123Label.optional(),
  port: portNumber.optional(),
};

/** Istio's group: the ServiceEntry parent kind and the `Hostname` backend kind exist only there. */
const ISTIO_NETWORKING_GROUP = 'networking.istio.io';

/** A group written for Istio's `kind` must be Istio's (left out, it is read as Istio's: no other has the kind). */
function requireIstioGroup(
  istioKind: string,
  ref: { group?: string | undefined; kind?: string | undefined },
  ctx: z.RefinementCtx,
) {
  if (ref.kind === istioKind && ref.group !== undefined && ref.group !== ISTIO_NETWORKING_GROUP)
    ctx.addIssue({
      code: 'custom',
      path: ['group'],
      message: `must be ${ISTIO_NETWORKING_GROUP} when kind is ${ref.kind}`,
    });
}

/**
 * The backend kinds Ambit sends to need a port (Istio requires one too), and a `Hostname` is looked up
 * in the route's own namespace, as Istio does, so it takes none. Other kinds are left to the route's
 * status (ResolvedRefs InvalidKind), as Gateway API has it.
 */
function checkBackendRef(
  ref: {
    group?: string | undefined;
    kind?: string | undefined;
    namespace?: string | undefined;
    port?: number | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  const kind = ref.kind ?? 'Service';
  if ((kind === 'Service' || kind === 'Hostname') && ref.port === undefined) {
    ctx.addIssue({ code: 'custom', path: ['port'], message: `is required when the backend is a ${kind}` });
  }
  if (kind === 'Hostname' && ref.namespace !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['namespace'],
      message: "may not be set when kind is Hostname: the host is looked up in the route's namespace",
    });
  }
  requireIstioGroup('Hostname', ref, ctx);
}

const mirrorBackend = z.object(backendObjectRef).strict().superRefine(checkBackendRef);

/** A route's parentRef: a ServiceEntry parent (as Istio's ambient mode allows) is of Istio's group. */
const routeParentRef = parentRef.superRefine((ref, ctx) => requireIstioGroup('ServiceEntry', ref, ctx));

const FILTER_FIELDS = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  RequestMirror: 'requestMirror',
  ExtensionRef: 'extensionRef',
} as const;

type FilterType = keyof typeof FILTER_FIELDS;

function filterSchema(types: readonly FilterType[]) {
  return z
    .object({
      type: z.enum(types as [FilterType, ...FilterType[]]),
      requestHeaderModifier: headerModifier.optional(),
      responseHeaderModifier: headerModifier.optional(),
      requestRedirect: z
        .object({
          scheme: z.enum(['http', 'https']).optional(),
          hostname: z.string().optional(),
          path: pathModifier.optional(),
          port: portNumber.optional(),
          statusCode: z
            .union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)], {
              error: 'must be 301, 302, 303, 307 or 308',
            })
            .optional(),
        })
        .strict()
        .optional(),
      urlRewrite: z
        .object({ hostname: z.string().optional(), path: pathModifier.optional() })
        .strict()
        .optional(),
      requestMirror: z
        .object({
          backendRef: mirrorBackend,
          percent: z.number().int().min(0).max(100).optional(),
          fraction: z
            .object({ numerator: z.number().int().min(0), denominator: z.number().int().min(1).optional() })
            .strict()
            .optional(),
        })
        .strict()
        .optional(),
      extensionRef: z.object({ group: z.string(), kind: z.string(), name: z.string() }).strict().optional(),
    })
    .strict()
    .superRefine((f, ctx) => {
      const wanted = FILTER_FIELDS[f.type];
      for (const [type, field] of Object.entries(FILTER_FIELDS)) {
        const present = f[field] !== undefined;
        if (field === wanted && !present)
          ctx.addIssue({ code: 'custom', path: [field], message: `is required when type is ${f.type}` });
        if (field !== wanted && present) {
          ctx.addIssue({ code: 'custom', path: [field], message: `is only allowed when type is ${type}` });
        }
      }
    });
}

const httpFilter = filterSchema([
  'RequestHeaderModifier',
  'ResponseHeaderModifier',
  'RequestRedirect',
  'URLRewrite',
  'RequestMirror',
  'ExtensionRef',
]);
const grpcFilter = filterSchema([
  'RequestHeaderModifier',
  'ResponseHeaderModifier',
  'RequestMirror',
  'ExtensionRef',
]);

function backendRef(filter: z.ZodType) {
  return z
    .object({
      ...backendObjectRef,
      weight: z
        .number()
        .int()
        .min(0, 'must be from 0 to 1000000')
        .max(1_000_000, 'must be from 0 to 1000000')
        .optional(),
      filters: z.array(filter).optional(),
    })
    .strict()
    .superRefine(checkBackendRef);
}

const timeouts = z
  .object({ request: duration.optional(), backendRequest: duration.optional() })
  .strict()
  .superRefine((t, ctx) => {
    const request = t.request === undefined ? undefined : parseDuration(t.request);
    const backend = t.backendRequest === undefined ? undefined : parseDuration(t.backendRequest);
    // 0s means "no timeout" in Gateway API.
    if (request && backend && backend > request) {
      ctx.addIssue({ code: 'custom', path: ['backendRequest'], message: 'must not be longer than request' });
    }
  });

const retry = z
  .object({
    codes: z
      .array(
        z
          .number()
          .int()
          .min(400, 'must be an HTTP status from 400 to 599')
          .max(599, 'must be an HTTP status from 400 to 599'),
      )
      .optional(),
    attempts: z.number().int().min(0, 'must not be negative').optional(),
    backoff: duration.optional(),
  })
  .strict();

const routeCommon = {
  parentRefs: z.array(routeParentRef).optional(),
  hostnames: z.array(z.string()).optional(),
};

const httpRouteSpec = z
  .object({
    ...routeCommon,
    rules: z
      .array(
        z
          .object({
            name: dns1123Subdomain.optional(),
            matches: z.array(httpMatch).optional(),
            filters: z.array(httpFilter).optional(),
            backendRefs: z.array(backendRef(httpFilter)).optional(),
            timeouts: timeouts.optional(),
            retry: retry.optional(),
          })
          .strict(),
      )
      .optional(),
  })
  .strict();

const grpcMethodMatch = z
  .object({
    type: z.enum(['Exact', 'RegularExpression']).optional(),
    service: z.string().optional(),
    method: z.string().optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.service === undefined && m.method === undefined) {
      ctx.addIssue({ code: 'custom', path: [], message: 'set service, method or both' });
    }
  });

const grpcRouteSpec = z
  .object({
    ...routeCommon,
    rules: z
      .array(
        z
          .object({
            name: dns1123Subdomain.optional(),
            matches: z
              .array(
                z
                  .object({ method: grpcMethodMatch.optional(), headers: z.array(headerMatch).optional() })
                  .strict(),
              )
              .optional(),
            filters: z.array(grpcFilter).optional(),
            backendRefs: z.array(backendRef(grpcFilter)).optional(),
            timeouts: timeouts.optional(),
            retry: retry.optional(),
          })
          .strict(),
      )
      .optional(),
  })
  .strict();

export const httpRouteSchema = envelope('HTTPRoute', namespacedMetadata(dns1123Subdomain), httpRouteSpec);
export const grpcRouteSchema = envelope('GRPCRoute', namespacedMetadata(dns1123Subdomain), grpcRouteSpec);

export type HTTPRouteResource = z.infer<typeof httpRouteSchema>;
export type GRPCRouteResource = z.infer<typeof grpcRouteSchema>;
