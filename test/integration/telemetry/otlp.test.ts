// Spans from the request tracer reach an OTLP collector on loopback, over HTTP/protobuf and over gRPC:
// the server span and the client span of one request, in the client's trace, linked parent to child,
// with the semantic-convention, Envoy and Istio attributes and the custom tags. A collector that is down
// or never answers costs spans (dropped and failed, counted), never a request.
// The receivers decode what they get with test/helpers/otlp.ts.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { logger } from '../../../src/log/index.ts';
import {
  loadTracing,
  type RequestSettings,
  type RequestTracer,
  type TracerOptions,
} from '../../../src/telemetry/tracing/index.ts';
import { httpCollector, type Received, spansOf, traceService, type WireRequest } from '../../helpers/otlp.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

interface Collector {
  port: number;
  spans: Received[];
  /** Request headers (HTTP) or metadata (gRPC) of each export. */
  headers: Array<Record<string, unknown>>;
}

async function collectorOver(t: TestContext): Promise<Collector> {
  const c = await httpCollector('127.0.0.1', 0);
  t.after(() => c.close());
  return c as unknown as Collector;
}

async function grpcCollector(t: TestContext): Promise<Collector> {
  const c: Collector = { port: 0, spans: [], headers: [] };
  const server = new grpc.Server();
  server.addService(traceService, {
    Export: (call: grpc.ServerUnaryCall<WireRequest, object>, callback: grpc.sendUnaryData<object>) => {
      c.headers.push(call.metadata.getMap());
      c.spans.push(...spansOf(call.request));
      callback(null, {});
    },
  });
  c.port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
  t.after(() => server.forceShutdown());
  return c;
}

/** A collector that accepts connections and never answers (a slow collector, at its worst). */
async function silentCollector(t: TestContext): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const log = logger('tracing-test');
log.level = 'error';

async function tracerFor(
  t: TestContext,
  opentelemetry: TracerOptions['provider']['opentelemetry'],
  port: number,
  more: Partial<TracerOptions> = {},
): Promise<RequestTracer> {
  const factory = await loadTracing();
  const tracer = factory.create({
    provider: { name: 'otel', opentelemetry },
    endpoint: { host: '127.0.0.1', port },
    serviceName: 'waypoint.shop',
    proxy: {
      canonicalService: 'waypoint',
      namespace: 'shop',
      meshId: 'mesh1',
      nodeId: 'waypoint~198.18.1.5~waypoint-0.shop~shop.svc.cluster.local',
    },
    resourceAttributes: { 'k8s.pod.name': 'waypoint-0' },
    log,
    flushIntervalMs: 60_000,
    ...more,
  });
  t.after(() => tracer.shutdown());
  return tracer;
}

const SETTINGS: RequestSettings = {
  samplingPercentage: 0,
  customTags: {
    team: { literal: { value: 'checkout' } },
    user: { header: { name: 'X-User', defaultValue: 'anonymous' } },
    missing: { header: { name: 'x-missing', defaultValue: 'none' } },
    region: { environment: { name: 'AMBIT_TEST_REGION_UNSET', defaultValue: 'lab' } },
  },
  disableSpanReporting: false,
};

/** One request through the tracer, as the waypoint drives it: a failed attempt, a retry, a response. */
function oneRequest(tracer: RequestTracer, status = 200): string[] {
  const span = tracer.startRequest(
    {
      method: 'GET',
      path: '/reviews/1?full=true',
      host: 'reviews.shop.svc.cluster.local:9080',
      protocol: '1.1',
      peerAddress: '198.18.1.9',
      headers: {
        traceparent: `00-${TRACE}-${SPAN}-01`,
        'user-agent': 'curl/8.5.0',
        'x-user': 'alice',
        'x-request-id': 'd2f8c9a0-1b2c-4d5e-8f90-123456789abc',
      },
    },
    SETTINGS,
  );
  const target = { cluster: 'outbound|9080||reviews.shop.svc.cluster.local', address: '198.18.1.7:9080' };
  const first = span.startAttempt(target);
  first.end({ error: 'upstream connect error' });
  const retry = span.startAttempt(target);
  retry.end({ status });
  span.end({
    status,
    flags: status >= 500 ? 'URX' : '-',
    route: '/reviews/*',
    upstreamCluster: target.cluster,
    source: { workload: 'productpage-v1', namespace: 'shop' },
    destination: { workload: 'reviews-v1', namespace: 'shop', canonicalService: 'reviews' },
  });
  return [first.headers.traceparent!, retry.headers.traceparent!];
}

function checkRequestSpans(spans: Received[], upstream: string[]): void {
  assert.equal(spans.length, 3, 'one server span and two client spans');
  const server = spans.find((s) => s.kind === 'SPAN_KIND_SERVER');
  const clients = spans.filter((s) => s.kind === 'SPAN_KIND_CLIENT');
  assert.ok(server);
  assert.equal(clients.length, 2);
  for (const s of spans) assert.equal(s.traceId, TRACE, 'every span is in the client trace');
  assert.equal(server.parentSpanId, SPAN, "the server span's parent is the client's span");
  for (const c of clients)
    assert.equal(c.parentSpanId, server.spanId, 'each client span is a child of the server span');
  assert.deepEqual(
    clients.map((c) => `00-${TRACE}-${c.spanId}-01`).sort(),
    [...upstream].sort(),
    'the backend was told the client spans',
  );

  assert.equal(server.name, 'GET /reviews/*');
  assert.equal(server.status, 'STATUS_CODE_UNSET');
  assert.deepEqual(
    { ...server.attributes },
    {
      'http.request.method': 'GET',
      'url.path': '/reviews/1',
      'url.query': 'full=true',
      'url.scheme': 'http',
      'server.address': 'reviews.shop.svc.cluster.local',
      'server.port': 9080,
      'network.protocol.name': 'http',
      'network.protocol.version': '1.1',
      'user_agent.original': 'curl/8.5.0',
      'client.address': '198.18.1.9',
      'network.peer.address': '198.18.1.9',
      'guid:x-request-id': 'd2f8c9a0-1b2c-4d5e-8f90-123456789abc',
      'http.response.status_code': 200,
      'http.route': '/reviews/*',
      response_flags: '-',
      upstream_cluster: 'outbound|9080||reviews.shop.svc.cluster.local',
      component: 'proxy',
      node_id: 'waypoint~198.18.1.5~waypoint-0.shop~shop.svc.cluster.local',
      'istio.canonical_service': 'waypoint',
      'istio.canonical_revision': 'latest',
      'istio.namespace': 'shop',
      'istio.mesh_id': 'mesh1',
      'istio.cluster_id': 'unknown',
      'istio.source_workload': 'productpage-v1',
      'istio.source_namespace': 'shop',
      'istio.destination_workload': 'reviews-v1',
      'istio.destination_namespace': 'shop',
      'istio.destination_canonical_service': 'reviews',
      team: 'checkout',
      user: 'alice',
      missing: 'none',
      region: 'lab',
    },
  );
  assert.equal(server.resource['service.name'], 'waypoint.shop');
  assert.equal(server.resource['k8s.pod.name'], 'waypoint-0');

  const [failed, ok] = [...clients].sort((a, b) =>
    a.attributes['http.request.resend_count'] === undefined
      ? -1
      : b.attributes['http.request.resend_count'] === undefined
        ? 1
        : 0,
  );
  assert.equal(failed!.name, 'GET');
  assert.equal(failed!.status, 'STATUS_CODE_ERROR');
  assert.equal(failed!.attributes['error.type'], 'upstream connect error');
  assert.equal(failed!.attributes.upstream_cluster, 'outbound|9080||reviews.shop.svc.cluster.local');
  assert.equal(failed!.attributes.upstream_address, '198.18.1.7:9080');
  assert.equal(failed!.attributes['server.port'], 9080);
  assert.equal(ok!.attributes['http.request.resend_count'], 1);
  assert.equal(ok!.attributes['http.response.status_code'], 200);
  assert.equal(ok!.status, 'STATUS_CODE_UNSET');
}

describe('OTLP export', () => {
  test('HTTP/protobuf: a request’s spans reach the collector, linked, with their attributes and headers', async (t) => {
    const collector = await collectorOver(t);
    const tracer = await tracerFor(
      t,
      {
        service: 'otel.observability.svc.cluster.local',
        port: 4318,
        http: { path: '/v1/traces', timeout: '5s', headers: [{ name: 'x-tenant', value: 't1' }] },
      },
      collector.port,
    );
    const upstream = oneRequest(tracer);
    await tracer.shutdown();
    checkRequestSpans(collector.spans, upstream);
    assert.equal(collector.headers[0]!['x-tenant'], 't1', "the provider's headers go with each export");
    assert.deepEqual(tracer.stats(), { exported: 3, dropped: 0, failed: 0 });
  });

  test('gRPC: the same spans, with the initial metadata', async (t) => {
    const collector = await grpcCollector(t);
    const tracer = await tracerFor(
      t,
      {
        service: 'otel.observability.svc.cluster.local',
        port: 4317,
        grpc: { timeout: '5s', initialMetadata: [{ name: 'x-tenant', value: 't2' }] },
      },
      collector.port,
    );
    const upstream = oneRequest(tracer);
    await tracer.shutdown();
    checkRequestSpans(collector.spans, upstream);
    assert.equal(collector.headers[0]!['x-tenant'], 't2');
    assert.deepEqual(tracer.stats(), { exported: 3, dropped: 0, failed: 0 });
  });

  test('a 5xx marks the server span as an error', async (t) => {
    const collector = await collectorOver(t);
    const tracer = await tracerFor(t, { service: 'otel', port: 4318, http: {} }, collector.port);
    oneRequest(tracer, 503);
    await tracer.shutdown();
    const server = collector.spans.find((s) => s.kind === 'SPAN_KIND_SERVER');
    assert.equal(server?.status, 'STATUS_CODE_ERROR');
    assert.equal(server?.attributes['error.type'], '503');
    assert.equal(server?.attributes.response_flags, 'URX');
  });

  test('unsampled requests export nothing', async (t) => {
    const collector = await collectorOver(t);
    const tracer = await tracerFor(t, { service: 'otel', port: 4318, http: {} }, collector.port);
    for (let i = 0; i < 5; i++) {
      const span = tracer.startRequest(
        { method: 'GET', path: '/', host: 'web', protocol: '1.1', headers: {} },
        { ...SETTINGS, samplingPercentage: 0 },
      );
      span.startAttempt({ cluster: 'c', address: '198.18.1.7:80' }).end({ status: 200 });
      span.end({ status: 200, flags: '-' });
    }
    await tracer.shutdown();
    assert.deepEqual(collector.spans, []);
    assert.deepEqual(tracer.stats(), { exported: 0, dropped: 0, failed: 0 });
  });
});

describe('a collector that is down or slow', () => {
  const sampled: RequestSettings = { ...SETTINGS, samplingPercentage: 100 };
  const requests = (tracer: RequestTracer, n: number) => {
    for (let i = 0; i < n; i++) {
      const span = tracer.startRequest(
        { method: 'GET', path: `/${i}`, host: 'web', protocol: '2.0', headers: {} },
        sampled,
      );
      span.end({ status: 200, flags: '-' });
    }
  };

  test('down: spans past the queue bound are dropped, the queued ones fail, requests never notice', async (t) => {
    const tracer = await tracerFor(
      t,
      { service: 'otel', port: 4318, http: { timeout: '300ms' } },
      await closedPort(),
      {
        maxQueueSize: 4,
      },
    );
    requests(tracer, 10);
    assert.deepEqual(
      tracer.stats(),
      { exported: 0, dropped: 6, failed: 0 },
      'four queued, six dropped at once',
    );
    await tracer.shutdown();
    assert.deepEqual(tracer.stats(), { exported: 0, dropped: 6, failed: 4 });
  });

  test('down over gRPC: the same accounting', async (t) => {
    const tracer = await tracerFor(
      t,
      { service: 'otel', port: 4317, grpc: { timeout: '300ms' } },
      await closedPort(),
      {
        maxQueueSize: 4,
      },
    );
    requests(tracer, 6);
    await tracer.shutdown();
    assert.deepEqual(tracer.stats(), { exported: 0, dropped: 2, failed: 4 });
  });

  test('never answering: the export times out and its spans count as failed', async (t) => {
    const tracer = await tracerFor(
      t,
      { service: 'otel', port: 4318, http: { timeout: '300ms' } },
      await silentCollector(t),
    );
    requests(tracer, 3);
    await tracer.shutdown();
    assert.deepEqual(tracer.stats(), { exported: 0, dropped: 0, failed: 3 });
  });

  test('after shutdown requests still work, untraced', async (t) => {
    const tracer = await tracerFor(
      t,
      { service: 'otel', port: 4318, http: { timeout: '300ms' } },
      await closedPort(),
    );
    await tracer.shutdown();
    const span = tracer.startRequest(
      {
        method: 'GET',
        path: '/',
        host: 'web',
        protocol: '1.1',
        headers: { traceparent: `00-${TRACE}-${SPAN}-01` },
      },
      sampled,
    );
    assert.deepEqual(span.startAttempt({ cluster: 'c', address: '198.18.1.7:80' }).headers, {
      traceparent: `00-${TRACE}-${SPAN}-01`,
    });
    span.end({ status: 200, flags: '-' });
  });
});

describe('loading', () => {
  test('a waypoint that never traces never loads the SDK; loadTracing() does', async () => {
    const front = new URL('../../../src/telemetry/tracing/index.ts', import.meta.url).href;
    const script = [
      "import { createRequire } from 'node:module';",
      'const require = createRequire(import.meta.url);',
      "const sdk = () => Object.keys(require.cache).filter((k) => k.includes('@opentelemetry')).length;",
      `const tracing = await import(${JSON.stringify(front)});`,
      'const before = sdk();',
      'await tracing.loadTracing();',
      'console.log(JSON.stringify({ before, after: sdk() > 0 }));',
    ].join('\n');
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
    assert.deepEqual(JSON.parse(stdout), { before: 0, after: true });
  });
});
