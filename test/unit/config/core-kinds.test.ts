import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resourceKey, validateResource } from '../../../src/config/index.ts';
import { type Case, res, runCase } from './helpers.ts';

const ns = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, ...extra },
});
const svc = (spec: unknown, name = 'web') => res('v1', 'Service', name, spec);
const we = (spec: unknown, name = 'vm-1') => res('networking.istio.io/v1', 'WorkloadEntry', name, spec);

const cases: Case[] = [
  {
    name: 'Namespace labelled ambient',
    doc: ns('app', { labels: { 'istio.io/dataplane-mode': 'ambient', 'istio.io/use-waypoint': 'wp' } }),
    paths: [],
  },
  {
    name: 'Namespace with a namespace',
    doc: { ...ns('app'), metadata: { name: 'app', namespace: 'x' } },
    paths: ['metadata.namespace'],
    messages: { 'metadata.namespace': 'cluster-scoped' },
  },
  {
    name: 'Namespace name not a DNS label',
    doc: ns('App_1'),
    paths: ['metadata.name'],
    messages: { 'metadata.name': 'DNS-1123 label' },
  },
  {
    name: 'Namespace bad label value',
    doc: ns('app', { labels: { 'istio.io/dataplane-mode': 'not ok' } }),
    paths: ["metadata.labels['istio.io/dataplane-mode']"],
  },
  {
    name: 'Namespace bad label key prefix',
    doc: ns('app', { labels: { 'Bad_Prefix/x': 'y' } }),
    paths: ["metadata.labels['Bad_Prefix/x']"],
  },
  {
    name: 'Namespace unknown metadata field',
    doc: ns('app', { lables: {} }),
    paths: ['metadata.lables'],
    messages: { 'metadata.lables': 'did you mean "labels"' },
  },
  {
    name: 'Namespace wrong apiVersion',
    doc: { ...ns('app'), apiVersion: 'v2' },
    paths: ['apiVersion'],
    messages: { apiVersion: 'needs apiVersion v1' },
  },
  {
    name: 'Namespace missing name',
    doc: { apiVersion: 'v1', kind: 'Namespace', metadata: {} },
    paths: ['metadata.name'],
    messages: { 'metadata.name': 'is required' },
  },
  {
    name: 'Service with named targetPort and appProtocol',
    doc: svc({
      selector: { app: 'web' },
      ports: [
        { name: 'http', port: 80, targetPort: 'http-alt', appProtocol: 'http' },
        { name: 'grpc', port: 9090, targetPort: 9091 },
      ],
    }),
    paths: [],
  },
  { name: 'Service headless', doc: svc({ clusterIP: 'None', ports: [{ port: 80 }] }), paths: [] },
  {
    name: 'Service explicit clusterIP',
    doc: svc({ clusterIP: '198.19.0.10', ports: [{ port: 80 }] }),
    paths: [],
  },
  {
    name: 'Service bad clusterIP',
    doc: svc({ clusterIP: '198.19.0.300', ports: [{ port: 80 }] }),
    paths: ['spec.clusterIP'],
  },
  {
    name: 'Service port out of range',
    doc: svc({ ports: [{ port: 70000 }] }),
    paths: ['spec.ports[0].port'],
    messages: { 'spec.ports[0].port': '1 to 65535' },
  },
  { name: 'Service port as a string', doc: svc({ ports: [{ port: '80' }] }), paths: ['spec.ports[0].port'] },
  {
    name: 'Service bad targetPort name',
    doc: svc({ ports: [{ port: 80, targetPort: 'HTTP_PORT' }] }),
    paths: ['spec.ports[0].targetPort'],
  },
  {
    name: 'Service unnamed ports',
    doc: svc({ ports: [{ name: 'a', port: 80 }, { port: 81 }] }),
    paths: ['spec.ports[1].name'],
  },
  {
    name: 'Service duplicate port names',
    doc: svc({
      ports: [
        { name: 'a', port: 80 },
        { name: 'a', port: 81 },
      ],
    }),
    paths: ['spec.ports[1].name'],
  },
  {
    name: 'Service unknown protocol',
    doc: svc({ ports: [{ port: 80, protocol: 'HTTP' }] }),
    paths: ['spec.ports[0].protocol'],
    messages: { 'spec.ports[0].protocol': 'must be one of "TCP", "UDP", "SCTP"' },
  },
  {
    name: 'Service name must be DNS-1035',
    doc: svc({ ports: [{ port: 80 }] }, '1web'),
    paths: ['metadata.name'],
  },
  {
    name: 'Service misspelled selector',
    doc: svc({ selecter: { app: 'x' } }),
    paths: ['spec.selecter'],
    messages: { 'spec.selecter': 'did you mean "selector"' },
  },
  { name: 'Service missing spec', doc: res('v1', 'Service', 'web', undefined), paths: ['spec'] },
  {
    name: 'WorkloadEntry full',
    doc: we({
      address: '198.18.1.10',
      ports: { http: 8080 },
      labels: { app: 'vm' },
      serviceAccount: 'vm-sa',
      node: 'node-1',
      network: 'n1',
      locality: 'r/z',
      weight: 3,
    }),
    paths: [],
  },
  { name: 'WorkloadEntry IPv6', doc: we({ address: '2001:2::1' }), paths: [] },
  {
    name: 'WorkloadEntry bad address',
    doc: we({ address: 'vm.example.com' }),
    paths: ['spec.address'],
    messages: { 'spec.address': 'IPv4 or IPv6' },
  },
  {
    name: 'WorkloadEntry bad port',
    doc: we({ address: '198.18.0.1', ports: { http: 0 } }),
    paths: ['spec.ports.http'],
  },
  {
    name: 'WorkloadEntry bad port name',
    doc: we({ address: '198.18.0.1', ports: { HTTP: 80 } }),
    paths: ['spec.ports.HTTP'],
  },
  {
    name: 'WorkloadEntry bad serviceAccount',
    doc: we({ address: '198.18.0.1', serviceAccount: 'Bad SA' }),
    paths: ['spec.serviceAccount'],
  },
  {
    name: 'WorkloadEntry old apiVersion accepted',
    doc: { ...(we({ address: '198.18.0.1' }) as object), apiVersion: 'networking.istio.io/v1beta1' },
    paths: [],
  },
  {
    name: 'WorkloadEntry wrong group',
    doc: { ...(we({ address: '198.18.0.1' }) as object), apiVersion: 'security.istio.io/v1' },
    paths: ['apiVersion'],
  },
];

describe('config: Namespace, Service, WorkloadEntry', () => {
  for (const c of cases) {
    it(c.name, () => {
      runCase(c);
    });
  }

  it('defaults the namespace of a namespaced kind and names keys kind/namespace/name', () => {
    const result = validateResource({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web' },
      spec: { ports: [{ port: 80 }] },
    });
    assert.ok(result.ok);
    assert.equal(result.resource.metadata.name, 'web');
    assert.equal(resourceKey(result.resource), 'Service/default/web');
    const nsResult = validateResource(ns('app'));
    assert.ok(nsResult.ok);
    assert.equal(resourceKey(nsResult.resource), 'Namespace/app');
  });

  it('stores the current apiVersion when an older one is given', () => {
    const result = validateResource({
      ...(we({ address: '198.18.0.1' }) as object),
      apiVersion: 'networking.istio.io/v1beta1',
    });
    assert.ok(result.ok);
    assert.equal(result.resource.apiVersion, 'networking.istio.io/v1');
  });

  it('refuses unknown kinds and non-objects', () => {
    const unknown = validateResource({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } });
    assert.ok(!unknown.ok);
    assert.equal(unknown.errors[0]?.path, 'kind');
    assert.match(unknown.errors[0]!.message, /unknown kind "Pod"/);
    const scalar = validateResource('hello');
    assert.ok(!scalar.ok);
    assert.equal(scalar.errors[0]?.path, '');
  });

  it('names the resource as namespace/name in every error', () => {
    const result = validateResource(svc({ ports: [{ port: 0 }] }));
    assert.ok(!result.ok);
    assert.deepEqual(
      result.errors.map((e) => [e.kind, e.name]),
      [['Service', 'app/web']],
    );
  });

  it('replaces status on input with fresh conditions', () => {
    const result = validateResource({
      ...(ns('app') as object),
      status: { conditions: [{ type: 'Accepted', status: 'False', reason: 'X', message: 'old' }] },
    });
    assert.ok(result.ok);
    assert.equal('status' in result.resource, false);
    assert.deepEqual(
      result.conditions.map((c) => [c.type, c.status, c.reason]),
      [['Accepted', 'True', 'Accepted']],
    );
  });
});
