// Sidecar mode's capture table (one pod's namespace): the sidecar's own traffic (gid 1337) and loopback
// are never redirected, everything else the pod opens goes to 15001; arriving TCP goes to 15006 except
// the sidecar's HBONE port and the excluded inbound ports; the table is replaced whole.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SIDECAR_GID, SIDECAR_TABLE, sidecarRuleset } from '../../../src/capture/sidecar.ts';
import { hasCode } from '../../../src/errors/index.ts';
import { canLoadNft, NO_NFT_LOAD, nftLoad } from './nft-check.ts';

/** The rule lines of one chain, trimmed, without the `type … hook …` line. */
function chain(text: string, name: string): string[] {
  const m = new RegExp(`\\n  chain ${name} \\{\\n([\\s\\S]*?)\\n  \\}`).exec(text);
  assert.ok(m, `chain ${name} is in the script`);
  return m[1]!
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('type '));
}

describe('sidecar capture ruleset', () => {
  const text = sidecarRuleset();

  test('names: table ambit_sidecar, gid 1337', () => {
    assert.equal(SIDECAR_TABLE, 'ambit_sidecar');
    assert.equal(SIDECAR_GID, 1337);
  });

  test('the table is IPv4 and replaced atomically (add, delete, full table in one script)', () => {
    assert.match(
      text,
      /^add table ip ambit_sidecar\ndelete table ip ambit_sidecar\ntable ip ambit_sidecar \{\n/,
    );
    assert.equal(text.match(/^table /gm)?.length, 1);
    assert.doesNotMatch(text, /\b(ip6|inet)\b/);
  });

  test('the hooks: NAT output and NAT prerouting', () => {
    assert.match(text, /chain output \{\n\s+type nat hook output priority -100; policy accept;/);
    assert.match(text, /chain prerouting \{\n\s+type nat hook prerouting priority -100; policy accept;/);
  });

  const cases: Array<{ what: string; chain: string; rules: string[] }> = [
    {
      what: "output: the sidecar's own (gid 1337) first, then loopback, then everything else TCP to 15001",
      chain: 'output',
      rules: [
        'meta l4proto tcp meta skgid 1337 counter return',
        'meta l4proto tcp oifname "lo" counter return',
        'meta l4proto tcp counter redirect to :15001',
      ],
    },
    {
      what: 'prerouting: HBONE 15008, metrics 15020 and readiness 15021 returned before the 15006 redirect',
      chain: 'prerouting',
      rules: [
        'tcp dport 15008 counter return',
        'tcp dport { 15020, 15021 } counter return',
        'meta l4proto tcp counter redirect to :15006',
      ],
    },
  ];
  for (const c of cases) test(c.what, () => assert.deepEqual(chain(text, c.chain), c.rules));

  test('every rule counts; UDP (DNS) is never touched', () => {
    for (const name of ['output', 'prerouting'])
      for (const rule of chain(text, name)) assert.match(rule, / counter (return|redirect to :\d+)$/);
    assert.doesNotMatch(text, /udp|dport 53\b/);
  });

  test("with a DNS proxy: the pod's DNS to it, the sidecar's own queries not, before loopback", () => {
    const out = chain(sidecarRuleset({ dnsPort: 15053 }), 'output');
    assert.deepEqual(out, [
      'meta l4proto tcp meta skgid 1337 counter return',
      'meta l4proto udp meta skgid 1337 counter return',
      'udp dport 53 counter redirect to :15053',
      'tcp dport 53 counter redirect to :15053',
      'meta l4proto tcp oifname "lo" counter return',
      'meta l4proto tcp counter redirect to :15001',
    ]);
    assert.throws(
      () => sidecarRuleset({ dnsPort: 0 }),
      (e) => hasCode(e, 'AMBIT_ERR_CAPTURE_BAD_PORT'),
    );
  });

  test('custom ports and excluded inbound ports are honoured', () => {
    const custom = sidecarRuleset({
      ports: { outbound: 25001, inboundPlaintext: 25006, hbone: 25008 },
      excludeInboundPorts: [9090, 8081, 9090],
    });
    assert.deepEqual(chain(custom, 'output').at(-1), 'meta l4proto tcp counter redirect to :25001');
    assert.deepEqual(chain(custom, 'prerouting'), [
      'tcp dport 25008 counter return',
      'tcp dport { 9090, 8081 } counter return',
      'meta l4proto tcp counter redirect to :25006',
    ]);
    assert.doesNotMatch(custom, /1500[168]|1502[01]/);
    // One port changed, the others keep their defaults.
    assert.match(sidecarRuleset({ ports: { outbound: 25001 } }), /tcp dport 15008 counter return/);
  });

  test('no excluded inbound ports: only HBONE is returned before the redirect', () => {
    assert.deepEqual(chain(sidecarRuleset({ excludeInboundPorts: [] }), 'prerouting'), [
      'tcp dport 15008 counter return',
      'meta l4proto tcp counter redirect to :15006',
    ]);
  });

  test('a bad port produces no script', () => {
    const bad: Array<Parameters<typeof sidecarRuleset>[0]> = [
      { ports: { outbound: 0 } },
      { ports: { inboundPlaintext: 65536 } },
      { ports: { hbone: 1.5 } },
      { ports: { outbound: Number.NaN } },
      { excludeInboundPorts: [15020, -1] },
      { excludeInboundPorts: ['1 } ; flush ruleset ; {' as unknown as number] },
    ];
    for (const opts of bad)
      assert.throws(
        () => sidecarRuleset(opts),
        (e) => hasCode(e, 'AMBIT_ERR_CAPTURE_BAD_PORT'),
        JSON.stringify(opts),
      );
  });

  test('the kernel takes the table, with default and custom ports', async (t) => {
    if (!canLoadNft) {
      console.error(`\n*** ${NO_NFT_LOAD} ***\n`);
      t.skip(NO_NFT_LOAD);
      return;
    }
    const listed = await nftLoad(text);
    assert.match(listed, /table ip ambit_sidecar/);
    assert.match(listed, /meta skgid 1337/);
    await nftLoad(sidecarRuleset({ ports: { outbound: 1 }, excludeInboundPorts: [80] }));
  });
});
