import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kindByCliName, validateResource } from '../../../src/config/index.ts';
import { type Case, res, runCase } from './helpers.ts';

const se = (spec: unknown, apiVersion = 'networking.istio.io/v1') =>
  res(apiVersion, 'ServiceEntry', 'ext', spec);
const http = { number: 80, name: 'http', protocol: 'HTTP' };
const tcp = { number: 5432, name: 'pg', protocol: 'TCP' };

const cases: Case[] = [
  { name: 'one host, NONE by default', doc: se({ hosts: ['api.example.com'], ports: [http] }), paths: [] },
  {
    name: 'the docs’ external HTTPS host with DNS resolution',
    doc: se({
      hosts: ['www.googleapis.com'],
      location: 'MESH_EXTERNAL',
      ports: [{ number: 443, name: 'https', protocol: 'TLS' }],
      resolution: 'DNS',
    }),
    paths: [],
  },
  {
    name: 'older apiVersions accepted',
    doc: se({ hosts: ['a.example.com'] }, 'networking.istio.io/v1beta1'),
    paths: [],
  },
  {
    name: 'v1alpha3 accepted',
    doc: se({ hosts: ['a.example.com'] }, 'networking.istio.io/v1alpha3'),
    paths: [],
  },
  {
    name: 'a wildcard host with NONE',
    doc: se({ hosts: ['*.example.com'], ports: [http] }),
    paths: [],
  },
  {
    name: 'STATIC with IP endpoints, ports by name, labels, service account',
    doc: se({
      hosts: ['db.internal'],
      addresses: ['198.18.200.10', '2001:2::10', '198.18.200.0/24'],
      ports: [{ ...tcp, targetPort: 5433 }],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      endpoints: [
        { address: '198.18.5.2', ports: { pg: 6432 }, labels: { app: 'db' }, serviceAccount: 'db' },
        { address: '198.18.5.3', network: 'n1', locality: 'r/z', weight: 2 },
      ],
      exportTo: ['.', 'other'],
    }),
    paths: [],
  },
  {
    name: 'STATIC with a workloadSelector and no endpoints',
    doc: se({ hosts: ['vm.internal'], resolution: 'STATIC', workloadSelector: { labels: { app: 'vm' } } }),
    paths: [],
  },
  {
    name: 'DNS with hostname endpoints',
    doc: se({
      hosts: ['*.example.com'],
      ports: [http],
      resolution: 'DNS',
      endpoints: [{ address: 'origin.example.net' }, { address: '198.18.200.7' }],
    }),
    paths: [],
  },
  {
    name: 'protocol in lower case is stored upper case',
    doc: se({ hosts: ['a.example.com'], ports: [{ number: 80, name: 'http', protocol: 'http' }] }),
    paths: [],
  },
  {
    name: 'no hosts',
    doc: se({ hosts: [] }),
    paths: ['spec.hosts'],
    messages: { 'spec.hosts': 'at least one' },
  },
  { name: 'hosts missing', doc: se({ ports: [http] }), paths: ['spec.hosts'] },
  {
    name: 'a bare * and an IP as hosts, a bad wildcard, a duplicate',
    doc: se({ hosts: ['*', '198.18.200.1', 'a.*.example.com', 'x.example.com', 'x.example.com'] }),
    paths: ['spec.hosts[0]', 'spec.hosts[1]', 'spec.hosts[2]', 'spec.hosts[4]'],
    messages: {
      'spec.hosts[0]': 'bare "*"',
      'spec.hosts[1]': 'spec.addresses',
      'spec.hosts[2]': '"*." only at the start',
      'spec.hosts[4]': 'duplicates hosts[3]',
    },
  },
  {
    name: 'bad addresses',
    doc: se({ hosts: ['a.example.com'], addresses: ['198.18.200.1/33', 'example.com'] }),
    paths: ['spec.addresses[0]', 'spec.addresses[1]'],
  },
  {
    name: 'a CIDR with DNS',
    doc: se({ hosts: ['a.example.com'], addresses: ['198.18.200.0/24'], resolution: 'DNS' }),
    paths: ['spec.addresses[0]'],
    messages: { 'spec.addresses[0]': 'NONE or STATIC' },
  },
  {
    name: 'ports repeat a number and a name',
    doc: se({ hosts: ['a.example.com'], ports: [http, { number: 80, name: 'http' }] }),
    paths: ['spec.ports[1].number', 'spec.ports[1].name'],
    messages: { 'spec.ports[1].number': 'ports[0]' },
  },
  {
    name: 'a port with an unknown protocol and a bad name',
    doc: se({ hosts: ['a.example.com'], ports: [{ number: 81, name: 'Bad_Name', protocol: 'UDP' }] }),
    paths: ['spec.ports[0].name', 'spec.ports[0].protocol'],
    messages: { 'spec.ports[0].protocol': '"GRPC"' },
  },
  {
    name: 'port name required, targetPort range',
    doc: se({ hosts: ['a.example.com'], ports: [{ number: 80, targetPort: 70000 }] }),
    paths: ['spec.ports[0].name', 'spec.ports[0].targetPort'],
  },
  {
    name: 'bad location and resolution',
    doc: se({ hosts: ['a.example.com'], location: 'OUTSIDE', resolution: 'MAGIC' }),
    paths: ['spec.location', 'spec.resolution'],
  },
  {
    name: 'NONE with endpoints',
    doc: se({ hosts: ['a.example.com'], endpoints: [{ address: '198.18.200.1' }] }),
    paths: ['spec.endpoints'],
    messages: { 'spec.endpoints': 'resolution NONE' },
  },
  {
    name: 'STATIC with neither endpoints nor workloadSelector',
    doc: se({ hosts: ['a.example.com'], resolution: 'STATIC' }),
    paths: ['spec.endpoints'],
  },
  {
    name: 'STATIC with a hostname endpoint, a unix one and none at all',
    doc: se({
      hosts: ['a.example.com'],
      resolution: 'STATIC',
      endpoints: [{ address: 'db.example.com' }, { address: 'unix:///var/run/x.sock' }, { labels: {} }],
    }),
    paths: ['spec.endpoints[0].address', 'spec.endpoints[1].address', 'spec.endpoints[2].address'],
    messages: { 'spec.endpoints[0].address': 'needs resolution DNS', 'spec.endpoints[1].address': 'unix' },
  },
  {
    name: 'endpoints and workloadSelector both set',
    doc: se({
      hosts: ['a.example.com'],
      resolution: 'STATIC',
      endpoints: [{ address: '198.18.200.1' }],
      workloadSelector: { labels: { app: 'x' } },
    }),
    paths: ['spec.workloadSelector'],
    messages: { 'spec.workloadSelector': 'only one of workloadSelector or endpoints' },
  },
  {
    name: 'DNS with a wildcard host and no endpoints',
    doc: se({ hosts: ['ok.example.com', '*.example.com'], ports: [http], resolution: 'DNS' }),
    paths: ['spec.hosts[1]'],
    messages: { 'spec.hosts[1]': 'wildcard host cannot be resolved' },
  },
  {
    name: 'DNS_ROUND_ROBIN with two endpoints; a wildcard endpoint',
    doc: se({
      hosts: ['a.example.com'],
      resolution: 'DNS_ROUND_ROBIN',
      endpoints: [{ address: '*.example.net' }, { address: 'b.example.net' }],
    }),
    paths: ['spec.endpoints', 'spec.endpoints[0].address'],
  },
  {
    name: 'an endpoint port that names no port',
    doc: se({
      hosts: ['a.example.com'],
      ports: [http],
      resolution: 'STATIC',
      endpoints: [{ address: '198.18.200.1', ports: { http: 8080, grpc: 9090 } }],
    }),
    paths: ['spec.endpoints[0].ports.grpc'],
  },
  {
    name: 'several hosts sharing addresses with a TCP port',
    doc: se({
      hosts: ['a.example.com', 'b.example.com'],
      addresses: ['198.18.200.9'],
      ports: [http, tcp],
      resolution: 'DNS',
    }),
    paths: ['spec.ports[1].protocol'],
  },
  {
    name: 'exportTo bad and duplicated; selector with a wildcard value; unknown field',
    doc: se({
      hosts: ['a.example.com'],
      exportTo: ['.', 'Not A Namespace', '.'],
      workloadSelector: { labels: { app: '*' } },
      surprise: true,
    }),
    paths: ['spec.surprise', 'spec.exportTo[1]', 'spec.exportTo[2]', 'spec.workloadSelector.labels.app'],
  },
];

describe('ServiceEntry validation', () => {
  for (const c of cases) {
    it(c.name, () => {
      runCase(c);
    });
  }

  it('defaults location MESH_EXTERNAL and resolution NONE; protocol upper-cased', () => {
    const r = validateResource(
      se({ hosts: ['a.example.com'], ports: [{ number: 80, name: 'http', protocol: 'grpc' }] }),
    );
    assert.ok(r.ok);
    const spec = (r.resource as { spec: Record<string, unknown> }).spec;
    assert.equal(spec.location, 'MESH_EXTERNAL');
    assert.equal(spec.resolution, 'NONE');
    assert.deepEqual(spec.ports, [{ number: 80, name: 'http', protocol: 'GRPC' }]);
  });

  it('is in the catalogue as serviceentries, short name se', () => {
    assert.equal(kindByCliName('se')?.kind, 'ServiceEntry');
    assert.equal(kindByCliName('serviceentries')?.apiVersion, 'networking.istio.io/v1');
  });
});

describe('MeshConfig outboundTrafficPolicy', () => {
  const meshConfig = (spec: unknown) => ({
    apiVersion: 'ambit.dev/v1alpha1',
    kind: 'MeshConfig',
    metadata: { name: 'default' },
    spec,
  });
  const table: Case[] = [
    {
      name: 'REGISTRY_ONLY',
      doc: meshConfig({ outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } }),
      paths: [],
    },
    { name: 'ALLOW_ANY', doc: meshConfig({ outboundTrafficPolicy: { mode: 'ALLOW_ANY' } }), paths: [] },
    { name: 'no mode', doc: meshConfig({ outboundTrafficPolicy: {} }), paths: [] },
    {
      name: 'an unknown mode',
      doc: meshConfig({ outboundTrafficPolicy: { mode: 'DENY_ALL' } }),
      paths: ['spec.outboundTrafficPolicy.mode'],
    },
    {
      name: 'an unknown field',
      doc: meshConfig({ outboundTrafficPolicy: { mode: 'ALLOW_ANY', egressProxy: {} } }),
      paths: ['spec.outboundTrafficPolicy.egressProxy'],
    },
  ];
  for (const c of table) {
    it(c.name, () => {
      runCase(c);
    });
  }
});
