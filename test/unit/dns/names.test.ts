// The name table as tables of cases: exact names, case and trailing dots, wildcards, zones.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DNS_ERRORS, type Lookup, NameTable } from '../../../src/dns/index.ts';
import { hasCode } from '../../../src/errors/index.ts';

const table = new NameTable(
  [
    { name: 'httpbin.foo.svc.cluster.local', ipv4: ['198.19.0.10'], ipv6: ['2001:2::10'] },
    { name: 'v4only.foo.svc.cluster.local', ipv4: ['198.19.0.11', '198.19.0.12'], ipv6: [] },
    { name: 'v6only.foo.svc.cluster.local', ipv4: [], ipv6: ['2001:2::11'] },
    { name: '*.example.com', ipv4: ['198.19.3.1'], ipv6: [] },
    { name: '*.api.example.com', ipv4: ['198.19.3.2'], ipv6: [] },
    { name: 'exact.api.example.com', ipv4: ['198.19.3.3'], ipv6: [] },
    { name: '*.wild.cluster.local', ipv4: ['198.19.1.1'], ipv6: [] },
  ],
  { authoritativeZones: ['cluster.local'] },
);

const cases: Array<[string, string, string, Lookup]> = [
  [
    'exact A',
    'httpbin.foo.svc.cluster.local',
    'A',
    answer('httpbin.foo.svc.cluster.local', 'A', ['198.19.0.10']),
  ],
  [
    'exact AAAA',
    'httpbin.foo.svc.cluster.local',
    'AAAA',
    answer('httpbin.foo.svc.cluster.local', 'AAAA', ['2001:2::10']),
  ],
  [
    'any case',
    'HttpBin.FOO.svc.Cluster.Local',
    'A',
    answer('httpbin.foo.svc.cluster.local', 'A', ['198.19.0.10']),
  ],
  [
    'trailing dot',
    'httpbin.foo.svc.cluster.local.',
    'A',
    answer('httpbin.foo.svc.cluster.local', 'A', ['198.19.0.10']),
  ],
  [
    'type in lower case',
    'httpbin.foo.svc.cluster.local',
    'a',
    answer('httpbin.foo.svc.cluster.local', 'A', ['198.19.0.10']),
  ],
  [
    'several addresses',
    'v4only.foo.svc.cluster.local',
    'A',
    answer('v4only.foo.svc.cluster.local', 'A', ['198.19.0.11', '198.19.0.12']),
  ],
  ['no AAAA: nodata', 'v4only.foo.svc.cluster.local', 'AAAA', { kind: 'nodata', zone: 'cluster.local' }],
  ['no A: nodata', 'v6only.foo.svc.cluster.local', 'A', { kind: 'nodata', zone: 'cluster.local' }],
  [
    'other type of a known name: nodata',
    'httpbin.foo.svc.cluster.local',
    'TXT',
    { kind: 'nodata', zone: 'cluster.local' },
  ],
  ['MX of a wildcard name: nodata', 'x.example.com', 'MX', { kind: 'nodata' }],
  ['wildcard, one label more', 'www.example.com', 'A', answer('www.example.com', 'A', ['198.19.3.1'])],
  ['wildcard, two labels more', 'a.b.example.com', 'A', answer('a.b.example.com', 'A', ['198.19.3.1'])],
  ['wildcard does not cover its parent', 'example.com', 'A', { kind: 'unknown' }],
  [
    'most specific wildcard wins',
    'v1.api.example.com',
    'A',
    answer('v1.api.example.com', 'A', ['198.19.3.2']),
  ],
  [
    'most specific wildcard, deeper',
    'x.v1.api.example.com',
    'A',
    answer('x.v1.api.example.com', 'A', ['198.19.3.2']),
  ],
  [
    "the less specific wildcard covers the more specific one's parent",
    'api.example.com',
    'A',
    answer('api.example.com', 'A', ['198.19.3.1']),
  ],
  [
    'exact beats wildcard',
    'exact.api.example.com',
    'A',
    answer('exact.api.example.com', 'A', ['198.19.3.3']),
  ],
  ['unknown outside any zone', 'example.org', 'A', { kind: 'unknown' }],
  ['unknown outside any zone, PTR', '2.0.19.198.in-addr.arpa', 'PTR', { kind: 'unknown' }],
  [
    'inside the zone, not known: nxdomain',
    'nope.foo.svc.cluster.local',
    'A',
    { kind: 'nxdomain', zone: 'cluster.local' },
  ],
  [
    'inside the zone, any type: nxdomain',
    'nope.foo.svc.cluster.local',
    'TXT',
    { kind: 'nxdomain', zone: 'cluster.local' },
  ],
  [
    'a name above records in the zone exists: nodata',
    'foo.svc.cluster.local',
    'A',
    { kind: 'nodata', zone: 'cluster.local' },
  ],
  ['the zone apex: nodata', 'cluster.local.', 'A', { kind: 'nodata', zone: 'cluster.local' }],
  [
    'wildcard inside the zone',
    'anything.wild.cluster.local',
    'A',
    answer('anything.wild.cluster.local', 'A', ['198.19.1.1']),
  ],
  ['a name that only ends like the zone', 'notcluster.local', 'A', { kind: 'unknown' }],
  ['the root', '.', 'NS', { kind: 'unknown' }],
];

function answer(name: string, type: 'A' | 'AAAA', addresses: string[]): Lookup {
  return { kind: 'answer', name, addresses, type };
}

for (const [what, name, type, want] of cases) {
  test(`lookup: ${what}`, () => {
    assert.deepEqual(table.lookup(name, type), want);
  });
}

test('without authoritative zones nothing is NXDOMAIN', () => {
  const t = new NameTable([{ name: 'a.cluster.local', ipv4: ['198.19.4.1'], ipv6: [] }]);
  assert.deepEqual(t.lookup('b.cluster.local', 'A'), { kind: 'unknown' });
  assert.deepEqual(t.lookup('cluster.local', 'A'), { kind: 'unknown' });
});

test('size counts record sets, and a name given twice pools its addresses', () => {
  const t = new NameTable([
    { name: 'a.test', ipv4: ['198.19.4.1'], ipv6: [] },
    { name: 'A.test.', ipv4: ['198.19.4.2', '198.19.4.1'], ipv6: ['2001:2::1'] },
    { name: '*.test', ipv4: ['198.19.4.3'], ipv6: [] },
  ]);
  assert.equal(t.size, 2);
  assert.deepEqual(t.lookup('a.test', 'A'), answer('a.test', 'A', ['198.19.4.1', '198.19.4.2']));
  assert.deepEqual(t.lookup('a.test', 'AAAA'), answer('a.test', 'AAAA', ['2001:2::1']));
});

test('an answer is a copy: changing it does not change the table', () => {
  const t = new NameTable([{ name: 'a.test', ipv4: ['198.19.4.1'], ipv6: [] }]);
  const first = t.lookup('a.test', 'A');
  assert.equal(first.kind, 'answer');
  if (first.kind === 'answer') first.addresses.push('198.19.4.99');
  assert.deepEqual(t.lookup('a.test', 'A'), answer('a.test', 'A', ['198.19.4.1']));
});

const badRecords: Array<[string, { name: string; ipv4: string[]; ipv6: string[] }]> = [
  ['an IPv6 address among IPv4', { name: 'a.test', ipv4: ['2001:2::1'], ipv6: [] }],
  ['an IPv4 address among IPv6', { name: 'a.test', ipv4: [], ipv6: ['198.19.4.1'] }],
  ['not an address', { name: 'a.test', ipv4: ['a.b.c.d'], ipv6: [] }],
  ['an empty name', { name: '', ipv4: ['198.19.4.1'], ipv6: [] }],
  ['an empty label', { name: 'a..test', ipv4: ['198.19.4.1'], ipv6: [] }],
  ['a space', { name: 'a b.test', ipv4: ['198.19.4.1'], ipv6: [] }],
  ['a label over 63', { name: `${'x'.repeat(64)}.test`, ipv4: ['198.19.4.1'], ipv6: [] }],
  ['a name over 253', { name: `${'abcdefghi.'.repeat(26)}test`, ipv4: ['198.19.4.1'], ipv6: [] }],
  ['a wildcard not leftmost', { name: 'a.*.test', ipv4: ['198.19.4.1'], ipv6: [] }],
  ['a wildcard inside a label', { name: 'a*.test', ipv4: ['198.19.4.1'], ipv6: [] }],
  ['a bare wildcard', { name: '*', ipv4: ['198.19.4.1'], ipv6: [] }],
];

for (const [what, record] of badRecords) {
  test(`a record set with ${what} is refused with a code naming it`, () => {
    assert.throws(
      () => new NameTable([record]),
      (err) => hasCode(err, DNS_ERRORS.BAD_RECORD) && err.message.includes(JSON.stringify(record.name)),
    );
  });
}

test('a zone that is not a name is refused', () => {
  for (const zone of ['', 'a..b', '*.cluster.local']) {
    assert.throws(
      () => new NameTable([], { authoritativeZones: [zone] }),
      (err) => hasCode(err, DNS_ERRORS.BAD_ZONE),
    );
  }
});

test('service names (_http._tcp) are valid record names', () => {
  const t = new NameTable([{ name: '_http._tcp.web.test', ipv4: ['198.19.4.1'], ipv6: [] }]);
  assert.equal(t.lookup('_HTTP._tcp.web.test', 'A').kind, 'answer');
});

test('skipInvalid: a bad record set is left out and reported; the others are answered', () => {
  const skipped: string[] = [];
  const t = new NameTable(
    [
      { name: 'good.test', ipv4: ['198.19.4.1'], ipv6: [] },
      { name: 'bad name.test', ipv4: ['198.19.4.2'], ipv6: [] },
      { name: 'bad-address.test', ipv4: ['2001:2::1'], ipv6: [] },
    ],
    { skipInvalid: (err) => skipped.push(err.code) },
  );
  assert.equal(t.size, 1);
  assert.equal(t.lookup('good.test', 'A').kind, 'answer');
  assert.equal(t.lookup('bad-address.test', 'A').kind, 'unknown');
  assert.deepEqual(skipped, [DNS_ERRORS.BAD_RECORD, DNS_ERRORS.BAD_RECORD]);
});
