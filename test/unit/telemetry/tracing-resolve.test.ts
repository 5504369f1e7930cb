// Which tracing and access-log settings a waypoint applies: Istio's precedence (root namespace, then the
// waypoint's namespace, then Telemetries whose targetRefs name its Gateway, the destination Service or the
// waypoint GatewayClass), field by field, with MeshConfig's default provider; as tables of cases.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertValid, type MeshConfigResource, type TelemetryResource } from '../../../src/config/index.ts';
import {
  DEFAULT_SAMPLING_PERCENTAGE,
  resolveTelemetry,
  type TelemetryScope,
} from '../../../src/telemetry/tracing/index.ts';

const ROOT = 'ambit-system';

const telemetry = (
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
  creationTimestamp?: string,
): TelemetryResource =>
  assertValid({
    apiVersion: 'telemetry.istio.io/v1',
    kind: 'Telemetry',
    metadata: { name, namespace, ...(creationTimestamp ? { creationTimestamp } : {}) },
    spec,
  }) as TelemetryResource;

const mesh = (spec: Record<string, unknown>): MeshConfigResource =>
  assertValid({
    apiVersion: 'ambit.dev/v1alpha1',
    kind: 'MeshConfig',
    metadata: { name: 'default' },
    spec,
  }) as MeshConfigResource;

const otel = { service: 'otel-collector.observability.svc.cluster.local', port: 4317 };
const otelHttp = { ...otel, port: 4318, http: { path: '/v1/traces', timeout: '2s' } };

const MESH = mesh({
  extensionProviders: [
    { name: 'otel', opentelemetry: otel },
    { name: 'otel-http', opentelemetry: otelHttp },
    { name: 'authz', envoyExtAuthzHttp: { service: 'authz.shop.svc.cluster.local', port: 8000 } },
  ],
});
const MESH_DEFAULT = mesh({
  extensionProviders: [
    { name: 'otel', opentelemetry: otel },
    { name: 'otel-http', opentelemetry: otelHttp },
  ],
  defaultProviders: { tracing: ['otel'] },
});

const AT: TelemetryScope = {
  rootNamespace: ROOT,
  gateway: { namespace: 'shop', name: 'waypoint' },
  service: { namespace: 'shop', name: 'reviews' },
};

const gatewayRef = (name: string) => ({ group: 'gateway.networking.k8s.io', kind: 'Gateway', name });
const serviceRef = (name: string) => ({ group: '', kind: 'Service', name });

describe('resolveTelemetry: tracing precedence', () => {
  const cases: Array<{
    name: string;
    telemetries: TelemetryResource[];
    mesh?: MeshConfigResource;
    at?: TelemetryScope;
    provider?: string;
    sampling?: number;
    tags?: string[];
    disabled?: boolean;
  }> = [
    { name: 'no Telemetry and no default provider: no tracing', telemetries: [], mesh: MESH },
    { name: 'no MeshConfig at all: no tracing', telemetries: [telemetry(ROOT, 'mesh', { tracing: [{}] })] },
    {
      name: 'the mesh default provider alone turns tracing on at the default sampling',
      telemetries: [],
      mesh: MESH_DEFAULT,
      provider: 'otel',
      sampling: DEFAULT_SAMPLING_PERCENTAGE,
    },
    {
      name: 'a root-namespace Telemetry names the provider and the sampling',
      telemetries: [
        telemetry(ROOT, 'mesh', {
          tracing: [{ providers: [{ name: 'otel' }], randomSamplingPercentage: 10 }],
        }),
      ],
      mesh: MESH,
      provider: 'otel',
      sampling: 10,
    },
    {
      name: 'the namespace level overrides the sampling and keeps the mesh provider',
      telemetries: [
        telemetry(ROOT, 'mesh', {
          tracing: [{ providers: [{ name: 'otel' }], randomSamplingPercentage: 10 }],
        }),
        telemetry('shop', 'ns', { tracing: [{ randomSamplingPercentage: 100 }] }),
      ],
      mesh: MESH,
      provider: 'otel',
      sampling: 100,
    },
    {
      name: 'a Telemetry of another namespace does not apply',
      telemetries: [
        telemetry(ROOT, 'mesh', {
          tracing: [{ providers: [{ name: 'otel' }], randomSamplingPercentage: 10 }],
        }),
        telemetry('other', 'ns', { tracing: [{ randomSamplingPercentage: 100 }] }),
      ],
      mesh: MESH,
      provider: 'otel',
      sampling: 10,
    },
    {
      name: 'a Gateway targetRef overrides the namespace: provider, sampling 0',
      telemetries: [
        telemetry('shop', 'ns', {
          tracing: [{ providers: [{ name: 'otel' }], randomSamplingPercentage: 50 }],
        }),
        telemetry('shop', 'wp', {
          targetRefs: [gatewayRef('waypoint')],
          tracing: [{ providers: [{ name: 'otel-http' }], randomSamplingPercentage: 0 }],
        }),
      ],
      mesh: MESH,
      provider: 'otel-http',
      sampling: 0,
    },
    {
      name: 'a targetRef to another Gateway does not apply',
      telemetries: [
        telemetry('shop', 'ns', {
          tracing: [{ providers: [{ name: 'otel' }], randomSamplingPercentage: 50 }],
        }),
        telemetry('shop', 'wp', {
          targetRefs: [gatewayRef('other')],
          tracing: [{ randomSamplingPercentage: 0 }],
        }),
      ],
      mesh: MESH,
      provider: 'otel',
      sampling: 50,
    },
    {
      name: 'a Service targetRef applies to requests for that Service',
      telemetries: [
        telemetry('shop', 'ns', {
          tracing: [{ providers: [{ name: 'otel' }], randomSamplingPercentage: 50 }],
        }),
        telemetry('shop', 'svc', {
          targetRefs: [serviceRef('reviews')],
          tracing: [{ randomSamplingPercentage: 100 }],
        }),
      ],
      mesh: MESH,
      provider: 'otel',
      sampling: 100,
    },
    {
      name: 'a Service targetRef does not apply to requests for another Service',
      telemetries: [
        telemetry('shop', 'ns', {
          tracing: [{ providers: [{ name: 'otel' }], randomSamplingPercentage: 50 }],
        }),
        telemetry('shop', 'svc', {
          targetRefs: [serviceRef('ratings')],
          tracing: [{ randomSamplingPercentage: 100 }],
        }),
      ],
      mesh: MESH,
      provider: 'otel',
      sampling: 50,
    },
    {
      name: 'the legacy single targetRef counts as targetRefs',
      telemetries: [
        telemetry('shop', 'svc', {
          targetRef: gatewayRef('waypoint'),
          tracing: [{ providers: [{ name: 'otel' }] }],
        }),
      ],
      mesh: MESH,
      provider: 'otel',
      sampling: DEFAULT_SAMPLING_PERCENTAGE,
    },
    {
      name: 'a GatewayClass targetRef in the root namespace applies to every waypoint',
      telemetries: [
        telemetry(ROOT, 'class', {
          targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'GatewayClass', name: 'istio-waypoint' }],
          tracing: [{ providers: [{ name: 'otel' }], randomSamplingPercentage: 5 }],
        }),
      ],
      mesh: MESH,
      provider: 'otel',
      sampling: 5,
    },
    {
      name: 'a selector-based Telemetry never applies to a waypoint (as in Istio)',
      telemetries: [
        telemetry('shop', 'sel', {
          selector: { matchLabels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' } },
          tracing: [{ providers: [{ name: 'otel' }] }],
        }),
      ],
      mesh: MESH,
    },
    {
      name: 'workload-level Telemetries apply oldest first: the newer one wins',
      telemetries: [
        telemetry(
          'shop',
          'newer',
          { targetRefs: [gatewayRef('waypoint')], tracing: [{ randomSamplingPercentage: 30 }] },
          '2026-02-01T00:00:00Z',
        ),
        telemetry(
          'shop',
          'older',
          { targetRefs: [serviceRef('reviews')], tracing: [{ randomSamplingPercentage: 20 }] },
          '2026-01-01T00:00:00Z',
        ),
      ],
      mesh: MESH_DEFAULT,
      provider: 'otel',
      sampling: 30,
    },
    {
      name: 'customTags are replaced whole by a more specific level, not merged',
      telemetries: [
        telemetry(ROOT, 'mesh', {
          tracing: [{ providers: [{ name: 'otel' }], customTags: { team: { literal: { value: 'core' } } } }],
        }),
        telemetry('shop', 'ns', {
          tracing: [{ customTags: { user: { header: { name: 'x-user', defaultValue: 'anon' } } } }],
        }),
      ],
      mesh: MESH,
      provider: 'otel',
      sampling: DEFAULT_SAMPLING_PERCENTAGE,
      tags: ['user'],
    },
    {
      name: 'customTags are inherited when the specific level sets none',
      telemetries: [
        telemetry(ROOT, 'mesh', {
          tracing: [{ providers: [{ name: 'otel' }], customTags: { team: { literal: { value: 'core' } } } }],
        }),
        telemetry('shop', 'ns', { tracing: [{ randomSamplingPercentage: 100 }] }),
      ],
      mesh: MESH,
      provider: 'otel',
      sampling: 100,
      tags: ['team'],
    },
    {
      name: 'disableSpanReporting at the namespace level, re-enabled by the Gateway level',
      telemetries: [
        telemetry(ROOT, 'mesh', { tracing: [{ providers: [{ name: 'otel' }] }] }),
        telemetry('shop', 'ns', { tracing: [{ disableSpanReporting: true }] }),
        telemetry('shop', 'wp', {
          targetRefs: [gatewayRef('waypoint')],
          tracing: [{ disableSpanReporting: false }],
        }),
      ],
      mesh: MESH,
      provider: 'otel',
      sampling: DEFAULT_SAMPLING_PERCENTAGE,
      disabled: false,
    },
    {
      name: 'disableSpanReporting keeps the provider but reports nothing',
      telemetries: [
        telemetry(ROOT, 'mesh', { tracing: [{ providers: [{ name: 'otel' }] }] }),
        telemetry('shop', 'ns', { tracing: [{ disableSpanReporting: true }] }),
      ],
      mesh: MESH,
      provider: 'otel',
      sampling: DEFAULT_SAMPLING_PERCENTAGE,
      disabled: true,
    },
    {
      name: 'an entry for CLIENT only does not apply: the waypoint is the server side',
      telemetries: [
        telemetry(ROOT, 'mesh', {
          tracing: [
            { providers: [{ name: 'otel' }], randomSamplingPercentage: 10 },
            { match: { mode: 'CLIENT' }, randomSamplingPercentage: 90 },
            { match: { mode: 'SERVER' }, customTags: { side: { literal: { value: 'server' } } } },
          ],
        }),
      ],
      mesh: MESH,
      provider: 'otel',
      sampling: 10,
      tags: ['side'],
    },
    {
      name: 'the waypoint in the root namespace reads that namespace once',
      telemetries: [
        telemetry(ROOT, 'mesh', {
          tracing: [{ providers: [{ name: 'otel' }], randomSamplingPercentage: 7 }],
        }),
      ],
      mesh: MESH,
      at: { rootNamespace: ROOT, gateway: { namespace: ROOT, name: 'waypoint' } },
      provider: 'otel',
      sampling: 7,
    },
  ];

  for (const c of cases) {
    test(c.name, () => {
      const out = resolveTelemetry(c.telemetries, c.mesh, c.at ?? AT);
      if (c.provider === undefined) {
        assert.equal(out.tracing, undefined);
        return;
      }
      assert.ok(out.tracing, 'tracing is on');
      assert.equal(out.tracing.provider.name, c.provider);
      assert.equal(out.tracing.samplingPercentage, c.sampling);
      assert.deepEqual(Object.keys(out.tracing.customTags).sort(), c.tags ?? []);
      assert.equal(out.tracing.disableSpanReporting, c.disabled ?? false);
      assert.deepEqual(out.problems, []);
    });
  }

  test('the provider carries its MeshConfig settings', () => {
    const out = resolveTelemetry(
      [telemetry(ROOT, 'mesh', { tracing: [{ providers: [{ name: 'otel-http' }] }] })],
      MESH,
      AT,
    );
    assert.deepEqual(out.tracing?.provider, { name: 'otel-http', opentelemetry: { ...otelHttp } });
  });
});

describe('resolveTelemetry: providers that cannot trace', () => {
  test('a provider MeshConfig does not have: no tracing, and a problem naming the Telemetry', () => {
    const out = resolveTelemetry(
      [telemetry('shop', 'ns', { tracing: [{ providers: [{ name: 'zipkin' }] }] })],
      MESH_DEFAULT,
      AT,
    );
    assert.equal(out.tracing, undefined, 'the unknown provider replaces the default, as in Istio');
    assert.equal(out.problems.length, 1);
    assert.equal(out.problems[0]!.namespace, 'shop');
    assert.equal(out.problems[0]!.name, 'ns');
    assert.match(out.problems[0]!.message, /^tracing\[0\]\.providers: "zipkin" is not an extension provider/);
    assert.match(out.problems[0]!.message, /opentelemetry providers: otel, otel-http/);
  });

  test('a more specific level naming a known provider restores tracing', () => {
    const out = resolveTelemetry(
      [
        telemetry(ROOT, 'mesh', { tracing: [{ providers: [{ name: 'zipkin' }] }] }),
        telemetry('shop', 'ns', { tracing: [{ providers: [{ name: 'otel' }] }] }),
      ],
      MESH,
      AT,
    );
    assert.equal(out.tracing?.provider.name, 'otel');
    assert.equal(out.problems.length, 1, 'the root Telemetry still has its problem');
    assert.equal(out.problems[0]!.name, 'mesh');
  });

  test('an ext-authz provider cannot trace', () => {
    const out = resolveTelemetry(
      [telemetry('shop', 'ns', { tracing: [{ providers: [{ name: 'authz' }] }] })],
      MESH,
      AT,
    );
    assert.equal(out.tracing, undefined);
    assert.match(out.problems[0]!.message, /"authz" cannot trace/);
  });

  test('provider names match case-insensitively, as in Istio', () => {
    const out = resolveTelemetry(
      [telemetry('shop', 'ns', { tracing: [{ providers: [{ name: 'OTEL' }] }] })],
      MESH,
      AT,
    );
    assert.equal(out.tracing?.provider.name, 'otel');
  });

  test('several providers: the first is used and the rest are reported', () => {
    const out = resolveTelemetry(
      [telemetry('shop', 'ns', { tracing: [{ providers: [{ name: 'otel-http' }, { name: 'otel' }] }] })],
      MESH,
      AT,
    );
    assert.equal(out.tracing?.provider.name, 'otel-http');
    assert.match(out.problems[0]!.message, /"otel-http" is used, otel ignored/);
  });

  test('a second namespace-wide Telemetry is ignored and reported', () => {
    const out = resolveTelemetry(
      [
        telemetry('shop', 'first', { tracing: [{ providers: [{ name: 'otel' }] }] }, '2026-01-01T00:00:00Z'),
        telemetry('shop', 'second', { tracing: [{ randomSamplingPercentage: 100 }] }, '2026-01-02T00:00:00Z'),
      ],
      MESH,
      AT,
    );
    assert.equal(out.tracing?.samplingPercentage, DEFAULT_SAMPLING_PERCENTAGE);
    assert.deepEqual(
      out.problems.map((p) => p.name),
      ['second'],
    );
  });
});

describe('resolveTelemetry: access logging', () => {
  const cases: Array<{ name: string; telemetries: TelemetryResource[]; on: boolean; problems?: number }> = [
    { name: 'on by default (an Ambit waypoint logs every request)', telemetries: [], on: true },
    {
      name: 'disabled mesh-wide',
      telemetries: [telemetry(ROOT, 'mesh', { accessLogging: [{ disabled: true }] })],
      on: false,
    },
    {
      name: 'disabled mesh-wide, enabled again for the waypoint namespace',
      telemetries: [
        telemetry(ROOT, 'mesh', { accessLogging: [{ disabled: true }] }),
        telemetry('shop', 'ns', { accessLogging: [{ providers: [{ name: 'envoy' }] }] }),
      ],
      on: true,
    },
    {
      name: 'disabled for one Service by its targetRef',
      telemetries: [
        telemetry('shop', 'svc', {
          targetRefs: [serviceRef('reviews')],
          accessLogging: [{ disabled: true }],
        }),
      ],
      on: false,
    },
    {
      name: 'a CLIENT-only entry does not apply to the waypoint',
      telemetries: [
        telemetry(ROOT, 'mesh', { accessLogging: [{ match: { mode: 'CLIENT' }, disabled: true }] }),
      ],
      on: true,
    },
    {
      name: 'a Telemetry with tracing only leaves the log on',
      telemetries: [telemetry('shop', 'ns', { tracing: [{ randomSamplingPercentage: 5 }] })],
      on: true,
    },
    {
      name: 'a filter is not supported: logged anyway, and reported',
      telemetries: [
        telemetry('shop', 'ns', { accessLogging: [{ filter: { expression: 'response.code >= 400' } }] }),
      ],
      on: true,
      problems: 1,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const out = resolveTelemetry(c.telemetries, MESH, AT);
      assert.equal(out.accessLogging, c.on);
      assert.equal(out.problems.length, c.problems ?? 0);
    });
  }
});
