// Attachment to service ports and the choice of backend: weights drawn with a given random value,
// weight 0, every weight 0, and the 500 share of invalid backends (missing Service or port,
// unsupported kind, another namespace); no route attached, no route matching.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type HTTPRouteResource, validateResource } from '../../../src/config/index.ts';
import type { RouteDecision, RouteRequest } from '../../../src/routing/index.ts';
import { compileRoutes } from '../../../src/routing/index.ts';

const SERVICES: Record<string, Array<{ port: number; name?: string }>> = {
  'shop/web': [
    { port: 80, name: 'http' },
    { port: 9090, name: 'admin' },
  ],
  'shop/v1': [{ port: 8080 }],
  'shop/v2': [{ port: 8080 }],
  'bank/v3': [{ port: 8080 }],
};
const services = (key: string) => (SERVICES[key] ? { ports: SERVICES[key] } : undefined);

function route(spec: Record<string, unknown>, namespace = 'shop'): HTTPRouteResource {
  const result = validateResource({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'r', namespace },
    spec: { parentRefs: [{ group: '', kind: 'Service', name: 'web', namespace: 'shop' }], ...spec },
  });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
  return result.resource as HTTPRouteResource;
}

const req: RouteRequest = { method: 'GET', path: '/p?q=1', headers: {}, authority: 'web.shop' };

function decide(backendRefs: unknown[] | undefined, random: number, port = 80): RouteDecision {
  const r = route({ rules: [backendRefs === undefined ? {} : { backendRefs }] });
  return compileRoutes({ httpRoutes: [r], grpcRoutes: [], services }).decide(
    'shop/web',
    port,
    req,
    () => random,
  );
}

/** `namespace/name` of the backend forwarded to, or the status answered. */
function outcome(d: RouteDecision): string {
  return d.kind === 'forward' ? d.backend.service : `${d.status} ${d.flags}`;
}

describe('weighted backends', () => {
  const v1v2 = [
    { name: 'v1', port: 8080, weight: 1 },
    { name: 'v2', port: 8080, weight: 3 },
  ];
  const cases: Array<[string, unknown[] | undefined, number, string]> = [
    ['one backend, default weight', [{ name: 'v1', port: 8080 }], 0.99, 'shop/v1'],
    ['1:3, random 0 falls on the first', v1v2, 0, 'shop/v1'],
    ['1:3, random 0.2499 still on the first', v1v2, 0.2499, 'shop/v1'],
    ['1:3, random 0.25 on the second', v1v2, 0.25, 'shop/v2'],
    ['1:3, random 0.9999 on the second', v1v2, 0.9999, 'shop/v2'],
    [
      'weight 0 is never chosen',
      [
        { name: 'v1', port: 8080, weight: 0 },
        { name: 'v2', port: 8080 },
      ],
      0,
      'shop/v2',
    ],
    [
      'every weight 0: 500',
      [
        { name: 'v1', port: 8080, weight: 0 },
        { name: 'v2', port: 8080, weight: 0 },
      ],
      0.5,
      '500 NC',
    ],
    ['no backendRefs: 500', undefined, 0.5, '500 NC'],
    ['a missing Service: 500', [{ name: 'gone', port: 8080 }], 0.5, '500 NC'],
    ['a missing port: 500', [{ name: 'v1', port: 9999 }], 0.5, '500 NC'],
    ['an unsupported kind: 500', [{ group: 'example.com', kind: 'Bucket', name: 'v1' }], 0.5, '500 NC'],
    [
      'group "core" is the core Service',
      [{ group: 'core', kind: 'Service', name: 'v1', port: 8080 }],
      0.5,
      'shop/v1',
    ],
    [
      'another namespace (no ReferenceGrant): 500',
      [{ name: 'v3', namespace: 'bank', port: 8080 }],
      0.5,
      '500 NC',
    ],
    [
      'its own namespace written out is fine',
      [{ name: 'v1', namespace: 'shop', port: 8080 }],
      0.5,
      'shop/v1',
    ],
  ];
  for (const [name, refs, random, expected] of cases) {
    test(name, () => assert.equal(outcome(decide(refs, random)), expected));
  }

  const half = [
    { name: 'gone', port: 8080 },
    { name: 'v1', port: 8080 },
  ];
  test('an invalid backend keeps its share: the half that would go to it gets 500', () => {
    assert.equal(outcome(decide(half, 0.1)), '500 NC');
    assert.equal(outcome(decide(half, 0.49)), '500 NC');
    assert.equal(outcome(decide(half, 0.5)), 'shop/v1');
  });

  test('the 500 names the route and says why', () => {
    const d = decide(half, 0.1);
    assert.equal(d.kind, 'respond');
    assert.equal(d.kind === 'respond' && d.route, 'shop/r');
    assert.equal(d.kind === 'respond' && d.body, 'no valid backend');
  });

  test('a forward carries the backend port and the request target unchanged', () => {
    const d = decide([{ name: 'v1', port: 8080 }], 0);
    assert.equal(d.kind, 'forward');
    if (d.kind !== 'forward') return;
    assert.deepEqual(d.backend, { service: 'shop/v1', port: 8080 });
    assert.equal(d.path, '/p?q=1');
    assert.equal(d.route, 'shop/r');
  });

  test('without a random function, Math.random picks', () => {
    const r = route({ rules: [{ backendRefs: [{ name: 'v1', port: 8080 }] }] });
    const d = compileRoutes({ httpRoutes: [r], grpcRoutes: [], services }).decide('shop/web', 80, req);
    assert.equal(outcome(d), 'shop/v1');
  });
});

describe('attachment to service ports', () => {
  const toV1 = { rules: [{ backendRefs: [{ name: 'v1', port: 8080 }] }] };
  const table = (routes: HTTPRouteResource[]) =>
    compileRoutes({ httpRoutes: routes, grpcRoutes: [], services });

  test('no route attached: the request goes to the service itself, unchanged', () => {
    const d = table([]).decide('shop/web', 80, req);
    assert.deepEqual(d, {
      kind: 'forward',
      backend: { service: 'shop/web', port: 80 },
      path: '/p?q=1',
      requestHeaders: { set: [], add: [], remove: [] },
      responseHeaders: { set: [], add: [], remove: [] },
      mirrors: [],
      extensionRefs: [],
    });
  });

  test('routes attached but none matches: 404 with flag NR', () => {
    const r = route({ rules: [{ matches: [{ path: { type: 'Exact', value: '/x' } }], ...toV1.rules[0] }] });
    const d = table([r]).decide('shop/web', 80, req);
    assert.deepEqual(d, { kind: 'respond', status: 404, headers: {}, body: 'route not found', flags: 'NR' });
  });

  const parents: Array<[string, unknown[], number, string]> = [
    [
      'a parentRef without port attaches to every port (80)',
      [{ kind: 'Service', group: '', name: 'web' }],
      80,
      'shop/v1',
    ],
    ['... and 9090', [{ kind: 'Service', group: '', name: 'web' }], 9090, 'shop/v1'],
    [
      'a parentRef with port 80 attaches to 80',
      [{ kind: 'Service', group: '', name: 'web', port: 80 }],
      80,
      'shop/v1',
    ],
    [
      '... not to 9090, which goes to the service',
      [{ kind: 'Service', group: '', name: 'web', port: 80 }],
      9090,
      'shop/web',
    ],
    [
      'sectionName names a port',
      [{ kind: 'Service', group: '', name: 'web', sectionName: 'admin' }],
      9090,
      'shop/v1',
    ],
    [
      '... and only that port',
      [{ kind: 'Service', group: '', name: 'web', sectionName: 'admin' }],
      80,
      'shop/web',
    ],
    ['group "core" is the core group', [{ kind: 'Service', group: 'core', name: 'web' }], 80, 'shop/v1'],
    ['an omitted group with kind Service is read as core', [{ kind: 'Service', name: 'web' }], 80, 'shop/v1'],
    ['a Gateway parent is not the mesh', [{ name: 'web' }], 80, 'shop/web'],
    [
      'a Service of another group is not a Service',
      [{ kind: 'Service', group: 'x.io', name: 'web' }],
      80,
      'shop/web',
    ],
    [
      'a parent port the service lacks attaches nothing',
      [{ kind: 'Service', group: '', name: 'web', port: 81 }],
      80,
      'shop/web',
    ],
  ];
  for (const [name, parentRefs, port, expected] of parents) {
    test(name, () => {
      const r = route({ parentRefs, ...toV1 });
      assert.equal(outcome(table([r]).decide('shop/web', port, req)), expected);
    });
  }

  test("a consumer route (another namespace) applies to its own namespace's requests only (GAMMA)", () => {
    const consumer = route(
      { parentRefs: [{ kind: 'Service', group: '', name: 'web', namespace: 'shop' }], rules: [{}] },
      'client',
    );
    // Its rule has no backend (one in `shop` would not be permitted): the 500 shows it applied.
    assert.equal(
      outcome(table([consumer]).decide('shop/web', 80, { ...req, sourceNamespace: 'client' })),
      '500 NC',
    );
    // Anyone else's requests are not steered by it: they go to the Service itself.
    assert.equal(
      outcome(table([consumer]).decide('shop/web', 80, { ...req, sourceNamespace: 'other' })),
      'shop/web',
    );
    assert.equal(outcome(table([consumer]).decide('shop/web', 80, req)), 'shop/web');
  });

  test('a parentRef to a Service that does not exist attaches nothing', () => {
    const r = route({ parentRefs: [{ kind: 'Service', group: '', name: 'nope' }], ...toV1 });
    assert.equal(outcome(table([r]).decide('shop/nope', 80, req)), 'shop/nope');
  });
});
