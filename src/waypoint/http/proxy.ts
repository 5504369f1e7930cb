// The waypoint's HTTP front: one HTTP/1.1 server and one h2c server for the whole waypoint, each fed the
// accepted tunnel streams (a generic Duplex works with `emit('connection')` in Node 24: HTTP/1 reads it
// through 'data' events, HTTP/2 wraps it in a JS stream socket), and the per-request exchange behind them.

import type * as http from 'node:http';
import * as http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { describeError } from '../../errors/index.ts';
import { accessLogger } from '../../log/index.ts';
import { http as nodeHttp } from '../../os/index.ts';
import { serviceKeyParts } from '../../xds/index.ts';
import { Backends } from './balance.ts';
import { h2Downstream, http1Downstream } from './downstream.ts';
import { type ConnectionState, handleRequest, type ProxyContext } from './exchange.ts';
import { handleUpgrade, passThroughTcp } from './passthrough.ts';
import { sniffConnection } from './sniff.ts';
import type { ConnectionMeta, ProxyDeps } from './types.ts';
import { UpstreamPool } from './upstream.ts';

/**
 * Request head limit. Envoy's default (`max_request_headers_kb`) is 60 KiB, Node's 16 KiB; we take
 * Envoy's so what passes an Istio waypoint passes this one. Over it: 431 (HTTP/1.1).
 */
export const MAX_HEADER_BYTES = 60 * 1024;
/** How long a client may take to send a request head (slowloris guard). */
export const HEADERS_TIMEOUT_MS = 60_000;
/**
 * Idle time on a client connection between requests. Envoy's HTTP connection manager keeps idle
 * downstream connections an hour; a tunnel stream is cheap, and the ztunnel reuses it.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 60 * 60 * 1000;
/**
 * No limit on a whole request (Node's `requestTimeout`, default 5 min): uploads and streaming gRPC
 * calls run as long as they run, as with Envoy's default `request_timeout` (disabled). Routes set limits.
 */
export const REQUEST_TIMEOUT_MS = 0;

function serviceHost(service: string): string {
  const { namespace, name, entry } = serviceKeyParts(service);
  return entry ? name : `${name}.${namespace}.svc.cluster.local`;
}

export class HttpProxy {
  private readonly ctx: ProxyContext;
  private readonly h1: http.Server;
  private readonly h2: http2.Http2Server;
  private readonly states = new WeakMap<object, ConnectionState>();
  private readonly open = new Set<Duplex>();
  /** The state of the connection being handed to the h2 server (its 'session' fires synchronously). */
  private handing: ConnectionState | undefined;

  constructor(deps: ProxyDeps) {
    this.ctx = {
      deps,
      pool: new UpstreamPool(deps.connect, deps.connectTimeoutMs ?? 10_000),
      backends: new Backends(
        deps.trafficPolicy,
        deps.random ?? Math.random,
        deps.now ?? (() => performance.now()),
      ),
      accessLog: deps.accessLog ?? accessLogger(),
      random: deps.random ?? Math.random,
      serviceHost: deps.serviceHost ?? serviceHost,
    };
    this.h1 = nodeHttp.createServer({
      maxHeaderSize: MAX_HEADER_BYTES,
      insecureHTTPParser: false,
      keepAlive: true,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
    });
    // Node sets up its connection tracking (what enforces headersTimeout, and what closeAllConnections
    // closes) on 'listening', which a server fed only through emit('connection') never sees.
    this.h1.emit('listening');
    this.h1.on('request', (req, res) => {
      const state = this.states.get(req.socket);
      if (!state) {
        res.writeHead(500).end();
        return;
      }
      served(handleRequest(http1Downstream(req, res), state, this.ctx), deps);
    });
    this.h1.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      const state = this.states.get(socket);
      if (!state) {
        socket.destroy();
        return;
      }
      handleUpgrade(req, socket, head, state, this.ctx);
    });
    this.h1.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      // Node's own answers: 400 for a malformed or smuggling request, 431 for a head over the limit.
      deps.log.debug({ err: describeError(err), code: err.code }, 'HTTP/1.1 client error');
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      const status =
        err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      socket.end(
        `HTTP/1.1 ${status} ${nodeHttp.STATUS_CODES[status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
      );
    });
    this.h2 = http2.createServer({
      settings: { maxHeaderListSize: MAX_HEADER_BYTES, enablePush: false },
      maxSessionMemory: 64,
    });
    this.h2.on('session', (session) => {
      if (this.handing) this.states.set(session, this.handing);
      session.on('error', () => {});
    });
    this.h2.on('stream', (stream, headers) => {
      const state = this.states.get(stream.session as object);
      stream.on('error', () => {});
      if (!state) {
        stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        return;
      }
      served(handleRequest(h2Downstream(stream, headers), state, this.ctx), deps);
    });
  }

  /** Serves one accepted tunnel stream until it closes. */
  async serveConnection(conn: Duplex, meta: ConnectionMeta): Promise<void> {
    conn.on('error', () => {});
    this.open.add(conn);
    conn.once('close', () => this.open.delete(conn));
    let protocol: 'http1' | 'h2c' | 'tcp' = meta.protocol === 'http' ? 'http1' : 'h2c';
    let head: Buffer | undefined;
    if (meta.protocol === 'auto') {
      const sniffed = await sniffConnection(conn, this.ctx.deps.sniffTimeoutMs ?? 5000);
      protocol = sniffed.protocol;
      head = sniffed.head;
    }
    if (conn.destroyed) return;
    // Backends are spoken to in the protocol the client used (HTTP/2 for http2 and grpc ports).
    const state: ConnectionState = { meta, upstream: protocol === 'h2c' ? 'h2c' : 'http1' };
    if (protocol === 'tcp') {
      passThroughTcp(conn, head, state, this.ctx);
      return;
    }
    this.states.set(conn, state);
    if (protocol === 'http1') {
      this.h1.emit('connection', conn);
    } else {
      this.handing = state;
      try {
        this.h2.emit('connection', conn);
      } finally {
        this.handing = undefined;
      }
    }
    conn.resume(); // sniffing (or nothing yet) left it paused; the server reads with 'data' events
  }

  /** `serveConnection` without waiting (what the HBONE server's `take` wants). */
  serve(conn: Duplex, meta: ConnectionMeta): void {
    this.serveConnection(conn, meta).catch((err) => {
      this.ctx.deps.log.warn({ err: describeError(err) }, 'serving a connection failed');
      conn.destroy();
    });
  }

  /** Client connections open now (what a drain waits for). */
  get active(): number {
    return this.open.size;
  }

  /** Upstream connections now open, for tests and the admin. */
  upstreamStats(): { http1Sockets: number; h2Sessions: number } {
    return this.ctx.pool.stats();
  }

  /** Ends every client connection and every upstream connection. */
  close(): void {
    for (const c of this.open) c.destroy();
    this.open.clear();
    this.h1.closeAllConnections();
    this.h1.close(); // stops Node's connection-checking interval
    this.ctx.pool.close();
  }

  /** `close`, under the name the drain uses. */
  closeAll(): void {
    this.close();
  }
}

const proxies = new WeakMap<ProxyDeps, HttpProxy>();

/**
 * Serves `conn` with the waypoint's HTTP core (one `HttpProxy` per `deps`, created on first use); the
 * same as `new HttpProxy(deps).serveConnection(conn, meta)` with the proxy shared.
 */
export function serveConnection(conn: Duplex, meta: ConnectionMeta, deps: ProxyDeps): Promise<void> {
  let proxy = proxies.get(deps);
  if (!proxy) {
    proxy = new HttpProxy(deps);
    proxies.set(deps, proxy);
  }
  return proxy.serveConnection(conn, meta);
}

/** Closes the proxy `serveConnection` made for `deps`, if any. */
export function closeProxy(deps: ProxyDeps): void {
  proxies.get(deps)?.close();
  proxies.delete(deps);
}

/** A request's handling never rejects into the void: a bug is logged, and the proxy serves on. */
function served(handling: Promise<void>, deps: ProxyDeps): void {
  handling.catch((err: unknown) => deps.log.error({ err: describeError(err) }, 'a request handler failed'));
}
