// CUSTOM authorization: asks the extension provider's external authorizer about a request over HTTP, as
// Envoy's ext_authz HTTP service does for Istio's `envoyExtAuthzHttp`: the request's method, path (after
// `pathPrefix`), Host, Authorization and the headers the provider names, with an empty body; a 200 allows
// it, any other answer is a denial passed to the client as the authorizer wrote it; a failure (cannot
// connect, timeout) denies with `statusOnError` (default 403) unless `failOpen`. A denial's flag is UAEX.

import type * as http from 'node:http';
import type { ExtAuthzHttpProvider } from '../../config/index.ts';
import { parseDuration } from '../../config/index.ts';
import { describeError } from '../../errors/index.ts';
import { http as nodeHttp } from '../../os/index.ts';
import { stringMatches } from '../../policy/index.ts';
import type { Headers } from '../http/headers.ts';
import type { Endpoint, GateReply, GateUpstream } from '../http/types.ts';

/** Istio's default for `envoyExtAuthzHttp.timeout`. */
const DEFAULT_TIMEOUT_MS = 600_000;
/** What of an authorizer's denial body is passed on; more is cut (a misbehaving authorizer cannot fill memory). */
const MAX_BODY_BYTES = 64 * 1024;
/** Envoy always sends these to an HTTP authorization service, besides those the provider lists. */
const ALWAYS_SENT = ['authorization'];

const EXT_AUTHZ_DENIED = 'UAEX';

export type ExtAuthzOutcome =
  | { allow: true; upstreamHeaders: Headers; downstreamHeaders: Headers; error?: string }
  | { allow: false; reply: GateReply; error?: string };

export interface ExtAuthzRequest {
  method: string;
  path: string;
  authority: string;
  headers: Headers;
}

/** How the provider's `service` is reached: a mesh Service's endpoints (over HBONE), or a plain address. */
export type AuthorizerAddress = { mesh: Endpoint[] } | { host: string; port: number };

function firstValue(v: string | readonly string[] | undefined): string | undefined {
  return typeof v === 'string' ? v : v?.[0];
}

/**
 * The headers of `from` that `names` match: Istio's header lists take exact names and `prefix*`,
 * `*suffix` or `*` patterns, case-insensitive (header names are lower-case here).
 */
function picked(from: Headers, names: readonly string[] | undefined): Headers {
  const out: Headers = {};
  if (!names?.length) return out;
  for (const [name, v] of Object.entries(from)) {
    if (v !== undefined && names.some((n) => stringMatches(n.toLowerCase(), name))) out[name] = v;
  }
  return out;
}

/** The check request's head: what Envoy's HTTP ext_authz sends. */
export function checkRequest(provider: ExtAuthzHttpProvider, req: ExtAuthzRequest): ExtAuthzRequest {
  const headers: Headers = {
    ...picked(req.headers, ALWAYS_SENT),
    ...picked(req.headers, provider.includeRequestHeadersInCheck),
    ...provider.includeAdditionalHeadersInCheck,
    'content-length': '0',
  };
  const prefix = provider.pathPrefix ?? '';
  return { method: req.method, path: `${prefix}${req.path}`, authority: req.authority, headers };
}

function errorReply(provider: ExtAuthzHttpProvider): GateReply {
  return {
    status: Number(provider.statusOnError ?? '403'),
    body: '',
    flags: EXT_AUTHZ_DENIED,
    headers: {},
    details: 'ext_authz_error',
  };
}

interface Answer {
  status: number;
  headers: Headers;
  body: Buffer;
}

/** Reads at most MAX_BODY_BYTES of a body, then stops reading. */
function readBody(body: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    body.on('data', (c: Buffer) => {
      if (size >= MAX_BODY_BYTES) return;
      chunks.push(c);
      size += c.length;
    });
    body.on('end', () => resolve(Buffer.concat(chunks).subarray(0, MAX_BODY_BYTES)));
    body.on('error', reject);
  });
}

function viaMesh(
  upstream: GateUpstream,
  endpoint: Endpoint,
  head: ExtAuthzRequest,
  signal: AbortSignal,
): Promise<Answer> {
  const ex = upstream.request(endpoint, head);
  signal.addEventListener('abort', () => ex.abort(), { once: true });
  ex.body.end();
  return ex.response.then(async (res) => ({
    status: res.status,
    headers: res.headers,
    body: await readBody(res.body),
  }));
}

function direct(host: string, port: number, head: ExtAuthzRequest, signal: AbortSignal): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = nodeHttp.request(
      {
        host,
        port,
        method: head.method,
        path: head.path,
        headers: { ...(head.headers as http.OutgoingHttpHeaders), host: head.authority },
        signal,
        agent: false,
      },
      (res) => {
        readBody(res).then(
          (body) => resolve({ status: res.statusCode ?? 500, headers: res.headers as Headers, body }),
          reject,
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * Asks the authorizer. Never throws: an unreachable, slow or broken authorizer is a failure, decided by
 * `failOpen` / `statusOnError`.
 */
export async function checkExternal(
  provider: ExtAuthzHttpProvider,
  address: AuthorizerAddress | undefined,
  req: ExtAuthzRequest,
  upstream: GateUpstream,
  random: () => number = Math.random,
): Promise<ExtAuthzOutcome> {
  const fail = (error: string): ExtAuthzOutcome =>
    provider.failOpen
      ? { allow: true, upstreamHeaders: {}, downstreamHeaders: {}, error }
      : { allow: false, reply: errorReply(provider), error };
  if (!address)
    return fail(
      `the authorizer ${provider.service}:${provider.port} is not a service this waypoint can reach`,
    );
  if ('mesh' in address && address.mesh.length === 0)
    return fail(`the authorizer ${provider.service}:${provider.port} has no endpoint that may take traffic`);
  const head = checkRequest(provider, req);
  const timeoutMs =
    provider.timeout === undefined
      ? DEFAULT_TIMEOUT_MS
      : (parseDuration(provider.timeout) ?? DEFAULT_TIMEOUT_MS);
  const signal = AbortSignal.timeout(Math.max(1, timeoutMs));
  let answer: Answer;
  try {
    answer =
      'mesh' in address
        ? await viaMesh(upstream, address.mesh[Math.floor(random() * address.mesh.length)]!, head, signal)
        : await direct(address.host, address.port, head, signal);
  } catch (err) {
    return fail(signal.aborted ? `the authorizer did not answer within ${timeoutMs} ms` : describeError(err));
  }
  if (answer.status === 200) {
    return {
      allow: true,
      upstreamHeaders: picked(answer.headers, provider.headersToUpstreamOnAllow),
      downstreamHeaders: picked(answer.headers, provider.headersToDownstreamOnAllow),
    };
  }
  const type = firstValue(answer.headers['content-type']);
  return {
    allow: false,
    reply: {
      status: answer.status,
      body: answer.body.toString('utf8'),
      flags: EXT_AUTHZ_DENIED,
      headers: {
        ...(type ? { 'content-type': type } : {}),
        ...picked(answer.headers, provider.headersToDownstreamOnDeny),
      },
      details: 'ext_authz_denied',
    },
  };
}
