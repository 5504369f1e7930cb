import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kindByCliName, kindByPlural, parseDuration, validateResource } from '../../../src/config/index.ts';
import { type Case, res, runCase } from './helpers.ts';

const GW = 'gateway.networking.k8s.io/v1';
const gateway = (spec: unknown, labels?: Record<string, string>) =>
  res(GW, 'Gateway', 'wp', spec, labels ? { metadata: { labels } } : {});
const waypointSpec = {
  gatewayClassName: 'ambit-waypoint',
  listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
};
const http = (rules: unknown[]) =>
  res(GW, 'HTTPRoute', 'r', { parentRefs: [{ group: '', kind: 'Service', name: 'web', port: 80 }], rules });
const grpc = (rules: unknown[]) =>
  res(GW, 'GRPCRoute', 'g', { parentRefs: [{ kind: 'Service', group: '', name: 'api' }], rules });
const dr = (spec: unknown) => res('networking.istio.io/v1', 'DestinationRule', 'dr', spec);
const rlp = (spec: unknown) => res('ambit.dev/v1alpha1', 'RateLimitPolicy', 'rl', spec);
const tel = (spec: unknown) => res('telemetry.istio.io/v1', 'Telemetry', 't', spec);
const svcRef = (name: string, weight?: number) => ({
  name,
  port: 80,
  ...(weight === undefined ? {} : { weight }),
});

const cases: Case[] = [
  { name: 'Gateway waypoint', doc: gateway(waypointSpec, { 'istio.io/waypoint-for': 'all' }), paths: [] },
  {
    name: 'Gateway Istio waypoint class',
    doc: gateway({ ...waypointSpec, gatewayClassName: 'istio-waypoint' }),
    paths: [],
  },
  {
    name: 'Gateway waypoint without HBONE listener',
    doc: gateway({
      gatewayClassName: 'ambit-waypoint',
      listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }],
    }),
    paths: ['spec.listeners'],
  },
  {
    name: 'Gateway bad waypoint-for',
    doc: gateway(waypointSpec, { 'istio.io/waypoint-for': 'pods' }),
    paths: ["metadata.labels['istio.io/waypoint-for']"],
  },
  {
    name: 'Gateway no listeners',
    doc: gateway({ gatewayClassName: 'x', listeners: [] }),
    paths: ['spec.listeners'],
  },
  {
    name: 'Gateway duplicate listener names',
    doc: gateway({
      gatewayClassName: 'x',
      listeners: [
        { name: 'a', port: 80, protocol: 'HTTP' },
        { name: 'a', port: 81, protocol: 'HTTP' },
      ],
    }),
    paths: ['spec.listeners[1].name'],
  },
  {
    name: 'HTTPRoute canary with matches, filters, timeouts and retry',
    doc: http([
      {
        name: 'canary',
        matches: [
          {
            path: { type: 'PathPrefix', value: '/api' },
            headers: [{ name: 'x-canary', value: 'true' }],
            queryParams: [{ name: 'v', value: '2' }],
            method: 'GET',
          },
          { path: { type: 'RegularExpression', value: '^/v[0-9]+/' } },
        ],
        filters: [
          {
            type: 'RequestHeaderModifier',
            requestHeaderModifier: { set: [{ name: 'x-env', value: 'prod' }], remove: ['x-debug'] },
          },
          { type: 'RequestMirror', requestMirror: { backendRef: { name: 'shadow', port: 80 }, percent: 10 } },
        ],
        backendRefs: [svcRef('web-v1', 90), svcRef('web-v2', 10)],
        timeouts: { request: '10s', backendRequest: '2s' },
        retry: { codes: [503], attempts: 3, backoff: '100ms' },
      },
      { filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', statusCode: 301 } }] },
      {
        filters: [
          {
            type: 'URLRewrite',
            urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' } },
          },
        ],
        backendRefs: [svcRef('web')],
      },
    ]),
    paths: [],
  },
  {
    name: 'HTTPRoute negative weight',
    doc: http([{ backendRefs: [svcRef('a', -1)] }]),
    paths: ['spec.rules[0].backendRefs[0].weight'],
  },
  {
    name: 'HTTPRoute backend without port',
    doc: http([{ backendRefs: [{ name: 'a' }] }]),
    paths: ['spec.rules[0].backendRefs[0].port'],
  },
  {
    name: 'HTTPRoute bad path match',
    doc: http([{ matches: [{ path: { type: 'Exact', value: 'api' } }] }]),
    paths: ['spec.rules[0].matches[0].path.value'],
  },
  {
    name: 'HTTPRoute bad regex',
    doc: http([{ matches: [{ headers: [{ type: 'RegularExpression', name: 'x', value: '(' }] }] }]),
    paths: ['spec.rules[0].matches[0].headers[0].value'],
  },
  {
    name: 'HTTPRoute bad method',
    doc: http([{ matches: [{ method: 'get' }] }]),
    paths: ['spec.rules[0].matches[0].method'],
  },
  {
    name: 'HTTPRoute filter type without its field',
    doc: http([{ filters: [{ type: 'RequestHeaderModifier', responseHeaderModifier: { remove: ['x'] } }] }]),
    paths: [
      'spec.rules[0].filters[0].requestHeaderModifier',
      'spec.rules[0].filters[0].responseHeaderModifier',
    ],
  },
  {
    name: 'HTTPRoute bad timeout',
    doc: http([{ timeouts: { request: '10 seconds' } }]),
    paths: ['spec.rules[0].timeouts.request'],
  },
  {
    name: 'HTTPRoute backend timeout longer than request',
    doc: http([{ timeouts: { request: '1s', backendRequest: '2s' } }]),
    paths: ['spec.rules[0].timeouts.backendRequest'],
  },
  {
    name: 'HTTPRoute bad retry code',
    doc: http([{ retry: { codes: [200] } }]),
    paths: ['spec.rules[0].retry.codes[0]'],
  },
  {
    name: 'HTTPRoute misspelled backendRefs',
    doc: http([{ backendRef: [] }]),
    paths: ['spec.rules[0].backendRef'],
    messages: { 'spec.rules[0].backendRef': 'did you mean "backendRefs"' },
  },
  {
    name: 'GRPCRoute method match and weights',
    doc: grpc([
      {
        matches: [{ method: { service: 'echo.Echo', method: 'Say' } }],
        backendRefs: [svcRef('api-v1', 1), svcRef('api-v2', 1)],
        timeouts: { request: '1s' },
      },
    ]),
    paths: [],
  },
  {
    name: 'GRPCRoute empty method match',
    doc: grpc([{ matches: [{ method: {} }] }]),
    paths: ['spec.rules[0].matches[0].method'],
  },
  {
    name: 'GRPCRoute redirect filter not allowed',
    doc: grpc([{ filters: [{ type: 'RequestRedirect', requestRedirect: {} }] }]),
    paths: ['spec.rules[0].filters[0].type'],
  },
  {
    name: 'DestinationRule full traffic policy',
    doc: dr({
      host: 'reviews.app.svc.cluster.local',
      trafficPolicy: {
        loadBalancer: { simple: 'LEAST_REQUEST' },
        connectionPool: {
          tcp: { maxConnections: 100, connectTimeout: '1s' },
          http: { http2MaxRequests: 1000, maxRetries: 3 },
        },
        outlierDetection: {
          consecutive5xxErrors: 5,
          interval: '10s',
          baseEjectionTime: '30s',
          maxEjectionPercent: 50,
        },
        portLevelSettings: [
          { port: { number: 9080 }, loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } },
        ],
      },
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } },
      ],
    }),
    paths: [],
  },
  { name: 'DestinationRule missing host', doc: dr({}), paths: ['spec.host'] },
  {
    name: 'DestinationRule tls SIMPLE with a CA file (Istio egress TLS origination)',
    doc: dr({
      host: 'httpbin.org',
      trafficPolicy: { tls: { mode: 'SIMPLE', caCertificates: '/etc/ca.pem' } },
    }),
    paths: [],
  },
  {
    name: 'DestinationRule tls MUTUAL without its client certificate and key',
    doc: dr({ host: 'a.example', trafficPolicy: { tls: { mode: 'MUTUAL' } } }),
    paths: ['spec.trafficPolicy.tls.clientCertificate', 'spec.trafficPolicy.tls.privateKey'],
  },
  {
    name: 'DestinationRule tls credentialName with files too',
    doc: dr({
      host: 'a.example',
      trafficPolicy: {
        portLevelSettings: [
          { port: { number: 443 }, tls: { mode: 'SIMPLE', credentialName: 'x', caCertificates: '/ca' } },
        ],
      },
    }),
    paths: ['spec.trafficPolicy.portLevelSettings[0].tls.caCertificates'],
  },
  {
    name: 'DestinationRule tls ISTIO_MUTUAL with a CA file',
    doc: dr({ host: 'a', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL', caCertificates: '/ca' } } }),
    paths: ['spec.trafficPolicy.tls.caCertificates'],
  },
  {
    name: 'DestinationRule bad algorithm',
    doc: dr({ host: 'a', trafficPolicy: { loadBalancer: { simple: 'ROUNDROBIN' } } }),
    paths: ['spec.trafficPolicy.loadBalancer.simple'],
  },
  {
    name: 'DestinationRule two hash keys',
    doc: dr({
      host: 'a',
      trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x', useSourceIp: true } } },
    }),
    paths: ['spec.trafficPolicy.loadBalancer.consistentHash'],
  },
  {
    name: 'DestinationRule negative connections',
    doc: dr({ host: 'a', trafficPolicy: { connectionPool: { tcp: { maxConnections: 0 } } } }),
    paths: ['spec.trafficPolicy.connectionPool.tcp.maxConnections'],
  },
  {
    name: 'DestinationRule ejection over 100%',
    doc: dr({ host: 'a', trafficPolicy: { outlierDetection: { maxEjectionPercent: 150 } } }),
    paths: ['spec.trafficPolicy.outlierDetection.maxEjectionPercent'],
  },
  {
    name: 'DestinationRule duplicate subsets',
    doc: dr({ host: 'a', subsets: [{ name: 'v1' }, { name: 'v1' }] }),
    paths: ['spec.subsets[1].name'],
  },
  {
    name: 'RateLimitPolicy local and global rules with every selector',
    doc: rlp({
      targetRefs: [
        { kind: 'Service', group: '', name: 'web' },
        { kind: 'HTTPRoute', group: 'gateway.networking.k8s.io', name: 'r' },
        { kind: 'Gateway', name: 'wp' },
      ],
      local: {
        rules: [
          { limit: { requests: 100, unit: 'Second' } },
          {
            name: 'per-user',
            clientSelectors: [
              {
                headers: [
                  { name: 'x-user', type: 'Distinct' },
                  { name: 'x-tier', value: 'free' },
                  { name: 'x-canary', type: 'Present', invert: true },
                  { name: 'x-client', type: 'RegularExpression', value: 'app-[0-9]+' },
                ],
                methods: [{ value: 'POST' }, { value: 'GET', invert: true }],
                path: { type: 'PathPrefix', value: '/api' },
              },
            ],
            limit: { requests: 5, unit: 'Minute' },
          },
        ],
      },
      global: {
        rules: [
          {
            clientSelectors: [
              { sourceCIDR: { type: 'Distinct', value: '198.18.0.0/15' } },
              { sourcePrincipal: { value: 'cluster.local/ns/shop/sa/cart', invert: true } },
              { sourceNamespace: { type: 'Distinct' } },
            ],
            limit: { requests: 1000, unit: 'Day' },
          },
          {
            clientSelectors: [{ sourcePrincipal: { type: 'RegularExpression', value: '.*/sa/batch-.*' } }],
            limit: { requests: 10, unit: 'Hour' },
          },
        ],
      },
    }),
    paths: [],
  },
  {
    name: 'RateLimitPolicy without local or global rules',
    doc: rlp({ targetRefs: [{ kind: 'Service', name: 'web' }] }),
    paths: ['spec'],
    messages: { spec: 'needs local or global rules' },
  },
  {
    name: 'RateLimitPolicy the older limits[] shape',
    doc: rlp({
      targetRefs: [{ kind: 'Service', name: 'web' }],
      limits: [{ bucket: { maxTokens: 1, fillInterval: '1s' } }],
    }),
    paths: ['spec', 'spec.limits'],
    messages: { 'spec.limits': 'allowed fields are targetRefs, local, global' },
  },
  {
    name: 'RateLimitPolicy bad limits',
    doc: rlp({
      targetRefs: [{ kind: 'Service', name: 'web' }],
      local: {
        rules: [
          { limit: { requests: 0, unit: 'Second' } },
          { limit: { requests: 1.5, unit: 'Minute' } },
          { limit: { requests: 1, unit: 'Week' } },
          { limit: { requests: 4_294_967_296, unit: 'Hour' } },
        ],
      },
      global: { rules: [] },
    }),
    paths: [
      'spec.local.rules[0].limit.requests',
      'spec.local.rules[1].limit.requests',
      'spec.local.rules[2].limit.unit',
      'spec.local.rules[3].limit.requests',
      'spec.global.rules',
    ],
    messages: { 'spec.local.rules[2].limit.unit': '"Second", "Minute", "Hour", "Day"' },
  },
  {
    name: 'RateLimitPolicy header selectors that contradict their type',
    doc: rlp({
      targetRefs: [{ kind: 'Service', name: 'web' }],
      local: {
        rules: [
          {
            clientSelectors: [
              {
                headers: [
                  { name: 'x-a' },
                  { name: 'x-b', type: 'Distinct', value: 'v' },
                  { name: 'x-c', type: 'Distinct', invert: true },
                  { name: 'x-d', type: 'Present', value: 'v' },
                  { name: 'bad header', value: 'v' },
                ],
              },
            ],
            limit: { requests: 1, unit: 'Second' },
          },
        ],
      },
    }),
    paths: [
      'spec.local.rules[0].clientSelectors[0].headers[0].value',
      'spec.local.rules[0].clientSelectors[0].headers[1].value',
      'spec.local.rules[0].clientSelectors[0].headers[2].invert',
      'spec.local.rules[0].clientSelectors[0].headers[3].value',
      'spec.local.rules[0].clientSelectors[0].headers[4].name',
    ],
  },
  {
    name: 'RateLimitPolicy regular expressions RE2 would refuse or that backtrack',
    doc: rlp({
      targetRefs: [{ kind: 'Service', name: 'web' }],
      global: {
        rules: [
          {
            clientSelectors: [
              {
                headers: [
                  { name: 'x-a', type: 'RegularExpression', value: 'foo(?=bar)' },
                  { name: 'x-b', type: 'RegularExpression', value: '(?<!x)y' },
                  { name: 'x-c', type: 'RegularExpression', value: '(a)\\1' },
                  { name: 'x-d', type: 'RegularExpression', value: '(a+)+$' },
                  { name: 'x-e', type: 'RegularExpression', value: '([a-z' },
                  { name: 'x-f', type: 'RegularExpression', value: '(a+)?b{2}\\(c\\)+' },
                ],
                path: { type: 'RegularExpression', value: '/(?<v>\\w+)\\k<v>' },
              },
            ],
            limit: { requests: 1, unit: 'Second' },
          },
        ],
      },
    }),
    paths: [
      'spec.global.rules[0].clientSelectors[0].headers[0].value',
      'spec.global.rules[0].clientSelectors[0].headers[1].value',
      'spec.global.rules[0].clientSelectors[0].headers[2].value',
      'spec.global.rules[0].clientSelectors[0].headers[3].value',
      'spec.global.rules[0].clientSelectors[0].headers[4].value',
      'spec.global.rules[0].clientSelectors[0].path.value',
    ],
    messages: {
      'spec.global.rules[0].clientSelectors[0].headers[0].value': 'lookahead or lookbehind',
      'spec.global.rules[0].clientSelectors[0].headers[2].value': 'backreference',
      'spec.global.rules[0].clientSelectors[0].headers[3].value': 'exponential',
      'spec.global.rules[0].clientSelectors[0].headers[4].value': 'not a valid regular expression',
    },
  },
  {
    name: 'RateLimitPolicy source selectors out of shape',
    doc: rlp({
      targetRefs: [{ kind: 'Service', name: 'web' }],
      local: {
        rules: [
          {
            clientSelectors: [
              {},
              { sourceCIDR: { value: '198.18.0.0/33' } },
              { sourcePrincipal: { value: 'spiffe://cluster.local/ns/a/sa/b' } },
              { sourceNamespace: { value: 'Not_A_Namespace' } },
              { path: { value: 'api' } },
              { methods: [{ value: 'FETCH' }] },
            ],
            limit: { requests: 1, unit: 'Second' },
          },
        ],
      },
    }),
    paths: [
      'spec.local.rules[0].clientSelectors[0]',
      'spec.local.rules[0].clientSelectors[1].sourceCIDR.value',
      'spec.local.rules[0].clientSelectors[2].sourcePrincipal.value',
      'spec.local.rules[0].clientSelectors[3].sourceNamespace.value',
      'spec.local.rules[0].clientSelectors[4].path.value',
      'spec.local.rules[0].clientSelectors[5].methods[0].value',
    ],
    messages: { 'spec.local.rules[0].clientSelectors[0]': 'needs at least one of headers' },
  },
  {
    name: 'RateLimitPolicy rule names are unique, including the default ones',
    doc: rlp({
      targetRefs: [{ kind: 'Service', name: 'web' }],
      local: {
        rules: [
          { limit: { requests: 1, unit: 'Second' } },
          { name: 'a', limit: { requests: 1, unit: 'Second' } },
        ],
      },
      global: {
        rules: [
          { name: 'local-0', limit: { requests: 1, unit: 'Second' } },
          { name: 'a', limit: { requests: 1, unit: 'Second' } },
        ],
      },
    }),
    paths: ['spec.global.rules[0].name', 'spec.global.rules[1].name'],
    messages: { 'spec.global.rules[1].name': 'local.rules[1]' },
  },
  {
    name: 'RateLimitPolicy no targets',
    doc: rlp({ targetRefs: [], local: { rules: [{ limit: { requests: 1, unit: 'Second' } }] } }),
    paths: ['spec.targetRefs'],
  },
  {
    name: 'RateLimitPolicy bad target kind and group',
    doc: rlp({
      targetRefs: [
        { kind: 'Pod', name: 'x' },
        { kind: 'GRPCRoute', name: 'g' },
        { kind: 'Service', group: 'gateway.networking.k8s.io', name: 'web' },
        { kind: 'HTTPRoute', group: '', name: 'r' },
      ],
      local: { rules: [{ limit: { requests: 1, unit: 'Second' } }] },
    }),
    paths: [
      'spec.targetRefs[0].kind',
      'spec.targetRefs[1].kind',
      'spec.targetRefs[2].group',
      'spec.targetRefs[3].group',
    ],
  },
  {
    name: 'Telemetry tracing and access logs',
    doc: tel({
      selector: { matchLabels: { app: 'web' } },
      tracing: [{ providers: [{ name: 'otel' }], randomSamplingPercentage: 10 }],
      accessLogging: [{ providers: [{ name: 'envoy' }], filter: { expression: 'response.code >= 400' } }],
    }),
    paths: [],
  },
  {
    name: 'Telemetry sampling over 100',
    doc: tel({ tracing: [{ randomSamplingPercentage: 101 }] }),
    paths: ['spec.tracing[0].randomSamplingPercentage'],
  },
  {
    name: 'Telemetry selector with targetRefs',
    doc: tel({ selector: { matchLabels: { a: 'b' } }, targetRefs: [{ kind: 'Service', name: 'x' }] }),
    paths: ['spec.selector'],
  },
  {
    name: 'Telemetry wrong apiVersion',
    doc: { ...(tel({}) as object), apiVersion: 'telemetry.istio.io/v2' },
    paths: ['apiVersion'],
  },
];

describe('config: Gateway, HTTPRoute, GRPCRoute, DestinationRule, RateLimitPolicy, Telemetry', () => {
  for (const c of cases) {
    it(c.name, () => {
      runCase(c);
    });
  }
});

describe('config: catalogue and durations', () => {
  it('finds kinds by admin path plural and by CLI name', () => {
    assert.equal(kindByPlural('security.istio.io', 'authorizationpolicies')?.kind, 'AuthorizationPolicy');
    assert.equal(kindByPlural('', 'services')?.kind, 'Service');
    assert.equal(kindByPlural('', 'authorizationpolicies'), undefined);
    assert.equal(kindByCliName('svc')?.kind, 'Service');
    assert.equal(kindByCliName('HTTPRoutes')?.kind, 'HTTPRoute');
    assert.equal(kindByCliName('nope'), undefined);
  });

  const durations: [string, number | undefined][] = [
    ['500ms', 500],
    ['1s', 1000],
    ['1m30s', 90_000],
    ['0.5s', 500],
    ['2h', 7_200_000],
    ['10', undefined],
    ['1 s', undefined],
    ['-1s', undefined],
  ];
  for (const [text, ms] of durations) {
    it(`parseDuration(${JSON.stringify(text)}) = ${ms}`, () => assert.equal(parseDuration(text), ms));
  }
});

describe('config: status of the L7 kinds at apply', () => {
  it('Telemetry: Accepted, applied by waypoints; with a selector nothing applies it', () => {
    const r = validateResource(tel({}));
    assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
    assert.deepEqual([r.conditions[0]!.status, r.conditions[0]!.reason], ['True', 'Accepted']);
    assert.match(r.conditions[0]!.message, /waypoints apply its tracing/);
    const selected = validateResource(tel({ selector: { matchLabels: { app: 'web' } } }));
    assert.ok(selected.ok);
    assert.equal(selected.conditions[0]!.reason, 'UnsupportedValue');
    assert.match(selected.conditions[0]!.message, /nothing applies this one/);
  });
  for (const doc of [http([{ backendRefs: [svcRef('web')] }]), grpc([{ backendRefs: [svcRef('api')] }])]) {
    it(`${(doc as { kind: string }).kind} is Pending at apply: its status follows its parents' waypoints when read`, () => {
      const r = validateResource(doc);
      assert.ok(r.ok);
      assert.deepEqual([r.conditions[0]!.status, r.conditions[0]!.reason], ['Unknown', 'Pending']);
      assert.match(r.conditions[0]!.message, /status follows the waypoints when read/);
    });
  }
  it('a DestinationRule is Accepted: waypoints apply it', () => {
    const r = validateResource(dr({ host: 'web' }));
    assert.ok(r.ok);
    assert.deepEqual([r.conditions[0]!.status, r.conditions[0]!.reason], ['True', 'Accepted']);
    assert.match(r.conditions[0]!.message, /by the waypoints that send to its host and by sidecars/);
  });
  it('an HTTPFault is Accepted: waypoints inject it', () => {
    const r = validateResource({
      apiVersion: 'ambit.dev/v1alpha1',
      kind: 'HTTPFault',
      metadata: { name: 'f', namespace: 'shop' },
      spec: { abort: { httpStatus: 503 } },
    });
    assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
    assert.deepEqual([r.conditions[0]!.status, r.conditions[0]!.reason], ['True', 'Accepted']);
    assert.match(r.conditions[0]!.message, /waypoints and sidecars inject it/);
  });
  it('a waypoint Gateway is Pending at apply: its status follows its replicas when read', () => {
    const r = validateResource(gateway(waypointSpec));
    assert.ok(r.ok);
    assert.deepEqual([r.conditions[0]!.status, r.conditions[0]!.reason], ['Unknown', 'Pending']);
    assert.match(r.conditions[0]!.message, /the control plane deploys this waypoint/);
  });
  it('a kind the mesh enforces is Accepted True', () => {
    const r = validateResource({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
    assert.ok(r.ok);
    assert.equal(r.conditions[0]!.status, 'True');
  });
});
