// Protocol sniffing for `auto` ports, as a table of first bytes: h2c preface, HTTP/1 request line,
// anything else TCP, and "not yet" while more bytes could still decide.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sniff } from '../../../src/waypoint/http/index.ts';

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

describe('waypoint http sniffing', () => {
  const cases: Array<[string, string | Buffer, boolean, ReturnType<typeof sniff>]> = [
    ['the HTTP/2 preface', PREFACE, false, 'h2c'],
    [
      'the preface and a SETTINGS frame',
      Buffer.concat([Buffer.from(PREFACE), Buffer.alloc(9)]),
      false,
      'h2c',
    ],
    ['part of the preface', 'PRI * HTT', false, undefined],
    ['part of the preface, then the end', 'PRI * HTT', true, 'tcp'],
    ['a GET request line', 'GET /books?id=1 HTTP/1.1\r\nHost: x\r\n', false, 'http1'],
    ['an HTTP/1.0 request line', 'POST / HTTP/1.0\r\n', false, 'http1'],
    ['an extension method', 'PROPFIND /dav HTTP/1.1\r\n', false, 'http1'],
    ['a request line not yet complete', 'GET /boo', false, undefined],
    ['a method alone', 'DELETE', false, undefined],
    ['a request line cut by the end', 'GET /', true, 'tcp'],
    ['a TLS ClientHello', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), false, 'tcp'],
    ['a MySQL-ish binary greeting', Buffer.from([0x0a, 0x35, 0x2e]), false, 'tcp'],
    ['a line with the wrong version', 'GET / HTTP/2.0\r\n', false, 'tcp'],
    ['a Redis command', '*1\r\n$4\r\nPING\r\n', false, 'tcp'],
    ['a leading space', ' GET / HTTP/1.1\r\n', false, 'tcp'],
    ['two spaces after the method', 'GET  / HTTP/1.1\r\n', false, 'tcp'],
    ['a partial version that can still match', 'GET / HTTP/1', false, undefined],
    ['a partial version that cannot', 'GET / HTTQ', false, 'tcp'],
  ];
  for (const [name, bytes, ended, want] of cases) {
    test(name, () =>
      assert.equal(sniff(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1'), ended), want),
    );
  }

  test('a request line longer than the sniff limit is TCP', () => {
    assert.equal(sniff(Buffer.from(`GET /${'a'.repeat(9000)}`)), 'tcp');
  });
});
