// The TCP a proxy speaks at its edges: listeners that accept captured connections, upstream dials with a
// deadline, and the idle cut (one shared sweep, not a timer per connection). Half-close is real TCP here,
// and dead peers are found by keepalive.

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
  /** SO_REUSEPORT: several threads listen on the same port and the kernel spreads connections over them. */
  reusePort?: boolean;
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
    server.listen({ port: opts.port, host: opts.host, reusePort: opts.reusePort === true }, () => resolve());
  });
  return server;
}

/** Dials `to`; after `timeoutMs` without a connection it fails with `timeoutCode`. */
export function connectTcp(to: TcpTarget, timeoutMs: number, timeoutCode: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: to.address, port: to.port, ...CAPTURED_SOCKET });
    let timer: NodeJS.Timeout | undefined = setTimeout(() => {
      s.destroy();
      reject(
        new AmbitError(timeoutCode, `connecting to ${to.address}:${to.port} timed out after ${timeoutMs} ms`),
      );
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      // The error listener below stays for the socket's life (a later error must never go unheard
      // before the caller adds its own); it must not keep the cleared timer alive with it.
      timer = undefined;
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

interface IdleWatch {
  onIdle: () => void;
  /** Bytes read and written at the last sweep that saw them move. */
  bytes: number;
  quietSince: number;
}

/**
 * Every socket watched with one idle time, swept together by one timer every quarter of it: a connection
 * is cut at the first sweep that finds its byte counts unmoved for `idleMs` (so between 1 and 1.25 ×
 * `idleMs` of silence). No timer, closure or refresh per connection or per chunk: a socket's own timeout
 * (`setTimeout`) costs a Timer and its listener per connection and a timer refresh per read and write.
 */
class IdleSweep {
  private readonly idleMs: number;
  private readonly watched = new Map<net.Socket, IdleWatch>();
  private timer: NodeJS.Timeout | undefined;

  constructor(idleMs: number) {
    this.idleMs = idleMs;
  }

  add(socket: net.Socket, onIdle: () => void): void {
    const bytes = socket.bytesRead + socket.bytesWritten;
    this.watched.set(socket, { onIdle, bytes, quietSince: performance.now() });
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), Math.max(1, Math.ceil(this.idleMs / 4)));
      this.timer.unref();
    }
  }

  get size(): number {
    return this.watched.size;
  }

  delete(socket: net.Socket): void {
    if (!this.watched.delete(socket) || this.watched.size > 0) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private sweep(): void {
    const now = performance.now();
    for (const [socket, w] of this.watched) {
      const bytes = socket.bytesRead + socket.bytesWritten;
      if (bytes !== w.bytes) {
        w.bytes = bytes;
        w.quietSince = now;
      } else if (now - w.quietSince >= this.idleMs) {
        this.delete(socket);
        try {
          w.onIdle();
        } catch {
          // One connection's cut failing must not stop the sweep (or the process).
        }
      }
    }
  }
}

const sweeps = new Map<number, IdleSweep>();

/** A watched socket closed: forgotten (one shared listener, not a closure per socket). */
function forgetClosed(this: net.Socket): void {
  for (const sweep of sweeps.values()) sweep.delete(this);
}

/**
 * Cuts a proxied connection after `idleMs` with no byte either way (0: never). `socket` is the one side
 * that carries both directions (its bytes read and written both count), so one shared sweep per idle time
 * watches every connection.
 */
export function watchIdle(socket: net.Socket, idleMs: number, onIdle: () => void): void {
  if (idleMs === 0 || socket.destroyed) return;
  let sweep = sweeps.get(idleMs);
  if (sweep === undefined) {
    sweep = new IdleSweep(idleMs);
    sweeps.set(idleMs, sweep);
  }
  sweep.add(socket, onIdle);
  socket.on('close', forgetClosed);
}

/** Sockets watched for idleness, in all (for tests and the admin endpoint). */
export function idleWatched(): number {
  let n = 0;
  for (const sweep of sweeps.values()) n += sweep.size;
  return n;
}
