// HTTPRoute precedence, each tie-break of the spec in turn ("continuing on ties"): Exact path, longest
// PathPrefix, method, most headers, most query params; then the oldest route, then namespace/name;
// then the first rule. Regex paths rank after Exact and PathPrefix (implementation-specific).
// Every case lists the winner last, or in the newer route, so list order alone cannot pass it.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type HTTPRouteResource, validateResource } from '../../../src/config/index.ts';
import type { RouteRequest } from '../../../src/routing/index.ts';
import { compileRoutes } from '../../../src/routing/index.ts';

const services = (key: string) =>
  ['shop/web', 'client/web'].includes(key) ? { ports: [{ port: 80 }] } : undefined;

interface RouteSpec {
  name: string;
  namespace?: string;
  created?: string;
  /** One rule per entry: its matches. */
  rules: unknown[][];
}

function route(spec: RouteSpec): HTTPRouteResource {
  const result = validateResource({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: {
      name: spec.name,
      namespace: spec.namespace ?? 'shop',
      ...(spec.created ? { creationTimestamp: spec.created } : {}),
    },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'web', namespace: 'shop' }],
      // Each rule answers with a redirect to a path naming the route and rule, so the winner shows.
      rules: spec.rules.map((matches, i) => ({
        matches,
        filters: [
          {
            type: 'RequestRedirect',
            requestRedirect: { path: { type: 'ReplaceFullPath', replaceFullPath: `/${spec.name}/${i}` } },
          },
        ],
      })),
    },
  });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
  return result.resource as HTTPRouteResource;
}

/** `name/ruleIndex` of the rule that answered. */
function winner(routes: RouteSpec[], req: RouteRequest): string {
  const table = compileRoutes({ httpRoutes: routes.map(route), grpcRoutes: [], services });
  const d = table.decide('shop/web', 80, req);
  assert.equal(d.kind, 'respond');
  const location = d.kind === 'respond' ? (d.headers.location ?? '') : '';
  return new URL(location).pathname.slice(1);
}

const get = (path: string, headers: RouteRequest['headers'] = {}, method = 'GET'): RouteRequest => ({
  method,
  path,
  headers,
  authority: 'web.shop',
});

describe('HTTPRoute precedence', () => {
  const cases: Array<[string, RouteSpec[], RouteRequest, string]> = [
    [
      'an Exact path beats a PathPrefix of the same path',
      [
        {
          name: 'a',
          rules: [
            [{ path: { type: 'PathPrefix', value: '/foo' } }],
            [{ path: { type: 'Exact', value: '/foo' } }],
          ],
        },
      ],
      get('/foo'),
      'a/1',
    ],
    [
      'an Exact path beats a PathPrefix with more headers and a method',
      [
        {
          name: 'a',
          rules: [
            [{ path: { value: '/foo' }, method: 'GET', headers: [{ name: 'x', value: '1' }] }],
            [{ path: { type: 'Exact', value: '/foo' } }],
          ],
        },
      ],
      get('/foo', { x: '1' }),
      'a/1',
    ],
    [
      'the longest PathPrefix wins',
      [{ name: 'a', rules: [[{ path: { value: '/foo' } }], [{ path: { value: '/foo/bar' } }]] }],
      get('/foo/bar/baz'),
      'a/1',
    ],
    [
      'a longer PathPrefix beats a method match',
      [
        {
          name: 'a',
          rules: [[{ path: { value: '/foo' }, method: 'GET' }], [{ path: { value: '/foo/bar' } }]],
        },
      ],
      get('/foo/bar'),
      'a/1',
    ],
    [
      'with equal paths, a method match wins',
      [{ name: 'a', rules: [[{ headers: [{ name: 'x', value: '1' }] }], [{ method: 'GET' }]] }],
      get('/', { x: '1' }),
      'a/1',
    ],
    [
      'then the most header matches',
      [
        {
          name: 'a',
          rules: [
            [{ headers: [{ name: 'x', value: '1' }], queryParams: [{ name: 'q', value: '1' }] }],
            [
              {
                headers: [
                  { name: 'x', value: '1' },
                  { name: 'y', value: '2' },
                ],
              },
            ],
          ],
        },
      ],
      get('/?q=1', { x: '1', y: '2' }),
      'a/1',
    ],
    [
      'then the most query param matches',
      [
        {
          name: 'a',
          rules: [
            [{ queryParams: [{ name: 'q', value: '1' }] }],
            [
              {
                queryParams: [
                  { name: 'q', value: '1' },
                  { name: 'r', value: '2' },
                ],
              },
            ],
          ],
        },
      ],
      get('/?q=1&r=2'),
      'a/1',
    ],
    [
      'then the oldest route, whatever its name',
      [
        { name: 'a', created: '2024-01-02T00:00:00Z', rules: [[{ path: { value: '/foo' } }]] },
        { name: 'b', created: '2024-01-01T00:00:00Z', rules: [[{ path: { value: '/foo' } }]] },
      ],
      get('/foo'),
      'b/0',
    ],
    [
      'a route without a creation timestamp ranks as the newest',
      [
        { name: 'a', rules: [[{ path: { value: '/foo' } }]] },
        { name: 'b', created: '2024-01-01T00:00:00Z', rules: [[{ path: { value: '/foo' } }]] },
      ],
      get('/foo'),
      'b/0',
    ],
    [
      'then namespace/name in alphabetical order',
      [
        { name: 'b', created: '2024-01-01T00:00:00Z', rules: [[{ path: { value: '/foo' } }]] },
        { name: 'a', created: '2024-01-01T00:00:00Z', rules: [[{ path: { value: '/foo' } }]] },
      ],
      get('/foo'),
      'a/0',
    ],
    [
      "GAMMA: a consumer route replaces the producer routes for its own namespace's requests",
      [
        { name: 'a', created: '2024-01-01T00:00:00Z', rules: [[{ path: { value: '/foo' } }]] },
        {
          name: 'z',
          namespace: 'client',
          created: '2024-01-01T00:00:00Z',
          rules: [[{ path: { value: '/foo' } }]],
        },
      ],
      { ...get('/foo'), sourceNamespace: 'client' },
      'z/0',
    ],
    [
      "GAMMA: other namespaces' requests keep the producer routes",
      [
        { name: 'a', created: '2024-01-01T00:00:00Z', rules: [[{ path: { value: '/foo' } }]] },
        {
          name: 'z',
          namespace: 'client',
          created: '2024-01-01T00:00:00Z',
          rules: [[{ path: { value: '/foo' } }]],
        },
      ],
      { ...get('/foo'), sourceNamespace: 'elsewhere' },
      'a/0',
    ],
    [
      'an older route does not beat a more specific match in a newer one',
      [
        { name: 'a', created: '2024-01-01T00:00:00Z', rules: [[{ path: { value: '/foo' } }]] },
        { name: 'b', created: '2024-06-01T00:00:00Z', rules: [[{ path: { value: '/foo/bar' } }]] },
      ],
      get('/foo/bar'),
      'b/0',
    ],
    [
      'within a route, the first rule in list order',
      [{ name: 'a', rules: [[{ path: { value: '/foo' } }], [{ path: { value: '/foo' } }]] }],
      get('/foo'),
      'a/0',
    ],
    [
      'PathPrefix /foo/ and /foo tie (trailing slash ignored): the older route wins',
      [
        { name: 'a', created: '2024-01-02T00:00:00Z', rules: [[{ path: { value: '/foo/' } }]] },
        { name: 'b', created: '2024-01-01T00:00:00Z', rules: [[{ path: { value: '/foo' } }]] },
      ],
      get('/foo/x'),
      'b/0',
    ],
    [
      'a RegularExpression path ranks after every PathPrefix, even /',
      [
        {
          name: 'a',
          rules: [[{ path: { type: 'RegularExpression', value: '/foo/.*' } }], [{ path: { value: '/' } }]],
        },
      ],
      get('/foo/bar'),
      'a/1',
    ],
    [
      'a RegularExpression path applies when no Exact or PathPrefix matches',
      [
        {
          name: 'a',
          rules: [[{ path: { value: '/bar' } }], [{ path: { type: 'RegularExpression', value: '/foo/.*' } }]],
        },
      ],
      get('/foo/bar'),
      'a/1',
    ],
    [
      'a more specific match that does not match is skipped',
      [{ name: 'a', rules: [[{ path: { value: '/' } }], [{ path: { type: 'Exact', value: '/foo' } }]] }],
      get('/foo/x'),
      'a/0',
    ],
  ];
  for (const [name, routes, req, expected] of cases) {
    test(name, () => assert.equal(winner(routes, req), expected));
  }
});
