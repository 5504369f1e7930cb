// Service VIP rules (issue 13 item 3): what each Service becomes (a table of cases), the script's
// shape, bad input refused with the service's key, and the kernel taking the script when we are root.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ServiceVipInput, servicePlan, serviceRuleset } from '../../../src/capture/services.ts';
import { hasCode } from '../../../src/errors/index.ts';
import { canLoadNft, NO_NFT_LOAD, nftLoad } from './nft-check.ts';

const tcp = (port: number) => ({ port, protocol: 'TCP' });
const ep = (address: string, ports: Record<string, number>) => ({ address, ports });

const web: ServiceVipInput = {
  key: 'shop/web',
  vips: ['198.19.0.10'],
  ports: [tcp(80)],
  endpoints: [
    ep('198.18.1.3', { '80': 8080 }),
    ep('198.18.1.2', { '80': 8080 }),
    ep('198.18.2.2', { '80': 8080 }),
  ],
};

type PlannedEndpoint = { address: string; targetPort: number; inbound?: true };

/** The plan without chain names: what goes where (`inbound` shown only when set). */
const plan = (services: ServiceVipInput[]) =>
  servicePlan(services).map(({ key, port, vips, endpoints }) => ({
    key,
    port,
    vips,
    endpoints: endpoints.map(
      ({ address, targetPort, inbound }): PlannedEndpoint =>
        inbound ? { address, targetPort, inbound } : { address, targetPort },
    ),
  }));

describe('servicePlan: what each Service port becomes', () => {
  const cases: Array<{ name: string; in: ServiceVipInput[]; out: ReturnType<typeof plan> }> = [
    {
      name: 'no endpoint: the port stays, with nowhere to go (it is reset)',
      in: [{ key: 'a/none', vips: ['198.19.0.1'], ports: [tcp(80)], endpoints: [] }],
      out: [{ key: 'a/none', port: 80, vips: ['198.19.0.1'], endpoints: [] }],
    },
    {
      name: 'one endpoint',
      in: [
        { key: 'a/one', vips: ['198.19.0.1'], ports: [tcp(80)], endpoints: [ep('198.18.1.2', { '80': 80 })] },
      ],
      out: [
        {
          key: 'a/one',
          port: 80,
          vips: ['198.19.0.1'],
          endpoints: [{ address: '198.18.1.2', targetPort: 80 }],
        },
      ],
    },
    {
      name: 'three endpoints, in address order whatever the input order',
      in: [web],
      out: [
        {
          key: 'shop/web',
          port: 80,
          vips: ['198.19.0.10'],
          endpoints: [
            { address: '198.18.1.2', targetPort: 8080 },
            { address: '198.18.1.3', targetPort: 8080 },
            { address: '198.18.2.2', targetPort: 8080 },
          ],
        },
      ],
    },
    {
      name: 'target ports as each endpoint maps them (a named port may differ per endpoint); one without the port is left out',
      in: [
        {
          key: 'a/named',
          vips: ['198.19.0.1'],
          ports: [tcp(80), tcp(9000)],
          endpoints: [ep('198.18.1.2', { '80': 8080, '9000': 9001 }), ep('198.18.1.3', { '80': 8081 })],
        },
      ],
      out: [
        {
          key: 'a/named',
          port: 80,
          vips: ['198.19.0.1'],
          endpoints: [
            { address: '198.18.1.2', targetPort: 8080 },
            { address: '198.18.1.3', targetPort: 8081 },
          ],
        },
        {
          key: 'a/named',
          port: 9000,
          vips: ['198.19.0.1'],
          endpoints: [{ address: '198.18.1.2', targetPort: 9001 }],
        },
      ],
    },
    {
      name: 'several VIPs share the port chain; IPv6 VIPs and endpoints are skipped',
      in: [
        {
          key: 'a/dual',
          vips: ['198.19.0.2', '2001:2::2', '198.19.0.1'],
          ports: [tcp(80)],
          endpoints: [ep('2001:2::10', { '80': 80 }), ep('198.18.1.2', { '80': 80 })],
        },
      ],
      out: [
        {
          key: 'a/dual',
          port: 80,
          vips: ['198.19.0.1', '198.19.0.2'],
          endpoints: [{ address: '198.18.1.2', targetPort: 80 }],
        },
      ],
    },
    {
      name: 'UDP and SCTP ports are skipped; a repeated TCP port counts once; protocol case does not matter',
      in: [
        {
          key: 'a/dns',
          vips: ['198.19.0.1'],
          ports: [
            { port: 53, protocol: 'UDP' },
            { port: 53, protocol: 'tcp' },
            { port: 53, protocol: 'TCP' },
            { port: 99, protocol: 'SCTP' },
          ],
          endpoints: [ep('198.18.1.2', { '53': 5353, '99': 99 })],
        },
      ],
      out: [
        {
          key: 'a/dns',
          port: 53,
          vips: ['198.19.0.1'],
          endpoints: [{ address: '198.18.1.2', targetPort: 5353 }],
        },
      ],
    },
    {
      name: "a pod on this node in the mesh is marked for the ztunnel's inbound listener",
      in: [
        {
          key: 'a/meshed',
          vips: ['198.19.0.1'],
          ports: [tcp(80)],
          endpoints: [
            { ...ep('198.18.1.2', { '80': 8080 }), inboundCapture: true },
            ep('198.18.2.2', { '80': 8080 }),
          ],
        },
      ],
      out: [
        {
          key: 'a/meshed',
          port: 80,
          vips: ['198.19.0.1'],
          endpoints: [
            { address: '198.18.1.2', targetPort: 8080, inbound: true },
            { address: '198.18.2.2', targetPort: 8080 },
          ],
        },
      ],
    },
    {
      name: 'a Service with no IPv4 VIP (headless, or IPv6 only) has no rules',
      in: [
        { key: 'a/headless', vips: [], ports: [tcp(80)], endpoints: [ep('198.18.1.2', { '80': 80 })] },
        { key: 'a/v6', vips: ['2001:2::1'], ports: [tcp(80)], endpoints: [ep('198.18.1.2', { '80': 80 })] },
      ],
      out: [],
    },
  ];
  for (const c of cases) test(c.name, () => assert.deepEqual(plan(c.in), c.out));

  test('chain names are nft identifiers, stable, and apart for keys that sanitise alike', () => {
    const svc = (key: string): ServiceVipInput => ({
      key,
      vips: ['198.19.0.1'],
      ports: [tcp(80)],
      endpoints: [],
    });
    const [a] = servicePlan([svc('a-b/c')]);
    const [b] = servicePlan([svc('a_b/c')]);
    assert.match(a!.chain, /^svc_a_b_c_[0-9a-f]{10}_80$/);
    assert.notEqual(a!.chain, b!.chain);
    assert.equal(servicePlan([svc('a-b/c')])[0]!.chain, a!.chain);
  });
});

describe('serviceRuleset: the script', () => {
  const text = serviceRuleset([
    web,
    { key: 'shop/empty', vips: ['198.19.0.11', '198.19.0.12'], ports: [tcp(80)], endpoints: [] },
  ]);
  const [webChain] = servicePlan([web]).map((r) => r.chain);
  const lines = text.split('\n').map((l) => l.trim());

  test('the table is replaced whole in one transaction, NAT just after capture and at output', () => {
    assert.match(
      text,
      /^add table ip ambit_services\ndelete table ip ambit_services\ntable ip ambit_services \{/,
    );
    assert.ok(lines.includes('type nat hook prerouting priority -90; policy accept;'));
    assert.ok(lines.includes('type nat hook output priority -90; policy accept;'));
    assert.equal(lines.filter((l) => l === 'jump services').length, 2);
  });

  test('every VIP and port is one verdict-map entry; anything else to a VIP is reset', () => {
    const lookup = lines.find((l) => l.startsWith('ip daddr . tcp dport vmap'));
    assert.ok(lookup);
    const entries = /\{ (.*) \}/.exec(lookup)![1]!.split(', ');
    assert.equal(entries.length, 3);
    assert.ok(entries.includes(`198.19.0.10 . 80 : goto ${webChain}`));
    assert.ok(lines.includes('ip daddr @vips meta l4proto tcp counter reject with tcp reset'));
    assert.match(text, /elements = \{ 198\.19\.0\.10, 198\.19\.0\.11, 198\.19\.0\.12 \}/);
  });

  test('three endpoints: a counted random pick among three chains, each DNAT with the hairpin mark', () => {
    const pick = lines.find((l) => l.includes('numgen'));
    assert.equal(
      pick,
      'counter numgen random mod 3 vmap { 0 : goto ep_198_18_1_2_8080, 1 : goto ep_198_18_1_3_8080, 2 : goto ep_198_18_2_2_8080 } comment "shop/web"',
    );
    const body = /chain ep_198_18_1_2_8080 \{\n([^}]*)\}/
      .exec(text)![1]!
      .trim()
      .split('\n')
      .map((l) => l.trim());
    assert.deepEqual(body, [
      'ip saddr 198.18.1.2 meta mark set meta mark | 0x00004000',
      'meta l4proto tcp dnat to 198.18.1.2:8080',
    ]);
    assert.ok(lines.includes('meta mark & 0x00004000 == 0x00004000 counter masquerade'));
  });

  test('no endpoint: the port chain resets, counted; one endpoint: no random pick', () => {
    assert.ok(lines.includes('counter reject with tcp reset comment "shop/empty"'));
    const one = serviceRuleset([{ ...web, endpoints: [web.endpoints[0]!] }]);
    assert.doesNotMatch(one, /numgen/);
    assert.match(one, /counter goto ep_198_18_1_3_8080 comment "shop\/web"/);
  });

  test('an endpoint reached by several Service ports has one chain', () => {
    const twice = serviceRuleset([web, { ...web, key: 'shop/web-canary', vips: ['198.19.0.20'] }]);
    assert.equal(twice.match(/chain ep_198_18_1_2_8080 \{/g)?.length, 1);
    assert.equal(twice.match(/goto ep_198_18_1_2_8080/g)?.length, 2);
  });

  test("a meshed pod on this node is picked like any endpoint, then redirected to the ztunnel's 15006", () => {
    const meshed = serviceRuleset([
      { ...web, endpoints: web.endpoints.map((e, i) => (i === 0 ? { ...e, inboundCapture: true } : e)) },
    ]);
    assert.match(
      meshed,
      /numgen random mod 3 vmap \{ 0 : goto ep_198_18_1_2_8080, 1 : goto inbound_capture, 2 : goto ep_198_18_2_2_8080 \}/,
    );
    assert.match(meshed, /chain inbound_capture \{\n\s+meta l4proto tcp counter redirect to :15006\n/);
    assert.doesNotMatch(meshed, /dnat to 198\.18\.1\.3/);
    assert.doesNotMatch(text, /inbound_capture/);
  });

  test('no services: an empty table (no map, no elements)', () => {
    const empty = serviceRuleset([]);
    assert.doesNotMatch(empty, /vmap|elements/);
  });

  test('the same services in any order render the same script', () => {
    const shuffled = serviceRuleset([
      { key: 'shop/empty', vips: ['198.19.0.12', '198.19.0.11'], ports: [tcp(80)], endpoints: [] },
      { ...web, endpoints: [...web.endpoints].reverse() },
    ]);
    assert.equal(shuffled, text);
  });

  test('the script grows by the same lines for each endpoint added (linear in endpoints)', () => {
    const size = (n: number) =>
      serviceRuleset([
        {
          key: 'a/big',
          vips: ['198.19.0.1'],
          ports: [tcp(80)],
          endpoints: Array.from({ length: n }, (_, i) =>
            ep(`198.18.${1 + (i >> 8)}.${i & 255}`, { '80': 80 }),
          ),
        },
      ]).split('\n').length;
    const perEndpoint = size(20) - size(10);
    assert.equal(size(40) - size(20), 2 * perEndpoint);
    assert.equal(perEndpoint, 10 * 4);
  });
});

describe('serviceRuleset: bad input is refused with the service named', () => {
  const base: ServiceVipInput = {
    key: 'ns/svc',
    vips: ['198.19.0.1'],
    ports: [tcp(80)],
    endpoints: [ep('198.18.1.2', { '80': 8080 })],
  };
  const bad: Array<[string, ServiceVipInput | ServiceVipInput[]]> = [
    ['a VIP that is not an address', { ...base, vips: ['198.19.0.256'] }],
    ['a VIP smuggling nft syntax', { ...base, vips: ['198.19.0.1 }; flush ruleset; {'] }],
    ['an endpoint address that is not an address', { ...base, endpoints: [ep('pod-a', { '80': 8080 })] }],
    ['an empty endpoint address', { ...base, endpoints: [ep('', { '80': 8080 })] }],
    ['port 0', { ...base, ports: [tcp(0)] }],
    ['port 65536', { ...base, ports: [tcp(65536)] }],
    ['a fractional target port', { ...base, endpoints: [ep('198.18.1.2', { '80': 80.5 })] }],
    [
      'a target port as text',
      { ...base, endpoints: [ep('198.18.1.2', { '80': 'http' as unknown as number })] },
    ],
    ['a key with a quote', { ...base, key: 'ns/a"b' }],
    ['a key with a space', { ...base, key: 'ns/a b' }],
    ['an empty key', { ...base, key: '' }],
    ['a key longer than 512', { ...base, key: `ns/${'a'.repeat(510)}` }],
    ['the same key twice', [base, { ...base, vips: ['198.19.0.2'] }]],
    [
      'a VIP and port another service has',
      [
        { ...base, key: 'ns/zz' },
        { ...base, key: 'ns/aa', vips: ['198.19.0.9', '198.19.0.1'] },
      ],
    ],
  ];
  for (const [name, input] of bad) {
    test(name, () => {
      const services = Array.isArray(input) ? input : [input];
      assert.throws(
        () => serviceRuleset(services),
        (e) =>
          hasCode(e, 'AMBIT_ERR_CAPTURE_BAD_SERVICE') &&
          (e as Error).message.includes(JSON.stringify(services[0]!.key)),
      );
    });
  }
});

describe('serviceRuleset: the kernel takes it', () => {
  test('a rich script loads into a throwaway namespace', async (t) => {
    if (!canLoadNft) {
      console.error(`\n*** ${NO_NFT_LOAD} ***\n`);
      t.skip(NO_NFT_LOAD);
      return;
    }
    const listed = await nftLoad(
      serviceRuleset([
        web,
        {
          key: 'shop/empty',
          vips: ['198.19.0.11'],
          ports: [tcp(80), { port: 53, protocol: 'UDP' }],
          endpoints: [],
        },
        // A registry key longer than nft's longest comment: the comment is cut, the chain still unique.
        { key: `Service/shop/${'x'.repeat(200)}`, vips: ['198.19.0.14'], ports: [tcp(80)], endpoints: [] },
        {
          key: 'shop/multi',
          vips: ['198.19.0.12', '198.19.0.13'],
          ports: [tcp(80), tcp(443)],
          endpoints: [
            ep('198.18.1.2', { '80': 8080, '443': 8443 }),
            { ...ep('198.18.1.3', { '443': 8443 }), inboundCapture: true },
          ],
        },
      ]),
    );
    assert.match(listed, /table ip ambit_services/);
    assert.match(listed, /numgen random mod 2 vmap/);
    assert.match(listed, /dnat to 198\.18\.1\.2:8443/);
    assert.match(listed, /redirect to :15006/);
    assert.match(listed, /reject with tcp reset comment "shop\/empty"/);
    assert.match(listed, new RegExp(`comment "Service/shop/${'x'.repeat(115)}"\n`));
  });

  test('the empty table loads too', async (t) => {
    if (!canLoadNft) {
      t.skip(NO_NFT_LOAD);
      return;
    }
    assert.match(await nftLoad(serviceRuleset([])), /chain services/);
  });
});
