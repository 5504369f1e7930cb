// RateLimitPolicy enforcement without Redis: selectors of each kind, local token buckets on an
// injected clock (Envoy's continuous refill, strictest rule first), the answers and headers, the
// bucket cap, and that a waypoint without global rules never loads the Redis client.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { registerHooks } from 'node:module';
import { describe, it } from 'node:test';
import { assertValid, type RateLimitPolicyResource } from '../../../src/config/index.ts';
import { logger } from '../../../src/log/index.ts';
import {
  compileRateLimitPolicy,
  type DescriptorEntry,
  RateLimiter,
  type RateLimitVerdict,
  type RequestAttributes,
  windowKey,
  windowState,
} from '../../../src/policy/ratelimit/index.ts';

// Registered before any check runs: every later resolution of the Redis client is seen.
const redisLoads: string[] = [];
registerHooks({
  resolve(specifier, context, next) {
    if (specifier.includes('@redis/client')) redisLoads.push(specifier);
    return next(specifier, context);
  },
});

const log = logger('ratelimit-test');

function policy(spec: unknown, name = 'rl', namespace = 'shop'): RateLimitPolicyResource {
  return assertValid({
    apiVersion: 'ambit.dev/v1alpha1',
    kind: 'RateLimitPolicy',
    metadata: { name, namespace },
    spec: { targetRefs: [{ group: '', kind: 'Service', name: 'web' }], ...(spec as object) },
  }) as RateLimitPolicyResource;
}

const localRule = (clientSelectors: unknown[] | undefined, requests = 1, unit = 'Minute', name?: string) =>
  policy({
    local: {
      rules: [
        {
          ...(name ? { name } : {}),
          ...(clientSelectors ? { clientSelectors } : {}),
          limit: { requests, unit },
        },
      ],
    },
  });

function req(over: Partial<RequestAttributes> = {}): RequestAttributes {
  return {
    method: 'GET',
    path: '/',
    host: 'web.shop.svc.cluster.local',
    headers: {},
    source: { principal: 'spiffe://cluster.local/ns/front/sa/web', ip: '198.18.1.10', namespace: 'front' },
    destination: { ip: '198.18.2.20', port: 8080 },
    ...over,
  };
}

function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function limiter(now: () => number, extra: { maxLocalBuckets?: number } = {}): RateLimiter {
  return new RateLimiter({ log, now, backend: () => undefined, ...extra });
}

describe('rate limit: client selectors', () => {
  const cases: Array<{
    name: string;
    selectors?: unknown[];
    req: RequestAttributes;
    want: DescriptorEntry[] | undefined;
  }> = [
    { name: 'no selector counts every request', req: req(), want: [] },
    {
      name: 'header Exact, equal',
      selectors: [{ headers: [{ name: 'x-tier', value: 'free' }] }],
      req: req({ headers: { 'x-tier': 'free' } }),
      want: [],
    },
    {
      name: 'header Exact is case-sensitive in the value',
      selectors: [{ headers: [{ name: 'x-tier', value: 'free' }] }],
      req: req({ headers: { 'x-tier': 'Free' } }),
      want: undefined,
    },
    {
      name: 'header names are case-insensitive',
      selectors: [{ headers: [{ name: 'X-Tier', value: 'free' }] }],
      req: req({ headers: { 'x-tier': 'free' } }),
      want: [],
    },
    {
      name: 'header Exact, absent',
      selectors: [{ headers: [{ name: 'x-tier', value: 'free' }] }],
      req: req(),
      want: undefined,
    },
    {
      name: 'header Exact inverted, another value',
      selectors: [{ headers: [{ name: 'x-tier', value: 'gold', invert: true }] }],
      req: req({ headers: { 'x-tier': 'free' } }),
      want: [],
    },
    {
      name: 'header Exact inverted, the value',
      selectors: [{ headers: [{ name: 'x-tier', value: 'gold', invert: true }] }],
      req: req({ headers: { 'x-tier': 'gold' } }),
      want: undefined,
    },
    {
      name: 'header Exact inverted, absent (Envoy: a missing header matches no value test)',
      selectors: [{ headers: [{ name: 'x-tier', value: 'gold', invert: true }] }],
      req: req(),
      want: undefined,
    },
    {
      name: 'header repeated: values joined with ","',
      selectors: [{ headers: [{ name: 'x-tag', value: 'a,b' }] }],
      req: req({ headers: { 'x-tag': ['a', 'b'] } }),
      want: [],
    },
    {
      name: 'header RegularExpression matches the whole value',
      selectors: [{ headers: [{ name: 'x-client', type: 'RegularExpression', value: 'app-[0-9]+' }] }],
      req: req({ headers: { 'x-client': 'app-12' } }),
      want: [],
    },
    {
      name: 'header RegularExpression does not match part of it',
      selectors: [{ headers: [{ name: 'x-client', type: 'RegularExpression', value: 'app-[0-9]+' }] }],
      req: req({ headers: { 'x-client': 'my-app-12' } }),
      want: undefined,
    },
    {
      name: 'header Distinct: a bucket per value',
      selectors: [{ headers: [{ name: 'x-user', type: 'Distinct' }] }],
      req: req({ headers: { 'x-user': 'alice' } }),
      want: [{ key: 'header.x-user', value: 'alice' }],
    },
    {
      name: 'header Distinct, absent: the rule does not apply',
      selectors: [{ headers: [{ name: 'x-user', type: 'Distinct' }] }],
      req: req(),
      want: undefined,
    },
    {
      name: 'header Present, with an empty value',
      selectors: [{ headers: [{ name: 'x-canary', type: 'Present' }] }],
      req: req({ headers: { 'x-canary': '' } }),
      want: [],
    },
    {
      name: 'header Present inverted: absent',
      selectors: [{ headers: [{ name: 'x-canary', type: 'Present', invert: true }] }],
      req: req(),
      want: [],
    },
    {
      name: 'header Present inverted: present',
      selectors: [{ headers: [{ name: 'x-canary', type: 'Present', invert: true }] }],
      req: req({ headers: { 'x-canary': '1' } }),
      want: undefined,
    },
    {
      name: 'methods: any of them',
      selectors: [{ methods: [{ value: 'POST' }, { value: 'PUT' }] }],
      req: req({ method: 'PUT' }),
      want: [],
    },
    {
      name: 'methods: none of them',
      selectors: [{ methods: [{ value: 'POST' }, { value: 'PUT' }] }],
      req: req({ method: 'GET' }),
      want: undefined,
    },
    {
      name: 'methods inverted',
      selectors: [{ methods: [{ value: 'GET', invert: true }] }],
      req: req({ method: 'POST' }),
      want: [],
    },
    {
      name: 'path prefix: the element itself, query ignored',
      selectors: [{ path: { value: '/api' } }],
      req: req({ path: '/api?x=1' }),
      want: [],
    },
    {
      name: 'path prefix: below it',
      selectors: [{ path: { type: 'PathPrefix', value: '/api/' } }],
      req: req({ path: '/api/orders/7' }),
      want: [],
    },
    {
      name: 'path prefix: not a longer element',
      selectors: [{ path: { value: '/api' } }],
      req: req({ path: '/apix' }),
      want: undefined,
    },
    {
      name: 'path Exact',
      selectors: [{ path: { type: 'Exact', value: '/login' } }],
      req: req({ path: '/login/' }),
      want: undefined,
    },
    {
      name: 'path RegularExpression',
      selectors: [{ path: { type: 'RegularExpression', value: '/v[0-9]+/.*' } }],
      req: req({ path: '/v2/items?page=3' }),
      want: [],
    },
    {
      name: 'path inverted',
      selectors: [{ path: { value: '/health', invert: true } }],
      req: req({ path: '/health' }),
      want: undefined,
    },
    {
      name: 'sourceCIDR Exact: inside',
      selectors: [{ sourceCIDR: { value: '198.18.1.0/24' } }],
      req: req(),
      want: [],
    },
    {
      name: 'sourceCIDR Exact: outside',
      selectors: [{ sourceCIDR: { value: '198.18.2.0/24' } }],
      req: req(),
      want: undefined,
    },
    {
      name: 'sourceCIDR Distinct: a bucket per address, IPv4-mapped written as IPv4',
      selectors: [{ sourceCIDR: { type: 'Distinct', value: '198.18.0.0/15' } }],
      req: req({ source: { principal: '', ip: '::ffff:198.18.1.10' } }),
      want: [{ key: 'remote_address', value: '198.18.1.10' }],
    },
    {
      name: 'sourceCIDR reads the original client address first',
      selectors: [{ sourceCIDR: { type: 'Distinct', value: '2001:db8::/32' } }],
      req: req({ remoteIp: '2001:db8::7' }),
      want: [{ key: 'remote_address', value: '2001:db8::7' }],
    },
    {
      name: 'sourcePrincipal Exact, written without spiffe://',
      selectors: [{ sourcePrincipal: { value: 'cluster.local/ns/front/sa/web' } }],
      req: req(),
      want: [],
    },
    {
      name: 'sourcePrincipal inverted counts a request without identity',
      selectors: [{ sourcePrincipal: { value: 'cluster.local/ns/front/sa/web', invert: true } }],
      req: req({ source: { principal: '', ip: '198.18.1.10' } }),
      want: [],
    },
    {
      name: 'sourcePrincipal RegularExpression',
      selectors: [{ sourcePrincipal: { type: 'RegularExpression', value: '.*/sa/batch-.*' } }],
      req: req({ source: { principal: 'spiffe://cluster.local/ns/jobs/sa/batch-7' } }),
      want: [],
    },
    {
      name: 'sourcePrincipal Distinct',
      selectors: [{ sourcePrincipal: { type: 'Distinct' } }],
      req: req(),
      want: [{ key: 'source.principal', value: 'cluster.local/ns/front/sa/web' }],
    },
    {
      name: 'sourceNamespace Exact, read from the principal when not given',
      selectors: [{ sourceNamespace: { value: 'jobs' } }],
      req: req({ source: { principal: 'spiffe://cluster.local/ns/jobs/sa/batch' } }),
      want: [],
    },
    {
      name: 'sourceNamespace Distinct',
      selectors: [{ sourceNamespace: { type: 'Distinct' } }],
      req: req(),
      want: [{ key: 'source.namespace', value: 'front' }],
    },
    {
      name: 'every selector and every condition in one must hold',
      selectors: [
        { headers: [{ name: 'x-user', type: 'Distinct' }], methods: [{ value: 'POST' }] },
        { sourceCIDR: { type: 'Distinct', value: '198.18.0.0/15' } },
      ],
      req: req({ method: 'POST', headers: { 'x-user': 'bob' } }),
      want: [
        { key: 'header.x-user', value: 'bob' },
        { key: 'remote_address', value: '198.18.1.10' },
      ],
    },
    {
      name: 'one condition failing fails the rule',
      selectors: [{ headers: [{ name: 'x-user', type: 'Distinct' }], methods: [{ value: 'POST' }] }],
      req: req({ method: 'GET', headers: { 'x-user': 'bob' } }),
      want: undefined,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const [rule] = compileRateLimitPolicy(localRule(c.selectors)).local;
      assert.deepEqual(rule!.match(c.req), c.want);
    });
  }
});

/** Runs `n` checks in order and returns their verdicts. */
async function run(l: RateLimiter, p: RateLimitPolicyResource[], r: RequestAttributes, n: number) {
  const out: RateLimitVerdict[] = [];
  for (let i = 0; i < n; i++) out.push(await l.check(p, r));
  return out;
}

describe('rate limit: local token buckets', () => {
  it('answers as Envoy local_ratelimit does, with retry-after and the IETF headers', async () => {
    const c = clock();
    const l = limiter(c.now);
    const p = [localRule(undefined, 3, 'Second')];
    const verdicts = await run(l, p, req(), 4);
    assert.deepEqual(
      verdicts.map((v) => v.headers.ratelimit),
      ['"rl/local-0";r=2;t=1', '"rl/local-0";r=1;t=1', '"rl/local-0";r=0;t=1', '"rl/local-0";r=0;t=1'],
    );
    assert.deepEqual(verdicts[0], {
      limited: false,
      headers: { 'ratelimit-policy': '"rl/local-0";q=3;w=1', ratelimit: '"rl/local-0";r=2;t=1' },
    });
    assert.deepEqual(verdicts[3], {
      limited: true,
      status: 429,
      body: 'local_rate_limited',
      flags: 'RL',
      headers: {
        'retry-after': '1',
        'ratelimit-policy': '"rl/local-0";q=3;w=1',
        ratelimit: '"rl/local-0";r=0;t=1',
      },
    });
  });

  it('refills continuously: one token per requests/unit, never above requests', async () => {
    const c = clock();
    const l = limiter(c.now);
    const p = [localRule(undefined, 2, 'Minute', 'per-minute')];
    const limitedAt = async () => (await l.check(p, req())).limited;
    assert.deepEqual([await limitedAt(), await limitedAt(), await limitedAt()], [false, false, true]);
    const denied = await l.check(p, req());
    assert.equal(denied.headers['retry-after'], '30');
    assert.equal(denied.headers.ratelimit, '"rl/per-minute";r=0;t=60');
    c.advance(29_000);
    assert.equal(await limitedAt(), true);
    c.advance(1_000);
    assert.equal(await limitedAt(), false);
    assert.equal(await limitedAt(), true);
    // An hour idle fills the bucket to 2, not more.
    c.advance(3_600_000);
    assert.deepEqual([await limitedAt(), await limitedAt(), await limitedAt()], [false, false, true]);
  });

  it('a clock stepping back does not empty a bucket', async () => {
    const c = clock();
    const l = limiter(c.now);
    const p = [localRule(undefined, 2, 'Second')];
    assert.equal((await l.check(p, req())).limited, false);
    c.advance(-60_000);
    assert.equal((await l.check(p, req())).limited, false);
  });

  it('Distinct values get buckets of their own', async () => {
    const l = limiter(clock().now);
    const p = [localRule([{ headers: [{ name: 'x-user', type: 'Distinct' }] }])];
    const as = (user: string) => l.check(p, req({ headers: { 'x-user': user } }));
    assert.deepEqual(
      [(await as('alice')).limited, (await as('alice')).limited, (await as('bob')).limited],
      [false, true, false],
    );
    // Without the header the rule does not count the request, so it is neither limited nor reported.
    assert.deepEqual(await l.check(p, req()), { limited: false, headers: {} });
  });

  it('long Distinct values are told apart (and kept small) by their digest', async () => {
    const l = limiter(clock().now);
    const p = [localRule([{ headers: [{ name: 'x-token', type: 'Distinct' }] }])];
    const long = 'x'.repeat(5_000);
    const as = async (v: string) => (await l.check(p, req({ headers: { 'x-token': v } }))).limited;
    assert.deepEqual(
      [await as(`${long}a`), await as(`${long}b`), await as(`${long}a`)],
      [false, false, true],
    );
  });

  it('several rules: the strictest is taken first, and a denial leaves the others untouched', async () => {
    const c = clock();
    const l = limiter(c.now);
    const p = [
      policy({
        local: {
          rules: [
            { name: 'loose', limit: { requests: 10, unit: 'Second' } },
            { name: 'strict', limit: { requests: 1, unit: 'Minute' } },
          ],
        },
      }),
    ];
    const first = await l.check(p, req());
    assert.equal(first.limited, false);
    assert.equal(first.headers['ratelimit-policy'], '"rl/strict";q=1;w=60, "rl/loose";q=10;w=1');
    assert.equal(first.headers.ratelimit, '"rl/strict";r=0;t=60, "rl/loose";r=9;t=1');
    const second = await l.check(p, req());
    assert.equal(second.limited, true);
    // `loose` was not reached: it still has the 9 tokens the first request left.
    assert.equal(second.headers.ratelimit, '"rl/strict";r=0;t=60, "rl/loose";r=9;t=1');
    assert.equal(second.headers['retry-after'], '60');
  });

  it('rules of several policies add up; any empty bucket limits the request', async () => {
    const l = limiter(clock().now);
    const a = localRule(undefined, 5, 'Second', 'all');
    const b = policy({ local: { rules: [{ limit: { requests: 1, unit: 'Hour' } }] } }, 'posts');
    const verdicts = await run(l, [a, b], req(), 2);
    assert.deepEqual(
      verdicts.map((v) => v.limited),
      [false, true],
    );
    assert.equal(verdicts[1]!.headers['retry-after'], '3600');
  });

  it('a rule whose selectors do not match leaves the answer without headers', async () => {
    const l = limiter(clock().now);
    const p = [localRule([{ methods: [{ value: 'POST' }] }])];
    assert.deepEqual(await run(l, p, req(), 3), [
      { limited: false, headers: {} },
      { limited: false, headers: {} },
      { limited: false, headers: {} },
    ]);
    assert.deepEqual(await l.check([], req()), { limited: false, headers: {} });
  });

  it('a changed limit is a new bucket, as a new Envoy filter config is', async () => {
    const l = limiter(clock().now);
    assert.deepEqual(
      (await run(l, [localRule(undefined, 1, 'Hour')], req(), 2)).map((v) => v.limited),
      [false, true],
    );
    assert.equal((await l.check([localRule(undefined, 2, 'Hour')], req())).limited, false);
  });

  it('holds at most maxLocalBuckets buckets, forgetting the least recently used', async () => {
    const l = limiter(clock().now, { maxLocalBuckets: 3 });
    const p = [localRule([{ headers: [{ name: 'x-user', type: 'Distinct' }] }], 1, 'Hour')];
    const as = async (user: string) => (await l.check(p, req({ headers: { 'x-user': user } }))).limited;
    assert.deepEqual([await as('u1'), await as('u1')], [false, true]);
    for (const u of ['u2', 'u3', 'u4', 'u5']) assert.equal(await as(u), false);
    assert.equal(l.status().localBuckets, 3);
    // u5 was used last and is still held; u1 was forgotten and starts full again.
    assert.equal(await as('u5'), true);
    assert.equal(await as('u1'), false);
    assert.equal(l.status().localBuckets, 3);
  });

  it("a flood of distinct values in one rule cannot push out another rule's buckets", async () => {
    const l = limiter(clock().now, { maxLocalBuckets: 3 });
    const mine = [localRule(undefined, 1, 'Hour')];
    const theirs = [localRule([{ headers: [{ name: 'user-agent', type: 'Distinct' }] }], 5, 'Hour', 'other')];
    assert.deepEqual(
      (await run(l, mine, req(), 2)).map((v) => v.limited),
      [false, true],
    );
    for (let i = 0; i < 10; i++) await l.check(theirs, req({ headers: { 'user-agent': `ua-${i}` } }));
    assert.equal((await l.check(mine, req())).limited, true, 'still limited: its bucket was kept');
  });
});

describe('rate limit: global rules', () => {
  it('the Redis key and window follow envoyproxy/ratelimit', () => {
    const [rule] = compileRateLimitPolicy(
      policy({ global: { rules: [{ name: 'per-user', limit: { requests: 10, unit: 'Minute' } }] } }),
    ).global;
    const now = 1_700_000_123;
    assert.equal(
      windowKey(rule!, [{ key: 'header.x-user', value: 'a_b%c' }], now),
      'ambit_policy_shop/rl_rule_per-user_header.x-user_a%5Fb%25c_1700000100',
    );
    assert.equal(windowKey(rule!, [], now), 'ambit_policy_shop/rl_rule_per-user_1700000100');
    assert.equal(
      windowKey(rule!, [{ key: 'header.x-user', value: 'v'.repeat(129) }], now),
      `ambit_policy_shop/rl_rule_per-user_header.x-user_sha256:${createHash('sha256').update('v'.repeat(129)).digest('hex')}_1700000100`,
    );
    assert.deepEqual(windowState(rule!, 10, now), { over: false, remaining: 0, reset: 37 });
    assert.deepEqual(windowState(rule!, 11, now), { over: true, remaining: 0, reset: 37 });
  });

  it('without MeshConfig spec.rateLimit, global rules pass (fail-open) and local ones still apply', async () => {
    const l = limiter(clock().now);
    const p = [
      policy({
        local: { rules: [{ limit: { requests: 1, unit: 'Minute' } }] },
        global: { rules: [{ limit: { requests: 1, unit: 'Minute' } }] },
      }),
    ];
    const first = await l.check(p, req());
    assert.deepEqual(first, {
      limited: false,
      failedOpen: true,
      headers: { 'ratelimit-policy': '"rl/local-0";q=1;w=60', ratelimit: '"rl/local-0";r=0;t=60' },
    });
    const second = await l.check(p, req());
    assert.equal(second.limited && second.body, 'local_rate_limited');
    assert.equal(l.status().redis, undefined);
  });

  it('no check so far loaded the Redis client', async () => {
    const l = limiter(clock().now);
    await l.check([localRule(undefined, 5, 'Second')], req());
    await l.close();
    assert.deepEqual(redisLoads, []);
  });
});
