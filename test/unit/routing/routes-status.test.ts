// Route status per Service parent: Accepted (parent exists and a running waypoint serves it) and
// ResolvedRefs (every backend and mirror can be sent to), with observedGeneration.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type GRPCRouteResource,
  type HTTPRouteResource,
  validateResource,
} from '../../../src/config/index.ts';
import { routeParentStatuses, type StatusContext } from '../../../src/routing/index.ts';

const SERVICES: Record<string, number[]> = {
  'shop/web': [80],
  'shop/v1': [8080],
  'bank/v3': [8080],
  'shop/idle': [80],
};
const WAYPOINTS: Record<string, { name: string; running: boolean }> = {
  'shop/web': { name: 'shop-waypoint', running: true },
  'shop/idle': { name: 'idle-waypoint', running: false },
};
const ctx: StatusContext = {
  services: (key) => (SERVICES[key] ? { ports: SERVICES[key].map((port) => ({ port })) } : undefined),
  waypointFor: (key) => WAYPOINTS[key],
};

function route(spec: Record<string, unknown>, generation?: number, kind = 'HTTPRoute') {
  const result = validateResource({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind,
    metadata: { name: 'r', namespace: 'shop', ...(generation === undefined ? {} : { generation }) },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'web' }],
      rules: [{ backendRefs: [{ name: 'v1', port: 8080 }] }],
      ...spec,
    },
  });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
  return result.resource as HTTPRouteResource | GRPCRouteResource;
}

const condition = (r: ReturnType<typeof route>, type: string, parent = 0) =>
  routeParentStatuses(r, ctx)[parent]?.conditions.find((c) => c.type === type);

describe('Accepted', () => {
  const cases: Array<[string, unknown[], 'True' | 'False', string, RegExp]> = [
    [
      'a Service served by a running waypoint',
      [{ group: '', kind: 'Service', name: 'web' }],
      'True',
      'Accepted',
      /shop-waypoint/,
    ],
    [
      'a Service that does not exist',
      [{ group: '', kind: 'Service', name: 'nope' }],
      'False',
      'NoMatchingParent',
      /shop\/nope does not exist/,
    ],
    [
      'a port the Service lacks',
      [{ group: '', kind: 'Service', name: 'web', port: 81 }],
      'False',
      'NoMatchingParent',
      /no port 81/,
    ],
    [
      'a Service no waypoint serves',
      [{ group: '', kind: 'Service', name: 'v1' }],
      'False',
      'NoWaypoint',
      /only the sidecars of client pods enforce this route/,
    ],
    [
      'a Service whose waypoint is not running',
      [{ group: '', kind: 'Service', name: 'idle' }],
      'False',
      'WaypointNotRunning',
      /idle-waypoint.*not running.*nothing enforces this route/,
    ],
  ];
  for (const [name, parentRefs, status, reason, message] of cases) {
    test(name, () => {
      const c = condition(route({ parentRefs }), 'Accepted');
      assert.equal(c?.status, status);
      assert.equal(c?.reason, reason);
      assert.match(c?.message ?? '', message);
    });
  }

  test('one status per Service parent, the parentRef as written; a Gateway parent gets none', () => {
    const parentRefs = [
      { name: 'some-gateway' },
      { group: '', kind: 'Service', name: 'web', port: 80 },
      { group: '', kind: 'Service', name: 'nope' },
    ];
    const statuses = routeParentStatuses(route({ parentRefs }), ctx);
    assert.deepEqual(
      statuses.map((s) => [s.parentRef, s.controllerName, s.conditions[0]?.status]),
      [
        [{ group: '', kind: 'Service', name: 'web', port: 80 }, 'ambit.dev/waypoint', 'True'],
        [{ group: '', kind: 'Service', name: 'nope' }, 'ambit.dev/waypoint', 'False'],
      ],
    );
  });
});

describe('ResolvedRefs', () => {
  const cases: Array<[string, Record<string, unknown>, 'True' | 'False', string, RegExp]> = [
    [
      'every backend resolves',
      { rules: [{ backendRefs: [{ name: 'v1', port: 8080 }] }] },
      'True',
      'ResolvedRefs',
      /resolved/,
    ],
    [
      'a missing Service',
      { rules: [{ backendRefs: [{ name: 'gone', port: 8080 }] }] },
      'False',
      'BackendNotFound',
      /shop\/gone does not exist/,
    ],
    [
      'a missing port',
      { rules: [{ backendRefs: [{ name: 'v1', port: 1 }] }] },
      'False',
      'BackendNotFound',
      /no port 1/,
    ],
    [
      'an unsupported kind',
      { rules: [{ backendRefs: [{ group: 'example.com', kind: 'Bucket', name: 'b' }] }] },
      'False',
      'InvalidKind',
      /Bucket\.example\.com/,
    ],
    [
      'another namespace',
      { rules: [{ backendRefs: [{ name: 'v3', namespace: 'bank', port: 8080 }] }] },
      'False',
      'RefNotPermitted',
      /ReferenceGrant/,
    ],
    [
      'a mirror to a missing Service',
      {
        rules: [
          {
            filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'gone', port: 8080 } } }],
            backendRefs: [{ name: 'v1', port: 8080 }],
          },
        ],
      },
      'False',
      'BackendNotFound',
      /mirror: .*shop\/gone/,
    ],
    [
      "a mirror in a backendRef's filters",
      {
        rules: [
          {
            backendRefs: [
              {
                name: 'v1',
                port: 8080,
                filters: [
                  {
                    type: 'RequestMirror',
                    requestMirror: { backendRef: { name: 'v3', namespace: 'bank', port: 8080 } },
                  },
                ],
              },
            ],
          },
        ],
      },
      'False',
      'RefNotPermitted',
      /mirror: /,
    ],
    [
      'several problems: the first reason, every message',
      {
        rules: [
          { backendRefs: [{ name: 'gone', port: 8080 }] },
          { backendRefs: [{ group: 'x.io', kind: 'Thing', name: 't' }] },
        ],
      },
      'False',
      'BackendNotFound',
      /shop\/gone does not exist; .*Thing\.x\.io/,
    ],
  ];
  for (const [name, spec, status, reason, message] of cases) {
    test(name, () => {
      const c = condition(route(spec), 'ResolvedRefs');
      assert.equal(c?.status, status);
      assert.equal(c?.reason, reason);
      assert.match(c?.message ?? '', message);
    });
  }

  test('a GRPCRoute is checked the same way', () => {
    const r = route({ rules: [{ backendRefs: [{ name: 'gone', port: 8080 }] }] }, undefined, 'GRPCRoute');
    assert.equal(condition(r, 'ResolvedRefs')?.reason, 'BackendNotFound');
  });
});

describe('observedGeneration', () => {
  test('set on every condition when the route has a generation', () => {
    const conditions = routeParentStatuses(route({}, 7), ctx)[0]?.conditions ?? [];
    assert.deepEqual(
      conditions.map((c) => [c.type, c.observedGeneration]),
      [
        ['Accepted', 7],
        ['ResolvedRefs', 7],
      ],
    );
  });

  test('absent when it has none', () => {
    const conditions = routeParentStatuses(route({}), ctx)[0]?.conditions ?? [];
    assert.equal(conditions.length, 2);
    for (const c of conditions) assert.equal('observedGeneration' in c, false);
  });
});
