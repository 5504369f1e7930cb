// `ambit sample echo`: answers every HTTP/1.1 or h2c request with JSON describing the pod that
// served it and the request it saw; `?delay=`, `?status=`, `?size=` and `?fail=` shape the answer.
// An HTTP/1.1 WebSocket upgrade is answered too: each message comes back as it was sent.

import { setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import { AmbitError } from '../errors/index.ts';
import { logger } from '../log/index.ts';
import { SAMPLE_ERRORS } from './errors.ts';
import { type AnyRequest, type AnyResponse, errorBody, sendJson } from './http.ts';
import { startHttpSample } from './http-server.ts';
import type { ListenOptions, SampleServer } from './lifecycle.ts';
import { type PodInfo, type PodOverrides, resolvePod } from './pod.ts';
import { WebSocketEcho } from './websocket.ts';

export const SAMPLE_BAD_QUERY = SAMPLE_ERRORS.BAD_QUERY;
export const MAX_DELAY_MS = 60_000;
export const MAX_SIZE_BYTES = 64 * 1024 * 1024;
/** The status of an injected failure (`?fail=`): what Envoy and retry policies call retriable. */
export const INJECTED_FAILURE_STATUS = 503;
export const SAMPLE_INJECTED_FAILURE = SAMPLE_ERRORS.INJECTED_FAILURE;

export interface EchoOptions extends ListenOptions {
  /** Identity overrides; unset fields come from the AMBIT_* environment. */
  pod?: PodOverrides;
  /** Draws the `?fail=` coin, a number in [0, 1); Math.random unless a test fixes it. */
  random?: () => number;
}

/** What the query asks the echo to do. */
export interface EchoShape {
  delayMs: number;
  status: number;
  sizeBytes: number;
  /** Probability in [0, 1] of answering 503 instead of the echo. */
  failProbability: number;
}

/** The JSON the echo answers with. */
export interface EchoReply {
  pod: string;
  version: string | null;
  namespace: string;
  node: string;
  serviceAccount: string;
  request: {
    method: string;
    path: string;
    authority: string | null;
    query: Record<string, string | string[]>;
    headers: Record<string, string | string[]>;
    httpVersion: string;
    peer: { address: string | null; port: number | null };
    /** Over TLS: the name the client asked for (SNI) and the protocol ALPN settled. */
    tls?: { sni: string | null; alpn: string | null };
  };
  payload?: string;
}

const log = logger('sample-echo');

/**
 * Reads `delay`, `status`, `size` and `fail` from a query. Throws AmbitError SAMPLE_BAD_QUERY with
 * `detail.parameter` naming the first bad one.
 */
export function parseEchoQuery(query: URLSearchParams): EchoShape {
  return {
    delayMs: intParam(query, 'delay', 0, MAX_DELAY_MS, 0, 'milliseconds'),
    status: intParam(query, 'status', 200, 599, 200, 'an HTTP status'),
    sizeBytes: intParam(query, 'size', 0, MAX_SIZE_BYTES, 0, 'bytes'),
    failProbability: probabilityParam(query, 'fail'),
  };
}

const badParam = (name: string, why: string) =>
  new AmbitError(SAMPLE_BAD_QUERY, `query parameter '${name}' ${why}`, { detail: { parameter: name } });

/** The one value of `name`, or undefined when absent; given twice is an error. */
function oneValue(query: URLSearchParams, name: string): string | undefined {
  const values = query.getAll(name);
  if (values.length === 0) return undefined;
  if (values.length > 1) throw badParam(name, 'is given more than once; give it once');
  return values[0] ?? '';
}

function intParam(
  query: URLSearchParams,
  name: string,
  min: number,
  max: number,
  fallback: number,
  unit: string,
): number {
  const text = oneValue(query, name);
  if (text === undefined) return fallback;
  const value = /^\d{1,9}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw badParam(name, `must be an integer from ${min} to ${max} (${unit}), got '${text}'`);
  }
  return value;
}

/** A probability written as a plain decimal from 0 to 1 (`0`, `0.5`, `1`, `.25`); 0 when absent. */
function probabilityParam(query: URLSearchParams, name: string): number {
  const text = oneValue(query, name);
  if (text === undefined) return 0;
  const value = /^(?:\d{1,9}(?:\.\d{0,9})?|\.\d{1,9})$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= 0 && value <= 1)) {
    throw badParam(name, `must be a probability from 0 to 1, e.g. 0.5, got '${text}'`);
  }
  return value;
}

/** The echo answer for a request, without the padding. Pure: it only reads the request. */
export function describeRequest(pod: PodInfo, req: AnyRequest, url: URL): EchoReply {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    // HTTP/2 pseudo-headers are reported as method, path and authority instead.
    if (name.startsWith(':') || value === undefined) continue;
    headers[name] = value;
  }
  const query: Record<string, string | string[]> = {};
  for (const key of new Set(url.searchParams.keys())) {
    const all = url.searchParams.getAll(key);
    query[key] = all.length === 1 ? (all[0] ?? '') : all;
  }
  const authority = req.headers[':authority'] ?? req.headers.host;
  return {
    pod: pod.pod,
    version: pod.version ?? null,
    namespace: pod.namespace,
    node: pod.node,
    serviceAccount: pod.serviceAccount,
    request: {
      method: req.method ?? 'GET',
      path: url.pathname,
      authority: typeof authority === 'string' ? authority : null,
      query,
      headers,
      httpVersion: req.httpVersion,
      peer: { address: req.socket.remoteAddress ?? null, port: req.socket.remotePort ?? null },
      ...tlsOf(req),
    },
  };
}

/** What a TLS connection said of itself; nothing for cleartext. */
function tlsOf(req: AnyRequest): { tls?: { sni: string | null; alpn: string | null } } {
  const socket = req.socket as Partial<TLSSocket>;
  if (socket.encrypted !== true) return {};
  const sni = socket.servername;
  const alpn = socket.alpnProtocol;
  return { tls: { sni: typeof sni === 'string' ? sni : null, alpn: typeof alpn === 'string' ? alpn : null } };
}

/** Starts the echo server (HTTP/1.1 and h2c prior knowledge on one port). */
export async function startEcho(options: EchoOptions): Promise<SampleServer> {
  const pod = resolvePod(options.pod);
  const random = options.random ?? Math.random;
  return startHttpSample(
    options,
    log,
    (req, res) => handle(pod, random, req, res),
    options.tls
      ? 'echo listening (HTTPS: HTTP/1.1, h2 and WebSocket)'
      : 'echo listening (HTTP/1.1, h2c and WebSocket)',
    {
      pod: pod.pod,
      version: pod.version,
    },
    new WebSocketEcho(log),
  );
}

async function handle(pod: PodInfo, random: () => number, req: AnyRequest, res: AnyResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://echo.invalid');
  // One access line per request, so a test can count what reached this pod (a mirror's copies, say).
  res.once('finish', () =>
    log.info(
      {
        method: req.method,
        path: url.pathname,
        authority: req.headers[':authority'] ?? req.headers.host,
        status: res.statusCode,
        peer: req.socket.remoteAddress,
      },
      'access',
    ),
  );
  let shape: EchoShape;
  try {
    shape = parseEchoQuery(url.searchParams);
  } catch (err) {
    if (!(err instanceof AmbitError)) throw err;
    sendJson(req, res, 400, errorBody(err.code, err.message, { parameter: err.detail?.parameter }));
    return;
  }
  // Drain the request body so HTTP/1.1 keep-alive stays usable; the echo does not report it.
  req.resume();
  if (shape.delayMs > 0) {
    const gone = new AbortController();
    const onClose = () => gone.abort();
    res.once('close', onClose);
    try {
      await sleep(shape.delayMs, undefined, { signal: gone.signal });
    } catch {
      return; // The client left (or the server was forced shut) while we waited.
    } finally {
      res.off('close', onClose);
    }
  }
  if (shape.failProbability > 0 && random() < shape.failProbability) {
    sendJson(
      req,
      res,
      INJECTED_FAILURE_STATUS,
      errorBody(SAMPLE_INJECTED_FAILURE, `failure injected by ?fail=${shape.failProbability}`, {
        pod: pod.pod,
        version: pod.version ?? null,
      }),
    );
    return;
  }
  const reply = describeRequest(pod, req, url);
  if (shape.sizeBytes > 0) reply.payload = 'x'.repeat(shape.sizeBytes);
  sendJson(req, res, shape.status, reply);
}
