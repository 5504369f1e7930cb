// What the three storefront services share: who served a response (`servedBy`), the version
// default, path matching, and answering an upstream failure as a 502 naming the upstream.

import { AmbitError } from '../../errors/index.ts';
import type { Logger } from '../../log/index.ts';
import { SAMPLE_ERRORS } from '../errors.ts';
import { type AnyRequest, type AnyResponse, errorBody, sendJson } from '../http.ts';
import type { ListenOptions } from '../lifecycle.ts';
import type { PodInfo, PodOverrides } from '../pod.ts';
import { SAMPLE_UPSTREAM_FAILED, type StorefrontRole } from './upstream.ts';

export const DEFAULT_VERSION = 'v1';
export const DEFAULT_TIMEOUT_MS = 3000;

/** Who answered, and (nested) who answered the calls it made: canary routing at a glance. */
export interface ServedBy {
  service: StorefrontRole;
  pod: string;
  version: string;
  calls?: ServedBy[];
}

/** Options every storefront service takes. */
export interface StorefrontOptions extends ListenOptions {
  pod?: PodOverrides;
  /** Timeout for each upstream call, ms (default 3000). */
  timeoutMs?: number;
}

export function servedBy(service: StorefrontRole, pod: PodInfo, calls?: ServedBy[]): ServedBy {
  const me: ServedBy = { service, pod: pod.pod, version: versionOf(pod) };
  if (calls && calls.length > 0) me.calls = calls;
  return me;
}

/** The storefront version of a pod: its `version` label, else v1. */
export function versionOf(pod: PodInfo): string {
  return pod.version ?? DEFAULT_VERSION;
}

/** Reads `servedBy` from an upstream body, if it is shaped like one. */
export function servedByIn(body: unknown): ServedBy | undefined {
  const s = (body as { servedBy?: ServedBy } | null)?.servedBy;
  return s && typeof s.pod === 'string' && typeof s.version === 'string' ? s : undefined;
}

/** Removes repeats (same service, pod and version) so a list of calls stays readable. */
export function distinct(calls: ServedBy[]): ServedBy[] {
  const seen = new Map<string, ServedBy>();
  for (const c of calls)
    seen.set(`${c.service}/${c.pod}/${c.version}`, seen.get(`${c.service}/${c.pod}/${c.version}`) ?? c);
  return [...seen.values()];
}

/** Matches `/prefix/:id` and returns the id, or undefined. */
export function idAfter(path: string, prefix: string): string | undefined {
  if (!path.startsWith(`${prefix}/`)) return undefined;
  const id = decodeURIComponent(path.slice(prefix.length + 1));
  return id === '' || id.includes('/') ? undefined : id;
}

/** The request path without query. */
export function pathOf(req: AnyRequest): string {
  return new URL(req.url ?? '/', 'http://storefront.invalid').pathname;
}

/**
 * Answers an error thrown while serving: an upstream failure becomes a 502 naming the upstream
 * (and carrying what it said), anything else is rethrown for the generic 500.
 */
export function answerUpstreamError(
  req: AnyRequest,
  res: AnyResponse,
  me: ServedBy,
  err: unknown,
  log: Logger,
): void {
  if (!(err instanceof AmbitError) || err.code !== SAMPLE_UPSTREAM_FAILED) throw err;
  log.warn({ err: err.message, ...err.detail }, 'upstream call failed');
  sendJson(req, res, 502, { ...errorBody(err.code, err.message, { ...err.detail }), servedBy: me });
}

/** 404 and 405 answers with the same JSON error shape as everything else. */
export function notFound(req: AnyRequest, res: AnyResponse, me: ServedBy, what: string): void {
  sendJson(req, res, 404, {
    ...errorBody(SAMPLE_ERRORS.NOT_FOUND, `${what} does not exist`),
    servedBy: me,
  });
}

export function onlyGet(req: AnyRequest, res: AnyResponse, me: ServedBy): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return true;
  res.setHeader('allow', 'GET, HEAD');
  sendJson(req, res, 405, {
    ...errorBody(SAMPLE_ERRORS.METHOD, `method ${req.method} is not served here; use GET`),
    servedBy: me,
  });
  return false;
}
