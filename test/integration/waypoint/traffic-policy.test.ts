// DestinationRule traffic policy through the waypoint's HTTP core on 127.0.0.1: outlier ejection, a
// cookie-hash that sticks, least request steering around a slow backend, and a pool limit's 503 UO.

import assert from 'node:assert/strict';
import * as http from 'node:http';
import { describe, test } from 'node:test';
import type { DestinationRuleResource } from '../../../src/config/index.ts';
import { trafficPolicyFor } from '../../../src/waypoint/traffic-policy/index.ts';
import { eventually, forwardTo, harness, listen, request, table } from './http-harness.ts';

type Policy = NonNullable<DestinationRuleResource['spec']['trafficPolicy']>;

/** A DestinationRule for shop/reviews with `trafficPolicy`, resolved as the waypoint would. */
function policy(trafficPolicy: Policy) {
  const rule = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'reviews', namespace: 'shop' },
    spec: { host: 'reviews', trafficPolicy },
  } as DestinationRuleResource;
  return () =>
    trafficPolicyFor([rule], { service: 'shop/reviews', port: 9080 }, 'reviews.shop.svc.cluster.local');
}

/** A backend answering its own name; `status` 500 makes it always fail; `hold` keeps requests waiting. */
async function backend(
  t: Parameters<typeof listen>[0],
  name: string,
  opts: { status?: number; hold?: boolean } = {},
) {
  const held: http.ServerResponse[] = [];
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits++;
    req.resume();
    if (opts.hold) held.push(res);
    else res.writeHead(opts.status ?? 200, { 'content-type': 'text/plain' }).end(name);
  });
  const port = await listen(t, server);
  return {
    port,
    held,
    get hits() {
      return hits;
    },
    release() {
      for (const res of held.splice(0)) res.writeHead(200).end(name);
    },
  };
}

const route = table((req) => forwardTo('shop/reviews', 9080, req));

describe('waypoint traffic policy', () => {
  test('a backend that always fails is ejected and the others take the traffic', async (t) => {
    const bad = await backend(t, 'bad', { status: 500 });
    const a = await backend(t, 'a');
    const b = await backend(t, 'b');
    const h = await harness(t, {
      routes: route,
      endpoints: { 'shop/reviews': [bad.port, a.port, b.port] },
      trafficPolicy: policy({
        loadBalancer: { simple: 'ROUND_ROBIN' },
        outlierDetection: { consecutive5xxErrors: 2, baseEjectionTime: '5m', maxEjectionPercent: 50 },
      }),
    });
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await request(h.port, { path: '/' })).status);
    assert.equal(bad.hits, 2, 'ejected after its second consecutive 5xx');
    assert.deepEqual(statuses.slice(6), [200, 200, 200, 200, 200, 200]);
    assert.equal(a.hits + b.hits, 10);
  });

  test('a cookie hash sticks to one backend, and the cookie is generated when absent', async (t) => {
    const backends = await Promise.all(['a', 'b', 'c'].map((n) => backend(t, n)));
    const h = await harness(t, {
      routes: route,
      endpoints: { 'shop/reviews': backends.map((b) => b.port) },
      trafficPolicy: policy({
        loadBalancer: { consistentHash: { httpCookie: { name: 'sticky', path: '/', ttl: '60s' } } },
      }),
    });
    const first = await request(h.port, { path: '/' });
    const setCookie = first.headers['set-cookie']?.[0] ?? '';
    assert.match(setCookie, /^sticky="[0-9a-f]+"; Max-Age=60; Path=\/; HttpOnly$/);
    const cookie = setCookie.split(';')[0] as string;
    const seen = new Set([first.body]);
    for (let i = 0; i < 8; i++) {
      const r = await request(h.port, { path: '/', headers: { cookie } });
      assert.equal(r.headers['set-cookie'], undefined);
      seen.add(r.body);
    }
    assert.equal(seen.size, 1, `one backend for one cookie, got ${[...seen]}`);
  });

  test('LEAST_REQUEST sends new requests away from a backend still busy', async (t) => {
    const slow = await backend(t, 'slow', { hold: true });
    const fast = await backend(t, 'fast');
    // The two random choices: first both the slow backend, then one of each.
    let draws = [0, 0];
    let i = 0;
    const random = () => draws[i++ % draws.length] as number;
    const h = await harness(t, {
      routes: route,
      endpoints: { 'shop/reviews': [slow.port, fast.port] },
      random,
      trafficPolicy: policy({ loadBalancer: { simple: 'LEAST_REQUEST' } }),
    });
    const busy = request(h.port, { path: '/' });
    await eventually(() => slow.held.length === 1);
    draws = [0, 0.9];
    i = 0;
    for (let n = 0; n < 6; n++) assert.equal((await request(h.port, { path: '/' })).body, 'fast');
    slow.release();
    assert.equal((await busy).body, 'slow');
  });

  test('over http2MaxRequests: 503 UO, "reset reason: overflow", x-envoy-overloaded', async (t) => {
    const slow = await backend(t, 'slow', { hold: true });
    const h = await harness(t, {
      routes: route,
      endpoints: { 'shop/reviews': [slow.port] },
      trafficPolicy: policy({ connectionPool: { http: { http2MaxRequests: 1 } } }),
    });
    const busy = request(h.port, { path: '/' });
    await eventually(() => slow.held.length === 1);
    const refused = await request(h.port, { path: '/' });
    assert.equal(refused.status, 503);
    assert.equal(
      refused.body,
      'upstream connect error or disconnect/reset before headers. reset reason: overflow',
    );
    assert.equal(refused.headers['x-envoy-overloaded'], 'true');
    assert.equal(h.access.at(-1)?.flags, 'UO');
    const metrics = await h.registry.metrics();
    assert.match(metrics, /response_flags="UO"/);
    slow.release();
    assert.equal((await busy).status, 200);
    // The slot is free again: the next request goes through.
    const next = request(h.port, { path: '/' });
    await eventually(() => slow.held.length === 1);
    slow.release();
    assert.equal((await next).status, 200);
  });

  test('over tcp.maxConnections with http1MaxPendingRequests: the waiting request overflows', async (t) => {
    const slow = await backend(t, 'slow', { hold: true });
    const h = await harness(t, {
      routes: route,
      endpoints: { 'shop/reviews': [slow.port] },
      trafficPolicy: policy({
        connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } },
      }),
    });
    const first = request(h.port, { path: '/' });
    await eventually(() => slow.held.length === 1);
    const second = request(h.port, { path: '/' }); // waits for the one connection
    await eventually(() => h.access.length > 0 || h.proxy.upstreamStats().http1Sockets === 1);
    const third = await request(h.port, { path: '/' });
    assert.equal(third.status, 503);
    assert.match(third.body, /reset reason: overflow$/);
    slow.release();
    assert.equal((await first).status, 200);
    await eventually(() => slow.held.length === 1);
    slow.release();
    assert.equal((await second).status, 200);
    assert.equal(h.connects.get(slow.port), 1);
  });
});
