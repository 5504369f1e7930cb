// A JSON Web Key Set made ready to verify with: the usable public keys (RSA, EC, Ed25519), each imported
// once per algorithm through jose. Which key a token is checked against follows Envoy (kid, then alg),
// and so does the status when none fits. Symmetric (oct) keys are never loaded: HMAC tokens always fail.

import type { CryptoKey, JWK } from 'jose';
import type { JwtStatus } from './status.ts';
import type { ParsedJwt } from './token.ts';

interface UsableKey {
  kid: string;
  /** '' when the key does not pin one. */
  alg: string;
  kty: 'RSA' | 'EC' | 'OKP';
  crv: string;
  jwk: JWK;
  /** One import per algorithm the key is used with (RSA keys serve RS* and PS*). */
  imported: Map<string, Promise<CryptoKey | undefined>>;
}

export interface KeySet {
  keys: readonly UsableKey[];
  /** Whether any key carries this kid: an unknown kid is a reason to refetch a remote set. */
  hasKid(kid: string): boolean;
}

const EC_CURVE: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };

/** The key, if it is a public signing key Envoy would load; undefined for anything else. */
function usable(value: unknown): UsableKey | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const jwk = value as Record<string, unknown>;
  const { kty, kid = '', alg = '', crv = '', use } = jwk;
  if (typeof kid !== 'string' || typeof alg !== 'string' || typeof crv !== 'string') return undefined;
  if (use !== undefined && use !== 'sig') return undefined;
  if ('d' in jwk) return undefined; // private material has no place in a key set
  if (kty === 'RSA') {
    if (typeof jwk.n !== 'string' || typeof jwk.e !== 'string') return undefined;
    if (alg !== '' && !alg.startsWith('RS') && !alg.startsWith('PS')) return undefined;
  } else if (kty === 'EC') {
    if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') return undefined;
    if (!Object.values(EC_CURVE).includes(crv)) return undefined;
    if (alg !== '' && EC_CURVE[alg] !== crv) return undefined;
  } else if (kty === 'OKP') {
    if (typeof jwk.x !== 'string' || crv !== 'Ed25519') return undefined;
    if (alg !== '' && alg !== 'EdDSA') return undefined;
  } else {
    return undefined;
  }
  return { kid, alg, kty, crv, jwk: jwk as JWK, imported: new Map() };
}

/** The usable keys of a JWKS document (text or parsed); undefined when it holds none. */
export function parseKeySet(doc: unknown): KeySet | undefined {
  let value = doc;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  const list = (value as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list)) return undefined;
  const keys = list.map(usable).filter((k): k is UsableKey => k !== undefined);
  if (keys.length === 0) return undefined;
  const kids = new Set(keys.map((k) => k.kid));
  return { keys, hasKid: (kid) => kids.has(kid) };
}

/** Whether a key of this type and curve can check a signature made with `alg`. */
function fits(key: UsableKey, alg: string): boolean {
  if (key.kty === 'RSA') return /^(RS|PS)(256|384|512)$/.test(alg);
  if (key.kty === 'EC') return EC_CURVE[alg] === key.crv;
  return alg === 'EdDSA';
}

/** jose is loaded on the first signature check, so a waypoint without RequestAuthentication never pays for it. */
let jose: Promise<typeof import('jose')> | undefined;
function loadJose(): Promise<typeof import('jose')> {
  jose ??= import('jose');
  return jose;
}

function imported(key: UsableKey, alg: string): Promise<CryptoKey | undefined> {
  let found = key.imported.get(alg);
  if (!found) {
    found = loadJose()
      .then(({ importJWK }) => importJWK({ ...key.jwk, alg }, alg))
      .then(
        (k) => (k instanceof Uint8Array ? undefined : k),
        () => undefined,
      );
    key.imported.set(alg, found);
  }
  return found;
}

/**
 * Check the token's signature against the set, as Envoy picks keys: skip a key whose kid differs (when
 * both name one) or whose alg differs (when the key pins one); any other key is a candidate. Ok when a
 * candidate verifies; `JwtVerificationFail` when candidates exist but none verifies; otherwise
 * `JwksKidAlgMismatch`.
 */
export async function verifySignature(jwt: ParsedJwt, set: KeySet): Promise<JwtStatus> {
  let candidates = 0;
  for (const key of set.keys) {
    if (jwt.kid !== '' && key.kid !== '' && key.kid !== jwt.kid) continue;
    if (key.alg !== '' && key.alg !== jwt.alg) continue;
    candidates++;
    if (!fits(key, jwt.alg)) continue;
    const cryptoKey = await imported(key, jwt.alg);
    if (!cryptoKey) continue;
    try {
      const { compactVerify } = await loadJose();
      await compactVerify(jwt.raw, cryptoKey, { algorithms: [jwt.alg] });
      return 'Ok';
    } catch {
      // a bad signature for this key: another candidate may still verify
    }
  }
  return candidates > 0 ? 'JwtVerificationFail' : 'JwksKidAlgMismatch';
}
