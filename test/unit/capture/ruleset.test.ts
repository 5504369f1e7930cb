// The capture table's text (issue 9 item 5): the outbound redirect takes only packets that arrive on
// the link their source is routed through (an enrolled pod's own link), never the underlay's.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ruleset } from '../../../src/capture/nftables.ts';
import { hasCode } from '../../../src/errors/index.ts';

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
});
