// The HBONE TLS context cache never only grows: bounded by identities (least recently used forgotten
// first), and pruned to the identities its owner still holds.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ContextCache } from '../../../src/hbone/material.ts';
import { workloadId } from '../../../src/identity/index.ts';
import { materialFor, newAuthority, TD } from './helpers.ts';

describe('TLS context cache', () => {
  it('keeps at most its bound, forgetting the least recently used first', async () => {
    const ca = await newAuthority();
    const [a, b, c] = await Promise.all(
      ['a', 'b', 'c'].map((sa) => materialFor(ca, workloadId(TD, 'default', sa))),
    );
    const cache = new ContextCache(2);
    const first = cache.get(a!);
    cache.get(b!);
    assert.equal(cache.get(a!), first, 'a hit returns the context built before');
    cache.get(c!); // b is now the least recently used
    assert.equal(cache.size, 2);
    assert.equal(cache.get(a!), first, 'a, used last before c, was kept');
    assert.notEqual(cache.get(b!).context, undefined);
    assert.equal(cache.size, 2);
  });

  it('forgets the identities its owner no longer holds', async () => {
    const ca = await newAuthority();
    const [a, b] = await Promise.all(['a', 'b'].map((sa) => materialFor(ca, workloadId(TD, 'default', sa))));
    const cache = new ContextCache();
    const kept = cache.get(a!);
    cache.get(b!);
    cache.retain((id) => id === a!.identity);
    assert.equal(cache.size, 1);
    assert.equal(cache.get(a!), kept);
  });

  it('refuses a bound that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5])
      assert.throws(() => new ContextCache(bad), { code: 'AMBIT_ERR_HBONE_BAD_OPTIONS' });
  });
});
