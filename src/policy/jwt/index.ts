// JWT authentication for RequestAuthentication: finds a request's token, verifies it (jose) against the
// issuer's keys (inline or fetched and refreshed), and answers as Envoy's jwt_authn filter would.

export {
  DEFAULT_MAX_TOKEN_BYTES,
  JwtAuthenticator,
  type JwtAuthenticatorOptions,
  type JwtRequest,
  type JwtResult,
} from './authenticator.ts';
export { JWT_ERRORS } from './errors.ts';
export {
  DEFAULT_FETCH_TIMEOUT_MS,
  DEFAULT_REFRESH_MS,
  FAILED_REFETCH_MS,
  type JwksStatus,
  KID_REFETCH_MS,
  MAX_JWKS_BYTES,
} from './jwks-cache.ts';
export type { HeaderEdits } from './outputs.ts';
export { JWT_STATUS, type JwtStatus } from './status.ts';
