// The lab's anti-spoofing (issue 9 item 5): each pod link of a node may carry only its own pod's
// address, and reverse-path filtering is strict on the underlay and on every pod link.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  antiSpoofRuleset,
  labNames,
  NODE_SYSCTLS,
  planPodAdd,
  podAddress,
  podLink,
  podLinkSysctls,
} from '../../../src/lab/plan.ts';

describe('lab anti-spoofing', () => {
  test('every pod link maps to exactly its own address, the gateway to none', () => {
    const text = antiSpoofRuleset(3);
    const pairs = [...text.matchAll(/"(pod\d+)" \. (198\.18\.\d+\.\d+)/g)].map((m) => [m[1], m[2]]);
    assert.equal(pairs.length, 253);
    for (const [link, address] of pairs) {
      const host = Number(link!.slice(3));
      assert.equal(link, podLink(host));
      assert.equal(address, podAddress(3, host));
    }
    assert.deepEqual(pairs[0], ['pod2', '198.18.3.2']);
    assert.deepEqual(pairs.at(-1), ['pod254', '198.18.3.254']);
    assert.doesNotMatch(text, /198\.18\.3\.1[,\s]/, 'the gateway is the node, never a pod source');
    assert.doesNotMatch(text, /198\.18\.[^3]\.\d+/, 'only this node pods');
  });

  test('what is not a pod link pair is dropped, before capture NAT (priority -100) sees it', () => {
    const text = antiSpoofRuleset(1);
    assert.match(text, /^add table inet lab\ndelete table inet lab\n/);
    assert.match(text, /hook prerouting priority -300;/);
    const rules = text.split('\n').filter((l) => l.includes('iifname "pod*"'));
    assert.deepEqual(
      rules.map((l) => l.trim()),
      ['iifname "pod*" iifname . ip saddr @pods accept', 'iifname "pod*" counter name "spoofed" drop'],
    );
    assert.doesNotMatch(text, /ambit/, "the name `ambit` is capture's");
  });

  test('reverse-path filtering is strict on the underlay and on the link each pod gets', () => {
    assert.equal(NODE_SYSCTLS['net.ipv4.conf.eth0.rp_filter'], '1');
    assert.equal(NODE_SYSCTLS['net.ipv4.conf.all.rp_filter'], '0', 'each link says its own');
    const link = planPodAdd(labNames('x'), 'web', 2, 7).find((s) => s.args.includes('veth'))!.args[2];
    assert.deepEqual(podLinkSysctls(7), { [`net.ipv4.conf.${link}.rp_filter`]: '1' });
  });
});
