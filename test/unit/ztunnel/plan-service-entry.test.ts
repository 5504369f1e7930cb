// Outbound planning to ServiceEntries as a table of cases: no sockets. The services are what the
// registry streams for each resolution; the plan says where the connection goes and for what.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { outboundTrafficMode, TYPE } from '../../../src/xds/index.ts';
import { type OutboundPlan, planOutbound, planResolved } from '../../../src/ztunnel/plan.ts';
import { ZtunnelState } from '../../../src/ztunnel/state.ts';
import { workloadFixture } from '../../helpers/workloads.ts';

const workload = workloadFixture;

const entry = (host: string, o: Record<string, unknown>) => ({
  key: `ServiceEntry/shop/${host}`,
  name: host.split('.')[0],
  namespace: 'shop',
  hostname: host,
  ports: [{ port: 443, targetPort: 443, appProtocol: 'tls' }],
  endpoints: [],
  kind: 'ServiceEntry',
  location: 'MESH_EXTERNAL',
  ...o,
});

function build() {
  const s = new ZtunnelState();
  s.apply(TYPE.workload, {
    upserts: [
      workload('client', '198.18.1.2'),
      workload('vm', '198.18.2.50', { kind: 'WorkloadEntry', node: 'node-2' }),
      workload('outside', '198.18.3.3', { enrolled: false, node: 'node-2' }),
    ].map((w) => ({ name: w.uid, value: w })),
    removed: [],
  });
  const services = [
    entry('legacy.example.com', { resolution: 'NONE', vips: ['198.18.200.20'] }),
    entry('static.example.com', {
      resolution: 'STATIC',
      vips: ['198.19.0.10'],
      endpoints: [
        {
          workload: 'ServiceEntry/shop/static/0',
          name: 'static/endpoints[0]',
          address: '198.18.200.5',
          enrolled: false,
          ports: { '443': 8443 },
        },
      ],
    }),
    entry('vm.internal', {
      resolution: 'STATIC',
      location: 'MESH_INTERNAL',
      vips: ['198.19.0.11'],
      ports: [{ port: 5432, targetPort: 5432 }],
      endpoints: [
        {
          workload: 'uid/vm',
          name: 'vm',
          address: '198.18.2.50',
          node: 'node-2',
          enrolled: true,
          ports: { '5432': 6000 },
        },
      ],
    }),
    entry('api.example.com', {
      resolution: 'DNS',
      vips: ['198.19.0.12'],
      dnsEndpoints: [{ hostname: 'api.example.com', ports: { '443': 443 } }],
    }),
    entry('mixed.example.com', {
      resolution: 'DNS',
      vips: ['198.19.0.13'],
      endpoints: [
        {
          workload: 'ServiceEntry/shop/mixed/1',
          name: 'mixed/endpoints[1]',
          address: '198.18.200.7',
          enrolled: false,
          ports: { '443': 443 },
        },
      ],
      dnsEndpoints: [{ hostname: 'origin.example.net', ports: { '443': 9443 } }],
    }),
    entry('none.example.com', { resolution: 'DNS', vips: ['198.19.0.14'], dnsEndpoints: [] }),
  ];
  s.apply(TYPE.service, { upserts: services.map((v) => ({ name: v.key, value: v })), removed: [] });
  return s.snapshot;
}

const ctx = (pick = 0) => ({
  node: 'node-1',
  nodeAddresses: new Set(['198.18.0.1', '198.18.1.1']),
  pick: () => pick,
});

const describePlan = (p: OutboundPlan): string => {
  switch (p.kind) {
    case 'refuse':
      return `refuse: ${p.reason}`;
    case 'resolve':
      return `resolve ${p.hostname}:${p.port} for ${p.destination.service?.hostname}`;
    case 'hbone':
      return `hbone ${p.actual.address}:${p.actual.port} → ${p.intended.address}:${p.intended.port} for ${p.destination.service?.hostname} as ${p.expectedIdentities.join(',')}`;
    case 'passthrough':
      return `passthrough ${p.actual.address}:${p.actual.port} for ${p.destination.service?.hostname ?? '-'}`;
  }
};

describe('outbound planning to ServiceEntries', () => {
  const state = build();
  const cases: Array<[string, string, number, number, string | RegExp]> = [
    [
      'NONE with addresses: to the original destination, as the entry',
      '198.18.200.20',
      443,
      0,
      'passthrough 198.18.200.20:443 for legacy.example.com',
    ],
    [
      'NONE, a port the entry does not have',
      '198.18.200.20',
      80,
      0,
      /refuse: the service at 198\.18\.200\.20 has no port 80/,
    ],
    [
      'STATIC: plain to the endpoint, targetPort mapped',
      '198.19.0.10',
      443,
      0,
      'passthrough 198.18.200.5:8443 for static.example.com',
    ],
    [
      'MESH_INTERNAL with an enrolled endpoint: HBONE to it',
      '198.19.0.11',
      5432,
      0,
      'hbone 198.18.2.50:15008 → 198.18.2.50:6000 for vm.internal as spiffe://cluster.local/ns/shop/sa/vm',
    ],
    [
      'DNS: the host is resolved when connecting',
      '198.19.0.12',
      443,
      0,
      'resolve api.example.com:443 for api.example.com',
    ],
    [
      'DNS with an IP endpoint picked',
      '198.19.0.13',
      443,
      0,
      'passthrough 198.18.200.7:443 for mixed.example.com',
    ],
    [
      'DNS with a hostname endpoint picked',
      '198.19.0.13',
      443,
      1,
      'resolve origin.example.net:9443 for mixed.example.com',
    ],
    [
      'DNS with no endpoint at all',
      '198.19.0.14',
      443,
      0,
      /refuse: service ServiceEntry\/shop\/none\.example\.com has no endpoints/,
    ],
  ];
  for (const [name, address, port, pick, want] of cases) {
    test(name, () => {
      const got = describePlan(planOutbound(state, '198.18.1.2', { address, port }, ctx(pick)));
      if (typeof want === 'string') assert.equal(got, want);
      else assert.match(got, want);
    });
  }

  test('a resolved name becomes a passthrough, unless it is the node or loopback (IPv4 or IPv6)', () => {
    const plan = planOutbound(state, '198.18.1.2', { address: '198.19.0.12', port: 443 }, ctx());
    assert.equal(plan.kind, 'resolve');
    if (plan.kind !== 'resolve') return;
    assert.equal(
      describePlan(planResolved(plan, '198.18.200.9', ctx())),
      'passthrough 198.18.200.9:443 for api.example.com',
    );
    for (const local of [
      '127.0.0.1',
      '::1',
      '::ffff:127.0.0.1',
      '198.18.1.1',
      '169.254.169.254',
      'fe80::1',
      '0.0.0.0',
    ]) {
      assert.match(describePlan(planResolved(plan, local, ctx())), /resolves to .* local to the node/, local);
    }
  });

  test('passthrough to IPv6 loopback is refused like IPv4 loopback', () => {
    for (const address of ['::1', '::ffff:127.0.0.1', 'fe80::1'])
      assert.match(
        describePlan(planOutbound(state, '198.18.1.2', { address, port: 80 }, ctx())),
        /local to the node/,
      );
  });

  describe('outboundTrafficPolicy REGISTRY_ONLY', () => {
    const registryOnly = { ...ctx(), outboundTrafficMode: 'REGISTRY_ONLY' as const };
    const table: Array<[string, string, number, string | RegExp]> = [
      [
        'an address nobody registered',
        '198.18.200.99',
        443,
        /refuse: .*not in the mesh's registry.*REGISTRY_ONLY/,
      ],
      [
        'a ServiceEntry address (NONE)',
        '198.18.200.20',
        443,
        'passthrough 198.18.200.20:443 for legacy.example.com',
      ],
      ['a ServiceEntry VIP', '198.19.0.10', 443, 'passthrough 198.18.200.5:8443 for static.example.com'],
      [
        'a ServiceEntry endpoint addressed directly',
        '198.18.200.5',
        8443,
        'passthrough 198.18.200.5:8443 for -',
      ],
      [
        "a ServiceEntry endpoint on a port it doesn't serve",
        '198.18.200.5',
        22,
        /refuse: 198\.18\.200\.5:22 is not in the mesh's registry/,
      ],
      ['a known workload outside the mesh', '198.18.3.3', 80, 'passthrough 198.18.3.3:80 for -'],
    ];
    for (const [name, address, port, want] of table) {
      test(name, () => {
        const got = describePlan(planOutbound(state, '198.18.1.2', { address, port }, registryOnly));
        if (typeof want === 'string') assert.equal(got, want);
        else assert.match(got, want);
      });
    }

    test('ALLOW_ANY (the default) lets an unknown address through', () => {
      for (const mode of [undefined, 'ALLOW_ANY'] as const) {
        const plan = planOutbound(
          state,
          '198.18.1.2',
          { address: '198.18.200.99', port: 443 },
          { ...ctx(), outboundTrafficMode: mode },
        );
        assert.equal(describePlan(plan), 'passthrough 198.18.200.99:443 for -');
      }
    });

    test('the mode comes from the MeshConfig, ALLOW_ANY when none says', () => {
      assert.equal(outboundTrafficMode([]), 'ALLOW_ANY');
      assert.equal(outboundTrafficMode([{ spec: {} }]), 'ALLOW_ANY');
      assert.equal(
        outboundTrafficMode([{ spec: { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } } }]),
        'REGISTRY_ONLY',
      );
    });
  });
});
