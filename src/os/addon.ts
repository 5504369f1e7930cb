// The small Node-API addon in native/ (built by node-gyp on `npm ci`; no prebuilt binary is
// downloaded): socket options Node does not expose — SO_ORIGINAL_DST and SO_PEERCRED — and malloc_trim.

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { resolve } from 'node:path';
import { AmbitError } from '../errors/index.ts';
import { OS_ERRORS } from './errors.ts';

export interface Addon {
  getOriginalDst(fd: number): { address: string; port: number; family: 'IPv4' | 'IPv6' };
  getPeerUid(fd: number): number;
  /** malloc_trim(0): gives the C allocator's free pages back to the system; true if it released any. */
  trimMemory(): boolean;
  /** The C heap across arenas (glibc's mallinfo2): bytes live and free-but-held; undefined without glibc. */
  mallocInfo(): { arena: number; inUse: number; free: number; mmapped: number } | undefined;
}

let loaded: Addon | undefined;

/** The addon, loaded once; AMBIT_ERR_CAPTURE_ADDON when it was not built. */
export function addon(): Addon {
  if (loaded) return loaded;
  const path = resolve(import.meta.dirname, '../../build/Release/orig_dst.node');
  try {
    loaded = createRequire(import.meta.url)(path) as Addon;
    return loaded;
  } catch (cause) {
    throw new AmbitError(
      OS_ERRORS.ADDON,
      `the socket-options addon is not built (${path}); run \`npm ci\` (or \`npm run install\`) with python3, make and g++ installed`,
      { cause },
    );
  }
}

/** The socket's file descriptor; Node keeps it on the handle. */
export function fdOf(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new AmbitError(OS_ERRORS.NO_FD, 'the connection has no file descriptor (already closed?)');
  }
  return fd;
}

/**
 * The uid of the process at the other end of a connected Unix socket, as the kernel recorded it when
 * that process connected (SO_PEERCRED): the peer cannot forge it.
 */
export function peerUid(socket: Socket): number {
  return addon().getPeerUid(fdOf(socket));
}

/** Throws AMBIT_ERR_CAPTURE_ADDON now, rather than on the first connection, when the addon is missing. */
export function requireAddon(): void {
  addon();
}
