// The HBONE error catalogue: stable codes for every way opening or serving a tunnel can fail, and the
// mapping from a CONNECT answer's status to the code the caller matches on.

import { AmbitError } from '../errors/index.ts';

export const HBONE_ERRORS = {
  /** TCP or TLS to the destination's HBONE port failed (refused, unreachable, timed out, handshake failed). */
  CONNECT: 'AMBIT_ERR_HBONE_CONNECT',
  /** The server's certificate does not chain to the bundle or is not one of the accepted identities. */
  IDENTITY: 'AMBIT_ERR_HBONE_IDENTITY',
  /** The server answered 400: not a CONNECT, or an authority it will not serve. */
  BAD_REQUEST: 'AMBIT_ERR_HBONE_BAD_REQUEST',
  /** The server answered 401: policy denied the connection. */
  DENIED: 'AMBIT_ERR_HBONE_DENIED',
  /** The server answered 503: it could not reach the destination. */
  UNREACHABLE: 'AMBIT_ERR_HBONE_UNREACHABLE',
  /** The server answered another non-200 status. */
  STATUS: 'AMBIT_ERR_HBONE_STATUS',
  /** The CONNECT stream was reset or the connection lost before the server answered. */
  STREAM: 'AMBIT_ERR_HBONE_STREAM',
  /** An `ip:port` authority or destination that cannot be parsed. */
  BAD_AUTHORITY: 'AMBIT_ERR_HBONE_BAD_AUTHORITY',
  /** A request header the caller gave that HTTP/2 cannot carry. */
  BAD_HEADER: 'AMBIT_ERR_HBONE_BAD_HEADER',
  /** A connect request or option that is missing or malformed. */
  BAD_OPTIONS: 'AMBIT_ERR_HBONE_BAD_OPTIONS',
  /** The pool or server is closed. */
  CLOSED: 'AMBIT_ERR_HBONE_CLOSED',
  /** A spliced side (socket or CONNECT stream) closed without a clean end both ways, e.g. reset or RST_STREAM: the splice's error; the other side is reset too. */
  RESET: 'AMBIT_ERR_HBONE_RESET',
} as const;

const STATUS_CODES: Record<number, { code: string; what: string }> = {
  400: {
    code: HBONE_ERRORS.BAD_REQUEST,
    what: 'rejected the request as malformed (the authority may not match where the connection was sent)',
  },
  401: { code: HBONE_ERRORS.DENIED, what: 'denied the connection by authorization policy' },
  503: { code: HBONE_ERRORS.UNREACHABLE, what: 'could not reach the destination workload' },
};

/** The error for a non-200 CONNECT answer from `server` for `authority`. */
export function statusError(status: number, server: string, authority: string): AmbitError {
  const known = STATUS_CODES[status];
  const detail = { status, server, authority };
  if (known !== undefined) {
    return new AmbitError(
      known.code,
      `HBONE server ${server} ${known.what} for ${authority} (HTTP ${status})`,
      { detail },
    );
  }
  return new AmbitError(
    HBONE_ERRORS.STATUS,
    `HBONE server ${server} answered HTTP ${status} to CONNECT ${authority}; expected 200`,
    { detail },
  );
}

/** TCP/TLS failure toward `server`, with the hint operators most often need. */
export function connectError(server: string, port: number, why: string, cause?: unknown): AmbitError {
  return new AmbitError(
    HBONE_ERRORS.CONNECT,
    `could not open an HBONE connection to ${server}: ${why}; maybe a network policy is blocking HBONE port ${port}`,
    { cause, detail: { server } },
  );
}

export function identityError(server: string, why: string, cause?: unknown): AmbitError {
  return new AmbitError(
    HBONE_ERRORS.IDENTITY,
    `HBONE server ${server} did not prove an accepted identity: ${why}`,
    { cause, detail: { server } },
  );
}
