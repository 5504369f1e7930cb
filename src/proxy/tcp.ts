// The TCP a proxy speaks at its edges: listeners that accept captured connections, upstream dials with a
// deadline, and the idle cut. Half-close is real TCP here, and dead peers are found by keepalive.

import * as net from 'node:net';
import { AmbitError } from '../errors/index.ts';
import { TCP_KEEPALIVE_MS } from '../hbone/index.ts';
import type { Logger } from '../log/index.ts';

/** Captured and upstream sockets: half-close is real TCP here, and dead peers are found by keepalive. */
export const CAPTURED_SOCKET = {
  allowHalfOpen: true,
  noDelay: true,
  keepAlive: true,
  keepAliveInitialDelay: TCP_KEEPALIVE_MS,
} as const;

export interface TcpTarget {
  address: string;
  port: number;
}

/**
 * Listens on `host:port` and hands each accepted socket to `onSocket`; a handler that throws costs that
 * socket, never the listener. Resolves with the server once it is bound.
 */
export async function listenTcp(opts: {
  host: string;
  port: number;
  maxConnections: number;
  log: Logger;
  onSocket: (s: net.Socket) => void;
}): Promise<net.Server> {
  // Keepalive on every accepted socket: a pod that vanishes without a FIN (its namespace deleted, its
  // node gone) is found in 180 s + 10 probes 1 s apart (Node's fixed interval and count).
  const server = net.createServer(CAPTURED_SOCKET, (s) => {
    s.on('error', () => {}); // each path attaches its own handling; never crash on a peer's reset
    try {
      opts.onSocket(s);
    } catch (err) {
      opts.log.error({ err }, 'connection handler failed');
      s.destroy();
    }
  });
  server.maxConnections = opts.maxConnections;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return server;
}

/** Dials `to`; after `timeoutMs` without a connection it fails with `timeoutCode`. */
export function connectTcp(to: TcpTarget, timeoutMs: number, timeoutCode: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: to.address, port: to.port, ...CAPTURED_SOCKET });
    const timer = setTimeout(() => {
      s.destroy();
      reject(
        new AmbitError(timeoutCode, `connecting to ${to.address}:${to.port} timed out after ${timeoutMs} ms`),
      );
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * Cuts a proxied connection after `idleMs` with no byte either way (0: never). `socket` is the one side
 * that carries both directions (its reads and its writes both restart Node's socket timer), so this
 * costs a timer refresh per chunk and no timer per connection.
 */
export function watchIdle(socket: net.Socket, idleMs: number, onIdle: () => void): void {
  if (idleMs === 0) return;
  socket.setTimeout(idleMs);
  socket.once('timeout', onIdle);
}
