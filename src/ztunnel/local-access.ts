// Who may read what the ztunnel knows: the metrics on 15020 (the node's whole traffic graph, with
// identities) only from the node itself or an operator's allow-list, never from pods; the admin
// (config, certificates, connections) on a 0600 Unix socket whose peer must be root or this process's
// user, and on loopback TCP only when asked.

import type { Server } from 'node:http';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import { isCidr } from '../config/index.ts';
import { AmbitError } from '../errors/index.ts';
import type { Logger } from '../log/index.ts';
import { listenPrivateSocket as listenOnPrivateSocket, preparePrivateDir } from '../os/index.ts';
import { ipInCidr } from '../policy/index.ts';
import { ZTUNNEL_ERRORS } from './errors.ts';

/** Validated `--metrics-allow` entries (CIDRs or bare addresses); a bad one refuses the whole list. */
export function parseMetricsAllow(entries: readonly string[]): string[] {
  const bad = entries.filter((e) => !isCidr(e));
  if (bad.length > 0) {
    throw new AmbitError(
      ZTUNNEL_ERRORS.BAD_METRICS_ALLOW,
      `--metrics-allow: ${bad.map((b) => JSON.stringify(b)).join(', ')} ${bad.length === 1 ? 'is' : 'are'} not an address or CIDR (for example 198.18.0.200/29)`,
    );
  }
  return [...entries];
}

/**
 * Whether `source` may scrape: the node itself (loopback, or any of the node's own addresses as they
 * are now, which includes the pods' gateway address), or a source inside `allow`. Pods are neither:
 * their packets come from their own address (the pod network drops spoofs), and a meshed pod's
 * passthrough to another node arrives from its node's address, which is not the other node's own.
 */
export function mayScrape(
  source: string,
  nodeAddresses: ReadonlySet<string>,
  allow: readonly string[],
): boolean {
  if (isIP(source) === 0) return false;
  if (source.startsWith('127.') || source === '::1') return true;
  return nodeAddresses.has(source) || allow.some((cidr) => ipInCidr(source, cidr));
}

/**
 * `--admin-listen`: `host:port`, `[v6]:port` or a bare host (port `defaultPort`). The admin has no
 * authentication, so only a loopback address is accepted.
 */
export function parseAdminListen(text: string, defaultPort: number): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+|::1))(?::([0-9]{1,5}))?$/.exec(text);
  const host = m?.[1] ?? m?.[2] ?? '';
  const port = m?.[3] === undefined ? defaultPort : Number(m[3]);
  const loopback = (isIP(host) === 4 && host.startsWith('127.')) || host === '::1';
  if (!m || isIP(host) === 0 || port > 65535) {
    throw new AmbitError(
      ZTUNNEL_ERRORS.BAD_ADMIN_LISTEN,
      `--admin-listen "${text}" is not an address with an optional port (for example 127.0.0.1:15000)`,
    );
  }
  if (!loopback) {
    throw new AmbitError(
      ZTUNNEL_ERRORS.BAD_ADMIN_LISTEN,
      `--admin-listen ${text} is not a loopback address: the ztunnel admin has no authentication, so it listens on 127.0.0.0/8 or ::1 only (read it remotely through the Unix socket, e.g. over ssh)`,
    );
  }
  return { host, port };
}

/**
 * Serves the admin `server` on a Unix socket at `path`: its directory made 0700 (refused when another
 * user owns it), the socket 0600 whatever the umask, and every connection's peer uid checked against
 * `uids` (default root and this process's own user), as the control plane's admin socket does.
 */
export async function listenPrivateSocket(
  server: Server,
  path: string,
  log: Logger,
  uids?: readonly number[],
): Promise<void> {
  await preparePrivateDir(dirname(path), {
    code: ZTUNNEL_ERRORS.ADMIN_DIR,
    what: "the admin socket's directory",
    log,
  });
  await listenOnPrivateSocket(server, path, { log, uids });
}
