// Validation of the values a sample is started with (ports, hosts, upstream URLs, labels). Each
// throws an AmbitError naming the bad value, so the CLI and tests report the same message.

import { AmbitError } from '../errors/index.ts';
import { SAMPLE_ERRORS } from './errors.ts';

export const SAMPLE_BAD_ARG = SAMPLE_ERRORS.BAD_ARG;

/** A decimal integer from `min` to `max`, as given on a command line; `what` names it in errors. */
export function parseInteger(value: string | number, what: string, min: number, max: number): number {
  const text = String(value).trim();
  const n = /^\d{1,15}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new AmbitError(SAMPLE_BAD_ARG, `${what} must be an integer from ${min} to ${max}, got '${text}'`, {
      detail: { field: what, value: text },
    });
  }
  return n;
}

/** A TCP port as given on a command line: a decimal integer 1–65535 (0 only when `allowZero`). */
export function parsePort(value: string | number, what = 'port', allowZero = false): number {
  return parseInteger(value, what, allowZero ? 0 : 1, 65535);
}

/**
 * One upstream base URL (`http://host:port[/prefix]`). Only http and https are accepted, with no
 * query or fragment, because request paths are appended to it.
 */
export function parseUpstreamUrl(value: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch (cause) {
    throw new AmbitError(SAMPLE_BAD_ARG, `${what} '${value}' is not a URL; write it as http://host:port`, {
      cause,
      detail: { field: what, value },
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new AmbitError(SAMPLE_BAD_ARG, `${what} '${value}' must use http:// or https://`, {
      detail: { field: what, value },
    });
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new AmbitError(
      SAMPLE_BAD_ARG,
      `${what} '${value}' must be a base URL without credentials, query or fragment`,
      { detail: { field: what, value } },
    );
  }
  return url;
}

/** A comma-separated list of upstream base URLs (`--catalog URL[,URL…]`); at least one. */
export function parseUpstreamList(value: string, what: string): URL[] {
  const parts = value
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (parts.length === 0) {
    throw new AmbitError(SAMPLE_BAD_ARG, `${what} needs at least one URL, e.g. http://127.0.0.1:8081`, {
      detail: { field: what, value },
    });
  }
  return parts.map((p) => parseUpstreamUrl(p, what));
}

/** Pod labels written as `k=v,k2=v2` (the AMBIT_LABELS format). Empty text is no labels. */
export function parseLabels(value: string, what = 'labels'): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const raw of value.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    const key = eq < 0 ? '' : item.slice(0, eq).trim();
    if (key === '') {
      throw new AmbitError(SAMPLE_BAD_ARG, `${what} entry '${item}' must be written key=value`, {
        detail: { field: what, value },
      });
    }
    labels[key] = item.slice(eq + 1).trim();
  }
  return labels;
}

/** The string to give `listen()`/grpc for a host: IPv6 literals need brackets in `host:port`. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
