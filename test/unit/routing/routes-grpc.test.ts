// GRPCRoute: method matching against `/<service>/<method>`, its precedence, the gRPC-shaped answers
// (UNIMPLEMENTED for no route, UNAVAILABLE for an invalid backend), and living beside HTTPRoutes.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type GRPCRouteResource,
  type HTTPRouteResource,
  validateResource,
} from '../../../src/config/index.ts';
import type { RouteDecision, RouteRequest } from '../../../src/routing/index.ts';
import { compileRoutes } from '../../../src/routing/index.ts';

const services = (key: string) =>
  ['shop/web', 'shop/v1', 'shop/v2'].includes(key) ? { ports: [{ port: 8080 }] } : undefined;

function resource(kind: string, name: string, rules: unknown[], created?: string) {
  const result = validateResource({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind,
    metadata: { name, namespace: 'shop', ...(created ? { creationTimestamp: created } : {}) },
    spec: { parentRefs: [{ group: '', kind: 'Service', name: 'web' }], rules },
  });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
  return result.resource;
}

const grpcRoute = (name: string, rules: unknown[], created?: string) =>
  resource('GRPCRoute', name, rules, created) as GRPCRouteResource;

const GRPC = { 'content-type': 'application/grpc' };
const call = (path: string, headers: RouteRequest['headers'] = GRPC): RouteRequest => ({
  method: 'POST',
  path,
  headers,
  authority: 'web.shop:8080',
});

function decide(
  routes: GRPCRouteResource[],
  req: RouteRequest,
  http: HTTPRouteResource[] = [],
): RouteDecision {
  return compileRoutes({ httpRoutes: http, grpcRoutes: routes, services }).decide(
    'shop/web',
    8080,
    req,
    () => 0,
  );
}

/** A rule that sends its matches to `backend`. */
const rule = (matches: unknown[] | undefined, backend = 'v1') => ({
  ...(matches ? { matches } : {}),
  backendRefs: [{ name: backend, port: 8080 }],
});

describe('GRPCRoute method matches', () => {
  const method = (m: Record<string, unknown>) => [{ method: m }];
  const cases: Array<[string, unknown[] | undefined, string, boolean]> = [
    ['Exact service and method', method({ service: 'shop.Cart', method: 'Add' }), '/shop.Cart/Add', true],
    ['Exact: another method', method({ service: 'shop.Cart', method: 'Add' }), '/shop.Cart/Remove', false],
    ['Exact: case-sensitive', method({ service: 'shop.Cart', method: 'Add' }), '/shop.cart/Add', false],
    ['Exact service only: any method', method({ service: 'shop.Cart' }), '/shop.Cart/Remove', true],
    ['Exact service only: not a longer service', method({ service: 'shop.Cart' }), '/shop.CartV2/Add', false],
    ['Exact method only: any service', method({ method: 'Add' }), '/other.Svc/Add', true],
    [
      'RegularExpression service',
      method({ type: 'RegularExpression', service: 'shop\\..*' }),
      '/shop.Cart/Add',
      true,
    ],
    [
      'RegularExpression: a full match only',
      method({ type: 'RegularExpression', service: 'shop' }),
      '/shop.Cart/Add',
      false,
    ],
    [
      'RegularExpression method',
      method({ type: 'RegularExpression', service: 'shop.Cart', method: 'Get.*' }),
      '/shop.Cart/GetAll',
      true,
    ],
    ['a path that is not /service/method', method({ service: 'shop.Cart' }), '/shop.Cart/Add/x', false],
    ['no matches: every request', undefined, '/any.Svc/Any', true],
    ['headers are matched too', [{ headers: [{ name: 'X-Tenant', value: 'a' }] }], '/s.S/M', false],
  ];
  for (const [name, matches, path, expected] of cases) {
    test(name, () => {
      const d = decide([grpcRoute('g', [rule(matches)])], call(path));
      assert.equal(d.kind, expected ? 'forward' : 'respond', JSON.stringify(d));
    });
  }

  test('a header match with the header present', () => {
    const r = grpcRoute('g', [rule([{ headers: [{ name: 'X-Tenant', value: 'a' }] }])]);
    assert.equal(decide([r], call('/s.S/M', { ...GRPC, 'x-tenant': 'a' })).kind, 'forward');
  });
});

describe('GRPCRoute precedence', () => {
  const winner = (routes: GRPCRouteResource[], path: string, headers: RouteRequest['headers'] = GRPC) => {
    const d = decide(routes, call(path, headers));
    return d.kind === 'forward' ? d.backend.service : `${d.status}`;
  };
  const cases: Array<[string, GRPCRouteResource[], string, RouteRequest['headers'], string]> = [
    [
      'an Exact method match beats a regex one',
      [
        grpcRoute('g', [
          rule([{ method: { type: 'RegularExpression', service: 'shop\\.Cart', method: 'Add' } }]),
          rule([{ method: { service: 'shop.Cart' } }], 'v2'),
        ]),
      ],
      '/shop.Cart/Add',
      GRPC,
      'shop/v2',
    ],
    [
      'more characters in the service win',
      [
        grpcRoute('g', [
          rule([{ method: { method: 'Add' } }]),
          rule([{ method: { service: 'shop.Cart' } }], 'v2'),
        ]),
      ],
      '/shop.Cart/Add',
      GRPC,
      'shop/v2',
    ],
    [
      'then more characters in the method',
      [
        grpcRoute('g', [
          rule([{ method: { service: 'shop.Cart' } }]),
          rule([{ method: { service: 'shop.Cart', method: 'Add' } }], 'v2'),
        ]),
      ],
      '/shop.Cart/Add',
      GRPC,
      'shop/v2',
    ],
    [
      'then more header matches',
      [
        grpcRoute('g', [
          rule([{ method: { service: 'shop.Cart' } }]),
          rule([{ method: { service: 'shop.Cart' }, headers: [{ name: 'x', value: '1' }] }], 'v2'),
        ]),
      ],
      '/shop.Cart/Add',
      { ...GRPC, x: '1' },
      'shop/v2',
    ],
    [
      'a method match beats no method match',
      [grpcRoute('g', [rule(undefined), rule([{ method: { method: 'Add' } }], 'v2')])],
      '/shop.Cart/Add',
      GRPC,
      'shop/v2',
    ],
    [
      'then the oldest route',
      [
        grpcRoute('a', [rule(undefined)], '2024-02-01T00:00:00Z'),
        grpcRoute('b', [rule(undefined, 'v2')], '2024-01-01T00:00:00Z'),
      ],
      '/s.S/M',
      GRPC,
      'shop/v2',
    ],
    [
      'then namespace/name',
      [
        grpcRoute('b', [rule(undefined)], '2024-01-01T00:00:00Z'),
        grpcRoute('a', [rule(undefined, 'v2')], '2024-01-01T00:00:00Z'),
      ],
      '/s.S/M',
      GRPC,
      'shop/v2',
    ],
  ];
  for (const [name, routes, path, headers, expected] of cases) {
    test(name, () => assert.equal(winner(routes, path, headers), expected));
  }
});

describe('GRPCRoute answers and HTTPRoutes beside it', () => {
  const onlyCart = grpcRoute('g', [rule([{ method: { service: 'shop.Cart' } }])]);

  test('no matching rule for a gRPC request: UNIMPLEMENTED (12), flag NR', () => {
    assert.deepEqual(decide([onlyCart], call('/shop.Other/M')), {
      kind: 'respond',
      status: 200,
      headers: { 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'route not found' },
      body: '',
      flags: 'NR',
    });
  });

  test('an invalid backend for a gRPC request: UNAVAILABLE (14), flag NC', () => {
    const r = grpcRoute('g', [{ backendRefs: [{ name: 'gone', port: 8080 }] }]);
    assert.deepEqual(decide([r], call('/s.S/M')), {
      kind: 'respond',
      status: 200,
      headers: {
        'content-type': 'application/grpc',
        'grpc-status': '14',
        'grpc-message': 'no valid backend',
      },
      body: '',
      route: 'shop/g',
      flags: 'NC',
    });
  });

  test('content-type application/grpc+proto is gRPC too', () => {
    const d = decide([onlyCart], call('/shop.Other/M', { 'content-type': 'application/grpc+proto' }));
    assert.equal(d.kind === 'respond' && d.headers['grpc-status'], '12');
  });

  test('a request that is not gRPC is routed by GRPCRoutes when only they are attached', () => {
    const d = decide([onlyCart], call('/shop.Cart/Add', {}));
    assert.equal(d.kind === 'forward' && d.route, 'shop/g');
  });

  test('a request that is not gRPC gets a plain 404 from GRPCRoutes', () => {
    const d = decide([onlyCart], call('/shop.Other/M', {}));
    assert.equal(d.kind === 'respond' && d.status, 404);
  });

  const http = resource('HTTPRoute', 'h', [rule(undefined, 'v2')]) as HTTPRouteResource;
  test('with both kinds attached, a gRPC request is routed by the GRPCRoutes', () => {
    const d = decide([onlyCart], call('/shop.Cart/Add'), [http]);
    assert.equal(d.kind === 'forward' && d.route, 'shop/g');
  });

  test('... and a gRPC request they do not match is not handed to the HTTPRoutes (no merging)', () => {
    const d = decide([onlyCart], call('/shop.Other/M'), [http]);
    assert.equal(d.kind === 'respond' && d.headers['grpc-status'], '12');
  });

  test('... while any other request is routed by the HTTPRoutes', () => {
    const d = decide([onlyCart], call('/shop.Cart/Add', { 'content-type': 'application/json' }), [http]);
    assert.equal(d.kind === 'forward' && d.route, 'shop/h');
  });

  test('a gRPC request with only HTTPRoutes attached is routed by them', () => {
    const d = decide([], call('/shop.Cart/Add'), [http]);
    assert.equal(d.kind === 'forward' && d.route, 'shop/h');
  });
});
