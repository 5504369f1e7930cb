// Fixtures for the waypoint's HTTP core on 127.0.0.1: a listener whose accepted sockets go to
// `HttpProxy.serveConnection` (standing in for the HBONE server's CONNECT streams), a connector that
// dials plain TCP (standing in for HBONE), backends the test starts, and a route table the test writes.

import { once } from 'node:events';
import * as http from 'node:http';
import type * as http2 from 'node:http2';
import * as net from 'node:net';
import { duplexPair } from 'node:stream';
import type { TestContext } from 'node:test';
import { Registry } from 'prom-client';
import type { Logger } from '../../../src/log/index.ts';
import { RequestMetrics } from '../../../src/telemetry/index.ts';
import {
  type ConnectionMeta,
  type Endpoint,
  HttpProxy,
  type ProxyDeps,
} from '../../../src/waypoint/http/index.ts';
import {
  type BackendRef,
  NO_HEADER_EDITS,
  type RouteDecision,
  type RouteRequest,
  type RouteTable,
} from '../../../src/waypoint/route-types.ts';

export const HOST = '127.0.0.1';
export const SOURCE = 'spiffe://cluster.local/ns/shop/sa/web';

/** A forward decision to `service` with nothing else set; tests spread their changes over it. */
export function forwardTo(
  service: string,
  port: number,
  req: RouteRequest,
  more: Partial<Extract<RouteDecision, { kind: 'forward' }>> = {},
): RouteDecision {
  return {
    kind: 'forward',
    route: 'shop/route',
    backend: { service, port },
    path: req.path,
    requestHeaders: NO_HEADER_EDITS,
    responseHeaders: NO_HEADER_EDITS,
    mirrors: [],
    extensionRefs: [],
    ...more,
  };
}

/** A route table from a function: the configuration a test needs, nothing more. */
export function table(decide: (req: RouteRequest, random: () => number) => RouteDecision): RouteTable {
  return { decide: (_service, _port, req, random) => decide(req, random ?? Math.random) };
}

export interface AccessLine {
  [key: string]: unknown;
}

export interface Harness {
  proxy: HttpProxy;
  registry: Registry;
  /** The listener's port: clients connect here as if through the ztunnel. */
  port: number;
  access: AccessLine[];
  /** Upstream connects made through the connector, per endpoint port. */
  connects: Map<number, number>;
}

/** Starts `server` on 127.0.0.1 and closes it (and its connections) after the test. */
export async function listen<S extends net.Server | http2.Http2Server>(
  t: TestContext,
  server: S,
): Promise<number> {
  server.listen(0, HOST);
  await once(server, 'listening');
  t.after(() => {
    (server as unknown as http.Server).closeAllConnections?.();
    server.close();
  });
  return (server.address() as net.AddressInfo).port;
}

/**
 * The proxy with `routes`, and endpoints given per backend service (`namespace/name`) as ports on
 * 127.0.0.1; `protocol` is what the connection meta declares for the service port.
 */
export async function harness(
  t: TestContext,
  opts: {
    routes: RouteTable;
    endpoints: Record<string, number[]>;
    protocol?: ConnectionMeta['protocol'];
    random?: () => number;
    /** DestinationRule traffic policy per backend (default: none, Istio's defaults). */
    trafficPolicy?: ProxyDeps['trafficPolicy'];
    /**
     * Connect through an in-memory pipe, as over an HBONE tunnel: the backend's close only ends the
     * stream, and what is written after it vanishes (no error comes back).
     */
    tunnel?: boolean;
    /** HTTPFaults by `namespace/name`, for ExtensionRef filters. */
    faults?: ProxyDeps['faults'];
    /** Request-level policy (authorization, authentication, rate limits). */
    gate?: ProxyDeps['gate'];
    /** The connection's meta, over the default (client `shop/web` to `shop/reviews:9080`). */
    meta?: Partial<ConnectionMeta>;
    /** Endpoints and the connector as the test gives them, instead of 127.0.0.1 ports over plain TCP. */
    endpointsOf?: ProxyDeps['endpoints'];
    connect?: ProxyDeps['connect'];
  },
): Promise<Harness> {
  const registry = new Registry();
  const access: AccessLine[] = [];
  const capture = (line: AccessLine) => access.push(line);
  const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet } as unknown as Logger;
  const accessLog = { ...quiet, info: capture, warn: capture } as unknown as Logger;
  const connects = new Map<number, number>();
  const sockets = new Set<net.Socket>();
  const deps: ProxyDeps = {
    routes: () => opts.routes,
    faults: opts.faults,
    ...(opts.gate ? { gate: opts.gate } : {}),
    endpoints:
      opts.endpointsOf ??
      ((backend: BackendRef): Endpoint[] =>
        (opts.endpoints[backend.service] ?? []).map((port) => ({
          address: HOST,
          port,
          identity: `spiffe://cluster.local/ns/shop/sa/backend-${port}`,
          labels: { workload: `backend-${port}`, namespace: 'shop', app: 'backend', version: 'v1' },
        }))),
    connect:
      opts.connect ??
      ((endpoint, signal) =>
        new Promise((resolve, reject) => {
          connects.set(endpoint.port, (connects.get(endpoint.port) ?? 0) + 1);
          // Half-open, as an HBONE tunnel is: the backend's FIN ends the stream and closes nothing.
          const s = net.connect({ host: endpoint.address, port: endpoint.port, allowHalfOpen: true });
          sockets.add(s);
          s.once('close', () => sockets.delete(s));
          const abort = () => {
            s.destroy();
            reject(signal.reason);
          };
          signal.addEventListener('abort', abort, { once: true });
          s.once('connect', () => {
            signal.removeEventListener('abort', abort);
            if (!opts.tunnel) return resolve(s);
            const [near, far] = duplexPair();
            far.pipe(s);
            s.pipe(far);
            s.on('error', () => {});
            resolve(near);
          });
          s.once('error', (err) => {
            signal.removeEventListener('abort', abort);
            reject(err);
          });
        })),
    metrics: new RequestMetrics(registry),
    log: quiet,
    accessLog,
    sniffTimeoutMs: 200,
    ...(opts.random ? { random: opts.random } : {}),
    ...(opts.trafficPolicy ? { trafficPolicy: opts.trafficPolicy } : {}),
  };
  const proxy = new HttpProxy(deps);
  const meta: ConnectionMeta = {
    service: 'shop/reviews',
    port: 9080,
    protocol: opts.protocol ?? 'http',
    source: { principal: SOURCE, workload: 'web', namespace: 'shop', app: 'web', version: 'v1' },
    ...opts.meta,
  };
  const front = net.createServer((s) => {
    s.on('error', () => {});
    void proxy.serveConnection(s, meta);
  });
  const port = await listen(t, front);
  t.after(() => {
    proxy.close();
    for (const s of sockets) s.destroy();
  });
  return { proxy, registry, port, access, connects };
}

/** One HTTP/1.1 request through the proxy; resolves with status, headers and body text. */
export function request(
  port: number,
  opts: http.RequestOptions & { body?: string | Buffer },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, agent: false, ...opts }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Polls `check` until it holds (no timing assertion: the test's own timeout is the limit). */
export async function eventually(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 20));
}
