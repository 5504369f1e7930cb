// Asks the dashboard's server (same origin, GET only) and says in plain words why an answer did not come.

import type { Envelope } from '../model.ts';

/** How long an answer may take before the page gives up on it. */
export const TIMEOUT_MS = 8000;

export interface ApiRequest {
  path: '/api/graph' | '/api/service' | '/api/workload' | '/api/health';
  params: Record<string, string | undefined>;
}

export function requestUrl({ path, params }: ApiRequest): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined) query.set(key, value);
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * GETs `request` and resolves with its JSON body. Rejects with an Error whose message is fit to show:
 * the server's own `{ "error" }`, the HTTP status, a timeout or a network failure. `signal` cancels it
 * (the rejection is then an AbortError the caller ignores).
 */
export async function fetchJson<T extends Envelope>(request: ApiRequest, signal: AbortSignal): Promise<T> {
  const url = requestUrl(request);
  const timeout = AbortSignal.timeout(TIMEOUT_MS);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'GET',
      headers: { Accept: 'application/json' },
      cache: 'no-store',
      credentials: 'same-origin',
      signal: AbortSignal.any([signal, timeout]),
    });
  } catch (error) {
    throw failure(error, url, signal, timeout);
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch (error) {
    if (signal.aborted || timeout.aborted) throw failure(error, url, signal, timeout);
    body = undefined;
  }
  if (!response.ok) {
    const said = isObject(body) && typeof body.error === 'string' ? body.error : response.statusText;
    throw new Error(`${url} answered ${response.status}${said ? `: ${said}` : ''}`);
  }
  if (!isObject(body)) throw new Error(`${url} answered something that is not a JSON object`);
  return body as T;
}

function failure(error: unknown, url: string, signal: AbortSignal, timeout: AbortSignal): Error {
  if (signal.aborted)
    return signal.reason instanceof Error ? signal.reason : new DOMException('aborted', 'AbortError');
  if (timeout.aborted) return new Error(`${url} did not answer within ${TIMEOUT_MS / 1000} s`);
  const detail = error instanceof Error ? error.message : String(error);
  return new Error(`cannot reach the dashboard's server (${url}): ${detail}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'AbortError';
}
