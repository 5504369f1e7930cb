// Reading a compact JWT before any key is touched, step by step as Envoy's jwt_verify_lib does, so that
// each malformed token is refused with the same status (and so the same 401 body) Envoy gives it.
// Only decoding happens here; signatures are checked with jose (keys.ts).

import type { JwtStatus } from './status.ts';

/** Algorithms Envoy implements; HMAC is parsed (as Envoy does) but no HMAC key is ever loaded. */
const IMPLEMENTED_ALGS: ReadonlySet<string> = new Set([
  'ES256',
  'ES384',
  'ES512',
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'EdDSA',
]);

const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

export interface ParsedJwt {
  /** The token as extracted (what jose verifies). */
  raw: string;
  alg: string;
  /** '' when the header has none. */
  kid: string;
  /** '' when absent, as Envoy reads it. */
  iss: string;
  sub: string;
  audiences: string[];
  /** Seconds since the epoch; 0 when absent. */
  nbf: number;
  exp: number;
  /** The payload segment exactly as sent (outputPayloadToHeader forwards it). */
  payloadBase64url: string;
  payload: Record<string, unknown>;
}

export type ParseResult = { ok: true; jwt: ParsedJwt } | { ok: false; status: JwtStatus };

function decodeSegment(segment: string): string | undefined {
  if (!BASE64URL.test(segment) || segment.replace(/=+$/, '').length % 4 === 1) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(segment, 'base64url'));
  } catch {
    return undefined;
  }
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

type Read<T> = { ok: true; value: T } | { ok: false; why: 'type' | 'range' };

function readString(obj: Record<string, unknown>, key: string): Read<string> {
  const v = obj[key];
  if (v === undefined) return { ok: true, value: '' };
  return typeof v === 'string' ? { ok: true, value: v } : { ok: false, why: 'type' };
}

/** A non-negative number below 2^64, truncated as Envoy's GetUInt64 does; 0 when absent. */
function readUint64(obj: Record<string, unknown>, key: string): Read<number> {
  const v = obj[key];
  if (v === undefined) return { ok: true, value: 0 };
  if (typeof v !== 'number') return { ok: false, why: 'type' };
  if (v < 0 || v >= 2 ** 64) return { ok: false, why: 'range' };
  return { ok: true, value: Math.trunc(v) };
}

/** Parse `raw` into its fields, or the status Envoy refuses it with. Never throws. */
export function parseJwt(raw: string): ParseResult {
  const fail = (status: JwtStatus): ParseResult => ({ ok: false, status });
  const parts = raw.split('.').filter((p) => p !== '');
  if (parts.length !== 3) return fail('JwtBadFormat');
  const [headerB64, payloadB64, signatureB64] = parts as [string, string, string];

  const headerText = decodeSegment(headerB64);
  if (headerText === undefined) return fail('JwtHeaderParseErrorBadBase64');
  const header = parseObject(headerText);
  if (header === undefined) return fail('JwtHeaderParseErrorBadJson');
  const alg = header.alg;
  if (typeof alg !== 'string') return fail('JwtHeaderBadAlg');
  if (!IMPLEMENTED_ALGS.has(alg)) return fail('JwtHeaderNotImplementedAlg');
  const kid = readString(header, 'kid');
  if (!kid.ok) return fail('JwtHeaderBadKid');

  const payloadText = decodeSegment(payloadB64);
  if (payloadText === undefined) return fail('JwtPayloadParseErrorBadBase64');
  const payload = parseObject(payloadText);
  if (payload === undefined) return fail('JwtPayloadParseErrorBadJson');
  const iss = readString(payload, 'iss');
  if (!iss.ok) return fail('JwtPayloadParseErrorIssNotString');
  const sub = readString(payload, 'sub');
  if (!sub.ok) return fail('JwtPayloadParseErrorSubNotString');
  const iat = readUint64(payload, 'iat');
  if (!iat.ok)
    return fail(
      iat.why === 'type' ? 'JwtPayloadParseErrorIatNotInteger' : 'JwtPayloadParseErrorIatOutOfRange',
    );
  const nbf = readUint64(payload, 'nbf');
  if (!nbf.ok)
    return fail(
      nbf.why === 'type' ? 'JwtPayloadParseErrorNbfNotInteger' : 'JwtPayloadParseErrorNbfOutOfRange',
    );
  const exp = readUint64(payload, 'exp');
  if (!exp.ok)
    return fail(
      exp.why === 'type' ? 'JwtPayloadParseErrorExpNotInteger' : 'JwtPayloadParseErrorExpOutOfRange',
    );
  if (!readString(payload, 'jti').ok) return fail('JwtPayloadParseErrorJtiNotString');
  const aud = payload.aud;
  let audiences: string[];
  if (aud === undefined) audiences = [];
  else if (typeof aud === 'string') audiences = [aud];
  else if (Array.isArray(aud) && aud.every((a) => typeof a === 'string')) audiences = aud as string[];
  else return fail('JwtPayloadParseErrorAudNotString');

  if (!BASE64URL.test(signatureB64)) return fail('JwtSignatureParseErrorBadBase64');
  return {
    ok: true,
    jwt: {
      raw,
      alg,
      kid: kid.value,
      iss: iss.value,
      sub: sub.value,
      audiences,
      nbf: nbf.value,
      exp: exp.value,
      payloadBase64url: payloadB64,
      payload,
    },
  };
}

/** Envoy's default clock skew (`clock_skew_seconds`), applied to both `nbf` and `exp`. */
export const CLOCK_SKEW_SECONDS = 60;

/** `nbf` then `exp`, each with the clock skew, as Envoy checks them; `now` in seconds. */
export function checkTime(jwt: ParsedJwt, now: number): JwtStatus {
  if (now + CLOCK_SKEW_SECONDS < jwt.nbf) return 'JwtNotYetValid';
  if (jwt.exp !== 0 && now > jwt.exp + CLOCK_SKEW_SECONDS) return 'JwtExpired';
  return 'Ok';
}

/** Envoy compares audiences without an http(s):// scheme or a trailing slash. */
function sanitizeAudience(aud: string): string {
  let out = aud;
  if (out.startsWith('http://')) out = out.slice(7);
  else if (out.startsWith('https://')) out = out.slice(8);
  return out.endsWith('/') ? out.slice(0, -1) : out;
}

/** True when the rule allows any audience (none configured) or one of the token's. */
export function audiencesAllowed(allowed: readonly string[] | undefined, jwt: ParsedJwt): boolean {
  if (allowed === undefined || allowed.length === 0) return true;
  const set = new Set(allowed.map(sanitizeAudience));
  return jwt.audiences.some((a) => set.has(sanitizeAudience(a)));
}
