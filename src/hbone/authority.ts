// Addresses on the HBONE wire: the `ip:port` of `:authority` and of a destination, the canonical form of
// an IP (so `::ffff:198.18.0.1` and `198.18.0.1` compare equal), and the `forwarded: for=` value.

import { isIP, isIPv4 } from 'node:net';
import { AmbitError } from '../errors/index.ts';
import { HBONE_ERRORS } from './errors.ts';

/** An IP literal and a TCP port: where a CONNECT asks to go, or where a connection really went. */
export interface SocketAddr {
  address: string;
  port: number;
}

function badAuthority(input: string, why: string): AmbitError {
  return new AmbitError(
    HBONE_ERRORS.BAD_AUTHORITY,
    `invalid authority ${JSON.stringify(input)}: ${why}; expected <ip>:<port> such as 198.18.0.5:8080 or [2001:2::5]:8080`,
    { detail: { input } },
  );
}

/**
 * The canonical text of an IP literal: IPv4 dotted quad, IPv6 compressed lower-case, and IPv4-mapped IPv6
 * (what a dual-stack socket reports for an IPv4 peer) folded to IPv4. Returns undefined for a non-IP.
 */
export function canonicalIp(ip: string): string | undefined {
  const version = isIP(ip);
  if (version === 4) return ip;
  // A zone index (`fe80::1%eth0`) names a link, not a host: never a mesh address.
  if (version !== 6 || ip.includes('%')) return undefined;
  // URL does the RFC 5952 compression for us.
  const host = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (mapped !== null) {
    const hi = Number.parseInt(mapped[1]!, 16);
    const lo = Number.parseInt(mapped[2]!, 16);
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return host;
}

function parsePort(input: string, text: string): number {
  if (!/^[0-9]{1,5}$/.test(text)) throw badAuthority(input, `the port "${text}" is not a decimal number`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw badAuthority(input, `the port ${port} is outside 1-65535`);
  return port;
}

/** Parses `ip:port` (IPv6 in brackets). Throws AMBIT_ERR_HBONE_BAD_AUTHORITY naming what is wrong. */
export function parseAuthority(input: string | undefined): SocketAddr {
  if (input === undefined || input === '') throw badAuthority(String(input ?? ''), 'it is missing');
  if (input.startsWith('[')) {
    const close = input.indexOf(']');
    if (close === -1) throw badAuthority(input, 'the IPv6 address has no closing "]"');
    const ip = input.slice(1, close);
    if (input[close + 1] !== ':') throw badAuthority(input, 'the port is missing after "]"');
    const address = isIP(ip) === 6 ? canonicalIp(ip) : undefined;
    if (address === undefined)
      throw badAuthority(input, `"${ip}" is not an IPv6 address (zone indexes are not accepted)`);
    return { address, port: parsePort(input, input.slice(close + 2)) };
  }
  const colon = input.lastIndexOf(':');
  if (colon === -1) throw badAuthority(input, 'the port is missing');
  const ip = input.slice(0, colon);
  if (ip.includes(':')) throw badAuthority(input, 'an IPv6 address must be written in brackets');
  if (!isIPv4(ip)) throw badAuthority(input, `"${ip}" is not an IP address (host names are not accepted)`);
  return { address: ip, port: parsePort(input, input.slice(colon + 1)) };
}

/** `ip:port`, with brackets around an IPv6 address. */
export function formatAuthority(addr: SocketAddr): string {
  const ip = canonicalIp(addr.address) ?? addr.address;
  return isIP(ip) === 6 ? `[${ip}]:${addr.port}` : `${ip}:${addr.port}`;
}

/** Checks and canonicalises a destination given by a caller. Throws AMBIT_ERR_HBONE_BAD_AUTHORITY. */
export function checkSocketAddr(addr: SocketAddr, what: string): SocketAddr {
  const ip = typeof addr?.address === 'string' ? canonicalIp(addr.address) : undefined;
  if (ip === undefined) {
    throw new AmbitError(
      HBONE_ERRORS.BAD_AUTHORITY,
      `${what}: ${JSON.stringify(addr?.address)} is not an IP address`,
      { detail: { address: addr?.address } },
    );
  }
  if (!Number.isInteger(addr.port) || addr.port < 1 || addr.port > 65535) {
    throw new AmbitError(
      HBONE_ERRORS.BAD_AUTHORITY,
      `${what}: port ${JSON.stringify(addr.port)} is not an integer in 1-65535`,
      { detail: { port: addr.port } },
    );
  }
  return { address: ip, port: addr.port };
}

/**
 * True when the CONNECT authority names the IP the connection was really sent to. A ztunnel answers 400
 * when it does not; a waypoint legitimately receives VIP authorities and does not ask.
 */
export function authorityMatchesDestination(authority: SocketAddr, destinationAddress: string): boolean {
  const a = canonicalIp(authority.address);
  return a !== undefined && a === canonicalIp(destinationAddress);
}

/** The `forwarded` request header value for the original client (RFC 7239: quoted, IPv6 bracketed). */
export function forwardedFor(client: SocketAddr): string {
  return `for="${formatAuthority(client)}"`;
}

/** The address in a `forwarded` header's `for=` (as `forwardedFor` writes it), or undefined. */
export function forwardedAddress(header: string | readonly string[] | undefined): string | undefined {
  const value = typeof header === 'string' ? header : header?.[0];
  return /for="?\[?([0-9a-fA-F.:]+?)\]?(?::\d+)?"?(?:;|,|$)/.exec(value ?? '')?.[1];
}
