// Filters as a forward or an answer carries them: header modifiers (rule- and backend-level),
// redirects (each field of the Location), URL rewrites (the spec's ReplacePrefixMatch table),
// mirrors, ExtensionRefs; and timeouts and retries.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type HTTPRouteResource, validateResource } from '../../../src/config/index.ts';
import type { RouteDecision, RouteRequest } from '../../../src/routing/index.ts';
import { compileRoutes } from '../../../src/routing/index.ts';

const SERVICES: Record<string, number[]> = {
  'shop/web': [80, 8080],
  'shop/v1': [8080],
  'shop/v2': [8080],
  'shop/shadow': [8080],
  'bank/shadow': [8080],
};
const services = (key: string) =>
  SERVICES[key] ? { ports: SERVICES[key].map((port) => ({ port })) } : undefined;

function route(rule: Record<string, unknown>): HTTPRouteResource {
  const result = validateResource({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'r', namespace: 'shop' },
    spec: { parentRefs: [{ group: '', kind: 'Service', name: 'web' }], rules: [rule] },
  });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
  return result.resource as HTTPRouteResource;
}

interface Sent {
  path?: string;
  authority?: string;
  port?: number;
  random?: number[];
}

function decide(rule: Record<string, unknown>, sent: Sent = {}): RouteDecision {
  const table = compileRoutes({ httpRoutes: [route(rule)], grpcRoutes: [], services });
  const req: RouteRequest = {
    method: 'GET',
    path: sent.path ?? '/',
    headers: {},
    authority: sent.authority ?? 'web.shop',
  };
  const draws = [...(sent.random ?? [0])];
  return table.decide('shop/web', sent.port ?? 80, req, () => draws.shift() ?? 0);
}

function forward(d: RouteDecision): Extract<RouteDecision, { kind: 'forward' }> {
  assert.equal(d.kind, 'forward', JSON.stringify(d));
  return d as Extract<RouteDecision, { kind: 'forward' }>;
}

const toV1 = [{ name: 'v1', port: 8080 }];

describe('header modifiers', () => {
  test('RequestHeaderModifier: set, add and remove, names lower-cased', () => {
    const d = forward(
      decide({
        filters: [
          {
            type: 'RequestHeaderModifier',
            requestHeaderModifier: {
              set: [{ name: 'X-Set', value: 'a' }],
              add: [{ name: 'X-Add', value: 'b' }],
              remove: ['X-Gone'],
            },
          },
        ],
        backendRefs: toV1,
      }),
    );
    assert.deepEqual(d.requestHeaders, { set: [['x-set', 'a']], add: [['x-add', 'b']], remove: ['x-gone'] });
    assert.deepEqual(d.responseHeaders, { set: [], add: [], remove: [] });
  });

  test('ResponseHeaderModifier goes to the response edits', () => {
    const d = forward(
      decide({
        filters: [
          {
            type: 'ResponseHeaderModifier',
            responseHeaderModifier: { set: [{ name: 'Cache', value: 'no' }] },
          },
        ],
        backendRefs: toV1,
      }),
    );
    assert.deepEqual(d.responseHeaders, { set: [['cache', 'no']], add: [], remove: [] });
    assert.deepEqual(d.requestHeaders, { set: [], add: [], remove: [] });
  });

  const perBackend = {
    filters: [
      { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-who', value: 'rule' }] } },
    ],
    backendRefs: [
      {
        name: 'v1',
        port: 8080,
        filters: [
          { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-who', value: 'v1' }] } },
        ],
      },
      { name: 'v2', port: 8080 },
    ],
  };

  test("a backend's filters apply after the rule's when it is chosen", () => {
    const d = forward(decide(perBackend, { random: [0.1] }));
    assert.equal(d.backend.service, 'shop/v1');
    assert.deepEqual(d.requestHeaders.set, [
      ['x-who', 'rule'],
      ['x-who', 'v1'],
    ]);
  });

  test('... and not when another backend is chosen', () => {
    const d = forward(decide(perBackend, { random: [0.9] }));
    assert.equal(d.backend.service, 'shop/v2');
    assert.deepEqual(d.requestHeaders.set, [['x-who', 'rule']]);
  });
});

describe('RequestRedirect', () => {
  const redirect = (requestRedirect: Record<string, unknown>, matches?: unknown[]) => ({
    ...(matches ? { matches } : {}),
    filters: [{ type: 'RequestRedirect', requestRedirect }],
  });
  const cases: Array<[string, Record<string, unknown>, Sent, number, string, unknown[]?]> = [
    ['defaults: 302 to the same URL', {}, { path: '/a?b=c' }, 302, 'http://web.shop/a?b=c'],
    ['statusCode', { statusCode: 301 }, {}, 301, 'http://web.shop/'],
    ['hostname replaces the host', { hostname: 'example.com' }, {}, 302, 'http://example.com/'],
    [
      'hostname: the request port is kept (no scheme given)',
      { hostname: 'example.com' },
      { authority: 'web.shop:8080', port: 8080 },
      302,
      'http://example.com:8080/',
    ],
    [
      'no port in Host: the service port, as the listener port',
      {},
      { authority: 'web.shop', port: 8080 },
      302,
      'http://web.shop:8080/',
    ],
    [
      'scheme https: port 443, left out',
      { scheme: 'https' },
      { authority: 'web.shop:8080', port: 8080 },
      302,
      'https://web.shop/',
    ],
    [
      'scheme http given: port 80 (its well-known port), left out',
      { scheme: 'http' },
      { authority: 'web.shop:8080', port: 8080 },
      302,
      'http://web.shop/',
    ],
    ['scheme https with port 8443', { scheme: 'https', port: 8443 }, {}, 302, 'https://web.shop:8443/'],
    ['scheme https with port 443 is left out', { scheme: 'https', port: 443 }, {}, 302, 'https://web.shop/'],
    [
      'port 80 for http is left out',
      { port: 80 },
      { authority: 'web.shop:8080', port: 8080 },
      302,
      'http://web.shop/',
    ],
    ['port', { port: 9000 }, {}, 302, 'http://web.shop:9000/'],
    [
      'ReplaceFullPath keeps the query',
      { path: { type: 'ReplaceFullPath', replaceFullPath: '/new' } },
      { path: '/old/x?q=1' },
      302,
      'http://web.shop/new?q=1',
    ],
    [
      'ReplacePrefixMatch replaces the matched prefix',
      { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/bar' } },
      { path: '/foo/baz?q=1' },
      302,
      'http://web.shop/bar/baz?q=1',
      [{ path: { type: 'PathPrefix', value: '/foo' } }],
    ],
    [
      'an IPv6 Host keeps its brackets',
      {},
      { authority: '[2001:db8::1]:8080', port: 8080 },
      302,
      'http://[2001:db8::1]:8080/',
    ],
  ];
  for (const [name, spec, sent, status, location, matches] of cases) {
    test(name, () => {
      const d = decide(redirect(spec, matches), sent);
      assert.deepEqual(d, {
        kind: 'respond',
        status,
        headers: { location },
        body: '',
        route: 'shop/r',
        flags: '-',
      });
    });
  }

  test('a redirect on a backendRef answers when that backend is chosen', () => {
    const d = decide({
      backendRefs: [
        {
          name: 'v1',
          port: 8080,
          filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'x.io' } }],
        },
      ],
    });
    assert.equal(d.kind === 'respond' && d.headers.location, 'http://x.io/');
  });
});

describe('URLRewrite', () => {
  // The spec's ReplacePrefixMatch table: request path, prefix match, replacement, modified path.
  const table: Array<[string, string, string, string]> = [
    ['/foo/bar', '/foo', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo', '/xyz/', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz/', '/xyz/bar'],
    ['/foo', '/foo', '/xyz', '/xyz'],
    ['/foo/', '/foo', '/xyz', '/xyz/'],
    ['/foo/bar', '/foo', '', '/bar'],
    ['/foo/', '/foo', '', '/'],
    ['/foo', '/foo', '', '/'],
    ['/foo/', '/foo', '/', '/'],
    ['/foo', '/foo', '/', '/'],
    // The brief's: replacing /foo with / turns /foo/baz into /baz.
    ['/foo/baz', '/foo', '/', '/baz'],
    ['/anything', '/', '/api', '/api/anything'],
  ];
  for (const [path, prefix, replacement, expected] of table) {
    test(`ReplacePrefixMatch: ${path} with ${prefix} → "${replacement}" is ${expected}`, () => {
      const d = forward(
        decide(
          {
            matches: [{ path: { type: 'PathPrefix', value: prefix } }],
            filters: [
              {
                type: 'URLRewrite',
                urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: replacement } },
              },
            ],
            backendRefs: toV1,
          },
          { path },
        ),
      );
      assert.equal(d.path, expected);
    });
  }

  test('ReplacePrefixMatch keeps the query', () => {
    const d = forward(
      decide(
        {
          matches: [{ path: { value: '/foo' } }],
          filters: [
            {
              type: 'URLRewrite',
              urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' } },
            },
          ],
          backendRefs: toV1,
        },
        { path: '/foo/x?a=1&b=2' },
      ),
    );
    assert.equal(d.path, '/v2/x?a=1&b=2');
  });

  test('ReplaceFullPath replaces the path and keeps the query', () => {
    const d = forward(
      decide(
        {
          filters: [
            {
              type: 'URLRewrite',
              urlRewrite: { path: { type: 'ReplaceFullPath', replaceFullPath: '/all' } },
            },
          ],
          backendRefs: toV1,
        },
        { path: '/foo/x?a=1' },
      ),
    );
    assert.equal(d.path, '/all?a=1');
  });

  test('hostname rewrites the authority; the path stays', () => {
    const d = forward(
      decide(
        { filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'internal.shop' } }], backendRefs: toV1 },
        { path: '/x?y' },
      ),
    );
    assert.equal(d.authority, 'internal.shop');
    assert.equal(d.path, '/x?y');
  });

  test('without URLRewrite, no authority is set', () => {
    assert.equal(forward(decide({ backendRefs: toV1 })).authority, undefined);
  });
});

describe('RequestMirror', () => {
  const mirror = (requestMirror: Record<string, unknown>) => ({
    filters: [{ type: 'RequestMirror', requestMirror }],
    backendRefs: toV1,
  });
  const shadow = { name: 'shadow', port: 8080 };
  const cases: Array<[string, Record<string, unknown>, number[], number | undefined]> = [
    ['no percent or fraction: every request', { backendRef: shadow }, [0], 1],
    ['percent 50, draw 0.49: mirrored', { backendRef: shadow, percent: 50 }, [0, 0.49], 0.5],
    ['percent 50, draw 0.5: not mirrored', { backendRef: shadow, percent: 50 }, [0, 0.5], undefined],
    [
      'fraction 1/4, draw 0.2: mirrored',
      { backendRef: shadow, fraction: { numerator: 1, denominator: 4 } },
      [0, 0.2],
      0.25,
    ],
    [
      'fraction 1/4, draw 0.3: not mirrored',
      { backendRef: shadow, fraction: { numerator: 1, denominator: 4 } },
      [0, 0.3],
      undefined,
    ],
    [
      'fraction without denominator is out of 100',
      { backendRef: shadow, fraction: { numerator: 10 } },
      [0, 0.05],
      0.1,
    ],
    ['percent 0: never', { backendRef: shadow, percent: 0 }, [0, 0], undefined],
    [
      'a mirror to a missing Service is dropped',
      { backendRef: { name: 'gone', port: 8080 } },
      [0],
      undefined,
    ],
    [
      'a mirror to another namespace is dropped',
      { backendRef: { ...shadow, namespace: 'bank' } },
      [0],
      undefined,
    ],
    ['a mirror to a missing port is dropped', { backendRef: { name: 'shadow', port: 1 } }, [0], undefined],
  ];
  for (const [name, spec, draws, fraction] of cases) {
    test(name, () => {
      const d = forward(decide(mirror(spec), { random: draws }));
      const expected =
        fraction === undefined ? [] : [{ backend: { service: 'shop/shadow', port: 8080 }, fraction }];
      assert.deepEqual(d.mirrors, expected);
    });
  }
});

describe('ExtensionRef', () => {
  test("listed with the route's namespace, rule-level then backend-level", () => {
    const ref = (name: string) => ({
      type: 'ExtensionRef',
      extensionRef: { group: 'ambit.dev', kind: 'Fault', name },
    });
    const d = forward(
      decide({ filters: [ref('slow')], backendRefs: [{ ...toV1[0], filters: [ref('flaky')] }] }),
    );
    assert.deepEqual(d.extensionRefs, [
      { group: 'ambit.dev', kind: 'Fault', name: 'slow', namespace: 'shop' },
      { group: 'ambit.dev', kind: 'Fault', name: 'flaky', namespace: 'shop' },
    ]);
  });
});

describe('timeouts and retries', () => {
  const timeouts: Array<[string, Record<string, string>, number | undefined, number | undefined]> = [
    ['request 10s', { request: '10s' }, 10_000, undefined],
    ['backendRequest 500ms', { request: '1h', backendRequest: '500ms' }, 3_600_000, 500],
    ['1m30s', { request: '1m30s' }, 90_000, undefined],
    ['0s disables the timeout', { request: '0s', backendRequest: '0s' }, undefined, undefined],
    ['none given', {}, undefined, undefined],
  ];
  for (const [name, spec, timeoutMs, backendTimeoutMs] of timeouts) {
    test(`timeouts: ${name}`, () => {
      const d = forward(decide({ timeouts: spec, backendRefs: toV1 }));
      assert.equal(d.timeoutMs, timeoutMs);
      assert.equal(d.backendTimeoutMs, backendTimeoutMs);
    });
  }

  const retries: Array<[string, Record<string, unknown> | undefined, unknown]> = [
    [
      'attempts counts retries: 3 retries are 4 attempts',
      { attempts: 3, codes: [503, 504], backoff: '100ms' },
      { attempts: 4, codes: [503, 504], backoffMs: 100 },
    ],
    ['attempts 0 disables retries', { attempts: 0, codes: [503] }, undefined],
    ['defaults: 2 retries, no codes, 25ms backoff', {}, { attempts: 3, codes: [], backoffMs: 25 }],
    ['no retry stanza: no policy', undefined, undefined],
  ];
  for (const [name, retry, expected] of retries) {
    test(`retry: ${name}`, () => {
      const d = forward(decide({ ...(retry ? { retry } : {}), backendRefs: toV1 }));
      assert.deepEqual(d.retry, expected);
    });
  }
});
