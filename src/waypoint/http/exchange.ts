// One request through the waypoint, in fixed phases: route it (decide), answer it locally or forward it
// (attempts, retries within the budget, timeouts, mirrors), stream the response back, and record it
// (one access-log line and the Istio request metrics, always, in `finally`).

import { performance } from 'node:perf_hooks';
import { describeError } from '../../errors/index.ts';
import type { Logger } from '../../log/index.ts';
import {
  PROPAGATION_HEADERS,
  type RequestLabels,
  type RequestSpan,
  type UpstreamAttempt,
} from '../../telemetry/index.ts';
import { serviceKeyParts } from '../../xds/index.ts';
import {
  abortReply,
  DELAY_INJECTED,
  type FaultReply,
  faultFor,
  httpToGrpcStatus,
  invalidFilterReply,
} from '../fault.ts';
import { type RouteDecision, type RouteRequest, requestTarget } from '../route-types.ts';
import {
  grpcToHttpStatus,
  type HashChoice,
  hashChoice,
  newConnectionId,
  type OutlierResult,
} from '../traffic-policy/index.ts';
import type { BackendState, Backends } from './balance.ts';
import { BodyFeed, RETRY_BUFFER_BYTES } from './body.ts';
import type { Downstream } from './downstream.ts';
import {
  downstreamResponseHeaders,
  first,
  type Headers,
  shadowAuthority,
  upstreamRequestHeaders,
} from './headers.ts';
import {
  BAD_REQUEST,
  FLAGS,
  type LocalReply,
  NO_HEALTHY_UPSTREAM,
  OVERLOADED_HEADERS,
  resetBeforeHeaders,
  UPSTREAM_OVERFLOW,
  UPSTREAM_TIMEOUT,
} from './replies.ts';
import {
  type ConnectionMeta,
  type Endpoint,
  type GateReply,
  type GateVerdict,
  type ProxyDeps,
  workloadTargetAddress,
} from './types.ts';
import {
  UpstreamError,
  type UpstreamExchange,
  type UpstreamHead,
  type UpstreamPool,
  type UpstreamResponse,
} from './upstream.ts';

/** How long a mirror may take when its route sets no timeout. */
const MIRROR_TIMEOUT_MS = 60_000;

type Forward = Extract<RouteDecision, { kind: 'forward' }>;

/** What the proxy shares across requests: dependencies, upstream connections, per-backend state. */
export interface ProxyContext {
  deps: ProxyDeps;
  pool: UpstreamPool;
  /** Per backend: load balancer, outlier detector, circuit breakers, retry budget. */
  backends: Backends;
  accessLog: Logger;
  random: () => number;
  serviceHost: (service: string) => string;
}

/** The connection a request arrived on: its meta, and the protocol spoken to backends for it. */
export interface ConnectionState {
  meta: ConnectionMeta;
  upstream: 'http1' | 'h2c';
  /** A value stable for the connection: a generated hash cookie's value (made on first need). */
  id?: string;
}

/** What the access log and the metrics say of one request; filled in as the phases run. */
export interface RequestRecord {
  method: string;
  path: string;
  authority: string;
  protocol: string;
  service: string;
  route?: string;
  backend?: string;
  upstream?: string;
  endpoint?: Endpoint;
  status: number;
  flags: string;
  grpc_status?: string;
  attempts: number;
  bytes_received: number;
  bytes_sent: number;
  duration_ms: number;
  source_principal: string;
  /** Why the proxy answered itself, in Envoy's words (`rbac_access_denied_matched_policy[...]`). */
  details?: string;
  /** What request policy decided (the policy, AUDIT and dry-run hits). */
  policy?: Record<string, unknown>;
  error?: string;
}

function isGrpc(headers: Headers): boolean {
  return (first(headers['content-type']) ?? '').startsWith('application/grpc');
}

/** The consistent-hash key of a request (and a cookie to set), when the backend hashes. */
function hashFor(ds: Downstream, path: string, conn: ConnectionState, state: BackendState): HashChoice {
  const lb = state.policy.loadBalancer;
  if (lb.kind !== 'RING_HASH') return {};
  return hashChoice(lb.key, {
    headers: ds.headers,
    path,
    ...(conn.meta.peerAddress ? { sourceAddress: conn.meta.peerAddress } : {}),
    get connectionId() {
      conn.id ??= newConnectionId();
      return conn.id;
    },
  });
}

/** How an attempt's outcome counts for outlier detection (Envoy's non-split mode); undefined: not at all. */
function outlierResult(outcome: AttemptOutcome, timedOut: boolean): OutlierResult | undefined {
  switch (outcome.kind) {
    case 'response': {
      const { res } = outcome;
      const grpc = res.endOfStream ? first(res.headers['grpc-status']) : undefined;
      return { status: grpc !== undefined ? grpcToHttpStatus(Number(grpc)) : res.status };
    }
    case 'failed':
      return outcome.err.reason === 'overflow' ? undefined : 'connect-failed';
    case 'attemptTimeout':
      return 'timeout';
    case 'stopped':
      return timedOut ? 'timeout' : undefined;
  }
}

/** Serves one request on `ds` for the connection `conn`; never throws. */
export async function handleRequest(ds: Downstream, conn: ConnectionState, ctx: ProxyContext): Promise<void> {
  const started = performance.now();
  const rec: RequestRecord = {
    method: ds.method,
    path: ds.path,
    authority: ds.authority,
    protocol: ds.protocol,
    service: conn.meta.service,
    status: 0,
    flags: FLAGS.none,
    attempts: 0,
    bytes_received: 0,
    bytes_sent: 0,
    duration_ms: 0,
    source_principal: conn.meta.source.principal,
  };
  const grpc = isGrpc(ds.headers);
  const target = requestTarget(ds.path, ds.method);
  if ('invalid' in target || /[a-z]/.test(ds.method)) {
    // Before routes and policies: what they could not read the same way as the backend is refused.
    rec.details = 'invalid' in target ? target.invalid : 'the method is not upper-case';
    localReply(ds, rec, BAD_REQUEST);
    ds.body.resume();
    rec.duration_ms = Math.round((performance.now() - started) * 1000) / 1000;
    record(ctx, conn, rec, grpc);
    return;
  }
  const { path } = target;
  const authority = target.authority ?? ds.authority;
  rec.path = path;
  rec.authority = authority;
  const tracing = ctx.deps.tracing?.(conn.meta);
  const span = tracing?.tracer.startRequest(
    {
      method: ds.method,
      path,
      host: authority,
      headers: ds.headers,
      protocol: ds.protocol,
      ...(conn.meta.peerAddress ? { peerAddress: conn.meta.peerAddress } : {}),
    },
    tracing.settings,
  );
  try {
    const req: RouteRequest = {
      method: ds.method,
      path,
      headers: ds.headers,
      authority,
      sourceNamespace: conn.meta.source.namespace,
    };
    let decision: RouteDecision;
    try {
      decision = ctx.deps.routes().decide(conn.meta.service, conn.meta.port, req, ctx.random);
    } catch (err) {
      rec.error = describeError(err);
      decision = { kind: 'respond', status: 500, headers: {}, body: 'route evaluation failed', flags: '-' };
    }
    rec.route = decision.route;
    const gate = ctx.deps.gate?.admit(
      {
        method: ds.method,
        path,
        authority,
        headers: ds.headers,
        meta: conn.meta,
        route: decision.route,
      },
      { request: (endpoint, head) => ctx.pool.request(endpoint, 'http1', head) },
    );
    const verdict = gate === undefined ? undefined : await gate;
    if (verdict?.log) rec.policy = verdict.log;
    if (verdict?.path !== undefined) {
      // JWT authentication took a token out of the query: the request is routed as it now reads.
      req.path = verdict.path;
      rec.path = verdict.path;
      decision = ctx.deps.routes().decide(conn.meta.service, conn.meta.port, req, ctx.random);
    }
    if (verdict?.reply) {
      rec.details = verdict.reply.details;
      const reply = grpc ? asGrpcReply(verdict.reply) : verdict.reply;
      if (grpc) rec.grpc_status = reply.headers['grpc-status'] as string;
      localReply(ds, rec, reply, reply.headers);
      ds.body.resume();
      return;
    }
    if (decision.kind === 'respond') {
      rec.flags = decision.flags || FLAGS.none;
      localReply(
        ds,
        rec,
        { status: decision.status, body: decision.body, flags: rec.flags },
        decision.headers,
      );
      ds.body.resume(); // the body is not needed: let it drain so the connection can serve the next request
      return;
    }
    if (decision.extensionRefs.length > 0 && !(await injectFault(ds, decision, ctx, rec, grpc))) return;
    await forward(ds, decision, conn, ctx, rec, verdict, span);
  } catch (err) {
    rec.error = describeError(err);
    if (!ds.headersSent) localReply(ds, rec, { status: 500, body: 'internal error', flags: rec.flags });
    else ds.reset();
  } finally {
    rec.duration_ms = Math.round((performance.now() - started) * 1000) / 1000;
    span?.end(spanResult(ctx, conn, rec));
    record(ctx, conn, rec, grpc);
  }
}

/** What the request's server span says when it ends. */
function spanResult(ctx: ProxyContext, conn: ConnectionState, rec: RequestRecord) {
  const { source } = conn.meta;
  const dst = rec.endpoint?.labels;
  return {
    status: rec.status,
    flags: rec.flags,
    ...(rec.backend ? { upstreamCluster: clusterName(ctx, rec.backend) } : {}),
    source: {
      workload: source.workload,
      namespace: source.namespace,
      principal: source.principal,
      canonicalService: source.canonicalService ?? source.app,
    },
    ...(dst
      ? {
          destination: {
            workload: dst.workload,
            namespace: dst.namespace,
            principal: rec.endpoint?.identity,
            canonicalService: dst.canonicalService ?? dst.app,
          },
        }
      : {}),
  };
}

/** Envoy's name for a backend's cluster: `outbound|<port>||<hostname>`. */
function clusterName(ctx: ProxyContext, backend: string): string {
  const [service = '', port = ''] = backend.split(':');
  const address = workloadTargetAddress(service);
  return `outbound|${port}||${address ?? ctx.serviceHost(service)}`;
}

/** The upstream request's head with this attempt's trace context in place of the client's. */
function traced(head: UpstreamHead, attempt: UpstreamAttempt | undefined): UpstreamHead {
  if (!attempt) return head;
  const headers: Headers = { ...head.headers };
  for (const name of PROPAGATION_HEADERS) delete headers[name];
  return { ...head, headers: { ...headers, ...attempt.headers } };
}

/**
 * The route's ExtensionRef filters (HTTPFault): a delay, then perhaps an abort answered here; false when
 * the request was answered (aborted, an unresolvable filter, or the client left during the delay).
 */
async function injectFault(
  ds: Downstream,
  d: Forward,
  ctx: ProxyContext,
  rec: RequestRecord,
  grpc: boolean,
): Promise<boolean> {
  const fault = faultFor(d.extensionRefs, (ns, name) => ctx.deps.faults?.(ns, name), ctx.random);
  const answer = (reply: FaultReply) => {
    localReply(ds, rec, { status: reply.status, body: reply.body, flags: reply.flags }, reply.headers);
    ds.body.resume();
    return false;
  };
  if ('invalid' in fault) {
    rec.error = fault.invalid;
    return answer(invalidFilterReply(grpc));
  }
  if (fault.delayMs !== undefined) {
    const gone = new AbortController();
    ds.onAbort(() => gone.abort());
    await sleep(fault.delayMs, gone.signal);
    rec.flags = DELAY_INJECTED;
    if (gone.signal.aborted) {
      rec.flags = `${DELAY_INJECTED},${FLAGS.downstreamTermination}`;
      return false;
    }
  }
  if (fault.abort) return answer(abortReply(fault.abort, grpc));
  return true;
}

/** Envoy's local reply to a gRPC request: HTTP 200, trailers-only, the status mapped to a gRPC code. */
function asGrpcReply(reply: GateReply): GateReply {
  return {
    status: 200,
    body: '',
    flags: reply.flags,
    headers: {
      ...reply.headers,
      'content-type': 'application/grpc',
      'grpc-status': String(httpToGrpcStatus(reply.status)),
      'grpc-message': reply.body,
    },
  };
}

function localReply(ds: Downstream, rec: RequestRecord, reply: LocalReply, extra: Headers = {}): void {
  rec.status = reply.status;
  rec.flags = reply.flags;
  try {
    if (ds.headersSent) {
      ds.reset();
      return;
    }
    // A gRPC answer with no body is trailers-only (one HEADERS frame that ends the stream), where gRPC
    // clients read grpc-status; HEADERS and an empty DATA frame would read as "no status".
    if (extra['grpc-status'] !== undefined && reply.body === '') {
      ds.respond(reply.status, { ...extra }, true);
      return;
    }
    const body = Buffer.from(reply.body);
    ds.respond(
      reply.status,
      { 'content-type': 'text/plain', 'content-length': String(body.length), ...extra },
      false,
    );
    rec.bytes_sent += body.length;
    ds.sink.write(body);
    ds.end();
  } catch (err) {
    // The client is already gone (an HTTP/2 stream reset while we answered): nothing left to tell it.
    rec.error ??= describeError(err);
    try {
      ds.reset();
    } catch {}
  }
}

/** A backend's grpc-status as a label: a code 0–16, else left out (a bad backend cannot mint series). */
function grpcStatusLabel(value: string | undefined): string | undefined {
  return value !== undefined && /^(?:\d|1[0-6])$/.test(value) ? value : undefined;
}

type AttemptOutcome =
  | { kind: 'response'; res: UpstreamResponse }
  | { kind: 'failed'; err: UpstreamError }
  | { kind: 'attemptTimeout' }
  | { kind: 'stopped' };

/** Waits for the attempt's response head, its per-try timeout, or `stop` (overall timeout, client gone). */
function awaitAttempt(
  ex: UpstreamExchange,
  perTryMs: number | undefined,
  stop: AbortSignal,
): Promise<AttemptOutcome> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const done = (o: AttemptOutcome) => {
      clearTimeout(timer);
      stop.removeEventListener('abort', onStop);
      resolve(o);
    };
    const onStop = () => done({ kind: 'stopped' });
    if (stop.aborted) return done({ kind: 'stopped' });
    stop.addEventListener('abort', onStop);
    if (perTryMs !== undefined) timer = setTimeout(() => done({ kind: 'attemptTimeout' }), perTryMs);
    ex.response.then(
      (res) => done({ kind: 'response', res }),
      (err: unknown) =>
        done({
          kind: 'failed',
          err:
            err instanceof UpstreamError
              ? err
              : new UpstreamError('connection termination', {} as Endpoint, err),
        }),
    );
  });
}

function sleep(ms: number, stop: AbortSignal): Promise<void> {
  if (ms <= 0 || stop.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      stop.removeEventListener('abort', done);
      resolve();
    }
    stop.addEventListener('abort', done);
  });
}

async function forward(
  ds: Downstream,
  d: Forward,
  conn: ConnectionState,
  ctx: ProxyContext,
  rec: RequestRecord,
  verdict: GateVerdict | undefined,
  span: RequestSpan | undefined,
): Promise<void> {
  const state = ctx.backends.of(d.backend);
  const backendKey = state.key;
  rec.backend = backendKey;
  const budget = state.budget;
  const breakers = state.breakers;
  const attempts = Math.max(1, d.retry?.attempts ?? 1);
  const feed = new BodyFeed(ds.body, attempts > 1 ? RETRY_BUFFER_BYTES : 0);
  const head: UpstreamHead = {
    method: ds.method,
    path: d.path,
    authority: d.authority ?? rec.authority,
    headers: upstreamRequestHeaders(verdict?.headers ?? ds.headers, d.requestHeaders),
  };
  const hash = hashFor(ds, rec.path, conn, state);
  // The route table already drew each mirror's fraction: every one listed is sent.
  for (const m of d.mirrors) mirror(ctx, conn, m.backend, head, feed, d.timeoutMs);

  const stop = new AbortController();
  let timedOut = false;
  let clientGone = false;
  let current: UpstreamExchange | undefined;
  ds.onAbort(() => {
    clientGone = true;
    if (rec.flags === FLAGS.none) rec.flags = FLAGS.downstreamTermination;
    current?.abort();
    stop.abort();
  });
  const overall =
    d.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          current?.abort();
          stop.abort();
        }, d.timeoutMs);
  let retrySlot = false;
  const releaseSlot = () => {
    if (retrySlot) {
      budget.retryFinished();
      breakers.retryDone();
    }
    retrySlot = false;
  };
  // The attempt in flight holds a request slot (max_requests) and counts as active at its endpoint.
  let endAttempt: (() => void) | undefined;
  const attemptOver = () => {
    endAttempt?.();
    endAttempt = undefined;
  };
  budget.requestStarted();
  try {
    for (let attempt = 1; ; attempt++) {
      const endpoint = state.choose(ctx.deps.endpoints(d.backend), hash.key);
      if (!endpoint) {
        localReply(ds, rec, NO_HEALTHY_UPSTREAM);
        return;
      }
      rec.attempts = attempt;
      rec.endpoint = endpoint;
      rec.upstream = `${endpoint.address}:${endpoint.port}`;
      if (!breakers.tryRequest()) {
        localReply(ds, rec, UPSTREAM_OVERFLOW, OVERLOADED_HEADERS);
        return;
      }
      const inactive = state.attemptStarted(endpoint);
      endAttempt = () => {
        inactive();
        breakers.requestDone();
      };
      const attemptSpan = span?.startAttempt({
        cluster: clusterName(ctx, backendKey),
        address: `${endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address}:${endpoint.port}`,
      });
      const ex = ctx.pool.request(endpoint, conn.upstream, traced(head, attemptSpan), {
        cluster: backendKey,
        breakers,
      });
      current = ex;
      feed.attach(ex.body);
      const outcome = await awaitAttempt(ex, d.backendTimeoutMs, stop.signal);
      attemptSpan?.end(
        outcome.kind === 'response' ? { status: outcome.res.status } : { error: attemptError(outcome) },
      );
      releaseSlot();
      const result = outlierResult(outcome, timedOut);
      if (result !== undefined) state.outlier?.report(endpoint, result);
      if (outcome.kind === 'stopped') {
        ex.abort();
        if (timedOut) localReply(ds, rec, UPSTREAM_TIMEOUT);
        return;
      }
      if (outcome.kind === 'failed' && outcome.err.reason === 'overflow') {
        // Envoy neither retries a request a circuit breaker dropped nor counts it against the endpoint.
        localReply(ds, rec, UPSTREAM_OVERFLOW, OVERLOADED_HEADERS);
        return;
      }
      const retriable =
        outcome.kind === 'failed' ||
        (outcome.kind === 'attemptTimeout' && (d.retry?.codes.includes(504) ?? false)) ||
        (outcome.kind === 'response' && (d.retry?.codes.includes(outcome.res.status) ?? false));
      const more = attempt < attempts;
      if (retriable && more && feed.replayable && takeRetry(budget, breakers)) {
        retrySlot = true;
        feed.detach();
        ex.abort();
        attemptOver();
        await sleep(d.retry?.backoffMs ?? 0, stop.signal);
        if (stop.signal.aborted) {
          if (timedOut) localReply(ds, rec, UPSTREAM_TIMEOUT);
          return;
        }
        continue;
      }
      if (outcome.kind === 'attemptTimeout') {
        ex.abort();
        localReply(ds, rec, UPSTREAM_TIMEOUT);
        return;
      }
      if (outcome.kind === 'failed') {
        rec.error = describeError(outcome.err.cause ?? outcome.err);
        localReply(ds, rec, resetBeforeHeaders(outcome.err.reason));
        return;
      }
      if (retriable && d.retry && attempts > 1 && !more) rec.flags = FLAGS.retryLimit;
      await deliver(ds, outcome.res, d, rec, stop.signal, hash.setCookie, verdict?.responseHeaders);
      if (timedOut && rec.flags === FLAGS.none) rec.flags = FLAGS.timeout;
      if (clientGone) ex.abort();
      return;
    }
  } finally {
    if (overall) clearTimeout(overall);
    releaseSlot();
    attemptOver();
    budget.requestFinished();
    rec.bytes_received = feed.bytes;
    if (!feed.complete && !clientGone) feed.discard();
  }
}

function attemptError(outcome: Exclude<AttemptOutcome, { kind: 'response' }>): string {
  if (outcome.kind === 'failed') return outcome.err.reason;
  return outcome.kind === 'attemptTimeout' ? 'per-try timeout' : 'stopped';
}

/** A retry needs room in the retry budget and under the backend's maxRetries. */
function takeRetry(budget: BackendState['budget'], breakers: BackendState['breakers']): boolean {
  if (!budget.tryRetry()) return false;
  if (breakers.tryRetry()) return true;
  budget.retryFinished();
  return false;
}

/** Streams the backend's response to the client; a reset on the way resets the client's stream too. */
async function deliver(
  ds: Downstream,
  res: UpstreamResponse,
  d: Forward,
  rec: RequestRecord,
  stop: AbortSignal,
  setCookie?: string,
  extra?: Headers,
): Promise<void> {
  rec.status = res.status;
  const headers = downstreamResponseHeaders(res.headers, d.responseHeaders);
  if (extra) Object.assign(headers, extra);
  if (setCookie) appendSetCookie(headers, setCookie);
  ds.respond(res.status, headers, res.endOfStream);
  if (res.endOfStream) {
    rec.grpc_status = grpcStatusLabel(first(res.headers['grpc-status']));
    return;
  }
  const body = res.body;
  const sink = ds.sink;
  const onDrain = () => body.resume();
  sink.on('drain', onDrain);
  body.on('data', (chunk: Buffer) => {
    rec.bytes_sent += chunk.length;
    if (!sink.writable) return;
    if (!sink.write(chunk)) body.pause();
  });
  const stopped = new Promise<'stopped'>((resolve) => {
    if (stop.aborted) resolve('stopped');
    stop.addEventListener('abort', () => resolve('stopped'), { once: true });
  });
  try {
    const how = await Promise.race([res.done.then(() => 'done' as const), stopped]);
    if (how === 'stopped') {
      ds.reset();
      return;
    }
    const trailers = res.trailers();
    rec.grpc_status = grpcStatusLabel(first(trailers?.['grpc-status']) ?? first(res.headers['grpc-status']));
    ds.end(trailers && downstreamResponseHeaders(trailers, { set: [], add: [], remove: [] }));
  } catch (err) {
    rec.flags =
      err instanceof UpstreamError && err.reason === 'remote reset'
        ? FLAGS.remoteReset
        : FLAGS.connectionTermination;
    rec.error = describeError(err);
    ds.reset();
  } finally {
    sink.off('drain', onDrain);
  }
}

/** Adds a generated hash cookie to the response's own `set-cookie` lines. */
function appendSetCookie(headers: Headers, cookie: string): void {
  const had = headers['set-cookie'];
  headers['set-cookie'] = had === undefined ? [cookie] : [...(typeof had === 'string' ? [had] : had), cookie];
}

/** Sends a copy of the request to `backend`, fire and forget: its answer is read and dropped. */
function mirror(
  ctx: ProxyContext,
  conn: ConnectionState,
  backend: Forward['backend'],
  head: UpstreamHead,
  feed: BodyFeed,
  timeoutMs: number | undefined,
): void {
  const state = ctx.backends.of(backend);
  const key = state.key;
  const endpoint = state.choose(ctx.deps.endpoints(backend));
  if (!endpoint) return;
  const ex = ctx.pool.request(endpoint, conn.upstream, {
    ...head,
    authority: shadowAuthority(head.authority),
  });
  ex.body.on('error', () => {});
  feed.tap(ex.body);
  // A mirror lives at most as long as the route lets the primary (Envoy applies the route timeout to
  // shadows too), so a silent mirror backend cannot hold a connection forever.
  const limit = setTimeout(() => ex.abort(), timeoutMs ?? MIRROR_TIMEOUT_MS);
  limit.unref();
  ex.response.then(
    (res) => {
      res.body.resume();
      res.done.catch(() => {}).finally(() => clearTimeout(limit));
    },
    (err) => {
      clearTimeout(limit);
      ctx.deps.log.debug({ err: describeError(err), backend: key }, 'mirror request failed');
    },
  );
}

function record(ctx: ProxyContext, conn: ConnectionState, rec: RequestRecord, grpc: boolean): void {
  const { meta } = conn;
  const backend = rec.backend?.split(':')[0] ?? meta.service;
  // Traffic addressed to a workload has no destination service: Istio writes `unknown`.
  const toWorkload = workloadTargetAddress(backend) !== undefined;
  const parts = toWorkload ? undefined : serviceKeyParts(backend);
  const [svcNamespace, svcName] = parts ? [parts.namespace, parts.name] : [];
  const dst = rec.endpoint?.labels ?? meta.destination?.workload ?? {};
  const dstKnown = rec.endpoint !== undefined || meta.destination?.workload !== undefined;
  const labelsReporter = ctx.deps.reporter ?? 'waypoint';
  const labels: RequestLabels = {
    reporter: labelsReporter,
    source_workload: meta.source.workload,
    source_canonical_service: meta.source.canonicalService ?? meta.source.app,
    source_canonical_revision: meta.source.canonicalRevision ?? meta.source.version ?? 'latest',
    source_workload_namespace: meta.source.namespace,
    source_principal: meta.source.principal,
    source_app: meta.source.app,
    source_version: meta.source.version,
    source_cluster: meta.source.cluster,
    destination_workload: dst.workload,
    destination_workload_namespace: dst.namespace,
    destination_principal: rec.endpoint?.identity ?? meta.destination?.principal,
    destination_app: dst.app,
    destination_version: dst.version,
    destination_service: toWorkload
      ? undefined
      : backend === meta.service && meta.destination?.hostname
        ? meta.destination.hostname
        : ctx.serviceHost(backend),
    destination_service_name: svcName,
    destination_service_namespace: svcNamespace,
    destination_canonical_service: dst.canonicalService ?? dst.app,
    destination_canonical_revision: dst.canonicalRevision ?? dst.version ?? (dstKnown ? 'latest' : undefined),
    destination_cluster: dst.cluster ?? meta.destination?.cluster,
    request_protocol: grpc ? 'grpc' : 'http',
    response_code: String(rec.status),
    grpc_response_status: grpc ? (rec.grpc_status ?? '') : '',
    response_flags: rec.flags,
    // The connection the reporter sees: a client side its upstream (mutual TLS over HBONE, else unknown, as
    // the ztunnel's own source reports say), a server side or a waypoint the client's.
    connection_security_policy:
      labelsReporter === 'source'
        ? rec.endpoint?.identity
          ? 'mutual_tls'
          : 'unknown'
        : (meta.security ?? 'mutual_tls'),
  };
  try {
    ctx.deps.metrics.record(labels, {
      durationMs: rec.duration_ms,
      requestBytes: rec.bytes_received,
      responseBytes: rec.bytes_sent,
    });
  } catch (err) {
    ctx.deps.log.warn({ err: describeError(err) }, 'request metrics failed');
  }
  if (ctx.deps.accessLogging?.(meta) === false) return;
  const { endpoint: _e, ...line } = rec;
  if (rec.status >= 500 || rec.status === 0 || rec.error) ctx.accessLog.warn(line, 'access');
  else ctx.accessLog.info(line, 'access');
}
