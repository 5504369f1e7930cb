// Requests to backend endpoints over the connector's tunnels: HTTP/1.1 through a keep-alive
// `http.Agent` per endpoint, h2c through one HTTP/2 session per endpoint, reused while it lives. Each
// request is an `UpstreamExchange`: a body to write, and a response (or the reason there is none).

import * as http from 'node:http';
import * as http2 from 'node:http2';
import { type Duplex, type Readable, Writable } from 'node:stream';
import { AmbitError } from '../../errors/index.ts';
import type { Headers } from './headers.ts';
import type { ResetReason } from './replies.ts';
import type { Endpoint, ProxyDeps } from './types.ts';

export const ERR_UPSTREAM = 'AMBIT_ERR_WAYPOINT_UPSTREAM';

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

/** Node's agent keeps sockets alive with socket-only calls; a tunnel's stream may not have them. */
function asSocketLike(d: Duplex): Duplex {
  const s = d as Duplex & Record<string, unknown>;
  for (const name of ['setKeepAlive', 'setNoDelay', 'ref', 'unref']) {
    if (typeof s[name] !== 'function') s[name] = () => s;
  }
  if (typeof s.setTimeout !== 'function') s.setTimeout = () => s;
  return d;
}

function tagged(err: unknown): Error {
  return Object.assign(err instanceof Error ? err : new Error(String(err)), { ambitConnectFailure: true });
}

function isConnectFailure(err: unknown): boolean {
  return (err as { ambitConnectFailure?: boolean } | undefined)?.ambitConnectFailure === true;
}

export class UpstreamPool {
  private readonly agents = new Map<string, http.Agent>();
  private readonly sessions = new Map<string, Promise<http2.ClientHttp2Session>>();
  private readonly closing = new AbortController();
  private readonly connect: ProxyDeps['connect'];
  private readonly connectTimeoutMs: number;

  constructor(connect: ProxyDeps['connect'], connectTimeoutMs: number) {
    this.connect = connect;
    this.connectTimeoutMs = connectTimeoutMs;
  }

  /** Opens a tunnel to `endpoint`, failing after the connect timeout or when the pool closes. */
  async open(endpoint: Endpoint, signal?: AbortSignal): Promise<Duplex> {
    const signals = [this.closing.signal, AbortSignal.timeout(this.connectTimeoutMs)];
    if (signal) signals.push(signal);
    try {
      return await this.connect(endpoint, AbortSignal.any(signals));
    } catch (err) {
      throw tagged(err);
    }
  }

  request(endpoint: Endpoint, protocol: Protocol, head: UpstreamHead): UpstreamExchange {
    return protocol === 'h2c' ? this.h2Request(endpoint, head) : this.h1Request(endpoint, head);
  }

  /** Closes every idle connection and session; requests in flight are reset. */
  close(): void {
    this.closing.abort(new AmbitError('AMBIT_ERR_WAYPOINT_CLOSED', 'the waypoint is shutting down'));
    for (const a of this.agents.values()) a.destroy();
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
    for (const a of this.agents.values()) {
      for (const list of Object.values(a.sockets)) http1Sockets += list?.length ?? 0;
      for (const list of Object.values(a.freeSockets)) http1Sockets += list?.length ?? 0;
    }
    return { http1Sockets, h2Sessions: this.sessions.size };
  }

  private agent(endpoint: Endpoint): http.Agent {
    const key = `${endpoint.address}:${endpoint.port}`;
    let agent = this.agents.get(key);
    if (agent) return agent;
    agent = new http.Agent({ keepAlive: true, scheduling: 'lifo' });
    // The callback form: the agent waits for the tunnel instead of a socket returned at once.
    (agent as unknown as { createConnection: unknown }).createConnection = (
      _options: unknown,
      callback: (err: Error | null, socket?: Duplex) => void,
    ) => {
      this.open(endpoint).then(
        (d) => callback(null, asSocketLike(d)),
        (err) => callback(tagged(err)),
      );
      return undefined;
    };
    this.agents.set(key, agent);
    return agent;
  }

  private h1Request(endpoint: Endpoint, head: UpstreamHead): UpstreamExchange {
    const req = http.request({
      agent: this.agent(endpoint),
      method: head.method,
      path: head.path,
      setHost: false,
      headers: { ...head.headers, host: head.authority } as http.OutgoingHttpHeaders,
    });
    let gotResponse = false;
    const response = new Promise<UpstreamResponse>((resolve, reject) => {
      req.once('error', (err) => {
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

  private session(endpoint: Endpoint): Promise<http2.ClientHttp2Session> {
    const key = `${endpoint.address}:${endpoint.port}`;
    const existing = this.sessions.get(key);
    if (existing) return existing;
    const opening = this.open(endpoint).then((duplex) => {
      const session = http2.connect(`http://${key}`, { createConnection: () => duplex });
      const forget = () => {
        if (this.sessions.get(key) === opening) this.sessions.delete(key);
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

  private h2Request(endpoint: Endpoint, head: UpstreamHead): UpstreamExchange {
    // The body is written to a stand-in until the session exists, so callers write at once either way.
    let stream: http2.ClientHttp2Stream | undefined;
    let aborted = false;
    const pending = new PassThroughSink();
    const response = this.session(endpoint).then(
      (session) =>
        new Promise<UpstreamResponse>((resolve, reject) => {
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
              ':scheme': 'http',
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
