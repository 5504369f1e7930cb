// Routes on a ServiceEntry, as Istio's ambient mode has them: a parentRef of kind ServiceEntry (group
// networking.istio.io, by the entry's metadata.name) attaches to every host the entry holds, filtered
// by port or sectionName; backendRefs of kind ServiceEntry (one host) or Istio's Hostname; status per
// parentRef; producer and consumer routes; precedence as for Services; validation of groups.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type GRPCRouteResource,
  type HTTPRouteResource,
  validateResource,
} from '../../../src/config/index.ts';
import {
  compileRoutes,
  entryHostsOf,
  type RouteDecision,
  type RouteInput,
  type RouteRequest,
  routeParentStatuses,
  type StatusContext,
} from '../../../src/routing/index.ts';

const ISTIO = 'networking.istio.io';
const HTTPBIN = 'ServiceEntry/egress/httpbin.org';
const API = 'ServiceEntry/egress/api.example.com';
const WWW = 'ServiceEntry/egress/www.example.com';

/** The registry's services as the waypoint and the control plane hold them (one per ServiceEntry host). */
const REGISTRY = [
  { key: 'shop/web', name: 'web', namespace: 'shop', ports: [{ port: 80, name: 'http' }] },
  { key: 'egress/local', name: 'local', namespace: 'egress', ports: [{ port: 8080 }] },
  {
    key: HTTPBIN,
    name: 'httpbin.org',
    namespace: 'egress',
    kind: 'ServiceEntry',
    ports: [
      { port: 80, name: 'http' },
      { port: 443, name: 'https' },
    ],
  },
  {
    key: API,
    name: 'example',
    namespace: 'egress',
    kind: 'ServiceEntry',
    ports: [{ port: 80, name: 'http' }],
  },
  {
    key: WWW,
    name: 'example',
    namespace: 'egress',
    kind: 'ServiceEntry',
    ports: [{ port: 80, name: 'http' }],
  },
  {
    key: 'ServiceEntry/shop/httpbin.org',
    name: 'shop-httpbin',
    namespace: 'shop',
    kind: 'ServiceEntry',
    ports: [{ port: 80 }],
  },
];
const byKey = new Map(REGISTRY.map((s) => [s.key, s]));
const lookups = { services: (key: string) => byKey.get(key), entryHosts: entryHostsOf(REGISTRY) };

const SE_PARENT = { group: ISTIO, kind: 'ServiceEntry', name: 'httpbin.org' };

function resource(kind: string, spec: Record<string, unknown>, meta: Record<string, unknown> = {}) {
  return validateResource({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind,
    metadata: { name: 'r', namespace: 'egress', ...meta },
    spec,
  });
}

function route(spec: Record<string, unknown>, meta: Record<string, unknown> = {}): HTTPRouteResource {
  const result = resource('HTTPRoute', { parentRefs: [SE_PARENT], ...spec }, meta);
  assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
  return result.resource as HTTPRouteResource;
}

const req = (path = '/get', sourceNamespace?: string): RouteRequest => ({
  method: 'GET',
  path,
  headers: {},
  authority: 'httpbin.org',
  ...(sourceNamespace === undefined ? {} : { sourceNamespace }),
});

function table(routes: HTTPRouteResource[], input: Partial<RouteInput> = {}) {
  return compileRoutes({ httpRoutes: routes, grpcRoutes: [], ...lookups, ...input });
}

/** The backend forwarded to (with the route that decided, if one did), or the status answered. */
function outcome(d: RouteDecision): string {
  if (d.kind === 'respond') return `${d.status} ${d.flags}`;
  return d.route === undefined
    ? `${d.backend.service}:${d.backend.port}`
    : `${d.route} -> ${d.backend.service}:${d.backend.port}`;
}

const toHttpbin = { backendRefs: [{ group: ISTIO, kind: 'Hostname', name: 'httpbin.org', port: 80 }] };
const onlyGet = { matches: [{ path: { type: 'PathPrefix', value: '/get' } }], ...toHttpbin };

describe('attachment to a ServiceEntry parent', () => {
  test("the route applies to the entry's host; a request it does not match gets 404", () => {
    const t = table([route({ rules: [onlyGet] })]);
    assert.equal(outcome(t.decide(HTTPBIN, 80, req('/get'))), `egress/r -> ${HTTPBIN}:80`);
    assert.equal(outcome(t.decide(HTTPBIN, 80, req('/post'))), '404 NR');
  });

  test('without parentRef.port it attaches to every port of the entry', () => {
    const t = table([route({ rules: [onlyGet] })]);
    assert.equal(outcome(t.decide(HTTPBIN, 443, req('/post'))), '404 NR');
  });

  test('an entry with several hosts: the route attaches to each host', () => {
    const r = route({ parentRefs: [{ ...SE_PARENT, name: 'example' }], rules: [onlyGet] });
    const t = table([r]);
    for (const host of [API, WWW]) assert.equal(outcome(t.decide(host, 80, req('/post'))), '404 NR');
    // The entries' hosts are not a Service: the Service is untouched.
    assert.equal(outcome(t.decide('shop/web', 80, req('/post'))), 'shop/web:80');
  });

  const filtered: Array<[string, Record<string, unknown>]> = [
    ['port', { port: 443 }],
    ['sectionName', { sectionName: 'https' }],
  ];
  for (const [field, narrowing] of filtered) {
    test(`parentRef.${field} attaches to that port only`, () => {
      const t = table([route({ parentRefs: [{ ...SE_PARENT, ...narrowing }], rules: [onlyGet] })]);
      assert.equal(outcome(t.decide(HTTPBIN, 443, req('/post'))), '404 NR');
      // Port 80 has no route: the request goes to the entry's host itself.
      assert.equal(outcome(t.decide(HTTPBIN, 80, req('/post'))), `${HTTPBIN}:80`);
    });
  }

  const attachesNothing: Array<[string, Record<string, unknown>]> = [
    ["the entry's host instead of its name", { ...SE_PARENT, name: 'api.example.com' }],
    ['an entry that does not exist', { ...SE_PARENT, name: 'nope' }],
    ['a port the entry lacks', { ...SE_PARENT, port: 8443 }],
    ['an entry in another namespace than the one named', { ...SE_PARENT, namespace: 'shop' }],
  ];
  for (const [name, parent] of attachesNothing) {
    test(`${name} attaches nothing`, () => {
      const t = table([route({ parentRefs: [parent], rules: [onlyGet] })]);
      assert.equal(outcome(t.decide(HTTPBIN, 80, req('/post'))), `${HTTPBIN}:80`);
    });
  }

  test('a parentRef without a group is read as Istio’s ServiceEntry', () => {
    const t = table([
      route({ parentRefs: [{ kind: 'ServiceEntry', name: 'httpbin.org' }], rules: [onlyGet] }),
    ]);
    assert.equal(outcome(t.decide(HTTPBIN, 80, req('/post'))), '404 NR');
  });

  test('without an entryHosts lookup no ServiceEntry parent is known', () => {
    const t = compileRoutes({
      httpRoutes: [route({ rules: [onlyGet] })],
      grpcRoutes: [],
      services: lookups.services,
    });
    assert.equal(outcome(t.decide(HTTPBIN, 80, req('/post'))), `${HTTPBIN}:80`);
  });

  test('a GRPCRoute attaches the same way', () => {
    const result = resource('GRPCRoute', {
      parentRefs: [SE_PARENT],
      rules: [{ matches: [{ method: { service: 'echo.Echo' } }], ...toHttpbin }],
    });
    assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
    const t = compileRoutes({
      httpRoutes: [],
      grpcRoutes: [result.resource as GRPCRouteResource],
      ...lookups,
    });
    const grpc = (path: string) => ({
      ...req(path),
      method: 'POST',
      headers: { 'content-type': 'application/grpc' },
    });
    assert.equal(outcome(t.decide(HTTPBIN, 80, grpc('/echo.Echo/Say'))), `egress/r -> ${HTTPBIN}:80`);
    const other = t.decide(HTTPBIN, 80, grpc('/other.Svc/Call'));
    assert.equal(other.kind === 'respond' && other.headers['grpc-status'], '12');
  });
});

describe('producer and consumer routes on a ServiceEntry', () => {
  const producer = route(
    { rules: [{ matches: [{ path: { value: '/' } }], ...toHttpbin }] },
    { name: 'producer' },
  );
  // A consumer in `client` names the entry across namespaces; its backend (a Service of its own
  // namespace would do; here none) is unresolvable, so its decisions are 500s and easy to tell apart.
  const consumer = route(
    {
      parentRefs: [{ ...SE_PARENT, namespace: 'egress' }],
      rules: [{ backendRefs: [{ name: 'gone', port: 80 }] }],
    },
    { name: 'consumer', namespace: 'client' },
  );

  test("a route in the entry's namespace is the producer: it applies to every client", () => {
    const t = table([producer]);
    for (const source of [undefined, 'client', 'other'])
      assert.equal(outcome(t.decide(HTTPBIN, 80, req('/x', source))), `egress/producer -> ${HTTPBIN}:80`);
  });

  test("a route in another namespace is a consumer: only its own namespace's requests, in place of the producer's", () => {
    const t = table([producer, consumer]);
    assert.equal(outcome(t.decide(HTTPBIN, 80, req('/x', 'client'))), '500 NC');
    assert.equal(outcome(t.decide(HTTPBIN, 80, req('/x', 'other'))), `egress/producer -> ${HTTPBIN}:80`);
    assert.equal(outcome(t.decide(HTTPBIN, 80, req('/x'))), `egress/producer -> ${HTTPBIN}:80`);
  });
});

describe('precedence on a ServiceEntry parent is unchanged', () => {
  const to = (port: number) => ({
    backendRefs: [{ group: ISTIO, kind: 'Hostname', name: 'httpbin.org', port }],
  });
  const older = { creationTimestamp: '2026-01-01T00:00:00Z' };
  const newer = { creationTimestamp: '2026-02-01T00:00:00Z' };

  test('an Exact path beats a longer prefix of another route', () => {
    const prefix = route(
      { rules: [{ matches: [{ path: { value: '/get/all' } }], ...to(80) }] },
      { name: 'a', ...older },
    );
    const exact = route(
      { rules: [{ matches: [{ path: { type: 'Exact', value: '/get/all' } }], ...to(443) }] },
      { name: 'b', ...newer },
    );
    assert.equal(
      outcome(table([prefix, exact]).decide(HTTPBIN, 80, req('/get/all'))),
      `egress/b -> ${HTTPBIN}:443`,
    );
  });

  test('on equal matches the older route wins, whichever order they come in', () => {
    const a = route(
      { rules: [{ matches: [{ path: { value: '/get' } }], ...to(80) }] },
      { name: 'a', ...newer },
    );
    const b = route(
      { rules: [{ matches: [{ path: { value: '/get' } }], ...to(443) }] },
      { name: 'b', ...older },
    );
    for (const order of [
      [a, b],
      [b, a],
    ])
      assert.equal(outcome(table(order).decide(HTTPBIN, 80, req('/get'))), `egress/b -> ${HTTPBIN}:443`);
  });
});

describe('backendRefs to a ServiceEntry', () => {
  const send = (backendRefs: unknown[], namespace = 'egress') => {
    const parentRefs = [{ ...SE_PARENT, namespace: 'egress' }];
    const r = route({ parentRefs, rules: [{ backendRefs }] }, { namespace });
    return {
      decision: outcome(table([r]).decide(HTTPBIN, 80, req('/get', namespace))),
      refs: routeParentStatuses(r, statusCtx)[0]?.conditions.find((c) => c.type === 'ResolvedRefs'),
    };
  };
  const cases: Array<[string, unknown[], string, string, RegExp?, string?]> = [
    [
      'kind Hostname: the ServiceEntry host of that name in the route’s namespace',
      [{ group: ISTIO, kind: 'Hostname', name: 'www.example.com', port: 80 }],
      `egress/r -> ${WWW}:80`,
      'ResolvedRefs',
    ],
    [
      'kind ServiceEntry is not a backend kind (Istio has none): InvalidKind',
      [{ group: ISTIO, kind: 'ServiceEntry', name: 'httpbin.org', port: 443 }],
      '500 NC',
      'InvalidKind',
      /is a ServiceEntry\.networking\.istio\.io: only core Services .* and Istio's Hostname/,
    ],
    [
      'kind Hostname no entry holds',
      [{ group: ISTIO, kind: 'Hostname', name: 'nope.example.com', port: 80 }],
      '500 NC',
      'BackendNotFound',
      /Hostname nope\.example\.com .* does not exist/,
    ],
    [
      'kind Hostname on a port the entry lacks',
      [{ group: ISTIO, kind: 'Hostname', name: 'httpbin.org', port: 8443 }],
      '500 NC',
      'BackendNotFound',
      /has no port 8443/,
    ],
    [
      'kind Hostname is looked up in the route’s namespace, not another’s',
      [{ group: ISTIO, kind: 'Hostname', name: 'www.example.com', port: 80 }],
      '500 NC',
      'BackendNotFound',
      /www\.example\.com \(a ServiceEntry host in client\) does not exist/,
      'client',
    ],
  ];
  for (const [name, backendRefs, decision, reason, message, namespace] of cases) {
    test(name, () => {
      const got = send(backendRefs, namespace);
      assert.equal(got.decision, decision);
      assert.equal(got.refs?.reason, reason);
      assert.equal(got.refs?.status, reason === 'ResolvedRefs' ? 'True' : 'False');
      if (message) assert.match(got.refs?.message ?? '', message);
    });
  }

  test('a mirror to a Hostname copies to that host', () => {
    const mirror = { backendRef: { group: ISTIO, kind: 'Hostname', name: 'api.example.com', port: 80 } };
    const t = table([
      route({ rules: [{ filters: [{ type: 'RequestMirror', requestMirror: mirror }], ...toHttpbin }] }),
    ]);
    const d = t.decide(HTTPBIN, 80, req());
    assert.ok(d.kind === 'forward');
    assert.deepEqual(
      d.mirrors.map((m) => m.backend),
      [{ service: API, port: 80 }],
    );
  });

  test('a route on a Service may send to a ServiceEntry host of its namespace', () => {
    const r = route(
      {
        parentRefs: [{ group: '', kind: 'Service', name: 'web' }],
        rules: [{ backendRefs: [{ group: ISTIO, kind: 'Hostname', name: 'httpbin.org', port: 80 }] }],
      },
      { namespace: 'shop' },
    );
    assert.equal(
      outcome(table([r]).decide('shop/web', 80, req())),
      'shop/r -> ServiceEntry/shop/httpbin.org:80',
    );
  });
});

const WAYPOINTS: Record<string, { name: string; running: boolean }> = {
  [HTTPBIN]: { name: 'egress/waypoint', running: true },
  [API]: { name: 'egress/waypoint', running: true },
  'shop/web': { name: 'shop/waypoint', running: true },
  'ServiceEntry/shop/httpbin.org': { name: 'shop/idle', running: false },
};
const statusCtx: StatusContext = { ...lookups, waypointFor: (key) => WAYPOINTS[key] };

describe('route status for a ServiceEntry parent', () => {
  const accepted = (parentRefs: unknown[], namespace = 'egress') =>
    routeParentStatuses(route({ parentRefs, rules: [toHttpbin] }, { namespace }), statusCtx).map((s) =>
      s.conditions.find((c) => c.type === 'Accepted'),
    );
  const cases: Array<[string, Record<string, unknown>, 'True' | 'False', string, RegExp]> = [
    [
      'an entry whose hosts a running waypoint serves',
      SE_PARENT,
      'True',
      'Accepted',
      /accepted by waypoint egress\/waypoint for ServiceEntry egress\/httpbin\.org/,
    ],
    [
      'an entry that does not exist',
      { ...SE_PARENT, name: 'nope' },
      'False',
      'NoMatchingParent',
      /parent ServiceEntry egress\/nope does not exist/,
    ],
    [
      'a port the entry lacks',
      { ...SE_PARENT, port: 8443 },
      'False',
      'NoMatchingParent',
      /parent ServiceEntry egress\/httpbin\.org has no port 8443/,
    ],
    [
      'a sectionName the entry lacks',
      { ...SE_PARENT, sectionName: 'grpc' },
      'False',
      'NoMatchingParent',
      /parent ServiceEntry egress\/httpbin\.org has no port named grpc$/,
    ],
    [
      'an entry one of whose hosts no waypoint serves',
      { ...SE_PARENT, name: 'example' },
      'False',
      'NoWaypoint',
      /no waypoint serves host www\.example\.com of ServiceEntry egress\/example.*label on the ServiceEntry/,
    ],
    [
      'an entry whose waypoint is not running',
      { ...SE_PARENT, name: 'shop-httpbin', namespace: 'shop' },
      'False',
      'WaypointNotRunning',
      /waypoint shop\/idle, which serves host httpbin\.org of ServiceEntry shop\/shop-httpbin, is not running/,
    ],
  ];
  for (const [name, parent, status, reason, message] of cases) {
    test(name, () => {
      const [cond] = accepted([parent]);
      assert.equal(cond?.status, status);
      assert.equal(cond?.reason, reason);
      assert.match(cond?.message ?? '', message);
    });
  }

  test('one status per parentRef, not per host; parents of other kinds are left to their controllers', () => {
    const parentRefs = [
      { ...SE_PARENT, name: 'example' },
      { group: '', kind: 'Service', name: 'web', namespace: 'shop' },
      { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'ingress' },
    ];
    const statuses = routeParentStatuses(route({ parentRefs, rules: [toHttpbin] }), statusCtx);
    assert.deepEqual(
      statuses.map((s) => s.parentRef),
      parentRefs.slice(0, 2),
    );
    assert.deepEqual(
      statuses.map((s) => s.conditions.find((c) => c.type === 'Accepted')?.reason),
      ['NoWaypoint', 'Accepted'],
    );
  });
});

describe('validation of ServiceEntry and Hostname references', () => {
  const paths = (spec: Record<string, unknown>) => {
    const result = resource('HTTPRoute', spec);
    return result.ok ? [] : result.errors.map((e) => `${e.path}: ${e.message}`);
  };
  const cases: Array<[string, Record<string, unknown>, RegExp | undefined]> = [
    ['a ServiceEntry parent of Istio’s group', { parentRefs: [SE_PARENT] }, undefined],
    [
      'a ServiceEntry parent of another group',
      { parentRefs: [{ ...SE_PARENT, group: 'gateway.networking.k8s.io' }] },
      /^spec\.parentRefs\[0\]\.group: must be networking\.istio\.io when kind is ServiceEntry$/,
    ],
    [
      'a Hostname backend of the core group',
      { rules: [{ backendRefs: [{ group: '', kind: 'Hostname', name: 'httpbin.org', port: 80 }] }] },
      /^spec\.rules\[0\]\.backendRefs\[0\]\.group: must be networking\.istio\.io when kind is Hostname$/,
    ],
    [
      'a Hostname backend with a namespace',
      {
        rules: [
          {
            backendRefs: [
              { group: ISTIO, kind: 'Hostname', name: 'httpbin.org', namespace: 'egress', port: 80 },
            ],
          },
        ],
      },
      /^spec\.rules\[0\]\.backendRefs\[0\]\.namespace: may not be set when kind is Hostname/,
    ],
    [
      'a mirror to a Hostname of the wrong group',
      {
        rules: [
          {
            filters: [
              {
                type: 'RequestMirror',
                requestMirror: {
                  backendRef: { group: 'core', kind: 'Hostname', name: 'h.example', port: 80 },
                },
              },
            ],
          },
        ],
      },
      /^spec\.rules\[0\]\.filters\[0\]\.requestMirror\.backendRef\.group: must be networking\.istio\.io/,
    ],
  ];
  for (const [name, spec, error] of cases) {
    test(name, () => {
      const got = paths(spec);
      if (error === undefined) assert.deepEqual(got, []);
      else {
        assert.equal(got.length, 1, JSON.stringify(got));
        assert.match(got[0]!, error);
      }
    });
  }
});
