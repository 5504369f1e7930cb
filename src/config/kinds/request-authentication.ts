// Istio's RequestAuthentication (security.istio.io/v1): which JWTs a workload or waypoint accepts
// (issuer, keys, audiences, where the token is carried) and what a valid token's claims become upstream.

import { createPublicKey } from 'node:crypto';
import { z } from 'zod';
import {
  dns1123Subdomain,
  duration,
  parseDuration,
  policyTargetRef,
  refinePolicyAttachment,
  workloadSelector,
} from '../fields.ts';
import { envelope, namespacedMetadata } from '../meta.ts';

/** RFC 9110 token characters: what a header name may be made of. */
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Istio's stricter rule for the headers it creates from claims (ValidateStrictHTTPHeaderName). */
const STRICT_HEADER = /^[-A-Za-z0-9]+$/;

const headerName = z
  .string()
  .min(1, 'header name must be non-empty')
  .refine((s) => s === '' || HTTP_TOKEN.test(s), 'is not a valid HTTP header name');

const strictHeaderName = z
  .string()
  .min(1, 'header name must be non-empty')
  .refine(
    (s) => s === '' || STRICT_HEADER.test(s),
    'is not a valid header name: use letters, digits and "-"',
  );

const jwksUri = z.string().refine((s) => {
  if (!URL.canParse(s)) return false;
  const url = new URL(s);
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
}, 'must be an http:// or https:// URL with a host, such as https://example.com/.well-known/jwks.json');

/** Why an inline JWKS cannot be used, or undefined when it holds at least one usable public key. */
export function jwksProblem(text: string): string | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return 'jwks parse error: not valid JSON; give a JSON Web Key Set such as {"keys":[{"kty":"RSA",...}]}';
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (typeof doc !== 'object' || doc === null || !Array.isArray(keys)) {
    return 'jwks parse error: must be a JSON object with a "keys" array';
  }
  if (keys.length === 0) return 'jwks parse error: "keys" must hold at least one key';
  let usable = 0;
  for (const [i, key] of keys.entries()) {
    const kty = (key as { kty?: unknown } | null)?.kty;
    if (typeof key !== 'object' || key === null || typeof kty !== 'string') {
      return `jwks parse error: keys[${i}] must be an object with a string "kty"`;
    }
    // Symmetric keys would let anyone who can read the resource mint tokens; they are skipped, never used.
    if (kty === 'oct') continue;
    if ('d' in key) {
      return `jwks parse error: keys[${i}] holds private key material ("d"); publish only the public key`;
    }
    try {
      createPublicKey({ key: key as never, format: 'jwk' });
    } catch (err) {
      return `jwks parse error: keys[${i}] is not a valid ${kty} public key (${(err as Error).message})`;
    }
    usable++;
  }
  return usable === 0
    ? 'jwks parse error: holds no public key (RSA, EC or OKP); HMAC keys are not used'
    : undefined;
}

const jwtHeader = z.object({ name: headerName, prefix: z.string().optional() }).strict();

const claimToHeader = z
  .object({ header: strictHeaderName, claim: z.string().min(1, 'claim must be non-empty') })
  .strict();

const jwtRule = z
  .object({
    issuer: z.string().min(1, 'issuer must be set'),
    audiences: z.array(z.string().min(1, 'audience must be non-empty string')).optional(),
    jwksUri: jwksUri.optional(),
    jwks: z.string().optional(),
    fromHeaders: z.array(jwtHeader).optional(),
    fromParams: z.array(z.string().min(1, 'location query must be non-empty string')).optional(),
    fromCookies: z.array(z.string().min(1, 'cookie name must be non-empty string')).optional(),
    outputPayloadToHeader: headerName.optional(),
    forwardOriginalToken: z.boolean().optional(),
    outputClaimToHeaders: z.array(claimToHeader).optional(),
    timeout: duration.optional(),
  })
  .strict()
  .superRefine((rule, ctx) => {
    if (rule.jwks !== undefined && rule.jwks !== '') {
      const problem = jwksProblem(rule.jwks);
      if (problem) ctx.addIssue({ code: 'custom', path: ['jwks'], message: problem });
    }
    const timeoutMs = rule.timeout === undefined ? undefined : parseDuration(rule.timeout);
    if (timeoutMs !== undefined && timeoutMs < 1) {
      ctx.addIssue({ code: 'custom', path: ['timeout'], message: 'must be at least 1ms' });
    }
    const seen = new Map<string, number>();
    rule.outputClaimToHeaders?.forEach(({ header }, i) => {
      const first = seen.get(header.toLowerCase());
      if (first === undefined) seen.set(header.toLowerCase(), i);
      else
        ctx.addIssue({
          code: 'custom',
          path: ['outputClaimToHeaders', i, 'header'],
          message: `must be unique: outputClaimToHeaders[${first}] already writes ${header}`,
        });
    });
  });

/** What a RequestAuthentication may target: what a waypoint enforces it for. */
const TARGET_KINDS = ['Service', 'Gateway'];

const requestAuthenticationSpec = z
  .object({
    selector: workloadSelector.optional(),
    targetRef: policyTargetRef.optional(),
    targetRefs: z.array(policyTargetRef).optional(),
    jwtRules: z.array(jwtRule).optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    refinePolicyAttachment(spec, ctx, TARGET_KINDS);
    // One rule per issuer: with two, which rule's keys and outputs a token meets would depend on order.
    const issuers = new Map<string, number>();
    spec.jwtRules?.forEach((rule, i) => {
      const first = issuers.get(rule.issuer);
      if (first === undefined) issuers.set(rule.issuer, i);
      else
        ctx.addIssue({
          code: 'custom',
          path: ['jwtRules', i, 'issuer'],
          message: `duplicate issuer "${rule.issuer}": jwtRules[${first}] already names it; merge the two rules`,
        });
    });
  });

export const requestAuthenticationSchema = envelope(
  'RequestAuthentication',
  namespacedMetadata(dns1123Subdomain),
  requestAuthenticationSpec,
);

export type RequestAuthenticationResource = z.infer<typeof requestAuthenticationSchema>;
export type JwtRule = NonNullable<RequestAuthenticationResource['spec']['jwtRules']>[number];
