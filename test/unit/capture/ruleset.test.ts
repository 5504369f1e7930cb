// The capture table's text (issue 9 item 5): the outbound redirect takes only packets that arrive on
// the link their source is routed through (an enrolled pod's own link), never the underlay's.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ruleset } from '../../../src/capture/nftables.ts';
import { hasCode } from '../../../src/errors/index.ts';
import { canLoadNft, NO_NFT_LOAD, nftLoad } from './nft-check.ts';

const rules = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.includes('redirect'));

describe('capture ruleset', () => {
  test('the outbound redirect requires a strict reverse-path match; inbound redirects do not', () => {
    const text = ruleset(['198.18.1.2', '198.18.1.3']);
    const outbound = rules(text).filter((l) => l.endsWith('redirect to :15001'));
    assert.deepEqual(outbound, [
      'ip saddr @enrolled fib saddr . iif oif exists meta l4proto tcp counter redirect to :15001',
    ]);
    const inbound = rules(text).filter((l) => !l.endsWith(':15001'));
    assert.equal(inbound.length, 3);
    for (const l of inbound) assert.match(l, /^ip daddr @enrolled .*counter redirect to :1500[68]$/);
    assert.match(text, /elements = \{ 198\.18\.1\.2, 198\.18\.1\.3 \}/);
  });

  test('the table is replaced whole, and a bad address produces no script', () => {
    assert.match(ruleset([]), /^add table ip ambit\ndelete table ip ambit\ntable ip ambit \{/);
    assert.doesNotMatch(ruleset([]), /elements/);
    for (const bad of ['198.18.1.256', '::1', '198.18.1.2 }; flush ruleset; {', ''])
      assert.throws(
        () => ruleset(['198.18.1.2', bad]),
        (e) => hasCode(e, 'AMBIT_ERR_CAPTURE_BAD_ADDRESS'),
      );
  });

  test("DNS capture (issue 13): an enrolled pod's port 53, UDP and TCP, to 15053, before the TCP outbound rule", () => {
    const text = ruleset(['198.18.1.2'], { dns: true });
    const prerouting = rules(text).slice(0, 3);
    assert.deepEqual(prerouting, [
      'ip saddr @enrolled fib saddr . iif oif exists udp dport 53 counter redirect to :15053',
      'ip saddr @enrolled fib saddr . iif oif exists tcp dport 53 counter redirect to :15053',
      'ip saddr @enrolled fib saddr . iif oif exists meta l4proto tcp counter redirect to :15001',
    ]);
    assert.match(ruleset([], { dns: true, dnsPort: 5300 }), /udp dport 53 counter redirect to :5300\n/);
  });

  test('DNS capture is off unless asked for', () => {
    for (const text of [ruleset(['198.18.1.2']), ruleset(['198.18.1.2'], { dns: false })]) {
      assert.doesNotMatch(text, /dport 53|15053/);
    }
  });

  test('the kernel takes the table, with and without DNS capture', async (t) => {
    if (!canLoadNft) {
      console.error(`\n*** ${NO_NFT_LOAD} ***\n`);
      t.skip(NO_NFT_LOAD);
      return;
    }
    assert.match(
      await nftLoad(ruleset(['198.18.1.2'], { dns: true })),
      /udp dport 53 counter packets 0 bytes 0 redirect to :15053/,
    );
    assert.doesNotMatch(await nftLoad(ruleset(['198.18.1.2'])), /dport 53/);
  });
});
