// DestinationRule traffic policy without sockets: which rule applies, the load balancers' choices with
// an injected random, the hash ring, outlier detection on an injected clock, and the pool limits.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DestinationRuleResource } from '../../../src/config/index.ts';
import {
  CircuitBreakers,
  createBalancer,
  HashRing,
  hashChoice,
  leastRequestBalancer,
  mostSpecificHost,
  OutlierDetector,
  type OutlierPolicy,
  outlierOf,
  poolOf,
  randomBalancer,
  resolveHost,
  ringHashBalancer,
  roundRobinBalancer,
  trafficPolicyFor,
  trafficPolicyLookup,
} from '../../../src/waypoint/traffic-policy/index.ts';

type Spec = DestinationRuleResource['spec'];

function dr(ns: string, name: string, spec: Partial<Spec> & { host: string }, created?: string) {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name, namespace: ns, ...(created ? { creationTimestamp: created } : {}) },
    spec: { trafficPolicy: { loadBalancer: { simple: 'RANDOM' } }, ...spec },
  } as DestinationRuleResource;
}

const CATALOG = { service: 'shop/catalog', port: 8080 };
const CATALOG_HOST = 'catalog.shop.svc.cluster.local';
const ruleOf = (rules: DestinationRuleResource[], opts = {}) =>
  trafficPolicyFor(rules, CATALOG, CATALOG_HOST, opts)?.rule;

describe('traffic policy: which DestinationRule applies', () => {
  test('host names resolve as Istio resolves them', () => {
    const cases: Array<[string, string, string]> = [
      ['catalog', 'shop', 'catalog.shop.svc.cluster.local'],
      ['catalog', 'other', 'catalog.other.svc.cluster.local'],
      ['catalog.shop.svc.cluster.local', 'other', 'catalog.shop.svc.cluster.local'],
      ['catalog.shop', 'other', 'catalog.shop'], // a dot: taken as written, as istiod does
      ['*', 'shop', '*'],
      ['*.shop.svc.cluster.local', 'x', '*.shop.svc.cluster.local'],
    ];
    for (const [host, ns, want] of cases) assert.equal(resolveHost(host, ns, 'cluster.local'), want, host);
  });

  test('the most specific host wins: exact, then the longest wildcard', () => {
    const cases: Array<[string[], string | undefined]> = [
      [['*', '*.svc.cluster.local', CATALOG_HOST], CATALOG_HOST],
      [['*', '*.svc.cluster.local', '*.shop.svc.cluster.local'], '*.shop.svc.cluster.local'],
      [['*', '*.other.svc.cluster.local'], '*'],
      [['*.other.svc.cluster.local', 'reviews.shop.svc.cluster.local'], undefined],
    ];
    for (const [patterns, want] of cases) assert.equal(mostSpecificHost(CATALOG_HOST, patterns), want);
  });

  test('lookup order and precedence, as a table', () => {
    const cases: Array<{ name: string; rules: DestinationRuleResource[]; opts?: object; want?: string }> = [
      {
        name: 'short name in the service namespace',
        rules: [dr('shop', 'a', { host: 'catalog' })],
        want: 'shop/a',
      },
      { name: 'short name elsewhere means another host', rules: [dr('web', 'a', { host: 'catalog' })] },
      {
        name: 'FQDN in the root namespace',
        rules: [dr('istio-system', 'a', { host: CATALOG_HOST })],
        want: 'istio-system/a',
      },
      {
        name: 'FQDN in a third namespace is not on the lookup path',
        rules: [dr('web', 'a', { host: CATALOG_HOST })],
      },
      {
        name: 'the service namespace before the root namespace',
        rules: [
          dr('istio-system', 'root', { host: CATALOG_HOST }),
          dr('shop', 'own', { host: '*.shop.svc.cluster.local' }),
        ],
        want: 'shop/own',
      },
      {
        name: 'exact before wildcard in one namespace',
        rules: [
          dr('shop', 'wild', { host: '*.shop.svc.cluster.local' }),
          dr('shop', 'exact', { host: 'catalog' }),
          dr('shop', 'all', { host: '*' }),
        ],
        want: 'shop/exact',
      },
      {
        name: 'the waypoint namespace first, whatever it exports',
        rules: [
          dr('shop', 'svc', { host: CATALOG_HOST }),
          dr('mesh', 'wp', { host: CATALOG_HOST, exportTo: ['.'] }),
        ],
        opts: { proxyNamespace: 'mesh' },
        want: 'mesh/wp',
      },
      {
        name: 'a service-namespace rule exported only to itself is not seen from the waypoint namespace',
        rules: [
          dr('shop', 'private', { host: CATALOG_HOST, exportTo: ['.'] }),
          dr('istio-system', 'root', { host: '*' }),
        ],
        opts: { proxyNamespace: 'mesh' },
        want: 'istio-system/root',
      },
      {
        name: 'exported by name to the waypoint namespace',
        rules: [dr('shop', 'named', { host: CATALOG_HOST, exportTo: ['mesh'] })],
        opts: { proxyNamespace: 'mesh' },
        want: 'shop/named',
      },
      {
        name: 'same host: the oldest rule wins',
        rules: [
          dr('shop', 'b-new', { host: 'catalog' }, '2024-02-01T00:00:00Z'),
          dr('shop', 'z-old', { host: 'catalog' }, '2024-01-01T00:00:00Z'),
        ],
        want: 'shop/z-old',
      },
      {
        name: 'rules with a workloadSelector select sidecars, not the waypoint',
        rules: [dr('shop', 'sel', { host: 'catalog', workloadSelector: { matchLabels: { app: 'x' } } })],
      },
    ];
    for (const c of cases) assert.equal(ruleOf(c.rules, c.opts), c.want, c.name);
  });

  test('port-level settings replace the top-level component for their port only', () => {
    const rule = dr('shop', 'a', {
      host: 'catalog',
      trafficPolicy: {
        loadBalancer: { simple: 'ROUND_ROBIN' },
        connectionPool: { http: { http2MaxRequests: 10 } },
        portLevelSettings: [{ port: { number: 8080 }, loadBalancer: { simple: 'RANDOM' } }],
      },
    });
    const on8080 = trafficPolicyFor([rule], CATALOG, CATALOG_HOST);
    const on9090 = trafficPolicyFor([rule], { ...CATALOG, port: 9090 }, CATALOG_HOST);
    assert.equal(on8080?.loadBalancer.kind, 'RANDOM');
    assert.equal(on8080?.pool.maxRequests, 10);
    assert.equal(on9090?.loadBalancer.kind, 'ROUND_ROBIN');
  });

  test('load balancer kinds and defaults', () => {
    const lb = (loadBalancer: object) =>
      trafficPolicyFor(
        [dr('shop', 'a', { host: 'catalog', trafficPolicy: { loadBalancer } as never })],
        CATALOG,
        CATALOG_HOST,
      )?.loadBalancer;
    assert.deepEqual(lb({}), { kind: 'LEAST_REQUEST' });
    assert.deepEqual(lb({ simple: 'LEAST_CONN' }), { kind: 'LEAST_REQUEST' });
    assert.deepEqual(lb({ simple: 'PASSTHROUGH' }), { kind: 'ROUND_ROBIN' });
    assert.deepEqual(lb({ consistentHash: { httpCookie: { name: 'u', ttl: '90s', path: '/' } } }), {
      kind: 'RING_HASH',
      key: { kind: 'cookie', name: 'u', path: '/', ttlSeconds: 90 },
      minimumRingSize: 1024,
    });
    assert.deepEqual(lb({ consistentHash: { httpHeaderName: 'X-User', minimumRingSize: 64 } }), {
      kind: 'RING_HASH',
      key: { kind: 'header', name: 'x-user' },
      minimumRingSize: 64,
    });
  });

  test('pool and outlier defaults as istiod writes them', () => {
    assert.equal(poolOf(undefined).maxRequests, Number.POSITIVE_INFINITY);
    assert.equal(
      poolOf({ http: { maxRequestsPerConnection: 0 } }).maxRequestsPerConnection,
      Number.POSITIVE_INFINITY,
    );
    assert.deepEqual(outlierOf({}), {
      consecutive5xx: 5,
      consecutiveGateway: 0,
      intervalMs: 10_000,
      baseEjectionMs: 30_000,
      maxEjectionMs: 300_000,
      maxEjectionPercent: 10,
      minHealthPercent: 0,
    });
    assert.equal(outlierOf({ consecutiveErrors: 3 })?.consecutiveGateway, 3);
    assert.equal(outlierOf({ consecutiveErrors: 3 })?.consecutive5xx, 0);
  });

  test('the memoised lookup answers again from its cache until the rule map changes', () => {
    let rules = new Map([['shop/a', dr('shop', 'a', { host: 'catalog' })]]);
    const lookup = trafficPolicyLookup(
      () => rules,
      () => ({ hostname: CATALOG_HOST, namespace: 'shop' }),
    );
    const first = lookup(CATALOG);
    assert.equal(lookup(CATALOG), first);
    rules = new Map([['shop/b', dr('shop', 'b', { host: 'catalog' })]]);
    assert.equal(lookup(CATALOG)?.rule, 'shop/b');
  });
});

const ep = (port: number) => ({ address: '198.18.1.1', port });
const EPS = [ep(1), ep(2), ep(3), ep(4)];
/** A random that returns the given values in turn. */
const seq = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length] as number;
};

describe('traffic policy: load balancers', () => {
  test('round robin goes around in order', () => {
    const lb = roundRobinBalancer();
    assert.deepEqual(
      [1, 2, 3, 4, 5].map(() => lb.pick(EPS)?.port),
      [1, 2, 3, 4, 1],
    );
  });

  test('least request picks the less loaded of its two random choices', () => {
    const active = new Map([
      [1, 5],
      [2, 0],
      [3, 2],
      [4, 2],
    ]);
    const lb = leastRequestBalancer({
      random: seq(0, 0.3, 0.6, 0.9, 0.6, 0.6),
      active: (e) => active.get(e.port) ?? 0,
    });
    assert.equal(lb.pick(EPS)?.port, 2); // 1 (5 active) vs 2 (0)
    assert.equal(lb.pick(EPS)?.port, 3); // 3 (2) vs 4 (2): a tie keeps the first
    assert.equal(lb.pick(EPS)?.port, 3); // the same one twice
  });

  test('random covers every endpoint', () => {
    const lb = randomBalancer({ random: seq(0, 0.25, 0.5, 0.75), active: () => 0 });
    assert.deepEqual(new Set([1, 2, 3, 4].map(() => lb.pick(EPS)?.port)), new Set([1, 2, 3, 4]));
  });

  test('ring hash: the same key, the same endpoint; removing one moves only its keys', () => {
    const lb = ringHashBalancer({ random: Math.random, active: () => 0 }, 1024);
    const keys = Array.from({ length: 400 }, (_, i) => `user-${i}`);
    const before = new Map(keys.map((k) => [k, lb.pick(EPS, k)?.port]));
    for (const k of keys.slice(0, 20)) assert.equal(lb.pick(EPS, k)?.port, before.get(k));
    assert.equal(new Set(before.values()).size, 4, 'keys spread over all endpoints');
    const without3 = EPS.filter((e) => e.port !== 3);
    for (const k of keys) {
      const now = lb.pick(without3, k)?.port;
      if (before.get(k) === 3) assert.notEqual(now, 3);
      else assert.equal(now, before.get(k), `${k} stayed`);
    }
  });

  test('the ring has about minimumRingSize entries and does not depend on endpoint order', () => {
    const a = new HashRing(EPS, (e) => `${e.address}:${e.port}`, 250);
    const b = new HashRing([...EPS].reverse(), (e) => `${e.address}:${e.port}`, 250);
    assert.equal(a.size, 1000);
    for (const h of [0, 1e6, 2 ** 40, 2 ** 48 - 1]) assert.equal(a.find(h)?.port, b.find(h)?.port);
  });

  test('createBalancer follows the policy kind', () => {
    const lb = createBalancer({ kind: 'ROUND_ROBIN' }, { random: Math.random, active: () => 0 });
    assert.deepEqual([lb.pick(EPS)?.port, lb.pick(EPS)?.port], [1, 2]);
  });
});

describe('traffic policy: hash keys', () => {
  const input = (headers: Record<string, string | string[]>, path = '/') => ({
    headers,
    path,
    sourceAddress: '198.18.1.7',
    connectionId: 'c0ffee',
  });
  test('header, query, source IP, cookie', () => {
    assert.deepEqual(hashChoice({ kind: 'header', name: 'x-user' }, input({ 'x-user': 'ann' })), {
      key: 'ann',
    });
    assert.deepEqual(hashChoice({ kind: 'header', name: 'x-user' }, input({ 'x-user': ['b', 'a'] })), {
      key: 'ab',
    });
    assert.deepEqual(hashChoice({ kind: 'header', name: 'x-user' }, input({})), {});
    assert.deepEqual(hashChoice({ kind: 'query', name: 'u' }, input({}, '/p?x=1&u=bob')), { key: 'bob' });
    assert.deepEqual(hashChoice({ kind: 'sourceIp' }, input({})), { key: '198.18.1.7' });
    assert.deepEqual(hashChoice({ kind: 'cookie', name: 's' }, input({ cookie: 'a=1; s="xyz"' })), {
      key: 'xyz',
    });
    assert.deepEqual(hashChoice({ kind: 'cookie', name: 's' }, input({})), {});
  });

  test('a missing cookie with a TTL is generated and set, as Envoy writes it', () => {
    assert.deepEqual(hashChoice({ kind: 'cookie', name: 's', ttlSeconds: 60, path: '/' }, input({})), {
      key: 'c0ffee',
      setCookie: 's="c0ffee"; Max-Age=60; Path=/; HttpOnly',
    });
    assert.equal(
      hashChoice({ kind: 'cookie', name: 's', ttlSeconds: 0 }, input({})).setCookie,
      's="c0ffee"; HttpOnly',
    );
  });
});

const OUTLIER: OutlierPolicy = {
  consecutive5xx: 3,
  consecutiveGateway: 0,
  intervalMs: 1000,
  baseEjectionMs: 10_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 100,
  minHealthPercent: 0,
};

function detector(policy: Partial<OutlierPolicy> = {}) {
  const clock = { t: 0 };
  const d = new OutlierDetector({ ...OUTLIER, ...policy }, () => clock.t);
  d.usable(EPS);
  return { d, clock };
}

const fail = (d: OutlierDetector, port: number, n: number, status = 500) => {
  for (let i = 0; i < n; i++) d.report(ep(port), { status });
};
const usablePorts = (d: OutlierDetector) => d.usable(EPS).map((e) => e.port);

describe('traffic policy: outlier detection', () => {
  test('ejected after N consecutive 5xx; a success in between resets the count', () => {
    const { d } = detector();
    fail(d, 1, 2);
    d.report(ep(1), { status: 200 });
    fail(d, 1, 2);
    assert.equal(d.isEjected(ep(1)), false);
    fail(d, 1, 1);
    assert.equal(d.isEjected(ep(1)), true);
    assert.deepEqual(usablePorts(d), [2, 3, 4]);
  });

  test('returns at the first interval tick after its ejection time; longer each time', () => {
    const { d, clock } = detector();
    fail(d, 1, 3);
    clock.t = 9_999;
    assert.equal(d.isEjected(ep(1)), true);
    clock.t = 10_000;
    assert.equal(d.isEjected(ep(1)), false);
    fail(d, 1, 3); // second ejection at t=10 s: 2 × base
    clock.t = 29_999;
    assert.equal(d.isEjected(ep(1)), true);
    clock.t = 30_000;
    assert.equal(d.isEjected(ep(1)), false);
  });

  test('the backoff falls by one per interval spent in service', () => {
    const { d, clock } = detector();
    fail(d, 1, 3);
    clock.t = 10_000; // back (backoff 1)
    assert.equal(d.isEjected(ep(1)), false);
    clock.t = 11_000; // one interval in service: backoff 0
    fail(d, 1, 3);
    clock.t = 20_999;
    assert.equal(d.isEjected(ep(1)), true);
    clock.t = 21_000; // 1 × base again
    assert.equal(d.isEjected(ep(1)), false);
  });

  test('max ejection percent: no ejection that would take the ejected share over it', () => {
    const { d } = detector({ maxEjectionPercent: 50 });
    fail(d, 1, 3);
    fail(d, 2, 3);
    fail(d, 3, 3); // 3 of 4 would be 75 %
    assert.deepEqual(usablePorts(d), [3, 4]);
    const tenPercent = detector({ maxEjectionPercent: 10 }).d; // Envoy's default: 1 of 4 is 25 %
    fail(tenPercent, 1, 3);
    assert.equal(tenPercent.isEjected(ep(1)), false);
  });

  test('gateway errors count 502/503/504 and local failures; other 5xx reset them', () => {
    const { d } = detector({ consecutive5xx: 0, consecutiveGateway: 3 });
    d.report(ep(1), 'connect-failed');
    d.report(ep(1), { status: 504 });
    d.report(ep(1), { status: 500 });
    d.report(ep(1), 'timeout');
    d.report(ep(1), { status: 502 });
    assert.equal(d.isEjected(ep(1)), false);
    d.report(ep(1), { status: 503 });
    assert.equal(d.isEjected(ep(1)), true);
  });

  test('below minHealthPercent the balancer gets every endpoint (panic)', () => {
    const { d } = detector({ minHealthPercent: 60 });
    fail(d, 1, 3);
    assert.deepEqual(usablePorts(d), [2, 3, 4]); // 75 % healthy
    fail(d, 2, 3);
    assert.deepEqual(usablePorts(d), [1, 2, 3, 4]); // 50 % < 60 %
  });

  test('all ejected and no panic threshold: nothing usable', () => {
    const { d } = detector();
    for (const p of [1, 2, 3, 4]) fail(d, p, 3);
    assert.deepEqual(usablePorts(d), []);
  });
});

describe('traffic policy: circuit breakers', () => {
  test('requests, pending and retries stop at their limits and free on release', () => {
    const b = new CircuitBreakers({
      ...poolOf(undefined),
      maxRequests: 2,
      maxPendingRequests: 1,
      maxRetries: 1,
    });
    assert.deepEqual([b.tryRequest(), b.tryRequest(), b.tryRequest()], [true, true, false]);
    b.requestDone();
    assert.equal(b.tryRequest(), true);
    assert.deepEqual([b.tryPending(), b.tryPending()], [true, false]);
    b.pendingDone();
    assert.equal(b.tryPending(), true);
    assert.deepEqual([b.tryRetry(), b.tryRetry()], [true, false]);
    assert.deepEqual(b.stats, { requests: 2, pending: 1, retries: 1 });
  });
});
