// The shared lookup a proxy makes when it connects: an answer from the host's resolver, and a caller
// that gives up (its request was aborted) is let go at once.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveOne } from '../../../src/dns/index.ts';

describe('resolveOne', () => {
  test('answers a name the host resolves (localhost, from /etc/hosts)', async () => {
    assert.match(await resolveOne('localhost', 5_000), /^(127\.0\.0\.1|::1)$/);
  });

  test('an aborted caller is let go, before or during the lookup', async () => {
    const before = new AbortController();
    before.abort(new Error('gone before'));
    await assert.rejects(resolveOne('localhost', 5_000, before.signal), /gone before/);
    const during = new AbortController();
    // Aborted while the lookup runs: the caller hears the abort, not the lookup's own answer.
    const pending = resolveOne('never.invalid', 60_000, during.signal);
    during.abort(new Error('gone during'));
    await assert.rejects(pending, /gone during/);
  });
});
