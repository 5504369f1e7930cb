// The PromQL the dashboard and `ambit stat` build: escaping, selectors, and the exact queries.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  graphQueries,
  inboundMatchers,
  literalRe,
  outboundMatchers,
  quote,
  selector,
  signalQueries,
  statQueries,
  tcpBytesQuery,
  windowSeconds,
} from '../../../src/dashboard/promql.ts';

describe('PromQL strings and selectors', () => {
  const quoted: Array<[string, string]> = [
    ['shop', '"shop"'],
    ['a"b', '"a\\"b"'],
    ['back\\slash', '"back\\\\slash"'],
    ['two\nlines', '"two\\nlines"'],
  ];
  for (const [input, want] of quoted)
    test(`quote(${JSON.stringify(input)})`, () => assert.equal(quote(input), want));

  test('matchers of each kind, undefined left out, in order', () => {
    assert.equal(
      selector({ a: 'x', b: { re: 'y|z' }, c: undefined, d: { not: 'w' }, e: { notRe: '5..' } }),
      '{a="x",b=~"y|z",d!="w",e!~"5.."}',
    );
    assert.equal(selector({}), '{}');
  });

  test('a label that is not a Prometheus label name is refused, not sent', () => {
    assert.throws(() => selector({ 'bad-label': 'x' }), /not a Prometheus label name/);
    assert.throws(() => selector({ 'a"}or{': 'x' }), /not a Prometheus label name/);
  });

  test('a value cannot break out of its quotes', () => {
    const s = selector({ destination_workload: 'x"} or vector(1) or {a="' });
    assert.equal(s, '{destination_workload="x\\"} or vector(1) or {a=\\""}');
  });

  test('literalRe escapes every metacharacter', () => {
    assert.equal(literalRe('a.b*c+(d)|e'), 'a\\.b\\*c\\+\\(d\\)\\|e');
    assert.ok(new RegExp(`^${literalRe('catalog.shop.svc')}$`).test('catalog.shop.svc'));
    assert.ok(!new RegExp(`^${literalRe('catalog.shop.svc')}$`).test('catalogXshopXsvc'));
  });

  test('windows in seconds', () => {
    assert.deepEqual((['1m', '5m', '15m', '1h'] as const).map(windowSeconds), [60, 300, 900, 3600]);
  });
});

describe('the graph queries', () => {
  const q = graphQueries('5m');
  test('requests: from the HTTP-aware proxy only, by both ends, the waypoint and the outcome', () => {
    assert.equal(
      q.requests,
      'sum by (reporter,source_workload,source_workload_namespace,source_app,source_version,destination_workload,destination_workload_namespace,destination_app,destination_version,destination_service_name,destination_service_namespace,gateway_networking_k8s_io_gateway_name,namespace,request_protocol,response_code,grpc_response_status,connection_security_policy) (rate(istio_requests_total{reporter=~"source|waypoint|destination"}[5m])) > 0',
    );
  });
  test('durations: bucket rates by edge, for quantiles computed per drawn edge', () => {
    assert.match(q.durations, /^sum by \(le,reporter,source_workload,/);
    assert.match(
      q.durations,
      /rate\(istio_request_duration_milliseconds_bucket\{reporter=~"source\|waypoint\|destination"\}\[5m\]\)/,
    );
  });
  test('TCP: both directions of bytes and the opened connections, from both sides with their flags', () => {
    // One query per direction: rate() drops the name, so one query over both would collide.
    assert.match(
      q.tcpSent,
      /^sum by \(reporter,.*\(rate\(istio_tcp_sent_bytes_total\{reporter=~"source\|destination"\}\[5m\]\)\) > 0$/,
    );
    assert.match(
      q.tcpReceived,
      /\(rate\(istio_tcp_received_bytes_total\{reporter=~"source\|destination"\}\[5m\]\)\) > 0$/,
    );
    assert.match(
      q.tcpOpened,
      /connection_security_policy,response_flags\) \(rate\(istio_tcp_connections_opened_total/,
    );
  });
});

describe('signal queries', () => {
  test("a service's inbound golden signals (Istio's Service dashboard shapes)", () => {
    const q = signalQueries(inboundMatchers({ kind: 'service', namespace: 'shop', name: 'catalog' }), '1m');
    const sel =
      'reporter=~"source|waypoint",destination_service_namespace="shop",destination_service_name="catalog"';
    assert.equal(q.requests, `sum (rate(istio_requests_total{${sel}}[1m]))`);
    assert.equal(
      q.successes,
      `sum (rate(istio_requests_total{${sel},response_code!~"5..",grpc_response_status=~"|0"}[1m]))`,
    );
    assert.equal(
      q.p99,
      `histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{${sel}}[1m])))`,
    );
    assert.match(q.p50, /^histogram_quantile\(0\.5, /);
    assert.match(q.p90, /^histogram_quantile\(0\.9, /);
  });

  test('grouped signals keep the grouping labels in the quantile', () => {
    const q = signalQueries({}, '5m', ['destination_workload']);
    assert.equal(
      q.requests,
      'sum by (destination_workload) (rate(istio_requests_total{reporter=~"source|waypoint"}[5m]))',
    );
    assert.match(q.p50, /sum by \(le,destination_workload\)/);
  });

  test('inbound and outbound matchers for each kind of subject', () => {
    assert.deepEqual(inboundMatchers({ kind: 'workload', namespace: 'shop', name: 'frontend' }), {
      destination_workload_namespace: 'shop',
      destination_workload: 'frontend',
    });
    assert.deepEqual(inboundMatchers({ kind: 'namespace', namespace: 'shop' }), {
      destination_workload_namespace: 'shop',
    });
    assert.deepEqual(
      outboundMatchers(
        { kind: 'workload', namespace: 'shop', name: 'frontend' },
        { kind: 'service', namespace: 'shop', name: 'catalog' },
      ),
      {
        source_workload_namespace: 'shop',
        source_workload: 'frontend',
        destination_service_namespace: 'shop',
        destination_service_name: 'catalog',
      },
    );
    assert.deepEqual(
      inboundMatchers(
        { kind: 'workload', namespace: 'shop', name: 'catalog-v1' },
        { kind: 'namespace', namespace: 'legacy' },
      ),
      {
        destination_workload_namespace: 'shop',
        destination_workload: 'catalog-v1',
        source_workload_namespace: 'legacy',
      },
    );
  });

  test("TCP bytes to a service, as the clients' side reports (it names the service)", () => {
    assert.match(
      tcpBytesQuery({ kind: 'service', namespace: 'shop', name: 'catalog' }, '1m'),
      /^\(sum \(rate\(istio_tcp_sent_bytes_total\{reporter="source",destination_service_namespace="shop",destination_service_name="catalog"\}\[1m\]\)\) or vector\(0\)\) \+ /,
    );
  });

  test('TCP bytes a workload received, as its server side reports', () => {
    assert.equal(
      tcpBytesQuery({ kind: 'workload', namespace: 'shop', name: 'catalog-v1' }, '1m'),
      '(sum (rate(istio_tcp_sent_bytes_total{reporter="destination",destination_workload_namespace="shop",destination_workload="catalog-v1"}[1m])) or vector(0)) + (sum (rate(istio_tcp_received_bytes_total{reporter="destination",destination_workload_namespace="shop",destination_workload="catalog-v1"}[1m])) or vector(0))',
    );
  });
});

describe('stat queries', () => {
  test('workload rows: p95 besides the signals, open connections as opened minus closed', () => {
    const q = statQueries(
      { destination_workload_namespace: 'shop' },
      ['destination_workload_namespace', 'destination_workload'],
      '1m',
    );
    assert.match(
      q.p95,
      /^histogram_quantile\(0\.95, sum by \(le,destination_workload_namespace,destination_workload\)/,
    );
    const opened =
      'sum by (destination_workload_namespace,destination_workload) (istio_tcp_connections_opened_total{reporter="destination",destination_workload_namespace="shop"})';
    const closed =
      'sum by (destination_workload_namespace,destination_workload) (istio_tcp_connections_closed_total{reporter="destination",destination_workload_namespace="shop"})';
    // A group whose connections never closed has no closed series: it counts as 0, not as no row.
    assert.equal(q.tcpOpen, `${opened} - (${closed} or ${opened} * 0)`);
  });
  test('requests to a service ask no TCP query either: the server side does not know the service', () => {
    const q = statQueries(
      {
        source_workload_namespace: 'shop',
        source_workload: 'frontend',
        destination_service_namespace: 'shop',
        destination_service_name: 'catalog',
      },
      ['source_workload_namespace', 'source_workload'],
      '1m',
    );
    assert.equal(q.tcpOpen, '');
  });
  test('service rows ask no TCP query: the server side does not know the service', () => {
    const q = statQueries(
      { destination_service_namespace: 'shop', destination_service_name: 'catalog' },
      ['destination_service_namespace', 'destination_service_name'],
      '1m',
    );
    assert.equal(q.tcpOpen, '');
  });
});
