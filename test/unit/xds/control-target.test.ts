// `--control`: one control plane's address, or several replicas' as one gRPC target over all of them.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hasCode } from '../../../src/errors/index.ts';
import { controlTarget } from '../../../src/xds/index.ts';

describe('control-plane target', () => {
  test('one address is used as it is, a name included', () => {
    assert.equal(controlTarget('198.18.0.254:15010'), '198.18.0.254:15010');
    assert.equal(controlTarget('control.mesh.test:15010'), 'control.mesh.test:15010');
    assert.equal(controlTarget('[2001:2::1]:15010'), '[2001:2::1]:15010');
  });

  test('several replicas become one ipv4: or ipv6: target', () => {
    assert.equal(
      controlTarget('198.18.0.254:15010, 198.18.0.253:15010'),
      'ipv4:198.18.0.254:15010,198.18.0.253:15010',
    );
    assert.equal(
      controlTarget('[2001:2::1]:15010,[2001:2::2]:15011'),
      'ipv6:[2001:2::1]:15010,[2001:2::2]:15011',
    );
  });

  const refused: Array<[string, RegExp]> = [
    ['', /is not host:port/],
    ['198.18.0.254', /"198.18.0.254" is not host:port/],
    ['198.18.0.254:0', /is not host:port/],
    ['198.18.0.254:70000', /is not host:port/],
    ['198.18.0.254:15010,', /is not host:port/],
    ['[not-v6]:15010', /is not host:port/],
    ['a.test:15010,b.test:15010', /all IPv4 or all IPv6 \(not names\)/],
    ['198.18.0.254:15010,[2001:2::1]:15010', /all IPv4 or all IPv6/],
  ];
  for (const [text, message] of refused) {
    test(`refused: "${text}"`, () => {
      assert.throws(
        () => controlTarget(text),
        (e) => hasCode(e, 'AMBIT_ERR_XDS_BAD_TARGET') && message.test((e as Error).message),
      );
    });
  }
});
