import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasCode } from '../../../src/errors/index.ts';
import {
  isSpiffeId,
  nodeId,
  parseSpiffeId,
  parseWorkloadId,
  principalOf,
  trustDomainOf,
  workloadId,
} from '../../../src/identity/index.ts';

describe('SpiffeId', () => {
  it('parses a workload identity into trust domain, namespace and service account', () => {
    const p = parseWorkloadId('spiffe://cluster.local/ns/default/sa/web');
    assert.equal(p.trustDomain, 'cluster.local');
    assert.equal(p.namespace, 'default');
    assert.equal(p.serviceAccount, 'web');
    assert.equal(p.path, '/ns/default/sa/web');
  });

  it('formats and round-trips', () => {
    const id = workloadId('example.org', 'shop', 'cart-v2');
    assert.equal(id, 'spiffe://example.org/ns/shop/sa/cart-v2');
    assert.equal(parseSpiffeId(id).id, id);
    assert.equal(trustDomainOf(id), 'example.org');
    assert.equal(principalOf(id), 'example.org/ns/shop/sa/cart-v2');
  });

  const invalid: Array<[string, string]> = [
    ['', 'empty'],
    ['http://cluster.local/ns/a/sa/b', 'wrong scheme'],
    ['SPIFFE://cluster.local/ns/a/sa/b', 'upper-case scheme'],
    ['spiffe://', 'no trust domain'],
    ['spiffe:///ns/a/sa/b', 'empty trust domain'],
    ['spiffe://Cluster.Local/ns/a/sa/b', 'upper-case trust domain'],
    ['spiffe://cluster.local:8443/ns/a/sa/b', 'port'],
    ['spiffe://user@cluster.local/ns/a/sa/b', 'user info'],
    ['spiffe://cluster.local/ns/a/sa/b/', 'trailing slash'],
    ['spiffe://cluster.local/ns//sa/b', 'empty segment'],
    ['spiffe://cluster.local/ns/../sa/b', 'dot-dot segment'],
    ['spiffe://cluster.local/ns/a/sa/b?x=1', 'query'],
    ['spiffe://cluster.local/ns/a/sa/b#f', 'fragment'],
    ['spiffe://cluster.local/ns/a b/sa/b', 'space'],
    [`spiffe://cluster.local/${'a'.repeat(2100)}`, 'too long'],
  ];
  for (const [input, why] of invalid) {
    it(`refuses ${why}`, () => {
      assert.throws(
        () => parseSpiffeId(input),
        (e) => hasCode(e, 'AMBIT_ERR_IDENTITY_INVALID_SPIFFE_ID'),
      );
      assert.equal(isSpiffeId(input), false);
    });
  }

  it('accepts non-workload SPIFFE IDs but refuses them as workload identities', () => {
    assert.equal(isSpiffeId('spiffe://cluster.local/some/service'), true);
    assert.equal(isSpiffeId('spiffe://cluster.local'), true);
    assert.throws(
      () => parseWorkloadId('spiffe://cluster.local/some/service'),
      (e) => hasCode(e, 'AMBIT_ERR_IDENTITY_INVALID_SPIFFE_ID'),
    );
    assert.throws(() => parseWorkloadId('spiffe://cluster.local/ns/Default/sa/web'), /namespace "Default"/);
    assert.throws(() => parseWorkloadId('spiffe://cluster.local/ns/a/sa/-web'), /service account/);
  });

  it('names node credentials so they can never be workload identities', () => {
    const id = nodeId('cluster.local', 'node-1');
    assert.equal(id, 'spiffe://cluster.local/ns/ambit-system/sa/node/node-1');
    const p = parseSpiffeId(id);
    assert.equal(p.node, 'node-1');
    assert.equal(p.namespace, undefined);
    assert.throws(() => parseWorkloadId(id));
    assert.throws(
      () => nodeId('cluster.local', 'Node_1'),
      (e) => hasCode(e, 'AMBIT_ERR_IDENTITY_INVALID_NODE_NAME'),
    );
  });
});
