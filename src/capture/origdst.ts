// The original destination of a redirected connection (SO_ORIGINAL_DST), read through the project's
// socket-options addon (src/os).

import type { Socket } from 'node:net';
import { AmbitError } from '../errors/index.ts';
import { addon, fdOf } from '../os/index.ts';
import { CAPTURE_ERRORS } from './errors.ts';

/** Where a captured connection was really going, before REDIRECT sent it to the proxy. */
export type OrigDst = {
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
} & {
  readonly __brand: 'OrigDst';
};

/**
 * The original destination of a connection accepted on a REDIRECT target. Throws
 * AMBIT_ERR_CAPTURE_NOT_REDIRECTED when the connection reached the listener directly.
 */
export function originalDst(socket: Socket): OrigDst {
  try {
    return addon().getOriginalDst(fdOf(socket)) as OrigDst;
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') {
      throw new AmbitError(
        CAPTURE_ERRORS.NOT_REDIRECTED,
        'the connection was not redirected by the capture rules, so it has no original destination',
        { cause: err },
      );
    }
    throw err;
  }
}
