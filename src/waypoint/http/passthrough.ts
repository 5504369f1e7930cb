// The byte paths: HTTP/1.1 `Upgrade` requests (WebSocket and others), forwarded and, on 101, spliced;
// and connections on an `auto` port that are not HTTP, spliced to an endpoint of the service itself.

import type * as http from 'node:http';
import type { Duplex } from 'node:stream';
import { describeError } from '../../errors/index.ts';
import { resetStream, splice } from '../../hbone/index.ts';
import { http as nodeHttp } from '../../os/index.ts';
import { type RouteDecision, requestTarget } from '../route-types.ts';
import type { ConnectionState, ProxyContext } from './exchange.ts';
import { type Headers, upstreamRequestHeaders } from './headers.ts';
import { BAD_REQUEST, NO_HEALTHY_UPSTREAM, resetBeforeHeaders } from './replies.ts';
import type { GateVerdict } from './types.ts';
import { connectionFor } from './upstream.ts';

function rawHead(status: number, message: string, rawHeaders: readonly string[]): string {
  let out = `HTTP/1.1 ${status} ${message}\r\n`;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) out += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return `${out}\r\n`;
}

function rawReply(socket: Duplex, status: number, body: string, extra: Headers = {}): void {
  const headers = [
    'content-type',
    'text/plain',
    'content-length',
    String(Buffer.byteLength(body)),
    'connection',
    'close',
  ];
  for (const [k, v] of Object.entries(extra)) if (typeof v === 'string') headers.push(k, v);
  socket.end(`${rawHead(status, nodeHttp.STATUS_CODES[status] ?? '', headers)}${body}`);
}

/**
 * An HTTP/1.1 request with `Upgrade`: the route only chooses the backend (no filters, retries or
 * mirrors); on the backend's 101 both sockets are spliced, any other answer is passed back and the
 * connection closed.
 */
export function handleUpgrade(
  req: http.IncomingMessage,
  socket: Duplex,
  head: Buffer,
  conn: ConnectionState,
  ctx: ProxyContext,
): void {
  const started = performance.now();
  const line: Record<string, unknown> = {
    method: req.method,
    path: req.url,
    authority: req.headers.host,
    protocol: 'HTTP/1.1',
    upgrade: req.headers.upgrade,
    service: conn.meta.service,
    source_principal: conn.meta.source.principal,
    flags: '-',
  };
  const log = () => {
    line.duration_ms = Math.round(performance.now() - started);
    ctx.accessLog.info(line, 'access');
  };
  socket.on('error', () => {});
  const method = req.method ?? 'GET';
  const target = requestTarget(req.url ?? '/', method);
  if ('invalid' in target) {
    line.status = BAD_REQUEST.status;
    line.details = target.invalid;
    rawReply(socket, BAD_REQUEST.status, BAD_REQUEST.body);
    log();
    return;
  }
  const { path } = target;
  const authority = target.authority ?? req.headers.host ?? '';
  line.path = path;
  const decide = (p: string): RouteDecision => {
    try {
      return ctx.deps
        .routes()
        .decide(
          conn.meta.service,
          conn.meta.port,
          { method, path: p, headers: req.headers, authority, sourceNamespace: conn.meta.source.namespace },
          ctx.random,
        );
    } catch (err) {
      line.error = describeError(err);
      return { kind: 'respond', status: 500, headers: {}, body: 'route evaluation failed', flags: '-' };
    }
  };
  const decision = decide(path);
  line.route = decision.route;
  const gate = ctx.deps.gate?.admit(
    { method, path, authority, headers: req.headers, meta: conn.meta, route: decision.route },
    { request: (endpoint, h) => ctx.pool.request(endpoint, 'http1', h) },
  );
  const admitted = (verdict: GateVerdict | undefined) => {
    if (verdict?.log) line.policy = verdict.log;
    if (verdict?.reply) {
      line.status = verdict.reply.status;
      line.flags = verdict.reply.flags;
      line.details = verdict.reply.details;
      rawReply(socket, verdict.reply.status, verdict.reply.body, verdict.reply.headers);
      log();
      return;
    }
    // JWT authentication may have taken a token out of the query: route the upgrade as it now reads.
    const chosen = verdict?.path === undefined ? decision : decide(verdict.path);
    if (verdict?.path !== undefined) line.path = verdict.path;
    upgrade(req, socket, head, chosen, ctx, line, log, { headers: verdict?.headers, authority });
  };
  if (gate === undefined) admitted(undefined);
  else
    Promise.resolve(gate).then(admitted, (err: unknown) => {
      line.error = describeError(err);
      admitted({ reply: { status: 500, body: 'internal error', flags: '-', headers: {} } });
    });
}

/** The routed upgrade: answered by the route itself, or forwarded to an endpoint and, on 101, spliced. */
function upgrade(
  req: http.IncomingMessage,
  socket: Duplex,
  head: Buffer,
  decision: RouteDecision,
  ctx: ProxyContext,
  line: Record<string, unknown>,
  log: () => void,
  sent: { headers: Headers | undefined; authority: string },
): void {
  if (decision.kind === 'respond') {
    line.status = decision.status;
    line.flags = decision.flags;
    rawReply(socket, decision.status, decision.body, decision.headers);
    log();
    return;
  }
  const endpoint = ctx.backends.of(decision.backend).choose(ctx.deps.endpoints(decision.backend));
  if (!endpoint) {
    line.status = NO_HEALTHY_UPSTREAM.status;
    line.flags = NO_HEALTHY_UPSTREAM.flags;
    rawReply(socket, NO_HEALTHY_UPSTREAM.status, NO_HEALTHY_UPSTREAM.body);
    log();
    return;
  }
  line.upstream = `${endpoint.address}:${endpoint.port}`;
  const fail = (reason: Parameters<typeof resetBeforeHeaders>[0], err: unknown) => {
    const reply = resetBeforeHeaders(reason);
    line.status = reply.status;
    line.flags = reply.flags;
    line.error = describeError(err);
    rawReply(socket, reply.status, reply.body);
    log();
  };
  const gone = new AbortController();
  socket.once('close', () => gone.abort());
  const how = connectionFor(endpoint, decision.authority ?? sent.authority, 'http1');
  ctx.pool.open(endpoint, gone.signal, how.opts).then(
    (tunnel) => {
      if (socket.destroyed) {
        tunnel.destroy();
        return;
      }
      tunnel.on('error', () => {});
      // The rule's rewrite and request header edits apply to the upgrade request as to any other.
      let upReq: http.ClientRequest;
      try {
        upReq = nodeHttp.request({
          createConnection: () => tunnel as never,
          method: req.method,
          path: decision.path,
          setHost: false,
          headers: {
            ...upstreamRequestHeaders(sent.headers ?? req.headers, decision.requestHeaders, {
              upgrade: true,
            }),
            host: decision.authority ?? sent.authority,
          } as http.OutgoingHttpHeaders,
        });
      } catch (err) {
        tunnel.destroy();
        fail('connection failure', err);
        return;
      }
      upReq.once('upgrade', (res, upSocket, upHead) => {
        line.status = res.statusCode;
        socket.write(
          rawHead(res.statusCode ?? 101, res.statusMessage ?? 'Switching Protocols', res.rawHeaders),
        );
        if (upHead.length > 0) socket.write(upHead);
        if (head.length > 0) upSocket.write(head);
        splice(socket, upSocket, (result) => {
          line.bytes_received = result.received + head.length;
          line.bytes_sent = result.sent + upHead.length;
          if (result.error) line.error = describeError(result.error);
          log();
        });
      });
      upReq.once('response', (res) => {
        // Not upgraded: the backend's answer goes back, and the connection ends with it.
        line.status = res.statusCode;
        socket.write(rawHead(res.statusCode ?? 502, res.statusMessage ?? '', res.rawHeaders));
        res.pipe(socket);
        res.once('end', () => {
          tunnel.destroy();
          log();
        });
      });
      upReq.once('error', (err) => {
        if (line.status === undefined) fail('connection termination', err);
        else resetStream(socket);
      });
      upReq.end();
    },
    (err) => fail('connection failure', err),
  );
}

/** A connection on an `auto` port that is not HTTP: spliced to an endpoint of the service itself. */
export function passThroughTcp(
  conn: Duplex,
  head: Buffer | undefined,
  state: ConnectionState,
  ctx: ProxyContext,
): void {
  const started = performance.now();
  const { meta } = state;
  const line: Record<string, unknown> = {
    protocol: 'tcp',
    service: meta.service,
    source_principal: meta.source.principal,
    flags: '-',
  };
  const log = () => {
    line.duration_ms = Math.round(performance.now() - started);
    if (line.error) ctx.accessLog.warn(line, 'access');
    else ctx.accessLog.info(line, 'access');
  };
  conn.on('error', () => {});
  // L7 policy on a connection that is not HTTP: only its L4 parts can match (fail closed, as Istio).
  const gate = ctx.deps.gate?.admit(
    { method: '', path: '', authority: '', headers: {}, meta, tcp: true },
    { request: (endpoint, h) => ctx.pool.request(endpoint, 'http1', h) },
  );
  const admitted = (verdict: GateVerdict | undefined) => {
    if (verdict?.log) line.policy = verdict.log;
    if (verdict?.reply) {
      line.flags = verdict.reply.flags;
      line.details = verdict.reply.details;
      resetStream(conn);
      log();
      return;
    }
    tcpToService(conn, head, state, ctx, line, log);
  };
  if (gate === undefined) admitted(undefined);
  else
    Promise.resolve(gate).then(admitted, (err: unknown) => {
      line.error = describeError(err);
      admitted({ reply: { status: 500, body: '', flags: '-', headers: {} } });
    });
}

function tcpToService(
  conn: Duplex,
  head: Buffer | undefined,
  state: ConnectionState,
  ctx: ProxyContext,
  line: Record<string, unknown>,
  log: () => void,
): void {
  const { meta } = state;
  const backend = { service: meta.service, port: meta.port };
  const endpoint = ctx.backends.of(backend).choose(ctx.deps.endpoints(backend));
  if (!endpoint) {
    line.flags = NO_HEALTHY_UPSTREAM.flags;
    resetStream(conn);
    log();
    return;
  }
  line.upstream = `${endpoint.address}:${endpoint.port}`;
  const gone = new AbortController();
  const onClose = () => gone.abort();
  conn.once('close', onClose);
  ctx.pool.open(endpoint, gone.signal).then(
    (tunnel) => {
      conn.off('close', onClose);
      if (conn.destroyed) {
        tunnel.destroy();
        return;
      }
      if (head && head.length > 0) tunnel.write(head);
      if (head) tunnel.end(); // sniffing saw the client end: carry the half-close across
      splice(conn, tunnel, (result) => {
        line.bytes_received = result.received + (head?.length ?? 0);
        line.bytes_sent = result.sent;
        if (result.error) line.error = describeError(result.error);
        log();
      });
      conn.resume();
    },
    (err) => {
      line.flags = 'UF';
      line.error = describeError(err);
      resetStream(conn);
      log();
    },
  );
}
