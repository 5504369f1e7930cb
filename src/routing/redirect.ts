// The `location` of a RequestRedirect, built as Gateway API's HTTPRequestRedirectFilter reads:
// scheme, hostname, port and path each default to the request's own, and a port that is the
// scheme's well-known one (80 for http, 443 for https) is left out.

import { modifyPath } from './path.ts';
import type { RedirectSpec } from './shapes.ts';

const WELL_KNOWN_PORT: Record<string, number> = { http: 80, https: 443 };

/** Host and port of an :authority (`host`, `host:port`, `[v6]`, `[v6]:port`). */
export function splitAuthority(authority: string): { host: string; port: number | undefined } {
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(authority);
  if (match === null) return { host: authority, port: undefined };
  return { host: match[1]!, port: match[2] === undefined ? undefined : Number(match[2]) };
}

export interface RedirectRequest {
  /** The path without the query. */
  path: string;
  /** `?a=b` or ''. Kept as it is: the filter has no field for the query. */
  query: string;
  authority: string;
  /** The service port the request was sent to: the mesh's stand-in for the Gateway listener port. */
  servicePort: number;
}

/**
 * The redirect's Location. Traffic inside the mesh arrives as plain HTTP at the waypoint, so the
 * request's scheme is `http`. Port, when the filter sets none: "If redirect scheme is not-empty, the
 * redirect port MUST be the well-known port associated with the redirect scheme"; otherwise "the
 * redirect port MUST be the Gateway Listener port" — here the port in the request's Host, or the
 * service port when Host has none.
 */
export function redirectLocation(
  spec: RedirectSpec,
  req: RedirectRequest,
  matchedPrefix: string | undefined,
): string {
  const scheme = spec.scheme ?? 'http';
  const { host: requestHost, port: requestPort } = splitAuthority(req.authority);
  const hostname = spec.hostname ?? requestHost;
  const host = hostname.includes(':') && !hostname.startsWith('[') ? `[${hostname}]` : hostname;
  const port =
    spec.port ?? (spec.scheme !== undefined ? WELL_KNOWN_PORT[scheme] : (requestPort ?? req.servicePort));
  const portPart = port === undefined || port === WELL_KNOWN_PORT[scheme] ? '' : `:${port}`;
  const path = spec.path === undefined ? req.path : modifyPath(req.path, spec.path, matchedPrefix);
  return `${scheme}://${host}${portPart}${path}${req.query}`;
}
