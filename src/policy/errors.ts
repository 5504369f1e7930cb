// The policy error catalogue: stable codes for what policy can fail at. Authorization decides (allow or
// deny) and raises nothing; the JWT authenticator's keys and the rate limiter's Redis can fail, and
// their codes are part of this catalogue (each defined beside its code, in jwt/ and ratelimit/).

import { JWT_ERRORS } from './jwt/errors.ts';
import { RATELIMIT_ERRORS } from './ratelimit/errors.ts';

export const POLICY_ERRORS = { ...JWT_ERRORS, ...RATELIMIT_ERRORS } as const;
