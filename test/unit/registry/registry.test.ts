import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertValid, type Resource } from '../../../src/config/index.ts';
import {
  authorizationsFor,
  deriveRegistry,
  type LabPod,
  type Registry,
} from '../../../src/control/registry/index.ts';
import { evaluateL4 } from '../../../src/policy/index.ts';

const r = (doc: unknown): Resource => assertValid(doc);
const namespace = (name: string, labels: Record<string, string> = {}) =>
  r({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
const service = (
  name: string,
  ns: string,
  spec: Record<string, unknown>,
  labels: Record<string, string> = {},
  created?: string,
) =>
  r({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns, labels, ...(created ? { creationTimestamp: created } : {}) },
    spec,
  });
const entry = (name: string, ns: string, spec: Record<string, unknown>) =>
  r({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name, namespace: ns }, spec });
const entryAt = (name: string, ns: string, address: string, created: string, uid: string) =>
  r({
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: { name, namespace: ns, creationTimestamp: created, uid },
    spec: { address, serviceAccount: name },
  });
const waypointGateway = (name: string, ns: string, waypointFor?: string) =>
  r({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: {
      name,
      namespace: ns,
      ...(waypointFor ? { labels: { 'istio.io/waypoint-for': waypointFor } } : {}),
    },
    spec: {
      gatewayClassName: 'ambit-waypoint',
      listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
    },
  });
const authz = (name: string, ns: string, spec: Record<string, unknown>) =>
  r({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: ns },
    spec,
  });
const peerAuth = (name: string, ns: string, spec: Record<string, unknown>) =>
  r({
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name, namespace: ns },
    spec,
  });

function pod(
  name: string,
  ns: string,
  labels: Record<string, string> = {},
  extra: Partial<LabPod> = {},
): LabPod {
  return {
    name,
    namespace: ns,
    node: 'node-1',
    address: `198.18.1.${10 + name.length}`,
    serviceAccount: 'sa',
    labels,
    ...extra,
  };
}

function workload(reg: Registry, name: string) {
  const w = reg.workloads.find((x) => x.name === name);
  assert.ok(w, `workload ${name} not derived`);
  return w;
}

function svcOf(reg: Registry, key: string) {
  const s = reg.services.find((x) => x.key === key);
  assert.ok(s, `service ${key} not derived`);
  return s;
}

describe('registry: workload identity and enrollment', () => {
  const cases: {
    name: string;
    nsLabels: Record<string, string> | undefined;
    podLabels: Record<string, string>;
    enrolled: boolean;
    sidecar?: boolean;
    why: RegExp;
  }[] = [
    {
      name: 'namespace labelled ambient',
      nsLabels: { 'istio.io/dataplane-mode': 'ambient' },
      podLabels: {},
      enrolled: true,
      why: /namespace app label/,
    },
    { name: 'namespace not labelled', nsLabels: {}, podLabels: {}, enrolled: false, why: /not labelled/ },
    {
      name: 'namespace not declared',
      nsLabels: undefined,
      podLabels: {},
      enrolled: false,
      why: /not declared/,
    },
    {
      name: 'workload opts out with none',
      nsLabels: { 'istio.io/dataplane-mode': 'ambient' },
      podLabels: { 'istio.io/dataplane-mode': 'none' },
      enrolled: false,
      why: /opted out/,
    },
    {
      name: 'workload opts in on its own',
      nsLabels: {},
      podLabels: { 'istio.io/dataplane-mode': 'ambient' },
      enrolled: true,
      why: /its label/,
    },
    {
      name: 'other namespace label value',
      nsLabels: { 'istio.io/dataplane-mode': 'sidecar' },
      podLabels: {},
      enrolled: false,
      why: /not labelled/,
    },
    {
      name: 'a pod labelled for a sidecar is in sidecar mode, in any namespace',
      nsLabels: {},
      podLabels: { 'sidecar.istio.io/inject': 'true' },
      enrolled: true,
      sidecar: true,
      why: /sidecar mode by its label sidecar.istio.io\/inject=true/,
    },
    {
      name: 'a sidecar wins over ambient (the ztunnel leaves a pod with a sidecar alone)',
      nsLabels: { 'istio.io/dataplane-mode': 'ambient' },
      podLabels: { 'sidecar.istio.io/inject': 'true' },
      enrolled: true,
      sidecar: true,
      why: /sidecar mode/,
    },
    {
      name: 'a namespace labelled istio-injection=enabled puts its pods in sidecar mode',
      nsLabels: { 'istio-injection': 'enabled' },
      podLabels: {},
      enrolled: true,
      sidecar: true,
      why: /namespace app label istio-injection=enabled/,
    },
    {
      name: 'a pod opts out of its namespace’s injection with inject=false (and so may be ambient)',
      nsLabels: { 'istio-injection': 'enabled', 'istio.io/dataplane-mode': 'ambient' },
      podLabels: { 'sidecar.istio.io/inject': 'false' },
      enrolled: true,
      sidecar: false,
      why: /enrolled by namespace app label istio.io\/dataplane-mode=ambient/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const reg = deriveRegistry({
        resources: c.nsLabels ? [namespace('app', c.nsLabels)] : [],
        pods: [pod('web', 'app', c.podLabels)],
      });
      const w = workload(reg, 'web');
      assert.equal(w.enrolled, c.enrolled);
      assert.equal(w.sidecar, c.sidecar ?? false);
      assert.match(w.enrollment, c.why);
    });
  }

  it('a WorkloadEntry is never in sidecar mode (Istio injects pods only): ambient where its namespace is', () => {
    const reg = deriveRegistry({
      resources: [
        namespace('app', { 'istio-injection': 'enabled', 'istio.io/dataplane-mode': 'ambient' }),
        entry('vm-1', 'app', { address: '198.18.5.5', labels: { 'sidecar.istio.io/inject': 'true' } }),
      ],
      pods: [],
    });
    const w = workload(reg, 'vm-1');
    assert.equal(w.sidecar, false);
    assert.equal(w.enrolled, true);
    assert.match(w.enrollment, /istio.io\/dataplane-mode=ambient/);
  });

  it('derives uid, SPIFFE identity, node and addresses for pods and WorkloadEntries', () => {
    const reg = deriveRegistry({
      resources: [
        entry('vm-1', 'app', {
          address: '198.18.2.50',
          serviceAccount: 'vm',
          node: 'node-2',
          labels: { app: 'vm' },
        }),
      ],
      pods: [pod('web', 'app', { app: 'web' })],
      options: { trustDomain: 'example.org' },
    });
    const vm = workload(reg, 'vm-1');
    assert.deepEqual(
      [vm.uid, vm.identity, vm.node, vm.addresses, vm.labels],
      [
        'Kubernetes/networking.istio.io/WorkloadEntry/app/vm-1',
        'spiffe://example.org/ns/app/sa/vm',
        'node-2',
        ['198.18.2.50'],
        { app: 'vm' },
      ],
    );
    const web = workload(reg, 'web');
    assert.deepEqual(
      [web.uid, web.identity, web.node],
      ['Kubernetes//v1/Pod/app/web', 'spiffe://example.org/ns/app/sa/sa', 'node-1'],
    );
  });

  it('a WorkloadEntry without a serviceAccount runs as default', () => {
    const reg = deriveRegistry({ resources: [entry('vm', 'app', { address: '198.18.0.1' })] });
    assert.equal(workload(reg, 'vm').identity, 'spiffe://cluster.local/ns/app/sa/default');
  });

  it('the oldest object owns a shared address; a later claimant is left out and reported', () => {
    const reg = deriveRegistry({
      resources: [
        // Sorts first by name and uid but was created later: it loses.
        entryAt('aaa-tenant', 'tenant', '198.18.2.7', '2026-02-01T00:00:00.000Z', 'uid-1'),
        entryAt('zzz-owner', 'app', '198.18.2.7', '2026-01-01T00:00:00.000Z', 'uid-2'),
        // Same timestamp: the store uid decides, never the name a tenant picks.
        entryAt('aaa', 'app', '198.18.2.8', '2026-01-01T00:00:00.000Z', 'uid-9'),
        entryAt('bbb', 'app', '198.18.2.8', '2026-01-01T00:00:00.000Z', 'uid-3'),
        // A pod (the operator's, from the pod API) is never displaced by an entry, however old.
        entryAt('claims-pod', 'tenant', '198.18.1.9', '2000-01-01T00:00:00.000Z', 'uid-0'),
        // An IPv4-mapped IPv6 spelling is the same address.
        entryAt('mapped', 'tenant', '::ffff:198.18.1.9', '2026-03-01T00:00:00.000Z', 'uid-4'),
      ],
      pods: [pod('real', 'app', { app: 'real' }, { address: '198.18.1.9' })],
    });
    assert.deepEqual(reg.workloads.map((w) => w.name).sort(), ['bbb', 'real', 'zzz-owner']);
    assert.deepEqual(reg.issues.map((i) => i.object).sort(), [
      'WorkloadEntry app/aaa',
      'WorkloadEntry tenant/aaa-tenant',
      'WorkloadEntry tenant/claims-pod',
      'WorkloadEntry tenant/mapped',
    ]);
    const lost = reg.issues.find((i) => i.object === 'WorkloadEntry tenant/aaa-tenant')!;
    assert.match(lost.message, /198\.18\.2\.7 belongs to WorkloadEntry app\/zzz-owner, which is older/);
  });
});

describe('registry: waypoint precedence', () => {
  const W = 'istio.io/use-waypoint';
  const cases: {
    name: string;
    ns: Record<string, string>;
    svc: Record<string, string>;
    pod: Record<string, string>;
    want: [string, string] | undefined;
    svcWant: [string, string] | undefined;
  }[] = [
    { name: 'none anywhere', ns: {}, svc: {}, pod: {}, want: undefined, svcWant: undefined },
    {
      name: 'namespace only',
      ns: { [W]: 'ns-wp' },
      svc: {},
      pod: {},
      want: ['ns-wp', 'namespace'],
      svcWant: ['ns-wp', 'namespace'],
    },
    {
      name: 'service beats namespace',
      ns: { [W]: 'ns-wp' },
      svc: { [W]: 'svc-wp' },
      pod: {},
      want: ['svc-wp', 'service'],
      svcWant: ['svc-wp', 'service'],
    },
    {
      name: 'workload beats service',
      ns: { [W]: 'ns-wp' },
      svc: { [W]: 'svc-wp' },
      pod: { [W]: 'pod-wp' },
      want: ['pod-wp', 'workload'],
      svcWant: ['svc-wp', 'service'],
    },
    {
      name: 'workload none opts out',
      ns: { [W]: 'ns-wp' },
      svc: { [W]: 'svc-wp' },
      pod: { [W]: 'none' },
      want: undefined,
      svcWant: ['svc-wp', 'service'],
    },
    {
      name: 'service none opts out over namespace',
      ns: { [W]: 'ns-wp' },
      svc: { [W]: 'none' },
      pod: {},
      want: undefined,
      svcWant: undefined,
    },
    {
      name: 'waypoint pods never use a waypoint',
      ns: { [W]: 'ns-wp' },
      svc: {},
      pod: { 'gateway.networking.k8s.io/gateway-name': 'ns-wp' },
      want: undefined,
      svcWant: ['ns-wp', 'namespace'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const reg = deriveRegistry({
        resources: [
          namespace('app', { 'istio.io/dataplane-mode': 'ambient', ...c.ns }),
          service('web', 'app', { selector: { app: 'web' }, ports: [{ port: 80 }] }, c.svc),
          waypointGateway('ns-wp', 'app'),
          waypointGateway('svc-wp', 'app'),
          waypointGateway('pod-wp', 'app', 'workload'),
        ],
        pods: [pod('web', 'app', { app: 'web', ...c.pod })],
      });
      const w = workload(reg, 'web');
      assert.deepEqual(w.waypoint && [w.waypoint.name, w.waypoint.from], c.want);
      // A waypoint terminates HBONE itself: it is never captured, even in an ambient namespace.
      assert.equal(w.enrolled, !w.isWaypoint);
      const s = svcOf(reg, 'app/web');
      assert.deepEqual(s.waypoint && [s.waypoint.name, s.waypoint.from], c.svcWant);
      assert.deepEqual(reg.issues, []);
    });
  }

  it('only a pod is a waypoint replica: a WorkloadEntry with the gateway label stays a workload', () => {
    const reg = deriveRegistry({
      resources: [
        namespace('app', { 'istio.io/dataplane-mode': 'ambient' }),
        waypointGateway('wp', 'app'),
        entry('fake', 'app', {
          address: '198.18.1.40',
          serviceAccount: 'wp',
          node: 'node-1',
          labels: { 'gateway.networking.k8s.io/gateway-name': 'wp' },
        }),
      ],
      pods: [pod('wp-0', 'app', { 'gateway.networking.k8s.io/gateway-name': 'wp' })],
    });
    assert.equal(workload(reg, 'fake').isWaypoint, false);
    assert.equal(workload(reg, 'wp-0').isWaypoint, true);
  });

  it('honours use-waypoint-namespace and reports waypoint-for and undeclared waypoints', () => {
    const reg = deriveRegistry({
      resources: [namespace('app'), waypointGateway('shared', 'mesh', 'all')],
      pods: [
        pod('a', 'app', { 'istio.io/use-waypoint': 'shared', 'istio.io/use-waypoint-namespace': 'mesh' }),
        pod('bb', 'app', { 'istio.io/use-waypoint': 'missing' }),
      ],
    });
    const a = workload(reg, 'a').waypoint!;
    assert.deepEqual([a.namespace, a.name, a.declared, a.for], ['mesh', 'shared', true, 'all']);
    const b = workload(reg, 'bb').waypoint!;
    assert.equal(b.declared, false);
    assert.match(reg.issues[0]!.message, /no Gateway of class ambit-waypoint/);
  });
});

describe('registry: services, VIPs and endpoints', () => {
  const base = [
    namespace('app', { 'istio.io/dataplane-mode': 'ambient' }),
    service('web', 'app', {
      selector: { app: 'web' },
      ports: [
        { name: 'http', port: 80, targetPort: 'http' },
        { name: 'admin', port: 9000, targetPort: 9001 },
      ],
    }),
    entry('web-1', 'app', { address: '198.18.1.21', labels: { app: 'web' }, ports: { http: 8080 } }),
    entry('web-2', 'app', {
      address: '198.18.2.22',
      labels: { app: 'web', version: 'v2' },
      ports: { http: 8081 },
    }),
    entry('other', 'app', { address: '198.18.2.23', labels: { app: 'other' } }),
    entry('web-elsewhere', 'prod', { address: '198.18.2.24', labels: { app: 'web' } }),
  ];

  it('selects endpoints by label within the namespace and resolves named targetPorts per workload', () => {
    const reg = deriveRegistry({ resources: base });
    const web = svcOf(reg, 'app/web');
    assert.equal(web.hostname, 'web.app.svc.cluster.local');
    assert.deepEqual(
      web.endpoints.map((e) => [e.name, e.address, e.ports]),
      [
        ['web-1', '198.18.1.21', { '80': 8080, '9000': 9001 }],
        ['web-2', '198.18.2.22', { '80': 8081, '9000': 9001 }],
      ],
    );
    assert.deepEqual(workload(reg, 'web-1').services, ['app/web']);
    assert.deepEqual(workload(reg, 'other').services, []);
  });

  it('leaves out a port whose named targetPort the workload lacks, and the workload if it serves none', () => {
    const reg = deriveRegistry({
      resources: [
        service('named', 'app', { selector: { app: 'x' }, ports: [{ port: 80, targetPort: 'http' }] }),
        entry('has', 'app', { address: '198.18.0.1', labels: { app: 'x' }, ports: { http: 8080 } }),
        entry('lacks', 'app', { address: '198.18.0.2', labels: { app: 'x' } }),
      ],
    });
    assert.deepEqual(
      svcOf(reg, 'app/named').endpoints.map((e) => e.name),
      ['has'],
    );
  });

  it('targetPort defaults to the port; a service without a selector has no endpoints', () => {
    const reg = deriveRegistry({
      resources: [
        service('plain', 'app', { selector: { app: 'web' }, ports: [{ port: 7000 }] }),
        service('manual', 'app', { ports: [{ port: 80 }] }),
        ...base.slice(2, 3),
      ],
    });
    assert.deepEqual(svcOf(reg, 'app/plain').endpoints[0]?.ports, { '7000': 7000 });
    assert.deepEqual(svcOf(reg, 'app/manual').endpoints, []);
  });

  it('allocates VIPs from 198.19.0.0/16 in key order, skipping the network address', () => {
    const reg = deriveRegistry({
      resources: [
        service('b', 'app', { ports: [{ port: 80 }] }),
        service('a', 'app', { ports: [{ port: 80 }] }),
      ],
    });
    assert.deepEqual(reg.vips, { 'app/a': '198.19.0.1', 'app/b': '198.19.0.2' });
    assert.deepEqual(svcOf(reg, 'app/a').vips, ['198.19.0.1']);
    assert.equal(svcOf(reg, 'app/a').vipSource, 'allocated');
  });

  it('keeps VIPs stable across a second derivation, even when new services sort first', () => {
    const first = deriveRegistry({
      resources: [
        service('m', 'app', { ports: [{ port: 80 }] }),
        service('z', 'app', { ports: [{ port: 80 }] }),
      ],
    });
    const second = deriveRegistry({
      resources: [
        service('a', 'app', { ports: [{ port: 80 }] }),
        service('m', 'app', { ports: [{ port: 80 }] }),
        service('z', 'app', { ports: [{ port: 80 }] }),
      ],
      previousVips: first.vips,
    });
    assert.equal(second.vips['app/m'], first.vips['app/m']);
    assert.equal(second.vips['app/z'], first.vips['app/z']);
    assert.equal(second.vips['app/a'], '198.19.0.3');
    // And a third derivation from the second table changes nothing.
    const third = deriveRegistry({
      resources: [...second.services.map((s) => service(s.name, s.namespace, { ports: [{ port: 80 }] }))],
      previousVips: second.vips,
    });
    assert.deepEqual(third.vips, second.vips);
  });

  it('drops deleted services from the table and honours explicit, headless and clashing clusterIPs', () => {
    const reg = deriveRegistry({
      resources: [
        service(
          'explicit',
          'app',
          { clusterIP: '198.19.0.5', ports: [{ port: 80 }] },
          {},
          '2026-01-01T00:00:00Z',
        ),
        service('headless', 'app', { clusterIP: 'None', ports: [{ port: 80 }] }),
        // Sorts before "explicit" by name but was created later: the older service keeps the address.
        service(
          'clash',
          'app',
          { clusterIP: '198.19.0.5', ports: [{ port: 80 }] },
          {},
          '2026-02-01T00:00:00Z',
        ),
        service('fresh', 'app', { ports: [{ port: 80 }] }),
      ],
      previousVips: { 'app/gone': '198.19.0.7' },
    });
    assert.deepEqual(svcOf(reg, 'app/explicit').vips, ['198.19.0.5']);
    assert.equal(svcOf(reg, 'app/explicit').vipSource, 'spec');
    assert.deepEqual(svcOf(reg, 'app/headless').vips, []);
    assert.deepEqual(svcOf(reg, 'app/clash').vips, []);
    assert.match(reg.issues[0]!.message, /already allocated to Service app\/explicit/);
    assert.deepEqual(reg.vips, { 'app/fresh': '198.19.0.1' });
  });

  it('an explicit clusterIP never evicts an allocated VIP, and the victim is never moved', () => {
    // "victim" was allocated 198.19.0.1; the tenant's Service (even an older object) names it explicitly.
    const reg = deriveRegistry({
      resources: [
        service('victim', 'app', { ports: [{ port: 80 }] }, {}, '2026-02-01T00:00:00Z'),
        service(
          'taker',
          'tenant',
          { clusterIP: '198.19.0.1', ports: [{ port: 80 }] },
          {},
          '2026-01-01T00:00:00Z',
        ),
      ],
      previousVips: { 'app/victim': '198.19.0.1' },
    });
    assert.deepEqual(svcOf(reg, 'app/victim').vips, ['198.19.0.1']);
    assert.deepEqual(svcOf(reg, 'tenant/taker').vips, []);
    assert.deepEqual(reg.vips, { 'app/victim': '198.19.0.1' });
    assert.deepEqual(
      reg.issues.map((i) => i.object),
      ['Service tenant/taker'],
    );
    // With the taker deleted, the victim still has its address.
    const after = deriveRegistry({
      resources: [service('victim', 'app', { ports: [{ port: 80 }] })],
      previousVips: reg.vips,
    });
    assert.deepEqual(svcOf(after, 'app/victim').vips, ['198.19.0.1']);
  });

  it('a workload address is never a VIP: explicit clusterIPs lose, allocation skips it', () => {
    const reg = deriveRegistry({
      resources: [
        namespace('app'),
        entry('vm', 'app', { address: '198.19.0.1' }),
        entry('vm2', 'app', { address: '198.19.0.3' }),
        service('on-pod', 'tenant', { clusterIP: '198.18.1.9', ports: [{ port: 80 }] }),
        service('new', 'app', { ports: [{ port: 80 }] }),
        service('old', 'app', { ports: [{ port: 80 }] }),
      ],
      pods: [pod('real', 'app', {}, { address: '198.18.1.9' })],
      // A store written before addresses were checked: "old" was allocated what is now vm2's address.
      previousVips: { 'app/old': '198.19.0.3' },
    });
    assert.deepEqual(svcOf(reg, 'tenant/on-pod').vips, []);
    assert.deepEqual(svcOf(reg, 'app/new').vips, ['198.19.0.2']);
    assert.deepEqual(svcOf(reg, 'app/old').vips, []);
    assert.equal(reg.vips['app/old'], '198.19.0.3', 'kept in the table, so it is not moved');
    assert.deepEqual(reg.issues.map((i) => i.object).sort(), ['Service app/old', 'Service tenant/on-pod']);
  });

  it('ignores a previous allocation outside the configured range', () => {
    const reg = deriveRegistry({
      resources: [service('a', 'app', { ports: [{ port: 80 }] })],
      previousVips: { 'app/a': '198.18.0.5' },
    });
    assert.equal(reg.vips['app/a'], '198.19.0.1');
  });
});

describe('registry: authorization policy binding', () => {
  const resources = [
    namespace('app', { 'istio.io/dataplane-mode': 'ambient', 'istio.io/use-waypoint': 'wp' }),
    waypointGateway('wp', 'app'),
    service('web', 'app', { selector: { app: 'web' }, ports: [{ port: 80 }] }),
    authz('mesh-wide', 'istio-system', {
      action: 'DENY',
      rules: [{ from: [{ source: { namespaces: ['evil'] } }] }],
    }),
    authz('root-selector', 'istio-system', { selector: { matchLabels: { tier: 'db' } }, rules: [{}] }),
    authz('ns-wide', 'app', { rules: [{ from: [{ source: { namespaces: ['app'] } }] }] }),
    authz('web-only', 'app', { selector: { matchLabels: { app: 'web' } }, rules: [{}] }),
    authz('other-ns', 'prod', { rules: [{}] }),
    authz('svc-l7', 'app', {
      targetRefs: [{ kind: 'Service', group: '', name: 'web' }],
      rules: [{ to: [{ operation: { methods: ['GET'] } }] }],
    }),
    authz('gw-l7', 'app', {
      targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'wp' }],
      rules: [{}],
    }),
  ];

  const cases: { name: string; labels: Record<string, string>; want: [string, string, string][] }[] = [
    {
      name: 'web: mesh-wide, namespace, selector, service targetRef, waypoint targetRef',
      labels: { app: 'web' },
      want: [
        ['istio-system/mesh-wide', 'global', 'ztunnel'],
        ['app/ns-wide', 'namespace', 'ztunnel'],
        ['app/web-only', 'workload', 'ztunnel'],
        ['app/svc-l7', 'targetRef', 'waypoint'],
        ['app/gw-l7', 'targetRef', 'waypoint'],
      ],
    },
    {
      name: 'db: root-namespace selector applies across namespaces',
      labels: { tier: 'db' },
      want: [
        ['istio-system/mesh-wide', 'global', 'ztunnel'],
        ['istio-system/root-selector', 'workload', 'ztunnel'],
        ['app/ns-wide', 'namespace', 'ztunnel'],
        ['app/gw-l7', 'targetRef', 'waypoint'],
      ],
    },
    {
      name: 'a sidecar pod: its own proxy enforces what a ztunnel would',
      labels: { app: 'web', 'sidecar.istio.io/inject': 'true' },
      want: [
        ['istio-system/mesh-wide', 'global', 'sidecar'],
        ['app/ns-wide', 'namespace', 'sidecar'],
        ['app/web-only', 'workload', 'sidecar'],
        ['app/svc-l7', 'targetRef', 'waypoint'],
        ['app/gw-l7', 'targetRef', 'waypoint'],
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const reg = deriveRegistry({ resources, pods: [pod('w', 'app', c.labels)] });
      const got = workload(reg, 'w').authorizationPolicies.map((b) => [b.policy, b.scope, b.enforcedBy]);
      assert.deepEqual([...got].sort(), [...c.want].sort());
    });
  }

  it('ships only ztunnel policies in L4 form, and authorizationsFor feeds evaluateL4', () => {
    const reg = deriveRegistry({ resources, pods: [pod('w', 'app', { app: 'web' })] });
    assert.deepEqual(
      reg.authorizations.map((a) => [`${a.namespace}/${a.name}`, a.scope]),
      [
        ['app/ns-wide', 'namespace'],
        ['app/web-only', 'workload'],
        ['istio-system/mesh-wide', 'global'],
        ['istio-system/root-selector', 'workload'],
        ['prod/other-ns', 'namespace'],
      ],
    );
    const w = workload(reg, 'w');
    const policies = authorizationsFor(reg, w);
    assert.deepEqual(policies.map((p) => p.name).sort(), ['mesh-wide', 'ns-wide', 'web-only']);
    const conn = (ns: string) => ({
      source: { ip: '198.18.1.5', principal: `spiffe://cluster.local/ns/${ns}/sa/x` },
      destination: { ip: w.addresses[0]!, port: 80 },
    });
    assert.equal(evaluateL4(policies, conn('evil')).allow, false);
    assert.equal(evaluateL4(policies, conn('prod')).allow, true); // web-only allows everything
  });

  it('never binds a targetRef in another namespace, as Istio does, and reports it', () => {
    // Apply refuses targetRefs[].namespace now; these are as a store written before that rule holds them.
    const stored = (name: string, ns: string, spec: Record<string, unknown>) =>
      ({
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name, namespace: ns },
        spec,
      }) as Resource;
    const reg = deriveRegistry({
      resources: [
        ...resources,
        stored('tenant-svc', 'tenant', {
          targetRefs: [{ kind: 'Service', group: '', name: 'web', namespace: 'app' }],
          rules: [{}],
        }),
        stored('tenant-gw', 'tenant', {
          targetRef: { kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'wp', namespace: 'app' },
          rules: [{}],
        }),
        // Naming its own namespace is the same as leaving it out.
        stored('own-ns', 'app', {
          targetRefs: [{ kind: 'Service', group: '', name: 'web', namespace: 'app' }],
          rules: [{}],
        }),
      ],
      pods: [pod('w', 'app', { app: 'web' })],
    });
    const bound = workload(reg, 'w').authorizationPolicies.map((b) => b.policy);
    assert.ok(!bound.includes('tenant/tenant-svc'));
    assert.ok(!bound.includes('tenant/tenant-gw'));
    assert.ok(bound.includes('app/own-ns'));
    assert.deepEqual(
      reg.issues.filter((i) => i.object.startsWith('AuthorizationPolicy')).map((i) => i.object),
      ['AuthorizationPolicy tenant/tenant-svc', 'AuthorizationPolicy tenant/tenant-gw'],
    );
  });

  it('explains why each binding applies', () => {
    const reg = deriveRegistry({ resources, pods: [pod('w', 'app', { app: 'web' })] });
    const why = Object.fromEntries(workload(reg, 'w').authorizationPolicies.map((b) => [b.policy, b.why]));
    assert.match(why['istio-system/mesh-wide']!, /mesh-wide/);
    assert.match(why['app/web-only']!, /selector app=web/);
    assert.match(why['app/svc-l7']!, /targets Service app\/web.*waypoint app\/wp/);
  });
});

describe('registry: PeerAuthentication precedence', () => {
  const mesh = (mode: string) => peerAuth('mesh', 'istio-system', { mtls: { mode } });
  const ns = (mode: string) => peerAuth('ns', 'app', { mtls: { mode } });
  const wl = (mode: string | undefined, ports?: Record<string, string>) =>
    peerAuth('wl', 'app', {
      selector: { matchLabels: { app: 'db' } },
      ...(mode ? { mtls: { mode } } : {}),
      ...(ports
        ? { portLevelMtls: Object.fromEntries(Object.entries(ports).map(([p, m]) => [p, { mode: m }])) }
        : {}),
    });
  const cases: {
    name: string;
    resources: Resource[];
    mode: string;
    ports: Record<string, string>;
    source: string;
  }[] = [
    {
      name: 'nothing: PERMISSIVE by default',
      resources: [],
      mode: 'PERMISSIVE',
      ports: {},
      source: 'default',
    },
    {
      name: 'mesh-wide STRICT',
      resources: [mesh('STRICT')],
      mode: 'STRICT',
      ports: {},
      source: 'PeerAuthentication istio-system/mesh',
    },
    {
      name: 'namespace beats mesh',
      resources: [mesh('STRICT'), ns('PERMISSIVE')],
      mode: 'PERMISSIVE',
      ports: {},
      source: 'PeerAuthentication app/ns',
    },
    {
      name: 'workload beats namespace',
      resources: [ns('PERMISSIVE'), wl('STRICT')],
      mode: 'STRICT',
      ports: {},
      source: 'PeerAuthentication app/wl',
    },
    {
      name: 'UNSET inherits',
      resources: [mesh('STRICT'), ns('UNSET')],
      mode: 'STRICT',
      ports: {},
      source: 'PeerAuthentication istio-system/mesh',
    },
    {
      name: 'DISABLE counts as PERMISSIVE',
      resources: [mesh('STRICT'), wl('DISABLE')],
      mode: 'PERMISSIVE',
      ports: {},
      source: 'PeerAuthentication app/wl',
    },
    {
      name: 'portLevelMtls overrides per port',
      resources: [ns('STRICT'), wl(undefined, { '5432': 'PERMISSIVE', '9000': 'UNSET' })],
      mode: 'STRICT',
      ports: { '5432': 'PERMISSIVE' },
      source: 'PeerAuthentication app/ns',
    },
    {
      name: 'other namespace does not apply',
      resources: [peerAuth('x', 'prod', { mtls: { mode: 'STRICT' } })],
      mode: 'PERMISSIVE',
      ports: {},
      source: 'default',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const reg = deriveRegistry({ resources: c.resources, pods: [pod('db', 'app', { app: 'db' })] });
      const pa = workload(reg, 'db').peerAuthentication;
      assert.deepEqual([pa.mode, pa.portModes, pa.source], [c.mode, c.ports, c.source]);
    });
  }
});

describe('registry: purity', () => {
  it('the same input gives the same output and the input is not modified', () => {
    const resources = [
      namespace('app', { 'istio.io/dataplane-mode': 'ambient' }),
      service('web', 'app', { selector: { app: 'web' }, ports: [{ port: 80 }] }),
    ];
    const before = JSON.stringify(resources);
    const a = deriveRegistry({ resources, pods: [pod('web', 'app', { app: 'web' })] });
    const b = deriveRegistry({ resources, pods: [pod('web', 'app', { app: 'web' })] });
    assert.deepEqual(a, b);
    assert.equal(JSON.stringify(resources), before);
  });
});
