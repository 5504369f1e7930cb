// The JWT authenticator's error catalogue. A bad token is never an error (it is a 401 answer); these
// name what goes wrong with the keys, for logs and the JWKS status the admin view shows.

export const JWT_ERRORS = {
  /** A jwksUri could not be fetched (network, timeout, non-200 answer, oversized body); the last good keys stay in use. */
  JWKS_FETCH: 'AMBIT_ERR_POLICY_JWKS_FETCH',
  /** A JWKS (fetched or inline) holds no usable public key; the last good keys stay in use. */
  JWKS_INVALID: 'AMBIT_ERR_POLICY_JWKS_INVALID',
} as const;
