// Endpoint choice and the retry budget, without sockets.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Backends } from '../../../src/waypoint/http/balance.ts';
import { type Endpoint, RetryBudget, roundRobin } from '../../../src/waypoint/http/index.ts';

const ep = (port: number): Endpoint => ({ address: '198.18.1.1', port, identity: 'spiffe://td/ns/a/sa/b' });

describe('waypoint http endpoint choice', () => {
  test('round robin cycles per backend, each with its own counter', () => {
    const pick = roundRobin();
    const a = [ep(1), ep(2), ep(3)];
    const b = [ep(7), ep(8)];
    assert.deepEqual(
      [pick('a', a), pick('a', a), pick('b', b), pick('a', a), pick('a', a), pick('b', b)].map(
        (e) => e?.port,
      ),
      [1, 2, 7, 3, 1, 8],
    );
  });

  test('no endpoints: nothing to pick', () => {
    assert.equal(roundRobin()('a', []), undefined);
  });

  test('a shrinking endpoint list still yields an endpoint', () => {
    const pick = roundRobin();
    pick('a', [ep(1), ep(2), ep(3)]);
    pick('a', [ep(1), ep(2), ep(3)]);
    assert.equal(pick('a', [ep(1)])?.port, 1);
  });
});

describe('waypoint http retry budget', () => {
  test('at least 3 retries in flight, whatever the load', () => {
    const b = new RetryBudget();
    b.requestStarted();
    assert.deepEqual([b.tryRetry(), b.tryRetry(), b.tryRetry(), b.tryRetry()], [true, true, true, false]);
    b.retryFinished();
    assert.equal(b.tryRetry(), true);
  });

  test('20 % of active requests when that is more than 3', () => {
    const b = new RetryBudget();
    for (let i = 0; i < 50; i++) b.requestStarted();
    let granted = 0;
    while (b.tryRetry()) granted++;
    assert.equal(granted, 10);
    for (let i = 0; i < 25; i++) b.requestFinished();
    b.retryFinished();
    assert.equal(b.tryRetry(), false); // 9 in flight, 25 active: 5 allowed
    assert.deepEqual(b.stats, { active: 25, retrying: 9 });
  });
});

test('backend state is bounded: a client walking ports cannot grow it without end', () => {
  const backends = new Backends(
    undefined,
    () => 0.5,
    () => 0,
  );
  for (let port = 1; port <= 5000; port++) backends.of({ service: '@198.18.1.9', port });
  assert.ok(backends.size <= 4096, `${backends.size} backends kept`);
  const last = backends.of({ service: '@198.18.1.9', port: 5000 });
  assert.equal(backends.of({ service: '@198.18.1.9', port: 5000 }), last, 'the recent ones keep their state');
});
