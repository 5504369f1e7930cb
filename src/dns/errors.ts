// The DNS error catalogue: stable codes for what the DNS library refuses in its inputs (upstream lists,
// name tables) and for a server that cannot listen.

import { AmbitError } from '../errors/index.ts';

export const DNS_ERRORS = {
  /** An upstream resolver list (a flag's text) that is not `ip`, `ip:port` or `[ipv6]:port`, comma-separated. */
  BAD_UPSTREAM: 'AMBIT_ERR_DNS_BAD_UPSTREAM',
  /** A record set whose name is not a DNS name (or wildcard) or whose address is not of its family. */
  BAD_RECORD: 'AMBIT_ERR_DNS_BAD_RECORD',
  /** An authoritative zone that is not a DNS name. */
  BAD_ZONE: 'AMBIT_ERR_DNS_BAD_ZONE',
  /** Server options out of range: a port, a timeout, a TTL or a limit. */
  BAD_OPTIONS: 'AMBIT_ERR_DNS_BAD_OPTIONS',
  /** The server could not bind its UDP or TCP socket (address in use, no permission, no such address). */
  LISTEN: 'AMBIT_ERR_DNS_LISTEN',
  /** An upstream attempt that timed out, failed, or answered SERVFAIL/REFUSED (the client then gets SERVFAIL). */
  UPSTREAM: 'AMBIT_ERR_DNS_UPSTREAM',
  /** The server closed while a query was being forwarded. */
  CLOSED: 'AMBIT_ERR_DNS_CLOSED',
} as const;

const LISTEN_HINTS: Record<string, string> = {
  EADDRINUSE:
    'another process holds that port (a second DNS server on the node?); pick another port or stop it',
  EACCES: 'ports below 1024 need root or CAP_NET_BIND_SERVICE',
  EADDRNOTAVAIL: 'the address is not on any interface of this network namespace',
};

/** The error for a socket that would not bind, with the likely fix. */
export function listenError(proto: 'udp' | 'tcp', host: string, port: number, cause: unknown): AmbitError {
  const code = (cause as { code?: string } | undefined)?.code ?? 'unknown';
  const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const hint = LISTEN_HINTS[code] ?? 'check the address and port';
  return new AmbitError(
    DNS_ERRORS.LISTEN,
    `DNS server cannot listen on ${proto} ${where} (${code}): ${hint}`,
    { cause, detail: { proto, host, port, errno: code } },
  );
}
