// The CONNECT request's headers: the caller's record (forwarded, baggage, traceparent) checked so HTTP/2
// can carry it, and a W3C `traceparent` started when none (or a malformed one) is given.

import { randomBytes } from 'node:crypto';
import { AmbitError } from '../errors/index.ts';
import { HBONE_ERRORS } from './errors.ts';

const TRACEPARENT_RE = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;
const TOKEN_RE = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
// HTTP/2 forbids connection-specific headers (RFC 9113 §8.2.2); the CONNECT pseudo-headers are ours to set.
const FORBIDDEN = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'host',
]);

/** True for a W3C trace-context version-00 `traceparent` with non-zero IDs. */
export function isTraceparent(value: string): boolean {
  return TRACEPARENT_RE.test(value);
}

/** A new `traceparent`: version 00, random trace and span IDs, not sampled (the waypoint decides sampling). */
export function newTraceparent(): string {
  let trace = randomBytes(16).toString('hex');
  let span = randomBytes(8).toString('hex');
  // All-zero IDs are invalid; the odds are negligible but the fix is cheap.
  if (/^0+$/.test(trace)) trace = `${trace.slice(0, -1)}1`;
  if (/^0+$/.test(span)) span = `${span.slice(0, -1)}1`;
  return `00-${trace}-${span}-00`;
}

/**
 * Checks the caller's headers and returns them lower-cased with a valid `traceparent` (the given one, or a
 * new one when missing or malformed, as W3C asks of a participant that cannot parse it).
 * Throws AMBIT_ERR_HBONE_BAD_HEADER naming the header.
 */
export function requestHeaders(input: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rawName, value] of Object.entries(input ?? {})) {
    const name = rawName.toLowerCase();
    const bad = (why: string) =>
      new AmbitError(HBONE_ERRORS.BAD_HEADER, `request header ${JSON.stringify(rawName)} ${why}`, {
        detail: { header: rawName },
      });
    if (name.startsWith(':')) throw bad('is a pseudo-header; HBONE sets :method and :authority itself');
    if (!TOKEN_RE.test(name)) throw bad('is not a valid header name');
    if (FORBIDDEN.has(name)) throw bad('is connection-specific and not allowed in HTTP/2');
    if (typeof value !== 'string') throw bad('must have a string value');
    if (/[\r\n\0]/.test(value)) throw bad('has a value containing CR, LF or NUL');
    if (name in out) throw bad('is given twice (in different letter cases)');
    out[name] = value;
  }
  const tp = out.traceparent;
  if (tp === undefined || !isTraceparent(tp)) out.traceparent = newTraceparent();
  return out;
}
