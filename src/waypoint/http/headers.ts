// Header handling between the client and the backend, as pure functions: hop-by-hop headers dropped
// (RFC 9110 §7.6.1), the route's edits applied (Gateway API order: set, add, remove), what the proxy
// itself adds.

import type { HeaderEdits } from '../route-types.ts';

/** Header values as Node hands them out (`set-cookie` as an array), names lower-case. */
export type Headers = Record<string, string | string[] | undefined>;

/** Headers that describe one hop, never forwarded (plus whatever `connection` names). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'upgrade',
  'http2-settings',
  'trailer',
  // The proxy answers `Expect: 100-continue` itself (as Envoy does unless proxy_100_continue is set).
  'expect',
]);

function named(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const all = Array.isArray(value) ? value : [value];
  return all.flatMap((v) => v.split(',').map((t) => t.trim().toLowerCase())).filter((t) => t !== '');
}

/**
 * `headers` without hop-by-hop headers, pseudo-headers and `host`. `te: trailers` is kept (gRPC needs
 * it; it is the one `te` HTTP/2 allows); `upgrade` and `connection: upgrade` are kept when `upgrade`.
 */
export function withoutHopByHop(headers: Headers, opts: { upgrade?: boolean } = {}): Headers {
  const dropped = new Set(named(headers.connection));
  const out: Headers = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(':') || name === 'host') continue;
    if (name === 'te') {
      if (named(value).includes('trailers')) out.te = 'trailers';
      continue;
    }
    if (opts.upgrade && name === 'upgrade') {
      out.upgrade = value;
      continue;
    }
    if (HOP_BY_HOP.has(name) || dropped.has(name)) continue;
    out[name] = value;
  }
  if (opts.upgrade && out.upgrade !== undefined) out.connection = 'upgrade';
  return out;
}

/** `headers` after `edits`: set replaces, add appends another value, remove deletes (names lower-case). */
export function applyEdits(headers: Headers, edits: HeaderEdits): Headers {
  if (edits.set.length === 0 && edits.add.length === 0 && edits.remove.length === 0) return headers;
  const out: Headers = { ...headers };
  for (const [name, value] of edits.set) out[name.toLowerCase()] = value;
  for (const [name, value] of edits.add) {
    const key = name.toLowerCase();
    const had = out[key];
    out[key] = had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value];
  }
  for (const name of edits.remove) delete out[name.toLowerCase()];
  return out;
}

/** The headers sent to the backend: the client's, hop-by-hop dropped, the route's edits, what we add. */
export function upstreamRequestHeaders(
  headers: Headers,
  edits: HeaderEdits,
  opts: { upgrade?: boolean } = {},
): Headers {
  const out = applyEdits(withoutHopByHop(headers, opts), edits);
  // The client spoke plaintext HTTP inside the mTLS tunnel; the tunnel is not this request's scheme.
  out['x-forwarded-proto'] = 'http';
  return out;
}

/** The headers sent back to the client: the backend's, hop-by-hop dropped, the route's response edits. */
export function downstreamResponseHeaders(headers: Headers, edits: HeaderEdits): Headers {
  return applyEdits(withoutHopByHop(headers), edits);
}

/** The authority a mirror is sent with: Envoy's `-shadow` suffix on the host, before any port. */
export function shadowAuthority(authority: string): string {
  const m = /^(\[[^\]]*\]|[^:]*)(:\d+)?$/.exec(authority);
  if (!m) return `${authority}-shadow`;
  return `${m[1]}-shadow${m[2] ?? ''}`;
}

/** The first value of a header, for the few the proxy reads. */
export function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
