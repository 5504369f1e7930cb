// The service graph built from Prometheus's answers and the registry: tables of cases.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildGraph, type GraphInput, histogramQuantile } from '../../../src/dashboard/graph.ts';
import type { Sample } from '../../../src/dashboard/prometheus-api.ts';

const wl = (
  name: string,
  app: string,
  version?: string,
  extra: Partial<GraphInput['workloads'][number]> = {},
) => ({
  name,
  namespace: 'shop',
  labels: { app, ...(version ? { version } : {}) },
  enrolled: true,
  ...extra,
});
const WORKLOADS: GraphInput['workloads'] = [
  wl('client', 'client'),
  wl('frontend', 'frontend', 'v1'),
  wl('catalog-v1', 'catalog', 'v1'),
  wl('catalog-v2', 'catalog', 'v2'),
  wl('ratings', 'ratings', 'v1'),
  {
    name: 'waypoint-0123456789-0',
    namespace: 'shop',
    labels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' },
    enrolled: true,
    isWaypoint: true,
  },
  { name: 'legacy', namespace: 'legacy', labels: { app: 'legacy' }, enrolled: false },
];
const SERVICES = [
  { name: 'frontend', namespace: 'shop' },
  { name: 'catalog', namespace: 'shop' },
  { name: 'ratings', namespace: 'shop' },
];

/** A request series as the waypoint reports it, with the target labels of its scrape. */
function request(
  src: string,
  svc: string | undefined,
  dst: string | undefined,
  value: number,
  extra: Record<string, string> = {},
): Sample {
  return {
    metric: {
      source_workload: src,
      source_workload_namespace: src === 'unknown' ? 'unknown' : 'shop',
      destination_workload: dst ?? 'unknown',
      destination_workload_namespace: dst ? 'shop' : 'unknown',
      destination_service_name: svc ?? 'unknown',
      destination_service_namespace: svc ? 'shop' : 'unknown',
      gateway_networking_k8s_io_gateway_name: 'waypoint',
      namespace: 'shop',
      request_protocol: 'http',
      response_code: '200',
      grpc_response_status: '',
      connection_security_policy: 'mutual_tls',
      ...extra,
    },
    value,
  };
}
function tcp(
  reporter: string,
  src: string,
  srcNs: string,
  dst: string,
  value: number,
  extra: Record<string, string> = {},
): Sample {
  return {
    metric: {
      reporter,
      source_workload: src,
      source_workload_namespace: srcNs,
      destination_workload: dst,
      destination_workload_namespace: 'shop',
      destination_service_name: 'unknown',
      destination_service_namespace: 'unknown',
      connection_security_policy: 'mutual_tls',
      response_flags: '-',
      ...extra,
    },
    value,
  };
}
const input = (over: Partial<GraphInput>): GraphInput => ({
  requests: [],
  durations: [],
  tcpBytes: [],
  tcpOpened: [],
  workloads: WORKLOADS,
  services: SERVICES,
  namespaces: [],
  ...over,
});
const edgeIds = (g: ReturnType<typeof buildGraph>) => g.edges.map((e) => e.id).sort();

describe('the service graph', () => {
  test('a request through a waypoint is drawn along its path: client → waypoint → service → workload', () => {
    const g = buildGraph(
      input({
        requests: [
          request('frontend', 'catalog', 'catalog-v1', 9),
          request('frontend', 'catalog', 'catalog-v2', 1),
          request('frontend', 'catalog', 'catalog-v2', 0.5, { response_code: '503' }),
        ],
      }),
    );
    assert.deepEqual(edgeIds(g), [
      'svc:shop/catalog->wl:shop/catalog-v1:http',
      'svc:shop/catalog->wl:shop/catalog-v2:http',
      'wl:shop/frontend->wp:shop/waypoint:http',
      'wp:shop/waypoint->svc:shop/catalog:http',
    ]);
    const first = g.edges.find((e) => e.id === 'wl:shop/frontend->wp:shop/waypoint:http')!;
    assert.equal(first.requestsPerSecond, 10.5);
    assert.equal(first.errorRate, 0.5 / 10.5);
    assert.equal(first.security, 'mtls');
    assert.equal(first.deniedPerSecond, 0);
    const v2 = g.nodes.find((n) => n.id === 'wl:shop/catalog-v2')!;
    assert.equal(v2.health, 'failing', '1/3 of its requests failed: above 20 %');
    assert.equal(g.nodes.find((n) => n.id === 'wl:shop/catalog-v1')!.health, 'healthy');
  });

  test('versions of one app are boxed together inside their namespace; single-version apps are not', () => {
    const g = buildGraph(input({}));
    const byId = new Map(g.nodes.map((n) => [n.id, n]));
    assert.equal(byId.get('app:shop/catalog')?.kind, 'app');
    assert.equal(byId.get('app:shop/catalog')?.parent, 'ns:shop');
    assert.equal(byId.get('wl:shop/catalog-v1')?.parent, 'app:shop/catalog');
    assert.equal(byId.get('wl:shop/catalog-v2')?.version, 'v2');
    assert.equal(byId.get('wl:shop/frontend')?.parent, 'ns:shop');
    assert.equal(byId.has('app:shop/frontend'), false);
    assert.equal(byId.get('ns:legacy')?.kind, 'namespace');
    assert.equal(byId.get('wl:legacy/legacy')?.mesh, 'none');
  });

  test('with no traffic every registered node is idle and there are no edges', () => {
    const g = buildGraph(input({}));
    assert.equal(g.edges.length, 0);
    assert.ok(
      g.nodes
        .filter((n) => n.kind === 'workload' || n.kind === 'service')
        .every((n) => !n.traffic && n.health === 'idle'),
    );
    assert.ok(
      g.nodes.some((n) => n.id === 'wp:shop/waypoint'),
      "the waypoint is drawn, not its replica's pod",
    );
    assert.ok(!g.nodes.some((n) => n.id.includes('waypoint-0123456789-0')));
  });

  test('a 403 counts as denied (and degrades the node), not as an error', () => {
    const g = buildGraph(
      input({ requests: [request('client', 'frontend', 'frontend', 2, { response_code: '403' })] }),
    );
    const e = g.edges.find((x) => x.target === 'svc:shop/frontend')!;
    assert.equal(e.deniedPerSecond, 2);
    assert.equal(e.errorRate, 0);
    assert.equal(g.nodes.find((n) => n.id === 'svc:shop/frontend')!.health, 'degraded');
  });

  test('gRPC: a non-OK status is an error even on 200', () => {
    const g = buildGraph(
      input({
        requests: [
          request('frontend', 'ratings', 'ratings', 3, {
            request_protocol: 'grpc',
            grpc_response_status: '0',
          }),
          request('frontend', 'ratings', 'ratings', 1, {
            request_protocol: 'grpc',
            grpc_response_status: '14',
          }),
        ],
      }),
    );
    const e = g.edges.find((x) => x.id === 'svc:shop/ratings->wl:shop/ratings:grpc')!;
    assert.equal(e.errorRate, 0.25);
  });

  test('a proxy-local answer (no workload reached) ends at the service', () => {
    const g = buildGraph(
      input({ requests: [request('client', 'catalog', undefined, 1, { response_code: '503' })] }),
    );
    assert.deepEqual(edgeIds(g), [
      'wl:shop/client->wp:shop/waypoint:http',
      'wp:shop/waypoint->svc:shop/catalog:http',
    ]);
  });

  test('without the waypoint target labels the path skips the waypoint', () => {
    const g = buildGraph(
      input({
        requests: [
          request('client', 'frontend', 'frontend', 1, {
            gateway_networking_k8s_io_gateway_name: '',
            namespace: '',
          }),
        ],
      }),
    );
    assert.deepEqual(edgeIds(g), [
      'svc:shop/frontend->wl:shop/frontend:http',
      'wl:shop/client->svc:shop/frontend:http',
    ]);
  });

  test("a sidecar's server-side report stands only for requests no client side reported", () => {
    const noWaypoint = { gateway_networking_k8s_io_gateway_name: '', namespace: '' };
    const atServer = { ...noWaypoint, reporter: 'destination' };
    const g = buildGraph(
      input({
        requests: [
          // An ambient client to a sidecar pod, no waypoint between: only the server side saw requests.
          request('client', 'ratings', 'ratings', 4, atServer),
          // A sidecar client to a sidecar pod: both ends report; it counts once.
          request('frontend', 'catalog', 'catalog-v1', 2, { ...noWaypoint, reporter: 'source' }),
          request('frontend', 'catalog', 'catalog-v1', 2, atServer),
          // Through a waypoint: its report stands; the sidecar behind it names the waypoint as its client,
          // and a sidecar client's own report names the waypoint as its destination.
          request('client', 'catalog', 'catalog-v2', 3, { reporter: 'waypoint' }),
          request('waypoint-0123456789-0', 'catalog', 'catalog-v2', 3, atServer),
          request('client', 'catalog', 'waypoint-0123456789-0', 3, { ...noWaypoint, reporter: 'source' }),
        ],
      }),
    );
    assert.deepEqual(edgeIds(g), [
      'svc:shop/catalog->wl:shop/catalog-v1:http',
      'svc:shop/catalog->wl:shop/catalog-v2:http',
      'svc:shop/ratings->wl:shop/ratings:http',
      'wl:shop/client->svc:shop/ratings:http',
      'wl:shop/client->wp:shop/waypoint:http',
      'wl:shop/frontend->svc:shop/catalog:http',
      'wp:shop/waypoint->svc:shop/catalog:http',
    ]);
    const rate = (id: string) => g.edges.find((e) => e.id === id)?.requestsPerSecond;
    assert.equal(rate('wl:shop/client->svc:shop/ratings:http'), 4);
    assert.equal(rate('svc:shop/catalog->wl:shop/catalog-v1:http'), 2);
    assert.equal(rate('svc:shop/catalog->wl:shop/catalog-v2:http'), 3);
  });

  test('TCP: the server side counts, the client side names the service, nothing is counted twice', () => {
    const g = buildGraph(
      input({
        tcpBytes: [
          tcp('destination', 'client', 'shop', 'catalog-v1', 100),
          tcp('source', 'client', 'shop', 'catalog-v1', 100, {
            destination_service_name: 'catalog',
            destination_service_namespace: 'shop',
          }),
        ],
        tcpOpened: [tcp('destination', 'client', 'shop', 'catalog-v1', 0.5)],
      }),
    );
    assert.deepEqual(edgeIds(g), [
      'svc:shop/catalog->wl:shop/catalog-v1:tcp',
      'wl:shop/client->svc:shop/catalog:tcp',
    ]);
    const e = g.edges[0]!;
    assert.equal(e.bytesPerSecond, 100);
    assert.equal(e.connectionsPerSecond, 0.5);
    assert.equal(e.security, 'mtls');
  });

  test('TCP: plaintext refused under STRICT is a plaintext, denied edge', () => {
    const g = buildGraph(
      input({
        tcpOpened: [
          tcp('destination', 'legacy', 'legacy', 'catalog-v1', 0.2, {
            connection_security_policy: 'unknown',
            response_flags: 'DENY',
          }),
        ],
      }),
    );
    const e = g.edges.find((x) => x.source === 'wl:legacy/legacy')!;
    assert.equal(e.target, 'wl:shop/catalog-v1');
    assert.equal(e.security, 'plaintext');
    assert.equal(e.deniedPerSecond, 0.2);
  });

  test('TCP: a client-side report stands where no server side reported (a destination outside the mesh)', () => {
    const g = buildGraph(
      input({
        tcpBytes: [tcp('source', 'client', 'shop', 'unknown', 50, { connection_security_policy: 'unknown' })],
      }),
    );
    assert.deepEqual(edgeIds(g), ['wl:shop/client->unknown:tcp']);
    assert.equal(g.edges[0]!.security, 'plaintext');
  });

  test('TCP tunnels carrying HTTP between the same two nodes are not drawn again', () => {
    const g = buildGraph(
      input({
        requests: [request('client', 'frontend', 'frontend', 1)],
        tcpBytes: [tcp('destination', 'client', 'shop', 'waypoint-0123456789-0', 500)],
      }),
    );
    assert.ok(!g.edges.some((e) => e.protocol === 'tcp'));
  });

  test('a TCP edge whose ends the requests already join through the waypoint is not drawn', () => {
    const g = buildGraph(
      input({
        requests: [request('client', 'frontend', 'frontend', 1)],
        // The client's ztunnel reports the connection toward frontend (addressed to its service).
        tcpBytes: [
          tcp('source', 'client', 'shop', 'frontend', 500, {
            destination_service_name: 'frontend',
            destination_service_namespace: 'shop',
          }),
          tcp('destination', 'waypoint-0123456789-0', 'shop', 'frontend', 500),
        ],
      }),
    );
    assert.deepEqual(edgeIds(g), [
      'svc:shop/frontend->wl:shop/frontend:http',
      'wl:shop/client->wp:shop/waypoint:http',
      'wp:shop/waypoint->svc:shop/frontend:http',
    ]);
  });

  test('mTLS and plaintext requests on one edge make it mixed', () => {
    const g = buildGraph(
      input({
        requests: [
          request('client', 'frontend', 'frontend', 1),
          request('client', 'frontend', 'frontend', 1, { connection_security_policy: 'none' }),
        ],
      }),
    );
    assert.ok(g.edges.every((e) => e.security === 'mixed'));
  });

  test('a namespace filter keeps its nodes and what they talk to', () => {
    const g = buildGraph(
      input({
        namespaces: ['legacy'],
        tcpOpened: [
          tcp('destination', 'legacy', 'legacy', 'catalog-v1', 1, { connection_security_policy: 'unknown' }),
        ],
      }),
    );
    const ids = g.nodes.map((n) => n.id).sort();
    assert.deepEqual(ids, ['ns:legacy', 'ns:shop', 'wl:legacy/legacy', 'wl:shop/catalog-v1']);
  });

  test('p99 per drawn edge from the summed buckets of its requests', () => {
    const bucket = (dst: string, le: string, value: number): Sample => {
      const r = request('frontend', 'catalog', dst, value);
      return { metric: { ...r.metric, le }, value };
    };
    const g = buildGraph(
      input({
        requests: [
          request('frontend', 'catalog', 'catalog-v1', 1),
          request('frontend', 'catalog', 'catalog-v2', 1),
        ],
        // Cumulative, every bucket listed as the query returns them (the empty ones too).
        durations: [
          bucket('catalog-v1', '1', 0),
          bucket('catalog-v1', '5', 1),
          bucket('catalog-v1', '10', 1),
          bucket('catalog-v1', '100', 1),
          bucket('catalog-v1', '+Inf', 1),
          bucket('catalog-v2', '1', 0),
          bucket('catalog-v2', '5', 0),
          bucket('catalog-v2', '10', 0),
          bucket('catalog-v2', '100', 1),
          bucket('catalog-v2', '+Inf', 1),
        ],
      }),
    );
    const p99 = (id: string) => g.edges.find((e) => e.id === id)!.p99Ms;
    // In (1, 5]: 1 + 4 × 0.99, as Prometheus's histogram_quantile gives it.
    assert.equal(p99('svc:shop/catalog->wl:shop/catalog-v1:http'), 4.96);
    // Both workloads' buckets summed on the shared hop: 2 requests, the 1.98th in (10, 100].
    const shared = p99('wp:shop/waypoint->svc:shop/catalog:http')!;
    assert.ok(Math.abs(shared - (10 + 90 * 0.98)) < 1e-9, String(shared));
  });
});

describe('histogram_quantile as Prometheus computes it', () => {
  const b = (pairs: Array<[number, number]>) => new Map(pairs);
  const cases: Array<[string, number, Array<[number, number]>, number | undefined]> = [
    [
      'interpolates inside the bucket',
      0.5,
      [
        [10, 5],
        [20, 10],
        [Infinity, 10],
      ],
      10,
    ],
    [
      'the first bucket starts at 0',
      0.25,
      [
        [10, 5],
        [20, 10],
        [Infinity, 10],
      ],
      5,
    ],
    [
      'a rank in +Inf gives the highest finite bound',
      0.99,
      [
        [10, 5],
        [Infinity, 10],
      ],
      10,
    ],
    ['no +Inf bucket: no answer', 0.5, [[10, 5]], undefined],
    [
      'no observations: no answer',
      0.5,
      [
        [10, 0],
        [Infinity, 0],
      ],
      undefined,
    ],
    [
      'a dip from rounding is evened out',
      0.5,
      [
        [10, 6],
        [20, 5.999],
        [Infinity, 12],
      ],
      10,
    ],
  ];
  for (const [name, q, pairs, want] of cases)
    test(name, () => assert.equal(histogramQuantile(q, b(pairs)), want));
});
