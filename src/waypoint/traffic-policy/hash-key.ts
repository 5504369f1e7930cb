// The key a consistent-hash load balancer hashes for one request, as Envoy's hash policies take it:
// a header (several values: sorted, joined), a cookie (generated when absent and a TTL is set), a query
// parameter, or the client's IP. No key: the balancer picks at random, as Envoy does.

import { randomBytes } from 'node:crypto';
import type { HashKey } from './types.ts';

type HeaderValue = string | readonly string[] | undefined;

export interface HashInput {
  headers: Readonly<Record<string, HeaderValue>>;
  /** The request target (path and query). */
  path: string;
  /** The client's address as the tunnel reported it. */
  sourceAddress?: string;
  /** A value stable for the client connection, from which a generated cookie is made. */
  connectionId: string;
}

export interface HashChoice {
  /** The string hashed; undefined: no key (pick at random). */
  key?: string;
  /** A `set-cookie` value to add to the response (a generated hash cookie). */
  setCookie?: string;
}

function cookieValue(header: HeaderValue, name: string): string | undefined {
  const all = typeof header === 'string' ? [header] : (header ?? []);
  for (const line of all) {
    for (const part of line.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
      const v = part.slice(eq + 1).trim();
      // Envoy strips the quotes it puts around the values it generates.
      return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
    }
  }
  return undefined;
}

function queryValue(path: string, name: string): string | undefined {
  const q = path.indexOf('?');
  if (q < 0) return undefined;
  const v = new URLSearchParams(path.slice(q + 1)).get(name);
  return v ?? undefined;
}

/** Envoy's `makeSetCookieValue`: `name="value"; Max-Age=N; Path=/p; HttpOnly` (no Max-Age when 0). */
export function setCookieValue(name: string, value: string, ttlSeconds: number, path?: string): string {
  let out = `${name}="${value}"`;
  if (ttlSeconds > 0) out += `; Max-Age=${ttlSeconds}`;
  if (path) out += `; Path=${path}`;
  return `${out}; HttpOnly`;
}

/** A fresh value for a client connection's generated cookie (Envoy hashes the client's address:port). */
export function newConnectionId(): string {
  return randomBytes(8).toString('hex');
}

export function hashChoice(key: HashKey, input: HashInput): HashChoice {
  switch (key.kind) {
    case 'header': {
      const v = input.headers[key.name];
      if (v === undefined) return {};
      return { key: typeof v === 'string' ? v : [...v].sort().join('') };
    }
    case 'query': {
      const v = queryValue(input.path, key.name);
      return v === undefined ? {} : { key: v };
    }
    case 'sourceIp':
      return input.sourceAddress ? { key: input.sourceAddress } : {};
    case 'cookie': {
      const v = cookieValue(input.headers.cookie, key.name);
      if (v !== undefined) return { key: v };
      if (key.ttlSeconds === undefined) return {};
      const generated = input.connectionId;
      return { key: generated, setCookie: setCookieValue(key.name, generated, key.ttlSeconds, key.path) };
    }
  }
}
