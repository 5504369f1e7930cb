// Requests to backend endpoints over the connector's tunnels: HTTP/1.1 through a keep-alive
// `http.Agent` per endpoint, h2c through one HTTP/2 session per endpoint, reused while it lives. Each
// request is an `UpstreamExchange`: a body to write, and a response (or the reason there is none).

import type * as http from 'node:http';
import * as http2 from 'node:http2';
import { type Duplex, type Readable, Writable } from 'node:stream';
import { AmbitError } from '../../errors/index.ts';
import { http as nodeHttp } from '../../os/index.ts';
import { WAYPOINT_ERRORS } from '../errors.ts';
import type { CircuitBreakers } from '../traffic-policy/index.ts';
import type { Headers } from './headers.ts';
import type { ResetReason } from './replies.ts';
import type { ConnectOptions, Endpoint, ProxyDeps } from './types.ts';

export const ERR_UPSTREAM = WAYPOINT_ERRORS.UPSTREAM;

/** An attempt that got no response headers: why (Envoy's reset reason), and the error beneath. */
export class UpstreamError extends AmbitError {
  readonly reason: ResetReason;
  constructor(reason: ResetReason, endpoint: Endpoint, cause: unknown) {
    super(ERR_UPSTREAM, `upstream ${endpoint.address}:${endpoint.port}: ${reason}`, { cause });
    this.reason = reason;
  }
}

export interface UpstreamHead {
  method: string;
  path: string;
  authority: string;
  headers: Headers;
}

export interface UpstreamResponse {
  status: number;
  headers: Headers;
  /** Headers and end of stream in one (an HTTP/2 trailers-only response, as gRPC errors are sent). */
  endOfStream: boolean;
  body: Readable;
  /** The trailers, once `body` has ended (undefined when there were none). */
  trailers(): Headers | undefined;
  /** Resolves when the body ended cleanly; rejects when the backend reset it or its connection ended. */
  done: Promise<void>;
}

export interface UpstreamExchange {
  body: Writable;
  response: Promise<UpstreamResponse>;
  /** Abandons the request (the client left, a timeout, a retry): the stream or connection is reset. */
  abort(): void;
}

type Protocol = 'http1' | 'h2c';

/** The backend (cluster) a request belongs to, whose connection limits apply. */
export interface ClusterLimits {
  /** `namespace/name:port`. */
  cluster: string;
  breakers: CircuitBreakers;
}

/** An exchange refused before it started (a pool limit): its response rejects with `reason`. */
function refused(endpoint: Endpoint, reason: ResetReason): UpstreamExchange {
  const response = Promise.reject(new UpstreamError(reason, endpoint, undefined));
  response.catch(() => {});
  const body = new Writable({ write: (_c, _e, cb) => cb() });
  return { body, response, abort: () => {} };
}

interface ClusterAgent {
  agent: http.Agent;
  /** The limits it was made for; other limits mean a new agent. */
  shape: string;
}

const ENDPOINT = Symbol('ambit.endpoint');
/** On a request's options: how its connection is opened (originated TLS's name), and its pool's tag. */
const CONNECT = Symbol('ambit.connect');
const POOL_TAG = Symbol('ambit.pool-tag');

/** The host of an authority (`name:port`, `[v6]:port`), as SNI names it. */
function hostOf(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(1, authority.indexOf(']'));
  const colon = authority.lastIndexOf(':');
  return colon < 0 ? authority : authority.slice(0, colon);
}

/**
 * How a request to `endpoint` opens its connection: for an endpoint the waypoint originates TLS to, the
 * request's host as the SNI (Envoy's auto_sni, when the rule sets none) and `h2` offered for HTTP/2;
 * and the tag that keeps such connections apart (one name's connection never serves another's).
 */
export function connectionFor(
  endpoint: Endpoint,
  authority: string | undefined,
  protocol?: Protocol,
): { opts: ConnectOptions | undefined; tag: string } {
  const tls = endpoint.tls;
  if (!tls) return PLAIN;
  const opts: ConnectOptions = {
    ...(authority ? { serverName: hostOf(authority) } : {}),
    ...(protocol === 'h2c' ? { alpn: ['h2'] } : {}),
  };
  let rule = ruleTags.get(tls);
  if (rule === undefined) {
    rule = `|tls ${JSON.stringify(tls)}`;
    ruleTags.set(tls, rule);
  }
  return { opts, tag: `${rule}|${tls.sni ?? opts.serverName ?? ''}` };
}

/** What a connection to a mesh endpoint needs beyond its address: nothing (the common case, shared). */
const PLAIN = Object.freeze({ opts: undefined, tag: '' });
/** Each rule's part of a pool tag, worked out once per rule (endpoints share the rule's object). */
const ruleTags = new WeakMap<object, string>();

/** Node's agent keeps sockets alive with socket-only calls; a tunnel's stream may not have them. */
function asSocketLike(d: Duplex): Duplex {
  const s = d as Duplex & Record<string, unknown>;
  for (const name of ['setKeepAlive', 'setNoDelay', 'ref', 'unref']) {
    if (typeof s[name] !== 'function') s[name] = () => s;
  }
  if (typeof s.setTimeout !== 'function') s.setTimeout = () => s;
  // An HTTP/1 backend that closes an idle keep-alive connection half-closes the tunnel: the stream ends
  // but never closes, and the agent would hand the dead connection to the next request (which then
  // hangs). A backend's end is the connection's end: destroy it, once the parser has seen the EOF.
  d.once('end', () => setImmediate(() => d.destroy()));
  return d;
}

function tagged(err: unknown): Error {
  return Object.assign(err instanceof Error ? err : new Error(String(err)), { ambitConnectFailure: true });
}

function isConnectFailure(err: unknown): boolean {
  return (err as { ambitConnectFailure?: boolean } | undefined)?.ambitConnectFailure === true;
}

export class UpstreamPool {
  private readonly agents = new Map<string, ClusterAgent>();
  private readonly sessions = new Map<string, Promise<http2.ClientHttp2Session>>();
  /** Sessions that are open (a request to one of them waits for no connection). */
  private readonly ready = new Set<string>();
  private readonly closing = new AbortController();
  private readonly connect: ProxyDeps['connect'];
  private readonly connectTimeoutMs: number;

  constructor(connect: ProxyDeps['connect'], connectTimeoutMs: number) {
    this.connect = connect;
    this.connectTimeoutMs = connectTimeoutMs;
  }

  /** Opens a tunnel to `endpoint`, failing after the connect timeout or when the pool closes. */
  async open(endpoint: Endpoint, signal?: AbortSignal, opts?: ConnectOptions): Promise<Duplex> {
    const signals = [this.closing.signal, AbortSignal.timeout(this.connectTimeoutMs)];
    if (signal) signals.push(signal);
    try {
      return await this.connect(endpoint, AbortSignal.any(signals), opts);
    } catch (err) {
      throw tagged(err);
    }
  }

  /**
   * Starts a request to `endpoint`. With `limits`, it waits for a connection only if the backend's
   * pending-request limit allows (else the response rejects with reason `overflow`), HTTP/1 connections
   * to the backend stay within maxConnections, and a connection serves at most maxRequestsPerConnection.
   */
  request(
    endpoint: Endpoint,
    protocol: Protocol,
    head: UpstreamHead,
    limits?: ClusterLimits,
  ): UpstreamExchange {
    return protocol === 'h2c'
      ? this.h2Request(endpoint, head, limits)
      : this.h1Request(endpoint, head, limits);
  }

  /** Closes every idle connection and session; requests in flight are reset. */
  close(): void {
    this.closing.abort(new AmbitError(WAYPOINT_ERRORS.CLOSED, 'the waypoint is shutting down'));
    for (const a of this.agents.values()) a.agent.destroy();
    this.agents.clear();
    for (const s of this.sessions.values())
      s.then(
        (x) => x.destroy(),
        () => {},
      );
    this.sessions.clear();
  }

  /** Open upstream connections (HTTP/1 sockets in use or idle, HTTP/2 sessions), for tests and the admin. */
  stats(): { http1Sockets: number; h2Sessions: number } {
    let http1Sockets = 0;
    for (const { agent: a } of this.agents.values()) {
      for (const list of Object.values(a.sockets)) http1Sockets += list?.length ?? 0;
      for (const list of Object.values(a.freeSockets)) http1Sockets += list?.length ?? 0;
    }
    return { http1Sockets, h2Sessions: this.sessions.size };
  }

  /**
   * The keep-alive agent of a backend (one per cluster, so maxConnections counts all its endpoints);
   * without limits, one per endpoint as before. Sockets are named per endpoint (`address:port`).
   */
  private agent(endpoint: Endpoint, limits: ClusterLimits | undefined): http.Agent {
    const l = limits?.breakers.limits;
    const key = limits
      ? `cluster ${limits.cluster}`
      : `${endpoint.address}:${endpoint.port}${connectionFor(endpoint, undefined).tag}`;
    const shape = l ? `${l.maxConnections}/${l.maxRequestsPerConnection}` : '';
    const existing = this.agents.get(key);
    if (existing && existing.shape === shape) return existing.agent;
    if (existing) retire(existing.agent);
    const agent = new nodeHttp.Agent({
      keepAlive: true,
      scheduling: 'lifo',
      ...(l && Number.isFinite(l.maxConnections) ? { maxTotalSockets: l.maxConnections } : {}),
    });
    // Connections with originated TLS are pooled per name as well as per endpoint.
    const baseName = agent.getName.bind(agent);
    agent.getName = (o) => `${baseName(o)}${(o as { [POOL_TAG]?: string })[POOL_TAG] ?? ''}`;
    // The callback form: the agent waits for the tunnel instead of a socket returned at once.
    (agent as unknown as { createConnection: unknown }).createConnection = (
      options: { [ENDPOINT]?: Endpoint; [CONNECT]?: ConnectOptions },
      callback: (err: Error | null, socket?: Duplex) => void,
    ) => {
      this.open(options[ENDPOINT] ?? endpoint, undefined, options[CONNECT]).then(
        (d) => callback(null, asSocketLike(d)),
        (err) => callback(tagged(err)),
      );
      return undefined;
    };
    const perConnection = l?.maxRequestsPerConnection ?? Number.POSITIVE_INFINITY;
    if (Number.isFinite(perConnection)) {
      // Envoy's max_requests_per_connection: the connection is closed once it served that many.
      const served = new WeakMap<object, number>();
      const keep = agent.keepSocketAlive.bind(agent);
      agent.keepSocketAlive = (socket) => (served.get(socket) ?? 0) < perConnection && keep(socket);
      (agent as unknown as { served: WeakMap<object, number> }).served = served;
    }
    this.agents.set(key, { agent, shape });
    // Bounded: beyond the cap, the oldest agents with no connection in use are retired (a client that
    // walks ports of a workload through its waypoint must not grow this without end).
    if (this.agents.size > MAX_AGENTS) {
      for (const [k, a] of this.agents) {
        if (this.agents.size <= MAX_AGENTS) break;
        if (a.agent !== agent && Object.keys(a.agent.sockets).length === 0) {
          retire(a.agent);
          this.agents.delete(k);
        }
      }
    }
    return agent;
  }

  private h1Request(endpoint: Endpoint, head: UpstreamHead, limits?: ClusterLimits): UpstreamExchange {
    const agent = this.agent(endpoint, limits);
    const how = connectionFor(endpoint, head.authority, 'http1');
    const target = { host: endpoint.address, port: endpoint.port, [POOL_TAG]: how.tag };
    // Envoy's pending requests: those that find no idle connection and wait for one (a new one included).
    let pending = false;
    if (limits) {
      const idle = agent.freeSockets[agent.getName(target)]?.length ?? 0;
      if (idle === 0) {
        if (!limits.breakers.tryPending()) return refused(endpoint, 'overflow');
        pending = true;
      }
    }
    const stopPending = () => {
      if (pending) limits?.breakers.pendingDone();
      pending = false;
    };
    const req = nodeHttp.request({
      agent,
      ...target,
      [ENDPOINT]: endpoint,
      [CONNECT]: how.opts,
      method: head.method,
      path: head.path,
      setHost: false,
      headers: { ...head.headers, host: head.authority } as http.OutgoingHttpHeaders,
    } as http.RequestOptions);
    const served = (agent as unknown as { served?: WeakMap<object, number> }).served;
    req.once('socket', (socket) => {
      stopPending();
      served?.set(socket, (served.get(socket) ?? 0) + 1);
    });
    req.once('close', stopPending);
    let gotResponse = false;
    const response = new Promise<UpstreamResponse>((resolve, reject) => {
      req.once('error', (err) => {
        stopPending();
        if (gotResponse) return;
        reject(
          new UpstreamError(
            isConnectFailure(err) ? 'connection failure' : 'connection termination',
            endpoint,
            err,
          ),
        );
      });
      req.once('response', (res) => {
        gotResponse = true;
        const done = new Promise<void>((ok, fail) => {
          res.once('end', ok);
          res.once('aborted', () => fail(new UpstreamError('connection termination', endpoint, undefined)));
          res.once('error', (err) => fail(new UpstreamError('connection termination', endpoint, err)));
          res.once('close', () => {
            if (!res.complete) fail(new UpstreamError('connection termination', endpoint, undefined));
          });
        });
        done.catch(() => {});
        resolve({
          status: res.statusCode ?? 502,
          headers: res.headers,
          endOfStream: false,
          body: res,
          trailers: () => (Object.keys(res.trailers).length > 0 ? res.trailers : undefined),
          done,
        });
      });
    });
    response.catch(() => {});
    return { body: req, response, abort: () => req.destroy() };
  }

  private session(
    endpoint: Endpoint,
    key: string,
    opts: ConnectOptions | undefined,
  ): Promise<http2.ClientHttp2Session> {
    const existing = this.sessions.get(key);
    if (existing) return existing;
    const opening = this.open(endpoint, undefined, opts).then((duplex) => {
      const scheme = endpoint.tls ? 'https' : 'http';
      const session = http2.connect(`${scheme}://${endpoint.address}:${endpoint.port}`, {
        createConnection: () => duplex,
      });
      if (this.sessions.get(key) === opening) this.ready.add(key);
      const forget = () => {
        if (this.sessions.get(key) === opening) {
          this.sessions.delete(key);
          this.ready.delete(key);
        }
      };
      session.once('close', forget);
      session.once('goaway', forget);
      session.on('error', forget);
      return session;
    });
    opening.catch(() => {
      if (this.sessions.get(key) === opening) this.sessions.delete(key);
    });
    this.sessions.set(key, opening);
    return opening;
  }

  private readonly streamsServed = new WeakMap<http2.ClientHttp2Session, number>();

  /** max_requests_per_connection on HTTP/2: the Nth stream is the session's last; it then drains. */
  private countStream(key: string, session: http2.ClientHttp2Session, max: number): void {
    const n = (this.streamsServed.get(session) ?? 0) + 1;
    this.streamsServed.set(session, n);
    if (n < max) return;
    const current = this.sessions.get(key);
    current?.then((s) => {
      if (s !== session || this.sessions.get(key) !== current) return;
      this.sessions.delete(key);
      this.ready.delete(key);
      setImmediate(() => session.close()); // after this stream is opened: close() lets it finish
    });
  }

  private h2Request(endpoint: Endpoint, head: UpstreamHead, limits?: ClusterLimits): UpstreamExchange {
    const how = connectionFor(endpoint, head.authority, 'h2c');
    const key = `${endpoint.address}:${endpoint.port}${how.tag}`;
    // Waiting for the session to open counts as pending, as Envoy counts a stream waiting for a connection.
    let waiting = false;
    if (limits && !this.ready.has(key)) {
      if (!limits.breakers.tryPending()) return refused(endpoint, 'overflow');
      waiting = true;
    }
    const stopWaiting = () => {
      if (waiting) limits?.breakers.pendingDone();
      waiting = false;
    };
    // The body is written to a stand-in until the session exists, so callers write at once either way.
    let stream: http2.ClientHttp2Stream | undefined;
    let aborted = false;
    const pending = new PassThroughSink();
    const session = this.session(endpoint, key, how.opts);
    session.then(stopWaiting, stopWaiting);
    const perConnection = limits?.breakers.limits.maxRequestsPerConnection ?? Number.POSITIVE_INFINITY;
    const response = session.then(
      (session) =>
        new Promise<UpstreamResponse>((resolve, reject) => {
          if (Number.isFinite(perConnection)) this.countStream(key, session, perConnection);
          if (aborted) {
            reject(new UpstreamError('connection termination', endpoint, new Error('aborted')));
            return;
          }
          let s: http2.ClientHttp2Stream;
          try {
            s = session.request({
              ':method': head.method,
              ':path': head.path,
              ':authority': head.authority,
              ':scheme': endpoint.tls ? 'https' : 'http',
              ...head.headers,
            });
          } catch (err) {
            reject(new UpstreamError('connection termination', endpoint, err));
            return;
          }
          stream = s;
          pending.pipeTo(s);
          let gotResponse = false;
          let trailers: Headers | undefined;
          s.on('trailers', (t) => {
            trailers = t as Headers;
          });
          s.once('error', (err) => {
            if (!gotResponse) reject(new UpstreamError('remote reset', endpoint, err));
          });
          s.once('close', () => {
            if (!gotResponse) reject(new UpstreamError('remote reset', endpoint, undefined));
          });
          s.once('response', (h, flags) => {
            gotResponse = true;
            const { ':status': status, ...headers } = h;
            const endOfStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
            const done = new Promise<void>((ok, fail) => {
              s.once('close', () => {
                if (s.rstCode === http2.constants.NGHTTP2_NO_ERROR) ok();
                else fail(new UpstreamError('remote reset', endpoint, undefined));
              });
            });
            done.catch(() => {});
            resolve({
              status: Number(status ?? 502),
              headers: headers as Headers,
              endOfStream,
              body: s,
              trailers: () => trailers,
              done,
            });
          });
        }),
      (err) => {
        throw err instanceof UpstreamError ? err : new UpstreamError('connection failure', endpoint, err);
      },
    );
    response.catch(() => {});
    return {
      body: pending,
      response,
      abort: () => {
        aborted = true;
        stopWaiting();
        pending.destroy();
        if (stream && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
      },
    };
  }
}

/**
 * A writable that holds what is written until `pipeTo` names the real destination, then forwards with
 * the destination's backpressure (its 'drain' becomes ours).
 */
class PassThroughSink extends Writable {
  private target: Writable | undefined;
  private held: Array<{ chunk: Buffer; cb: (err?: Error | null) => void }> = [];
  private finalCb: ((err?: Error | null) => void) | undefined;

  pipeTo(target: Writable): void {
    this.target = target;
    for (const { chunk, cb } of this.held) this.forward(chunk, cb);
    this.held = [];
    if (this.finalCb) target.end(this.finalCb);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.target) this.forward(chunk, cb);
    else this.held.push({ chunk, cb });
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.target) this.target.end(() => cb());
    else this.finalCb = cb;
  }

  private forward(chunk: Buffer, cb: (err?: Error | null) => void): void {
    const target = this.target as Writable;
    if (target.destroyed) {
      cb();
      return;
    }
    if (target.write(chunk)) cb();
    else target.once('drain', () => cb());
  }
}

/** An agent replaced by one with other limits: it serves its requests in flight, then lets go. */
/** Keep-alive agents kept at most (one per endpoint, or per backend with limits). */
const MAX_AGENTS = 4096;

function retire(agent: http.Agent): void {
  agent.keepSocketAlive = () => false;
  for (const list of Object.values(agent.freeSockets)) for (const s of list ?? []) s.destroy();
}
