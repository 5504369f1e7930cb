// Policy: authorization decided from a connection alone (the ztunnel's L4 view), the translation of
// AuthorizationPolicy resources into that view, PeerAuthentication mode per port, and the waypoint's
// request-level policy: authorization (Istio's whole rule language over one HTTP request), JWT
// authentication (RequestAuthentication) and rate limits (RateLimitPolicy).

export { POLICY_ERRORS } from './errors.ts';
export { type JwksStatus, JwtAuthenticator, type JwtResult } from './jwt/index.ts';
export { evaluateL4, ipInCidr, policyMatches, stringMatches } from './l4-evaluate.ts';
export { toL4Authorization } from './l4-translate.ts';
export type {
  L4Action,
  L4Authorization,
  L4Condition,
  L4Connection,
  L4Decision,
  L4Operation,
  L4Rule,
  L4Source,
  L4WhenKey,
  MtlsMode,
  PolicyScope,
} from './l4-types.ts';
export { l4Authorization, mtlsMode } from './l4-types.ts';
export {
  type CompiledPolicy,
  compileL7Policy,
  evaluateL7,
  hostMatches,
  type L7Action,
  type L7Decision,
  matchingCustom,
  pathMatches,
} from './l7-evaluate.ts';
export type { RequestAttributes, RequestAuth, RequestHeaders } from './l7-types.ts';
export { mtlsModeForPort, type PeerAuthSettings, peerAuthSettings } from './peer-auth.ts';
export { RateLimiter, type RateLimitVerdict } from './ratelimit/index.ts';
