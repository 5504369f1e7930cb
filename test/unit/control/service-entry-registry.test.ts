// ServiceEntries in the registry: one service per host, VIPs from addresses or allocated (and kept
// across derivations), endpoints by resolution, and conflicts settled with an issue.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertValid, type Resource } from '../../../src/config/index.ts';
import { deriveRegistry, type LabPod, type Registry } from '../../../src/control/registry/index.ts';
import { serviceResource } from '../../../src/xds/index.ts';

const r = (doc: unknown): Resource => assertValid(doc);
const se = (name: string, ns: string, spec: Record<string, unknown>, created?: string) =>
  r({
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: ns, ...(created ? { creationTimestamp: created } : {}) },
    spec,
  });
const ambient = (name: string) =>
  r({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { 'istio.io/dataplane-mode': 'ambient' } },
  });
const service = (name: string, ns: string, spec: Record<string, unknown>) =>
  r({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec });
const tls = { number: 443, name: 'tls', protocol: 'TLS' };

const serviceOf = (reg: Registry, key: string) => {
  const s = reg.services.find((x) => x.key === key);
  assert.ok(s, `no service ${key}; have ${reg.services.map((x) => x.key).join(', ')}`);
  return s;
};

describe('ServiceEntry in the registry', () => {
  it('STATIC: one service per host, addresses as VIPs, inline endpoints with ports by name or targetPort', () => {
    const reg = deriveRegistry({
      resources: [
        se('db', 'app', {
          hosts: ['db.internal', 'db-alt.internal'],
          addresses: ['198.18.200.10'],
          ports: [
            { number: 5432, name: 'pg', protocol: 'TLS', targetPort: 6432 },
            { number: 80, name: 'http', protocol: 'HTTP' },
          ],
          location: 'MESH_INTERNAL',
          resolution: 'STATIC',
          endpoints: [{ address: '198.18.5.2', ports: { http: 8080 } }, { address: '198.18.5.3' }],
        }),
      ],
    });
    const db = serviceOf(reg, 'ServiceEntry/app/db.internal');
    assert.equal(db.hostname, 'db.internal');
    assert.equal(db.name, 'db');
    assert.equal(db.kind, 'ServiceEntry');
    assert.equal(db.location, 'MESH_INTERNAL');
    assert.equal(db.resolution, 'STATIC');
    assert.deepEqual(db.vips, ['198.18.200.10']);
    assert.equal(db.vipSource, 'spec');
    assert.deepEqual(
      db.ports.map((p) => [p.port, p.targetPort, p.appProtocol]),
      [
        [5432, 6432, 'tls'],
        [80, 80, 'http'],
      ],
    );
    assert.deepEqual(
      db.endpoints.map((e) => [e.workload, e.address, e.enrolled, e.ports]),
      [
        ['ServiceEntry/app/db/0', '198.18.5.2', false, { 5432: 6432, 80: 8080 }],
        ['ServiceEntry/app/db/1', '198.18.5.3', false, { 5432: 6432, 80: 80 }],
      ],
    );
    assert.deepEqual(serviceOf(reg, 'ServiceEntry/app/db-alt.internal').vips, ['198.18.200.10']);
    assert.equal(db.dnsEndpoints, undefined);
    assert.deepEqual(reg.issues, []);
    // What the registry streams is what the proxies accept.
    for (const s of reg.services) serviceResource.parse(s);
  });

  it('DNS without addresses: a VIP allocated per host, kept across derivations; the host is its own endpoint', () => {
    const resources = [se('api', 'app', { hosts: ['api.example.com'], ports: [tls], resolution: 'DNS' })];
    const first = deriveRegistry({ resources });
    const api = serviceOf(first, 'ServiceEntry/app/api.example.com');
    assert.deepEqual(api.vips, ['198.19.0.1']);
    assert.equal(api.vipSource, 'allocated');
    assert.deepEqual(api.dnsEndpoints, [{ hostname: 'api.example.com', ports: { 443: 443 } }]);
    assert.deepEqual(api.endpoints, []);
    assert.deepEqual(first.vips, { 'ServiceEntry/app/api.example.com': '198.19.0.1' });

    // A Service applied later, or sorting before it, never takes the entry's address.
    const again = deriveRegistry({
      resources: [...resources, service('aaa', 'aaa', { ports: [{ port: 80 }] })],
      previousVips: first.vips,
    });
    assert.deepEqual(serviceOf(again, 'ServiceEntry/app/api.example.com').vips, ['198.19.0.1']);
    assert.deepEqual(serviceOf(again, 'aaa/aaa').vips, ['198.19.0.2']);
  });

  it('DNS with endpoints: hostnames resolved by the proxy, IPs as endpoints', () => {
    const reg = deriveRegistry({
      resources: [
        se('api', 'app', {
          hosts: ['*.example.com'],
          ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: 8080 }],
          resolution: 'DNS',
          endpoints: [{ address: 'origin.example.net', ports: { http: 9090 } }, { address: '198.18.200.7' }],
        }),
      ],
    });
    const api = serviceOf(reg, 'ServiceEntry/app/*.example.com');
    assert.equal(api.hostname, '*.example.com');
    assert.deepEqual(api.vips, [], 'a wildcard host gets no allocated address');
    assert.deepEqual(api.dnsEndpoints, [{ hostname: 'origin.example.net', ports: { 80: 9090 } }]);
    assert.deepEqual(
      api.endpoints.map((e) => [e.address, e.ports]),
      [['198.18.200.7', { 80: 8080 }]],
    );
  });

  it('NONE: addresses are VIPs with no endpoints; without addresses there is no VIP', () => {
    const reg = deriveRegistry({
      resources: [
        se('legacy', 'app', { hosts: ['legacy.example.com'], addresses: ['198.18.200.20'], ports: [tls] }),
        se('any', 'app', { hosts: ['any.example.com'], ports: [tls] }),
      ],
    });
    const legacy = serviceOf(reg, 'ServiceEntry/app/legacy.example.com');
    assert.deepEqual(legacy.vips, ['198.18.200.20']);
    assert.equal(legacy.resolution, 'NONE');
    assert.deepEqual(legacy.endpoints, []);
    assert.deepEqual(serviceOf(reg, 'ServiceEntry/app/any.example.com').vips, []);
    assert.deepEqual(reg.vips, {});
  });

  it('workloadSelector: pods and WorkloadEntries of the namespace, with their enrollment', () => {
    const pods: LabPod[] = [
      {
        name: 'vm-pod',
        namespace: 'app',
        node: 'n1',
        address: '198.18.1.5',
        serviceAccount: 'vm',
        labels: { app: 'vm' },
      },
      {
        name: 'elsewhere',
        namespace: 'other',
        node: 'n1',
        address: '198.18.1.6',
        serviceAccount: 'vm',
        labels: { app: 'vm' },
      },
    ];
    const reg = deriveRegistry({
      pods,
      resources: [
        ambient('app'),
        r({
          apiVersion: 'networking.istio.io/v1',
          kind: 'WorkloadEntry',
          metadata: { name: 'vm-1', namespace: 'app' },
          spec: {
            address: '198.18.2.50',
            labels: { app: 'vm', 'istio.io/dataplane-mode': 'none' },
            ports: { pg: 6000 },
          },
        }),
        se('vm', 'app', {
          hosts: ['vm.internal'],
          ports: [{ number: 5432, name: 'pg', protocol: 'TCP' }],
          location: 'MESH_INTERNAL',
          resolution: 'STATIC',
          workloadSelector: { labels: { app: 'vm' } },
        }),
      ],
    });
    const vm = serviceOf(reg, 'ServiceEntry/app/vm.internal');
    assert.deepEqual(vm.endpoints.map((e) => [e.name, e.address, e.enrolled, e.ports]).sort(), [
      ['vm-1', '198.18.2.50', false, { 5432: 6000 }],
      ['vm-pod', '198.18.1.5', true, { 5432: 5432 }],
    ]);
    assert.deepEqual(vm.vips, ['198.19.0.1']);
    const pod = reg.workloads.find((w) => w.name === 'vm-pod');
    assert.deepEqual(pod?.services, ['ServiceEntry/app/vm.internal']);
  });

  it('a host named by two entries in one namespace: the older keeps it, the other is reported', () => {
    const reg = deriveRegistry({
      resources: [
        se(
          'newer',
          'app',
          { hosts: ['x.example.com', 'y.example.com'], addresses: ['198.18.200.2'] },
          '2026-02-01T00:00:00Z',
        ),
        se('older', 'app', { hosts: ['x.example.com'], addresses: ['198.18.200.1'] }, '2026-01-01T00:00:00Z'),
        se(
          'elsewhere',
          'other',
          { hosts: ['x.example.com'], addresses: ['198.18.200.3'] },
          '2026-03-01T00:00:00Z',
        ),
      ],
    });
    assert.deepEqual(serviceOf(reg, 'ServiceEntry/app/x.example.com').vips, ['198.18.200.1']);
    assert.equal(serviceOf(reg, 'ServiceEntry/app/y.example.com').name, 'newer');
    assert.deepEqual(serviceOf(reg, 'ServiceEntry/other/x.example.com').vips, ['198.18.200.3']);
    assert.equal(reg.issues.length, 1);
    assert.equal(reg.issues[0]?.object, 'ServiceEntry app/newer');
    assert.match(
      reg.issues[0]!.message,
      /x\.example\.com is already ServiceEntry app\/older's, which is older/,
    );
  });

  it("a CIDR address is reported and not a VIP; an address that is a Service's VIP stays the Service's", () => {
    const reg = deriveRegistry({
      resources: [
        service('web', 'app', { clusterIP: '198.19.0.9', ports: [{ port: 80 }] }),
        se('net', 'app', {
          hosts: ['net.example.com'],
          addresses: ['198.18.200.0/24', '198.18.200.200/32', '198.19.0.9'],
          ports: [tls],
        }),
      ],
    });
    const net = serviceOf(reg, 'ServiceEntry/app/net.example.com');
    assert.deepEqual(net.vips, ['198.18.200.200']);
    assert.deepEqual(serviceOf(reg, 'app/web').vips, ['198.19.0.9']);
    const messages = reg.issues.map((i) => `${i.object}: ${i.message}`);
    assert.equal(messages.length, 2, messages.join('\n'));
    assert.match(messages[0]!, /^ServiceEntry app\/net: address 198\.18\.200\.0\/24 is a CIDR block/);
    assert.match(
      messages[1]!,
      /^ServiceEntry app\/net: address 198\.19\.0\.9 of host net\.example\.com is already Service app\/web's/,
    );
  });

  it("an entry's address inside the VIP range is never allocated to a Service", () => {
    const reg = deriveRegistry({
      resources: [
        se('pinned', 'app', {
          hosts: ['pinned.example.com'],
          addresses: ['198.19.0.1'],
          ports: [tls],
          resolution: 'DNS',
        }),
        service('web', 'app', { ports: [{ port: 80 }] }),
      ],
    });
    assert.deepEqual(serviceOf(reg, 'app/web').vips, ['198.19.0.2']);
    assert.deepEqual(serviceOf(reg, 'ServiceEntry/app/pinned.example.com').vips, ['198.19.0.1']);
    assert.deepEqual(reg.issues, []);
  });
});
