// Calls from one storefront service to another: JSON over HTTP with a timeout, trace headers
// passed along, and every failure turned into one error that names the upstream.

import { AmbitError } from '../../errors/index.ts';
import { SAMPLE_ERRORS } from '../errors.ts';
import type { AnyRequest } from '../http.ts';

export const SAMPLE_UPSTREAM_FAILED = SAMPLE_ERRORS.UPSTREAM;

/** Which storefront services exist; upstream errors name one of them. */
export type StorefrontRole = 'frontend' | 'catalog' | 'ratings';

/** Why an upstream call failed. */
export type UpstreamFailure = 'unreachable' | 'timeout' | 'status' | 'body';

/** Headers an app must copy from its inbound request to its outbound calls for traces to join. */
const PROPAGATED = ['traceparent', 'tracestate', 'x-request-id'];

/** The headers to forward from `req`: trace context and any `x-ambit-*` header (for route matches). */
export function propagatedHeaders(req: AnyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value !== 'string') continue;
    if (PROPAGATED.includes(name) || name.startsWith('x-ambit-')) out[name] = value;
  }
  return out;
}

/** `base` + `path`, keeping any path prefix the base URL has. */
export function joinUrl(base: URL, path: string): URL {
  const url = new URL(base.href);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
  return url;
}

/** A successful upstream answer: the status and the parsed JSON body. */
export interface UpstreamReply {
  status: number;
  body: unknown;
}

/**
 * GETs `url` from `upstream` and parses its JSON. Statuses in `accept` (default 200) count as
 * success; anything else, a timeout or an unreachable upstream throws SAMPLE_UPSTREAM_FAILED
 * with `detail: { upstream, url, reason, status?, body? }`.
 */
export async function getJson(
  upstream: StorefrontRole,
  url: URL,
  options: { timeoutMs: number; headers?: Record<string, string>; accept?: readonly number[] },
): Promise<UpstreamReply> {
  const fail = (reason: UpstreamFailure, why: string, extra: Record<string, unknown> = {}, cause?: unknown) =>
    new AmbitError(SAMPLE_UPSTREAM_FAILED, `${upstream} at ${url.origin} ${why}`, {
      cause,
      detail: { upstream, url: url.href, reason, ...extra },
    });
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { accept: 'application/json', ...options.headers },
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === 'TimeoutError') {
      throw fail(
        'timeout',
        `did not answer within ${options.timeoutMs} ms; check that it is running`,
        {},
        err,
      );
    }
    const code = (err as { cause?: { code?: string } }).cause?.code;
    throw fail(
      'unreachable',
      `could not be reached${code ? ` (${code})` : ''}; check that it is running and the URL is right`,
      {},
      err,
    );
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    const reason = err instanceof DOMException && err.name === 'TimeoutError' ? 'timeout' : 'body';
    throw fail(reason, 'broke off its answer', { status: res.status }, err);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw fail('body', `answered ${res.status} with a body that is not JSON`, { status: res.status }, err);
  }
  if (!(options.accept ?? [200]).includes(res.status)) {
    throw fail('status', `answered ${res.status}`, { status: res.status, body });
  }
  return { status: res.status, body };
}
