// `ambit stat`: what each resource argument asks, and the table built from Prometheus's answers.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { statTable } from '../../../src/cli/stat.ts';
import type { Sample } from '../../../src/dashboard/prometheus-api.ts';
import { buildStatRows, parseStatPeer, parseStatTarget, statPlan } from '../../../src/dashboard/stat.ts';

describe('ambit stat arguments', () => {
  const targets: Array<[string, object]> = [
    ['ns', { kind: 'namespace' }],
    ['ns/shop', { kind: 'workload', namespace: 'shop' }],
    ['namespace/shop', { kind: 'workload', namespace: 'shop' }],
    ['svc', { kind: 'service', namespace: 'default' }],
    ['svc/catalog', { kind: 'service', namespace: 'default', name: 'catalog' }],
    ['workload/frontend', { kind: 'workload', namespace: 'default', name: 'frontend' }],
    ['deploy/frontend', { kind: 'workload', namespace: 'default', name: 'frontend' }],
  ];
  for (const [text, want] of targets)
    test(`"${text}"`, () => assert.deepEqual(parseStatTarget(text, 'default'), want));

  for (const bad of ['pods/x', 'svc/', 'svc/a/b', 'svc/UPPER', 'svc/a"b', ''])
    test(`"${bad}" is refused with the forms it takes`, () =>
      assert.throws(
        () => parseStatTarget(bad, 'default'),
        /is not ns\[\/NAME\], svc\[\/NAME\] or workload\[\/NAME\]/,
      ));

  test('--to ns needs a name; a service cannot be the sender', () => {
    assert.throws(() => parseStatPeer('ns', 'shop', '--to'), /--to ns needs a name/);
    assert.throws(
      () =>
        statPlan({ kind: 'service', namespace: 'shop' }, '1m', {
          to: parseStatPeer('svc/x', 'shop', '--to'),
        }),
      /a service sends nothing of its own/,
    );
    assert.throws(
      () =>
        statPlan({ kind: 'workload', namespace: 'shop' }, '1m', {
          to: parseStatPeer('svc/x', 'shop', '--to'),
          from: parseStatPeer('ns/a', 'shop', '--from'),
        }),
      /not both/,
    );
  });

  test('workload/frontend --to svc/catalog: the requests frontend sent to catalog, by sender', () => {
    const plan = statPlan({ kind: 'workload', namespace: 'shop', name: 'frontend' }, '1m', {
      to: parseStatPeer('svc/catalog', 'shop', '--to'),
    });
    assert.equal(plan.side, 'source');
    assert.deepEqual(plan.groupBy, ['source_workload_namespace', 'source_workload']);
    assert.equal(
      plan.queries.requests,
      'sum by (source_workload_namespace,source_workload) (rate(istio_requests_total{reporter=~"source|waypoint",source_workload_namespace="shop",source_workload="frontend",destination_service_namespace="shop",destination_service_name="catalog"}[1m]))',
    );
  });

  test('ns/shop: what each of shop’s workloads received, by receiver', () => {
    const plan = statPlan(parseStatTarget('ns/shop', 'default'), '5m');
    assert.equal(plan.side, 'destination');
    assert.match(plan.queries.requests, /^sum by \(destination_workload_namespace,destination_workload\) /);
    assert.match(plan.queries.requests, /destination_workload_namespace="shop"\}\[5m\]/);
  });
});

describe('ambit stat rows', () => {
  const m = (ns: string, name: string, value: number): Sample => ({
    metric: { destination_workload_namespace: ns, destination_workload: name },
    value,
  });
  const inventory = {
    workloads: [
      { name: 'frontend', namespace: 'shop', enrolled: true },
      { name: 'catalog-v1', namespace: 'shop', enrolled: true },
      { name: 'idle', namespace: 'shop', enrolled: false },
      { name: 'waypoint-abc-0', namespace: 'shop', enrolled: true, isWaypoint: true },
      { name: 'other', namespace: 'elsewhere', enrolled: true },
    ],
    services: [],
  };
  const groupBy = ['destination_workload_namespace', 'destination_workload'];

  test('a row per workload of the namespace, idle ones too, waypoints not; success from the two rates', () => {
    const rows = buildStatRows({ kind: 'workload', namespace: 'shop' }, groupBy, inventory, {
      requests: [m('shop', 'frontend', 4), m('shop', 'catalog-v1', 2)],
      successes: [m('shop', 'frontend', 3)],
      p50: [m('shop', 'frontend', 2.5), m('shop', 'catalog-v1', Number.NaN)],
      p95: [],
      p99: [m('shop', 'frontend', 40)],
      tcpOpen: [m('shop', 'frontend', 2.4), m('shop', 'unknown', 9)],
    });
    assert.deepEqual(rows, [
      { namespace: 'shop', name: 'catalog-v1', meshed: '1/1', requestsPerSecond: 2, successRate: 0 },
      {
        namespace: 'shop',
        name: 'frontend',
        meshed: '1/1',
        requestsPerSecond: 4,
        successRate: 0.75,
        p50Ms: 2.5,
        p99Ms: 40,
        tcpConnections: 2,
      },
      { namespace: 'shop', name: 'idle', meshed: '0/1' },
    ]);
    assert.equal(
      statTable(rows),
      [
        'NAMESPACE   NAME         MESHED   SUCCESS   RPS      LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN',
        'shop        catalog-v1   1/1      0.00%     2.0rps   -             -             -             -',
        'shop        frontend     1/1      75.00%    4.0rps   2.5ms         -             40ms          2',
        'shop        idle         0/1      -         -        -             -             -             -',
      ].join('\n'),
    );
  });

  test('ns: a row per namespace, meshed as enrolled of all', () => {
    const rows = buildStatRows({ kind: 'namespace' }, ['destination_workload_namespace'], inventory, {
      requests: [{ metric: { destination_workload_namespace: 'shop' }, value: 6 }],
      successes: [{ metric: { destination_workload_namespace: 'shop' }, value: 6 }],
      p50: [],
      p95: [],
      p99: [],
      tcpOpen: [],
    });
    assert.deepEqual(rows, [
      { name: 'elsewhere', meshed: '1/1' },
      { name: 'shop', meshed: '2/3', requestsPerSecond: 6, successRate: 1 },
    ]);
  });
});
