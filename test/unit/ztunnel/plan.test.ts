// Outbound and inbound planning as tables of cases: no sockets.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TYPE } from '../../../src/xds/index.ts';
import { planInbound, planOutbound, serves } from '../../../src/ztunnel/plan.ts';
import { ZtunnelState } from '../../../src/ztunnel/state.ts';
import { workloadFixture } from '../../helpers/workloads.ts';

const workload = workloadFixture;

function build(extra: ReturnType<typeof workload>[] = []) {
  const s = new ZtunnelState();
  s.apply(TYPE.workload, {
    upserts: [
      ...extra,
      workload('client', '198.18.1.2'),
      workload('web-1', '198.18.1.3', { services: ['shop/web'] }),
      workload('web-2', '198.18.2.2', { services: ['shop/web'], node: 'node-2' }),
      workload('legacy', '198.18.2.9', { enrolled: false, node: 'node-2' }),
      workload('at-gateway', '198.18.1.1', { enrolled: false, kind: 'WorkloadEntry', namespace: 'other' }),
      workload('at-loopback', '127.0.0.1', { enrolled: false, kind: 'WorkloadEntry', namespace: 'other' }),
      workload('secure', '198.18.2.5', {
        peerAuthentication: { mode: 'STRICT', portModes: { '9000': 'PERMISSIVE' } },
        authorizationPolicies: [{ policy: 'shop/deny-6379', scope: 'workload', enforcedBy: 'ztunnel' }],
      }),
      workload('wp', '198.18.2.7', {
        isWaypoint: true,
        labels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' },
      }),
      workload('behind', '198.18.2.8', {
        waypoint: { name: 'waypoint', namespace: 'shop', declared: true, for: 'all' },
      }),
    ].map((w) => ({ name: w.uid, value: w })),
    removed: [],
  });
  const ep = (name: string, address: string, enrolled = true) => ({
    workload: `uid/${name}`,
    name,
    address,
    enrolled,
    ports: { '80': 8080 },
  });
  s.apply(TYPE.service, {
    upserts: [
      {
        name: 'shop/web',
        value: {
          key: 'shop/web',
          name: 'web',
          namespace: 'shop',
          hostname: 'web.shop.svc.cluster.local',
          vips: ['198.19.0.1'],
          ports: [{ port: 80, targetPort: 8080 }],
          endpoints: [ep('web-1', '198.18.1.3'), ep('web-2', '198.18.2.2')],
        },
      },
      {
        name: 'shop/old',
        value: {
          key: 'shop/old',
          name: 'old',
          namespace: 'shop',
          hostname: 'old',
          vips: ['198.19.0.2'],
          ports: [{ port: 80, targetPort: 8080 }],
          endpoints: [ep('legacy', '198.18.2.9', false)],
        },
      },
      {
        name: 'shop/empty',
        value: {
          key: 'shop/empty',
          name: 'empty',
          namespace: 'shop',
          hostname: 'empty',
          vips: ['198.19.0.3'],
          ports: [{ port: 80, targetPort: 8080 }],
          endpoints: [],
        },
      },
      ...[
        ['gw', '198.19.0.5', ep('at-gateway', '198.18.1.1', false)],
        ['lo', '198.19.0.6', ep('at-loopback', '127.0.0.1', false)],
      ].map(([name, vip, endpoint]) => ({
        name: `other/${name}`,
        value: {
          key: `other/${name}`,
          name: name as string,
          namespace: 'other',
          hostname: name as string,
          vips: [vip as string],
          ports: [{ port: 80, targetPort: 15020 }],
          endpoints: [endpoint as ReturnType<typeof ep>],
        },
      })),
      {
        name: 'shop/l7',
        value: {
          key: 'shop/l7',
          name: 'l7',
          namespace: 'shop',
          hostname: 'l7',
          vips: ['198.19.0.4'],
          ports: [{ port: 80, targetPort: 8080 }],
          endpoints: [ep('web-1', '198.18.1.3')],
          waypoint: { name: 'waypoint', namespace: 'shop', declared: true, for: 'service' },
        },
      },
    ],
    removed: [],
  });
  s.apply(TYPE.authorization, {
    upserts: [
      {
        name: 'shop/deny-6379',
        value: {
          name: 'deny-6379',
          namespace: 'shop',
          scope: 'workload',
          action: 'DENY',
          rules: [{ to: [{ ports: [6379] }] }],
        },
      },
    ],
    removed: [],
  });
  return s.snapshot;
}

const ctx = {
  node: 'node-1',
  nodeAddresses: new Set(['198.18.0.1', '198.18.1.1']),
  pick: (n: number) => n - 1,
};

describe('outbound planning', () => {
  const state = build();
  const cases: Array<[string, string, string, Record<string, unknown>]> = [
    [
      'pod in the mesh: HBONE straight to it',
      '198.18.2.2',
      '8080',
      {
        kind: 'hbone',
        via: 'direct',
        actual: '198.18.2.2:15008',
        intended: '198.18.2.2:8080',
        ids: ['spiffe://cluster.local/ns/shop/sa/web-2'],
      },
    ],
    [
      'service VIP: an endpoint, targetPort mapped',
      '198.19.0.1',
      '80',
      { kind: 'hbone', via: 'direct', actual: '198.18.2.2:15008', intended: '198.18.2.2:8080' },
    ],
    [
      'service whose endpoint is outside the mesh: passthrough',
      '198.19.0.2',
      '80',
      { kind: 'passthrough', actual: '198.18.2.9:8080' },
    ],
    [
      'pod outside the mesh: passthrough',
      '198.18.2.9',
      '5432',
      { kind: 'passthrough', actual: '198.18.2.9:5432' },
    ],
    [
      'unknown address: passthrough',
      '198.18.3.40',
      '443',
      { kind: 'passthrough', actual: '198.18.3.40:443' },
    ],
    [
      'service with a waypoint: HBONE to the waypoint, authority is the VIP',
      '198.19.0.4',
      '80',
      {
        kind: 'hbone',
        via: 'waypoint',
        actual: '198.18.2.7:15008',
        intended: '198.19.0.4:80',
        ids: ['spiffe://cluster.local/ns/shop/sa/wp'],
      },
    ],
    [
      'pod with a workload waypoint',
      '198.18.2.8',
      '80',
      { kind: 'hbone', via: 'waypoint', actual: '198.18.2.7:15008', intended: '198.18.2.8:80' },
    ],
    ['VIP port that does not exist', '198.19.0.1', '81', { kind: 'refuse', reason: /no port 81/ }],
    ['service without endpoints', '198.19.0.3', '80', { kind: 'refuse', reason: /no endpoints/ }],
    ['the ztunnel itself', '198.18.1.1', '15008', { kind: 'refuse', reason: /proxy loop/ }],
    ['anything else on the node itself', '198.18.0.1', '22', { kind: 'refuse', reason: /local to the node/ }],
    ['loopback', '127.0.0.1', '15014', { kind: 'refuse', reason: /local to the node/ }],
    ['link-local', '169.254.169.254', '80', { kind: 'refuse', reason: /local to the node/ }],
    // A tenant's WorkloadEntry at the node's (or a loopback) address, behind a Service of its own.
    [
      'a service whose endpoint is the node',
      '198.19.0.5',
      '80',
      { kind: 'refuse', reason: /local to the node/ },
    ],
    [
      'a service whose endpoint is loopback',
      '198.19.0.6',
      '80',
      { kind: 'refuse', reason: /local to the node/ },
    ],
  ];
  for (const [name, address, port, want] of cases) {
    test(name, () => {
      const p = planOutbound(state, '198.18.1.2', { address, port: Number(port) }, ctx);
      assert.equal(p.kind, want.kind);
      if (p.kind === 'refuse') return assert.match(p.reason, want.reason as RegExp);
      assert.ok(p.kind !== 'resolve', 'no DNS endpoint in these cases');
      if (want.actual) assert.equal(`${p.actual.address}:${p.actual.port}`, want.actual);
      if (want.intended) assert.equal(`${p.intended.address}:${p.intended.port}`, want.intended);
      if (p.kind === 'hbone') {
        assert.equal(p.via, want.via);
        if (want.ids) assert.deepEqual(p.expectedIdentities, want.ids);
      }
    });
  }

  test('a sidecar carries only its own workload; the node’s ztunnel never a sidecar pod', () => {
    const withSidecars = build([
      workload('side', '198.18.1.20', { sidecar: true }),
      workload('side-b', '198.18.1.21', { sidecar: true }),
    ]);
    const to = { address: '198.18.2.2', port: 8080 };
    const sidecar = { ...ctx, workload: 'uid/side' };
    assert.equal(planOutbound(withSidecars, '198.18.1.20', to, sidecar).kind, 'hbone');
    const other = planOutbound(withSidecars, '198.18.1.21', to, sidecar);
    assert.ok(other.kind === 'refuse' && /not the workload this sidecar carries/.test(other.reason));
    const ambient = planOutbound(withSidecars, '198.18.1.2', to, sidecar);
    assert.equal(ambient.kind, 'refuse', "an ambient pod's traffic is its ztunnel's, not a sidecar's");
    const atNode = planOutbound(withSidecars, '198.18.1.20', to, ctx);
    assert.equal(atNode.kind, 'refuse', "the node's ztunnel does not carry a sidecar pod's traffic");
    // To a sidecar pod: HBONE straight to it (its proxy answers on its own 15008).
    const toSidecar = planOutbound(withSidecars, '198.18.1.2', { address: '198.18.1.20', port: 8080 }, ctx);
    assert.ok(toSidecar.kind === 'hbone', JSON.stringify(toSidecar));
    assert.deepEqual(toSidecar.actual, { address: '198.18.1.20', port: 15008 });
  });

  test('serves: whose traffic each proxy carries', () => {
    const cases: Array<[string, Parameters<typeof serves>[0], Parameters<typeof serves>[1], boolean]> = [
      ['node ztunnel, ambient pod here', { node: 'n1' }, { uid: 'a', enrolled: true, node: 'n1' }, true],
      [
        'node ztunnel, sidecar pod here',
        { node: 'n1' },
        { uid: 'a', enrolled: true, sidecar: true, node: 'n1' },
        false,
      ],
      ['node ztunnel, pod elsewhere', { node: 'n1' }, { uid: 'a', enrolled: true, node: 'n2' }, false],
      ['node ztunnel, not enrolled', { node: 'n1' }, { uid: 'a', enrolled: false, node: 'n1' }, false],
      [
        'sidecar, its own',
        { node: 'n1', workload: 'a' },
        { uid: 'a', enrolled: true, sidecar: true, node: 'n1' },
        true,
      ],
      [
        'sidecar, its own as an endpoint',
        { node: 'n1', workload: 'a' },
        { workload: 'a', enrolled: true, sidecar: true, node: 'n1' },
        true,
      ],
      [
        'sidecar, another pod',
        { node: 'n1', workload: 'a' },
        { uid: 'b', enrolled: true, sidecar: true, node: 'n1' },
        false,
      ],
      [
        'sidecar, its own left the mesh',
        { node: 'n1', workload: 'a' },
        { uid: 'a', enrolled: false, node: 'n1' },
        false,
      ],
    ];
    for (const [name, scope, w, want] of cases) assert.equal(serves(scope, w), want, name);
  });

  test('only the node’s own enrolled workloads may send; the waypoint itself goes straight to the backend', () => {
    assert.equal(planOutbound(state, '198.18.9.9', { address: '198.18.2.2', port: 80 }, ctx).kind, 'refuse');
    const fromOtherNode = planOutbound(state, '198.18.2.2', { address: '198.18.1.3', port: 8080 }, ctx);
    assert.equal(
      fromOtherNode.kind === 'refuse' && /not a workload in the mesh on this node/.test(fromOtherNode.reason),
      true,
    );
    const optedOut = planOutbound(
      state,
      '198.18.2.9',
      { address: '198.18.1.3', port: 8080 },
      { ...ctx, node: 'node-2' },
    );
    assert.equal(optedOut.kind, 'refuse');
    const fromWaypoint = planOutbound(
      state,
      '198.18.2.7',
      { address: '198.19.0.4', port: 80 },
      { ...ctx, pick: () => 0 },
    );
    assert.equal(fromWaypoint.kind === 'hbone' && fromWaypoint.via, 'direct');
  });
});

describe('waypoint replicas', () => {
  test('each connection picks one of the replicas, as endpoints are picked', () => {
    const state = build([
      workload('wp-2', '198.18.1.7', {
        isWaypoint: true,
        labels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' },
      }),
    ]);
    const ctx = { node: 'node-1', nodeAddresses: new Set<string>() };
    const to = (pick: number) => {
      const p = planOutbound(
        state,
        '198.18.1.2',
        { address: '198.18.2.8', port: 80 },
        { ...ctx, pick: () => pick },
      );
      return p.kind === 'hbone' ? p.actual.address : p.kind;
    };
    assert.deepEqual(new Set([to(0), to(1)]), new Set(['198.18.2.7', '198.18.1.7']));
  });
});

describe('inbound planning', () => {
  const state = build();
  const hbone = (dst: string, authority: string, peer?: string, sourceIp = '198.18.1.2') => {
    const [a, p] = authority.split(':');
    return planInbound(state, {
      destination: { address: dst, port: 15008 },
      authority: { address: a!, port: Number(p) },
      ...(peer ? { peerIdentity: peer } : {}),
      sourceIp,
    });
  };
  const client = 'spiffe://cluster.local/ns/shop/sa/client';
  const cases: Array<[string, () => ReturnType<typeof planInbound>, number, RegExp?]> = [
    ['allowed', () => hbone('198.18.2.2', '198.18.2.2:8080', client), 200],
    [
      'authority differs from the real destination',
      () => hbone('198.18.2.2', '198.18.1.3:8080', client),
      400,
      /not where/,
    ],
    ['authority port is the ztunnel', () => hbone('198.18.2.2', '198.18.2.2:15001', client), 400],
    ['destination not in the mesh', () => hbone('198.18.2.9', '198.18.2.9:8080', client), 503],
    ['DENY by port', () => hbone('198.18.2.5', '198.18.2.5:6379', client), 401, /deny-6379/],
    ['other port allowed', () => hbone('198.18.2.5', '198.18.2.5:80', client), 200],
    [
      'a sidecar serving the port as HTTP authorizes per request: only peer authentication here',
      () =>
        planInbound(
          state,
          {
            destination: { address: '198.18.2.5', port: 15008 },
            authority: { address: '198.18.2.5', port: 6379 },
            peerIdentity: client,
            sourceIp: '198.18.1.2',
          },
          { authorize: false },
        ),
      200,
    ],
    [
      'without authorization STRICT still refuses plaintext',
      () =>
        planInbound(
          state,
          { destination: { address: '198.18.2.5', port: 80 }, sourceIp: '198.18.2.9' },
          { authorize: false },
        ),
      401,
      /STRICT/,
    ],
    [
      'STRICT refuses plaintext',
      () => planInbound(state, { destination: { address: '198.18.2.5', port: 80 }, sourceIp: '198.18.2.9' }),
      401,
      /STRICT/,
    ],
    [
      'port-level PERMISSIVE admits plaintext',
      () =>
        planInbound(state, { destination: { address: '198.18.2.5', port: 9000 }, sourceIp: '198.18.2.9' }),
      200,
    ],
    [
      'PERMISSIVE admits plaintext',
      () =>
        planInbound(state, { destination: { address: '198.18.2.2', port: 8080 }, sourceIp: '198.18.2.9' }),
      200,
    ],
  ];
  for (const [name, run, status, reason] of cases) {
    test(name, () => {
      const p = run();
      assert.equal(p.status, status);
      if (reason && p.status !== 200) assert.match(p.reason, reason);
    });
  }
});

describe('a VIP never shadows a workload address', () => {
  test("a Service whose VIP is a pod's address does not capture traffic to the pod", () => {
    const s = new ZtunnelState();
    s.apply(TYPE.workload, {
      upserts: [workload('client', '198.18.1.2'), workload('db', '198.18.2.5', { node: 'node-2' })].map(
        (w) => ({
          name: w.uid,
          value: w,
        }),
      ),
      removed: [],
    });
    // A tenant's Service claims the pod's address as its VIP and selects the tenant's own pod.
    s.apply(TYPE.service, {
      upserts: [
        {
          name: 'tenant/grab',
          value: {
            key: 'tenant/grab',
            name: 'grab',
            namespace: 'tenant',
            hostname: 'grab.tenant.svc.cluster.local',
            vips: ['198.18.2.5', '198.19.0.9'],
            ports: [{ port: 5432, targetPort: 5432 }],
            endpoints: [
              {
                workload: 'uid/client',
                name: 'client',
                address: '198.18.1.2',
                enrolled: true,
                ports: { '5432': 5432 },
              },
            ],
          },
        },
      ],
      removed: [],
    });
    const state = s.snapshot;
    const p = planOutbound(state, '198.18.1.2', { address: '198.18.2.5', port: 5432 }, ctx);
    assert.equal(p.kind, 'hbone');
    assert.equal(p.kind === 'hbone' && `${p.actual.address}:${p.actual.port}`, '198.18.2.5:15008');
    assert.deepEqual(p.kind === 'hbone' && p.expectedIdentities, ['spiffe://cluster.local/ns/shop/sa/db']);
    // The service's other VIP still works; the bad one is flagged, not served.
    assert.equal(planOutbound(state, '198.18.1.2', { address: '198.19.0.9', port: 5432 }, ctx).kind, 'hbone');
    assert.deepEqual([...state.shadowedVips], [['198.18.2.5', 'tenant/grab']]);
    assert.deepEqual(s.dump().shadowedVips, { '198.18.2.5': 'tenant/grab' });
  });
});

describe('state', () => {
  test('a bad resource NACKs the whole delta and changes nothing', () => {
    const s = new ZtunnelState();
    s.apply(TYPE.workload, { upserts: [{ name: 'uid/a', value: workload('a', '198.18.1.2') }], removed: [] });
    const before = s.snapshot;
    assert.throws(
      () =>
        s.apply(TYPE.workload, {
          upserts: [
            { name: 'uid/b', value: workload('b', '198.18.1.3') },
            { name: 'uid/c', value: { ...workload('c', 'not-an-ip') } },
          ],
          removed: ['uid/a'],
        }),
      /workload "uid\/c" is invalid: addresses\.0/,
    );
    assert.equal(s.snapshot, before);
    assert.deepEqual([...s.snapshot.workloads.keys()], ['uid/a']);
  });
});
