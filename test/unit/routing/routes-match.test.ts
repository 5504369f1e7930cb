// HTTPRoute matching: each match type, PathPrefix on segment boundaries, query parameters, headers
// (names case-insensitive), method; fields of one match ANDed, matches of one rule ORed.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type HTTPRouteResource, validateResource } from '../../../src/config/index.ts';
import type { RouteRequest } from '../../../src/routing/index.ts';
import { compileRoutes } from '../../../src/routing/index.ts';

const services = (key: string) =>
  ({ 'shop/web': { ports: [{ port: 80 }] }, 'shop/v1': { ports: [{ port: 8080 }] } })[key];

function route(matches: unknown[] | undefined): HTTPRouteResource {
  const result = validateResource({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'r', namespace: 'shop' },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'web' }],
      rules: [{ ...(matches ? { matches } : {}), backendRefs: [{ name: 'v1', port: 8080 }] }],
    },
  });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
  return result.resource as HTTPRouteResource;
}

function request(path: string, headers: RouteRequest['headers'] = {}, method = 'GET'): RouteRequest {
  return { method, path, headers, authority: 'web.shop' };
}

/** True when the request is routed (forwarded by the route), false when it gets the 404. */
function routed(matches: unknown[] | undefined, req: RouteRequest): boolean {
  const table = compileRoutes({ httpRoutes: [route(matches)], grpcRoutes: [], services });
  const decision = table.decide('shop/web', 80, req);
  if (decision.kind === 'respond') {
    assert.equal(decision.status, 404);
    assert.equal(decision.flags, 'NR');
    assert.equal(decision.body, 'route not found');
    return false;
  }
  assert.equal(decision.route, 'shop/r');
  return true;
}

const exact = (value: string) => [{ path: { type: 'Exact', value } }];
const prefix = (value: string) => [{ path: { type: 'PathPrefix', value } }];
const regex = (value: string) => [{ path: { type: 'RegularExpression', value } }];

describe('HTTPRoute path matches', () => {
  const cases: Array<[string, unknown[] | undefined, string, boolean]> = [
    ['Exact: the path itself', exact('/foo'), '/foo', true],
    ['Exact: not with a trailing slash', exact('/foo'), '/foo/', false],
    ['Exact: case-sensitive', exact('/foo'), '/Foo', false],
    ['Exact: not a longer path', exact('/foo'), '/foobar', false],
    ['Exact: the query is not part of the path', exact('/foo'), '/foo?x=1', true],
    ['PathPrefix: the prefix itself', prefix('/foo'), '/foo', true],
    ['PathPrefix: with a trailing slash', prefix('/foo'), '/foo/', true],
    ['PathPrefix: a path below it', prefix('/foo'), '/foo/bar', true],
    ['PathPrefix: not across a segment boundary', prefix('/foo'), '/foobar', false],
    ['PathPrefix: not a shorter path', prefix('/foo'), '/fo', false],
    ['PathPrefix: query ignored', prefix('/foo'), '/foo?a=b', true],
    ['PathPrefix /foo/: trailing slash ignored, /foo matches', prefix('/foo/'), '/foo', true],
    ['PathPrefix /foo/: /foo/bar matches', prefix('/foo/'), '/foo/bar', true],
    ['PathPrefix /foo/: /foobar does not', prefix('/foo/'), '/foobar', false],
    ['PathPrefix /: every path', prefix('/'), '/anything/at/all', true],
    ['RegularExpression: a full match', regex('/items/[0-9]+'), '/items/12', true],
    ['RegularExpression: not a partial match at the end', regex('/items/[0-9]+'), '/items/12/x', false],
    ['RegularExpression: not a partial match at the start', regex('/items/[0-9]+'), '/x/items/12', false],
    ['RegularExpression: alternation stays anchored', regex('/a|/b'), '/b/c', false],
    ['RegularExpression: without the query', regex('/items/[0-9]+'), '/items/7?page=2', true],
    ['no matches: PathPrefix /', undefined, '/whatever', true],
    ['a path without value: PathPrefix /', [{ path: { type: 'PathPrefix' } }], '/x', true],
    ['an absolute-form target is matched on its path', exact('/foo'), 'http://web.shop/foo?q', true],
  ];
  for (const [name, matches, path, expected] of cases) {
    test(name, () => assert.equal(routed(matches, request(path)), expected));
  }
});

describe('HTTPRoute header matches', () => {
  const version = [{ headers: [{ name: 'X-Version', value: 'v2' }] }];
  const beta = [{ headers: [{ type: 'RegularExpression', name: 'x-user', value: '[a-z]+-beta' }] }];
  const cases: Array<[string, unknown[], RouteRequest['headers'], boolean]> = [
    ['Exact: the name is matched case-insensitively', version, { 'x-version': 'v2' }, true],
    ['Exact: the value is case-sensitive', version, { 'x-version': 'V2' }, false],
    ['Exact: a missing header does not match', version, {}, false],
    ['Exact: an undefined header does not match', version, { 'x-version': undefined }, false],
    ['RegularExpression: a full match', beta, { 'x-user': 'joe-beta' }, true],
    ['RegularExpression: not a partial one', beta, { 'x-user': 'joe-beta1' }, false],
    [
      'a repeated header reads as its values joined by ", "',
      [{ headers: [{ name: 'x-tag', value: 'a, b' }] }],
      { 'x-tag': ['a', 'b'] },
      true,
    ],
    [
      'a name given twice counts only its first entry',
      [
        {
          headers: [
            { name: 'x-a', value: '1' },
            { name: 'X-A', value: '2' },
          ],
        },
      ],
      { 'x-a': '1' },
      true,
    ],
    [
      'all headers of a match must match',
      [
        {
          headers: [
            { name: 'x-a', value: '1' },
            { name: 'x-b', value: '2' },
          ],
        },
      ],
      { 'x-a': '1' },
      false,
    ],
  ];
  for (const [name, matches, headers, expected] of cases) {
    test(name, () => assert.equal(routed(matches, request('/', headers)), expected));
  }
});

describe('HTTPRoute query parameter matches', () => {
  const v2 = [{ queryParams: [{ name: 'version', value: '2' }] }];
  const cases: Array<[string, unknown[], string, boolean]> = [
    ['Exact: present with the value', v2, '/?version=2', true],
    ['Exact: another value', v2, '/?version=3', false],
    ['Exact: absent', v2, '/', false],
    ['Exact: names are case-sensitive', v2, '/?Version=2', false],
    ['a repeated parameter is matched on its first value', v2, '/?version=2&version=3', true],
    ['... and only its first value', v2, '/?version=3&version=2', false],
    ['values are decoded', [{ queryParams: [{ name: 'q', value: 'a b' }] }], '/?q=a%20b', true],
    ['"+" decodes to a space', [{ queryParams: [{ name: 'q', value: 'a b' }] }], '/?q=a+b', true],
    [
      'RegularExpression: a full match',
      [{ queryParams: [{ type: 'RegularExpression', name: 'v', value: 'v[0-9]' }] }],
      '/?v=v7',
      true,
    ],
    [
      'RegularExpression: not a partial one',
      [{ queryParams: [{ type: 'RegularExpression', name: 'v', value: 'v[0-9]' }] }],
      '/?v=v77',
      false,
    ],
  ];
  for (const [name, matches, path, expected] of cases) {
    test(name, () => assert.equal(routed(matches, request(path)), expected));
  }
});

describe('HTTPRoute method matches and combinations', () => {
  const cases: Array<[string, unknown[], RouteRequest, boolean]> = [
    ['method: the same method', [{ method: 'POST' }], request('/', {}, 'POST'), true],
    ['method: another method', [{ method: 'POST' }], request('/', {}, 'GET'), false],
    [
      'fields of one match are ANDed: path and header both hold',
      [{ path: { value: '/foo' }, headers: [{ name: 'version', value: 'v2' }] }],
      request('/foo/x', { version: 'v2' }),
      true,
    ],
    [
      'fields of one match are ANDed: the path alone is not enough',
      [{ path: { value: '/foo' }, headers: [{ name: 'version', value: 'v2' }] }],
      request('/foo/x'),
      false,
    ],
    [
      'fields of one match are ANDed: the header alone is not enough',
      [{ path: { value: '/foo' }, headers: [{ name: 'version', value: 'v2' }] }],
      request('/bar', { version: 'v2' }),
      false,
    ],
    [
      "matches of one rule are ORed (the spec's example): the second alone",
      [
        { path: { value: '/foo' }, headers: [{ name: 'version', value: 'v2' }] },
        { path: { value: '/v2/foo' } },
      ],
      request('/v2/foo'),
      true,
    ],
    [
      "matches of one rule are ORed (the spec's example): neither",
      [
        { path: { value: '/foo' }, headers: [{ name: 'version', value: 'v2' }] },
        { path: { value: '/v2/foo' } },
      ],
      request('/foo'),
      false,
    ],
  ];
  for (const [name, matches, req, expected] of cases) {
    test(name, () => assert.equal(routed(matches, req), expected));
  }
});
