// Upstream lists from a flag's text and from resolv.conf.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DNS_ERRORS, parseUpstreams, resolvConfNameservers } from '../../../src/dns/index.ts';
import { hasCode } from '../../../src/errors/index.ts';

const good: Array<[string, Array<{ host: string; port: number }>]> = [
  [
    '198.18.0.254:53,127.0.0.1:5353',
    [
      { host: '198.18.0.254', port: 53 },
      { host: '127.0.0.1', port: 5353 },
    ],
  ],
  ['127.0.0.1', [{ host: '127.0.0.1', port: 53 }]],
  [
    ' 127.0.0.1 , 127.0.0.2:1053 ',
    [
      { host: '127.0.0.1', port: 53 },
      { host: '127.0.0.2', port: 1053 },
    ],
  ],
  ['[::1]:5353', [{ host: '::1', port: 5353 }]],
  ['[::1]', [{ host: '::1', port: 53 }]],
  ['::1', [{ host: '::1', port: 53 }]],
  ['', []],
  ['   ', []],
];

for (const [text, want] of good) {
  test(`parseUpstreams(${JSON.stringify(text)})`, () => {
    assert.deepEqual(parseUpstreams(text), want);
  });
}

const bad = [
  'dns.google:53',
  'localhost',
  '127.0.0.1:0',
  '127.0.0.1:65536',
  '127.0.0.1:53x',
  '127.0.0.1:',
  '127.0.0.1,,127.0.0.2',
  '[::1]:99999',
  '[127.0.0.1]:53',
  '[::1',
  '300.1.1.1',
];

for (const text of bad) {
  test(`parseUpstreams refuses ${JSON.stringify(text)}, naming the text`, () => {
    assert.throws(
      () => parseUpstreams(text),
      (err) => hasCode(err, DNS_ERRORS.BAD_UPSTREAM) && err.message.includes(`"${text}"`),
    );
  });
}

test('resolv.conf: nameservers in order, port 53, comments and other lines ignored', () => {
  const text = [
    '# generated',
    'search foo.svc.cluster.local svc.cluster.local cluster.local',
    'nameserver 198.18.0.254',
    'nameserver   ::1   # the v6 one',
    '; nameserver 198.18.0.9',
    'nameserver not-an-address',
    'nameserver 198.18.0.254',
    'options ndots:5',
    '  nameserver 127.0.0.53',
    '',
  ].join('\n');
  assert.deepEqual(resolvConfNameservers(text), [
    { host: '198.18.0.254', port: 53 },
    { host: '::1', port: 53 },
    { host: '127.0.0.53', port: 53 },
  ]);
});

test('resolv.conf without nameservers gives none', () => {
  assert.deepEqual(resolvConfNameservers('search example.com\n'), []);
  assert.deepEqual(resolvConfNameservers(''), []);
});
