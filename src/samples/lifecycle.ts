// Start and stop for every sample: the handle tests hold, the bound address, and a close that
// drains open connections and forces the stragglers after a deadline.

import type { Server, Socket } from 'node:net';
import { AmbitError } from '../errors/index.ts';
import { hostPort } from './args.ts';
import { SAMPLE_ERRORS } from './errors.ts';

export const SAMPLE_LISTEN_FAILED = SAMPLE_ERRORS.LISTEN;

/** Where a sample is listening (the real port when 0 was asked for). */
export interface SampleAddress {
  readonly host: string;
  readonly port: number;
}

/** A running sample. `close()` stops accepting, drains, then forces; it is safe to call twice. */
export interface SampleServer {
  readonly address: SampleAddress;
  close(): Promise<void>;
}

/** Options every sample accepts. */
export interface ListenOptions {
  /** Address to bind; default `0.0.0.0`. */
  host?: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** How long `close()` waits for open connections before destroying them (ms, default 5000). */
  drainMs?: number;
  /**
   * HTTP samples: how long an idle HTTP/1.1 keep-alive connection stays open (ms; Node's default,
   * 5000, when unset). Proxies that pool connections to the sample meet the close after this.
   */
  keepAliveMs?: number;
  /** HTTP samples: serve TLS with this certificate (ALPN `h2` or HTTP/1.1) instead of cleartext. */
  tls?: { certPem: string; keyPem: string };
}

export const DEFAULT_HOST = '0.0.0.0';
export const DEFAULT_DRAIN_MS = 5000;

/** Listens on host:port and resolves with the bound address, or rejects (e.g. EADDRINUSE). */
export function listen(server: Server, host: string, port: number): Promise<SampleAddress> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(listenError(host, port, err));
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      const addr = server.address();
      if (addr === null || typeof addr === 'string') {
        reject(new Error(`listener on ${host}:${port} has no TCP address`));
        return;
      }
      resolve({ host: addr.address, port: addr.port });
    });
  });
}

/** A listen failure as an error that says what to change. */
export function listenError(host: string, port: number, cause: unknown): AmbitError {
  const code = (cause as { code?: string }).code;
  const hint =
    code === 'EADDRINUSE'
      ? 'the port is in use; stop the other process or pick another --port'
      : code === 'EADDRNOTAVAIL'
        ? 'no interface has that address; pick another --host'
        : code === 'EACCES'
          ? 'ports below 1024 need privileges; pick a higher --port'
          : 'check --host and --port';
  return new AmbitError(
    SAMPLE_LISTEN_FAILED,
    `cannot listen on ${hostPort(host, port)}${code ? ` (${code})` : ''}: ${hint}`,
    {
      cause,
      detail: { host, port },
    },
  );
}

/**
 * Keeps the set of open sockets of a server so close() can reach them; `isIdle` says which may be
 * destroyed at once (a keep-alive HTTP/1.1 socket between requests).
 */
export class ConnectionTracker {
  readonly #sockets = new Set<Socket>();

  constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  get size(): number {
    return this.#sockets.size;
  }

  /**
   * Stops the server accepting, lets `beginDrain` ask connections to finish, destroys idle ones
   * at once and every remaining one after `drainMs`. Resolves when the server has closed.
   */
  async close(
    server: Server,
    drainMs: number,
    options: { isIdle?: (socket: Socket) => boolean; beginDrain?: () => void } = {},
  ): Promise<void> {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    options.beginDrain?.();
    for (const socket of this.#sockets) {
      if (options.isIdle?.(socket)) socket.destroy();
    }
    const force = setTimeout(() => {
      for (const socket of this.#sockets) socket.destroy();
    }, drainMs);
    try {
      await closed;
    } finally {
      clearTimeout(force);
    }
  }
}

/** Makes a close function idempotent: later calls share the first call's promise. */
export function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => {
    running ??= fn();
    return running;
  };
}
