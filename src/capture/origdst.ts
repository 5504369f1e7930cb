// The original destination of a redirected connection (SO_ORIGINAL_DST) and the uid of a Unix
// socket's peer (SO_PEERCRED), read through the small Node-API addon in native/ (built on `npm ci`;
// no prebuilt binary is downloaded).

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { resolve } from 'node:path';
import { AmbitError } from '../errors/index.ts';

/** Where a captured connection was really going, before REDIRECT sent it to the proxy. */
export type OrigDst = {
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
} & {
  readonly __brand: 'OrigDst';
};

interface Addon {
  getOriginalDst(fd: number): { address: string; port: number; family: 'IPv4' | 'IPv6' };
  getPeerUid(fd: number): number;
}

let addon: Addon | undefined;

function load(): Addon {
  if (addon) return addon;
  const path = resolve(import.meta.dirname, '../../build/Release/orig_dst.node');
  try {
    addon = createRequire(import.meta.url)(path) as Addon;
    return addon;
  } catch (cause) {
    throw new AmbitError(
      'AMBIT_ERR_CAPTURE_ADDON',
      `the socket-options addon is not built (${path}); run \`npm ci\` (or \`npm run install\`) with python3, make and g++ installed`,
      { cause },
    );
  }
}

/** The socket's file descriptor; Node keeps it on the TCP handle. */
function fdOf(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new AmbitError(
      'AMBIT_ERR_CAPTURE_NO_FD',
      'the connection has no file descriptor (already closed?)',
    );
  }
  return fd;
}

/**
 * The original destination of a connection accepted on a REDIRECT target. Throws
 * AMBIT_ERR_CAPTURE_NOT_REDIRECTED when the connection reached the listener directly.
 */
export function originalDst(socket: Socket): OrigDst {
  try {
    return load().getOriginalDst(fdOf(socket)) as OrigDst;
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') {
      throw new AmbitError(
        'AMBIT_ERR_CAPTURE_NOT_REDIRECTED',
        'the connection was not redirected by the capture rules, so it has no original destination',
        { cause: err },
      );
    }
    throw err;
  }
}

/**
 * The uid of the process at the other end of a connected Unix socket, as the kernel recorded it when
 * that process connected (SO_PEERCRED): the peer cannot forge it.
 */
export function peerUid(socket: Socket): number {
  return load().getPeerUid(fdOf(socket));
}

/** Throws AMBIT_ERR_CAPTURE_ADDON now, rather than on the first connection, when the addon is missing. */
export function requireAddon(): void {
  load();
}
