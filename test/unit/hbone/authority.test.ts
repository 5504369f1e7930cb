// Pure HBONE helpers as tables: authority parsing and formatting, IP canonical forms, the authority-vs-
// destination check, pool keys, and request headers with their traceparent.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasCode } from '../../../src/errors/index.ts';
import {
  authorityMatchesDestination,
  canonicalIp,
  formatAuthority,
  forwardedFor,
  isTraceparent,
  newTraceparent,
  parseAuthority,
  poolKey,
  requestHeaders,
} from '../../../src/hbone/index.ts';
import type { SpiffeId } from '../../../src/identity/index.ts';

const A = 'spiffe://cluster.local/ns/a/sa/a' as SpiffeId;
const B = 'spiffe://cluster.local/ns/b/sa/b' as SpiffeId;
const W = 'spiffe://cluster.local/ns/b/sa/waypoint' as SpiffeId;

describe('parseAuthority', () => {
  const good: Array<[string, string, number]> = [
    ['198.18.0.5:8080', '198.18.0.5', 8080],
    ['198.19.0.1:1', '198.19.0.1', 1],
    ['127.0.0.3:65535', '127.0.0.3', 65535],
    ['[2001:2::5]:80', '2001:2::5', 80],
    ['[2001:2:0:0::5]:80', '2001:2::5', 80],
    ['[::ffff:198.18.2.3]:443', '198.18.2.3', 443],
  ];
  for (const [input, address, port] of good) {
    it(`parses ${input}`, () => assert.deepEqual(parseAuthority(input), { address, port }));
  }
  const bad: Array<[string | undefined, RegExp]> = [
    [undefined, /missing/],
    ['', /missing/],
    ['198.18.0.5', /port is missing/],
    ['198.18.0.5:', /not a decimal/],
    ['198.18.0.5:http', /not a decimal/],
    ['198.18.0.5:+80', /not a decimal/],
    ['198.18.0.5:0', /outside 1-65535/],
    ['198.18.0.5:65536', /outside 1-65535/],
    ['web.default.svc:80', /not an IP address/],
    ['198.18.0.256:80', /not an IP address/],
    ['2001:2::5:80', /brackets/],
    ['[2001:2::5:80', /closing/],
    ['[2001:2::5]', /port is missing/],
    ['[198.18.0.5]:80', /not an IPv6/],
  ];
  for (const [input, why] of bad) {
    it(`rejects ${JSON.stringify(input)}`, () =>
      assert.throws(
        () => parseAuthority(input),
        (err) => hasCode(err, 'AMBIT_ERR_HBONE_BAD_AUTHORITY') && why.test(err.message),
      ));
  }
});

describe('addresses', () => {
  it('formats IPv4 and bracketed IPv6', () => {
    assert.equal(formatAuthority({ address: '198.18.0.5', port: 15008 }), '198.18.0.5:15008');
    assert.equal(formatAuthority({ address: '2001:2:0::1', port: 15008 }), '[2001:2::1]:15008');
    assert.equal(formatAuthority({ address: '::ffff:127.0.0.2', port: 1 }), '127.0.0.2:1');
  });

  it('canonicalises IPs and refuses names', () => {
    assert.equal(canonicalIp('::ffff:7f00:2'), '127.0.0.2');
    assert.equal(canonicalIp('0:0:0:0:0:0:0:1'), '::1');
    assert.equal(canonicalIp('localhost'), undefined);
  });

  it('checks the authority against the real destination', () => {
    const cases: Array<[string, string, boolean]> = [
      ['198.18.0.5:80', '198.18.0.5', true],
      ['198.18.0.5:80', '::ffff:198.18.0.5', true],
      ['[2001:2::5]:80', '2001:2:0::5', true],
      ['198.19.0.1:80', '198.18.0.5', false],
      ['198.18.0.5:80', 'not-an-ip', false],
    ];
    for (const [authority, dst, want] of cases) {
      assert.equal(
        authorityMatchesDestination(parseAuthority(authority), dst),
        want,
        `${authority} vs ${dst}`,
      );
    }
  });

  it('writes forwarded as RFC 7239 asks', () => {
    assert.equal(forwardedFor({ address: '198.18.0.9', port: 4242 }), 'for="198.18.0.9:4242"');
    assert.equal(forwardedFor({ address: '2001:2::9', port: 4242 }), 'for="[2001:2::9]:4242"');
  });
});

describe('poolKey', () => {
  const dst = { address: '198.18.0.5', port: 15008 };
  it('ignores the order and repetition of accepted identities', () => {
    assert.equal(poolKey(A, [B, W], dst), poolKey(A, [W, B, W], dst));
  });
  it('separates sources, accepted sets and destinations', () => {
    const keys = [
      poolKey(A, [B], dst),
      poolKey(B, [B], dst),
      poolKey(A, [B, W], dst),
      poolKey(A, [B], { address: '198.18.0.6', port: 15008 }),
      poolKey(A, [B], { address: '198.18.0.5', port: 15009 }),
    ];
    assert.equal(new Set(keys).size, keys.length);
  });
  it('names the destination canonically', () => {
    assert.equal(poolKey(A, [B], { address: '::ffff:198.18.0.5', port: 15008 }), poolKey(A, [B], dst));
    assert.match(poolKey(A, [B], { address: '2001:2::5', port: 15008 }), /\|\[2001:2::5\]:15008$/);
  });
});

describe('request headers', () => {
  it('keeps a valid traceparent and starts one when missing or malformed', () => {
    const given = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    assert.equal(requestHeaders({ traceparent: given }).traceparent, given);
    const inputs: Array<Record<string, string> | undefined> = [
      undefined,
      {},
      { traceparent: 'garbage' },
      { traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` },
    ];
    for (const input of inputs) {
      const tp = requestHeaders(input).traceparent!;
      assert.ok(isTraceparent(tp), tp);
      assert.notEqual(tp, input?.traceparent);
    }
    assert.notEqual(newTraceparent(), newTraceparent());
  });

  it('lower-cases names and keeps values', () => {
    assert.deepEqual(Object.keys(requestHeaders({ Baggage: 'k=v', Forwarded: 'for="1.2.3.4:5"' })).sort(), [
      'baggage',
      'forwarded',
      'traceparent',
    ]);
  });

  it('refuses headers HTTP/2 cannot carry', () => {
    const cases: Array<Record<string, string>> = [
      { ':authority': 'x' },
      { 'bad name': 'x' },
      { 'transfer-encoding': 'chunked' },
      { baggage: 'a\nb' },
      { baggage: 'a', BAGGAGE: 'b' },
    ];
    for (const headers of cases) {
      assert.throws(
        () => requestHeaders(headers),
        (err) => hasCode(err, 'AMBIT_ERR_HBONE_BAD_HEADER'),
      );
    }
  });
});
