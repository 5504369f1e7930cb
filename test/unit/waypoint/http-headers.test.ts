// Header handling between client and backend, as tables: hop-by-hop dropped, the route's edits in
// Gateway API order, and the `-shadow` authority of mirrors.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  applyEdits,
  downstreamResponseHeaders,
  shadowAuthority,
  upstreamRequestHeaders,
  withoutHopByHop,
} from '../../../src/waypoint/http/index.ts';
import { NO_HEADER_EDITS } from '../../../src/waypoint/route-types.ts';

describe('waypoint http headers', () => {
  test('hop-by-hop headers, pseudo-headers, host and whatever connection names are dropped', () => {
    assert.deepEqual(
      withoutHopByHop({
        ':path': '/',
        host: 'reviews',
        connection: 'keep-alive, x-private',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'keep-alive',
        'transfer-encoding': 'chunked',
        upgrade: 'h2c',
        'http2-settings': 'AAA',
        expect: '100-continue',
        'x-private': 'secret',
        'x-kept': 'yes',
        'set-cookie': ['a=1', 'b=2'],
      }),
      { 'x-kept': 'yes', 'set-cookie': ['a=1', 'b=2'] },
    );
  });

  test('te survives only as trailers', () => {
    assert.deepEqual(withoutHopByHop({ te: 'trailers' }), { te: 'trailers' });
    assert.deepEqual(withoutHopByHop({ te: 'gzip, trailers' }), { te: 'trailers' });
    assert.deepEqual(withoutHopByHop({ te: 'gzip' }), {});
  });

  test('an upgrade keeps upgrade and says connection: upgrade', () => {
    assert.deepEqual(withoutHopByHop({ connection: 'Upgrade', upgrade: 'websocket' }, { upgrade: true }), {
      upgrade: 'websocket',
      connection: 'upgrade',
    });
  });

  const cases: Array<[string, Record<string, string | string[]>, Parameters<typeof applyEdits>[1], object]> =
    [
      ['set replaces', { a: '1' }, { set: [['a', '2']], add: [], remove: [] }, { a: '2' }],
      ['add appends', { a: '1' }, { set: [], add: [['a', '2']], remove: [] }, { a: ['1', '2'] }],
      ['add creates', {}, { set: [], add: [['a', '2']], remove: [] }, { a: '2' }],
      ['remove deletes', { a: '1', b: '2' }, { set: [], add: [], remove: ['a'] }, { b: '2' }],
      ['set, then add, then remove', { a: '0' }, { set: [['a', '1']], add: [['a', '2']], remove: ['a'] }, {}],
      ['names are lower-cased', {}, { set: [['X-Set', 'v']], add: [], remove: [] }, { 'x-set': 'v' }],
    ];
  for (const [name, headers, edits, want] of cases) {
    test(`edits: ${name}`, () => assert.deepEqual(applyEdits(headers, edits), want));
  }

  test('upstream request headers get x-forwarded-proto, edits after hop-by-hop removal', () => {
    assert.deepEqual(
      upstreamRequestHeaders(
        { connection: 'close', 'x-a': '1' },
        { set: [['connection', 'odd']], add: [], remove: [] },
      ),
      { 'x-a': '1', connection: 'odd', 'x-forwarded-proto': 'http' },
    );
  });

  test('response headers: hop-by-hop dropped, response edits applied', () => {
    assert.deepEqual(
      downstreamResponseHeaders({ 'transfer-encoding': 'chunked', server: 'b' }, NO_HEADER_EDITS),
      { server: 'b' },
    );
  });

  test('the mirror authority is suffixed -shadow before any port', () => {
    assert.equal(shadowAuthority('reviews'), 'reviews-shadow');
    assert.equal(shadowAuthority('reviews.shop:9080'), 'reviews.shop-shadow:9080');
    assert.equal(shadowAuthority('[2001:db8::1]:80'), '[2001:db8::1]-shadow:80');
  });
});
