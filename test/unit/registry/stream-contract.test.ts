// The contract between the control plane and the proxies: every resource the registry streams parses
// with the proxies' schema and comes out whole, apart from the fields the registry declares its own.
// It fails when a field is added on one side only: a registry field the schema would drop (deep-equal
// fails), a schema field the registry never sends (coverage fails), or a stale registry-only entry.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { z } from 'zod';
import { assertValid, type Resource } from '../../../src/config/index.ts';
import { deriveRegistry, type LabPod, REGISTRY_ONLY_FIELDS } from '../../../src/control/registry/index.ts';
import type { RevokedCertificate } from '../../../src/identity/index.ts';
import {
  authorizationResource,
  parseResource,
  serviceResource,
  TYPE,
  type TypeSnapshot,
  trustBundleResource,
  typeSnapshot,
  workloadResource,
} from '../../../src/xds/index.ts';

const r = (doc: unknown): Resource => assertValid(doc);
const meta = (name: string, namespace: string, extra: Record<string, unknown> = {}) => ({
  name,
  namespace,
  ...extra,
});

// Every optional part of every streamed resource appears at least once below.
const resources: Resource[] = [
  r({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: 'app',
      labels: { 'istio.io/dataplane-mode': 'ambient', 'istio.io/use-waypoint': 'wp' },
    },
  }),
  r({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other', labels: {} } }),
  r({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: meta('wp', 'app', { labels: { 'istio.io/waypoint-for': 'all' } }),
    spec: {
      gatewayClassName: 'ambit-waypoint',
      listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
    },
  }),
  r({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta('web', 'app', { labels: { tier: 'front' } }),
    spec: {
      selector: { app: 'web' },
      ports: [
        { name: 'http', port: 80, targetPort: 'http', appProtocol: 'http' },
        { name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' },
      ],
    },
  }),
  r({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta('vm', 'other'),
    spec: { clusterIP: '198.19.9.9', ports: [{ port: 9000 }] },
  }),
  r({
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: meta('external', 'other'),
    spec: {
      hosts: ['api.example.com'],
      ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
      resolution: 'DNS',
      endpoints: [{ address: 'origin.example.net' }],
    },
  }),
  r({
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: meta('vm-1', 'other'),
    spec: { address: '198.18.2.50', serviceAccount: 'vm', node: 'node-2', labels: { app: 'vm' } },
  }),
  r({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: meta('everything', 'app', { annotations: { 'istio.io/dry-run': 'true' } }),
    spec: {
      selector: { matchLabels: { app: 'web' } },
      action: 'DENY',
      rules: [
        {
          from: [
            {
              source: {
                principals: ['cluster.local/ns/a/sa/b'],
                notPrincipals: ['cluster.local/ns/a/sa/c'],
                namespaces: ['a'],
                notNamespaces: ['b'],
                ipBlocks: ['198.18.0.0/16'],
                notIpBlocks: ['198.18.9.0/24'],
              },
            },
            { source: { serviceAccounts: ['a/b'], notServiceAccounts: ['a/c'] } },
          ],
          to: [{ operation: { ports: ['80'], notPorts: ['81'] } }],
          when: [
            { key: 'source.ip', values: ['198.18.1.1'] },
            { key: 'destination.port', notValues: ['82'] },
          ],
        },
      ],
    },
  }),
  r({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: meta('mesh-wide', 'istio-system'),
    spec: { action: 'AUDIT', rules: [{}] },
  }),
  r({
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: meta('web', 'app'),
    spec: {
      selector: { matchLabels: { app: 'web' } },
      mtls: { mode: 'STRICT' },
      portLevelMtls: { '8080': { mode: 'PERMISSIVE' } },
    },
  }),
];

const pods: LabPod[] = [
  {
    name: 'web-1',
    namespace: 'app',
    node: 'node-1',
    address: '198.18.1.10',
    serviceAccount: 'web',
    labels: { app: 'web' },
    ports: { http: 8080 },
  },
  {
    name: 'wp-1',
    namespace: 'app',
    node: 'node-1',
    address: '198.18.1.11',
    serviceAccount: 'wp',
    labels: { 'gateway.networking.k8s.io/gateway-name': 'wp' },
  },
];

/** What the control plane streams, serialised as it is for every proxy. */
function streamed(): Map<string, TypeSnapshot> {
  const reg = deriveRegistry({ resources, pods });
  return new Map([
    [TYPE.workload, typeSnapshot(reg.workloads.map((w) => [w.uid, w]))],
    [TYPE.service, typeSnapshot(reg.services.map((s) => [s.key, s]))],
    [TYPE.authorization, typeSnapshot(reg.authorizations.map((a) => [`${a.namespace}/${a.name}`, a]))],
  ]);
}

const CONTRACT: { type: string; schema: z.ZodType; own: readonly string[] }[] = [
  { type: TYPE.workload, schema: workloadResource, own: REGISTRY_ONLY_FIELDS.workload },
  { type: TYPE.service, schema: serviceResource, own: REGISTRY_ONLY_FIELDS.service },
  { type: TYPE.authorization, schema: authorizationResource, own: REGISTRY_ONLY_FIELDS.authorization },
];

type Json = unknown;

/** `value` without the field at `path` (dot-separated; arrays are stepped through). */
function without(value: Json, path: readonly string[]): Json {
  if (Array.isArray(value)) return value.map((v) => without(v, path));
  if (typeof value !== 'object' || value === null) return value;
  const [head, ...rest] = path;
  if (head === undefined || !(head in value)) return value;
  const copy: Record<string, Json> = { ...(value as Record<string, Json>) };
  if (rest.length === 0) delete copy[head];
  else copy[head] = without(copy[head], rest);
  return copy;
}

/** The values found at `path` in `value` (arrays stepped through). */
function at(value: Json, path: readonly string[]): Json[] {
  if (Array.isArray(value)) return value.flatMap((v) => at(v, path));
  const [head, ...rest] = path;
  if (head === undefined) return [value];
  if (typeof value !== 'object' || value === null || !(head in value)) return [];
  return at((value as Record<string, Json>)[head], rest);
}

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
}

/** Paths of the schema's object fields that no value in `values` carries. */
function uncovered(schema: z.ZodType, values: Json[], path: string): string[] {
  const def = schema.def as unknown as Def;
  if (def.type === 'optional' || def.type === 'default')
    return uncovered(def.innerType as z.ZodType, values, path);
  if (def.type === 'array') return uncovered(def.element as z.ZodType, values.flat(), path);
  if (def.type !== 'object') return [];
  const out: string[] = [];
  for (const [key, field] of Object.entries(def.shape ?? {})) {
    const sub = values.flatMap((v) => at(v, [key]));
    const where = path ? `${path}.${key}` : key;
    if (sub.length === 0) out.push(where);
    else out.push(...uncovered(field, sub, where));
  }
  return out;
}

describe('config stream contract: registry → proxies', () => {
  const snapshot = streamed();

  for (const { type, schema, own } of CONTRACT) {
    it(`${type}: every streamed resource parses whole, apart from the registry's own fields`, () => {
      const resources = [...(snapshot.get(type) ?? [])];
      assert.ok(resources.length > 0, `nothing streamed as ${type}`);
      for (const [name, { body }] of resources) {
        const wire = JSON.parse(body.toString()) as Json;
        const expected = own.reduce<Json>((v, path) => without(v, path.split('.')), wire);
        assert.deepEqual(parseResource(schema, type, name, wire), expected, `${type} ${name} lost a field`);
      }
    });

    it(`${type}: the fixtures send every field of the schema and every registry-only field`, () => {
      const wire = [...(snapshot.get(type) ?? [])].map(([, r]) => JSON.parse(r.body.toString()) as Json);
      assert.deepEqual(uncovered(schema, wire, ''), [], 'schema fields the registry never sends');
      for (const path of own) {
        assert.ok(at(wire, path.split('.')).length > 0, `registry-only field ${path} is never sent`);
      }
    });
  }

  it(`${TYPE.trustBundle}: the CA's bundle parses whole`, () => {
    const revoked: RevokedCertificate[] = [
      { issuer: 'O=ambit, CN=ambit root', serial: '0A1b', notAfter: '2030-01-01T00:00:00.000Z' },
    ];
    const bundle = { pem: '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n', revoked };
    const wire = JSON.parse(JSON.stringify(bundle)) as Json;
    assert.deepEqual(parseResource(trustBundleResource, TYPE.trustBundle, 'bundle', wire), wire);
    assert.deepEqual(uncovered(trustBundleResource, [wire], ''), []);
  });
});
