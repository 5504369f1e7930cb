// The ztunnel's caps as pure functions: defaults from the descriptor limit, refusals of caps that cannot
// hold, and slot accounting in all and per key.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hasCode } from '../../../src/errors/index.ts';
import { Admission, defaultLimits, fileDescriptorLimit, resolveLimits } from '../../../src/ztunnel/limits.ts';

describe('ztunnel limits', () => {
  test('defaults fit under the descriptor limit, a source well below the whole', () => {
    for (const fd of [256, 1024, 20_000, 65_536, 1_048_576]) {
      const l = defaultLimits(fd);
      assert.ok(l.maxConnections * 2 + l.maxHandshakes < fd, `fd ${fd}: ${JSON.stringify(l)}`);
      assert.ok(l.maxConnectionsPerSource * 8 <= l.maxConnections);
      assert.ok(l.maxHandshakesPerSource * 4 <= l.maxHandshakes);
      assert.deepEqual(resolveLimits(undefined, fd), l);
    }
    assert.deepEqual(defaultLimits(65_536), {
      maxConnections: 31_744,
      maxConnectionsPerSource: 3_968,
      maxHandshakes: 1_024,
      maxHandshakesPerSource: 256,
    });
  });

  test('caps that cannot hold are refused with AMBIT_ERR_ZTUNNEL_BAD_LIMIT', () => {
    const bad = (given: Record<string, unknown>, fd = 65_536) =>
      assert.throws(
        () => resolveLimits(given, fd),
        (e) => hasCode(e, 'AMBIT_ERR_ZTUNNEL_BAD_LIMIT'),
      );
    bad({ maxConnections: 0 });
    bad({ maxConnections: 1.5 });
    bad({ maxHandshakes: Number.NaN });
    bad({ maxConnections: 10, maxConnectionsPerSource: 11 });
    bad({ maxHandshakes: 4, maxHandshakesPerSource: 5 });
    bad({ maxConnections: 40_000 }); // 80,000 descriptors under a 65,536 limit
    assert.equal(resolveLimits({ maxConnections: 100 }, 65_536).maxConnectionsPerSource, 12);
  });

  test('reads the soft limit from /proc/self/limits', () => {
    const text =
      'Limit  Soft Limit  Hard Limit  Units\nMax open files            4096                 524288               files\n';
    assert.equal(fileDescriptorLimit(text), 4096);
    assert.equal(fileDescriptorLimit('Max open files unlimited unlimited files'), 2 ** 20);
    assert.ok(fileDescriptorLimit() > 0);
  });

  test('slots: a key at its share is refused while another key and the whole still admit', () => {
    const a = new Admission(5, 2);
    assert.ok(a.tryAcquire('p'));
    assert.ok(a.tryAcquire('p'));
    assert.equal(a.tryAcquire('p'), false);
    assert.ok(a.tryAcquire('q'));
    assert.ok(a.tryAcquire('q'));
    assert.ok(a.tryAcquire('r'));
    assert.equal(a.tryAcquire('s'), false, 'the whole is full');
    const release = a.releaser('p');
    release();
    release(); // a second call gives nothing back twice
    assert.equal(a.inUse, 4);
    assert.ok(a.tryAcquire('s'));
    assert.deepEqual(a.top(1), [{ key: 'q', inUse: 2 }]);
  });
});
