// What the dashboard's server refuses before it reads anything: writes, names as hosts (DNS rebinding),
// cross-site and cross-origin requests.

import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import { DASHBOARD_ERRORS } from '../../../src/dashboard/errors.ts';
import { checkRequest } from '../../../src/dashboard/server.ts';
import { hasCode } from '../../../src/errors/index.ts';

const req = (method: string, headers: Record<string, string>) =>
  ({ method, headers }) as unknown as IncomingMessage;

describe('the dashboard refuses what a web page elsewhere could send', () => {
  const allowed: Array<[string, string, Record<string, string>]> = [
    ['a GET by IP', 'GET', { host: '127.0.0.1:20001' }],
    ['a HEAD by localhost', 'HEAD', { host: 'localhost:20001' }],
    ['an IPv6 host', 'GET', { host: '[::1]:20001' }],
    [
      'its own page fetching its API',
      'GET',
      { host: '127.0.0.1:20001', 'sec-fetch-site': 'same-origin', origin: 'http://127.0.0.1:20001' },
    ],
    ['an address typed in the bar', 'GET', { host: '127.0.0.1:20001', 'sec-fetch-site': 'none' }],
  ];
  for (const [name, method, headers] of allowed)
    test(`allows ${name}`, () => checkRequest(req(method, headers)));

  const refused: Array<[string, string, Record<string, string>, string, RegExp]> = [
    [
      'a POST',
      'POST',
      { host: '127.0.0.1' },
      DASHBOARD_ERRORS.METHOD_NOT_ALLOWED,
      /read-only: GET and HEAD only/,
    ],
    ['a DELETE', 'DELETE', { host: '127.0.0.1' }, DASHBOARD_ERRORS.METHOD_NOT_ALLOWED, /read-only/],
    [
      'a name as Host (DNS rebinding)',
      'GET',
      { host: 'attacker.example:20001' },
      DASHBOARD_ERRORS.BAD_REQUEST,
      /IP addresses or localhost only, not "attacker.example"/,
    ],
    ['no Host at all', 'GET', {}, DASHBOARD_ERRORS.BAD_REQUEST, /IP addresses or localhost only/],
    [
      'a cross-site fetch',
      'GET',
      { host: '127.0.0.1:20001', 'sec-fetch-site': 'cross-site' },
      DASHBOARD_ERRORS.BAD_REQUEST,
      /cross-site requests are refused/,
    ],
    [
      'a same-site fetch from another port',
      'GET',
      { host: '127.0.0.1:20001', 'sec-fetch-site': 'same-site' },
      DASHBOARD_ERRORS.BAD_REQUEST,
      /Sec-Fetch-Site: same-site/,
    ],
    [
      'another Origin',
      'GET',
      { host: '127.0.0.1:20001', origin: 'http://127.0.0.1:8080' },
      DASHBOARD_ERRORS.BAD_REQUEST,
      /another origin are refused \(Origin: http:\/\/127.0.0.1:8080\)/,
    ],
  ];
  for (const [name, method, headers, code, message] of refused)
    test(`refuses ${name}`, () =>
      assert.throws(
        () => checkRequest(req(method, headers)),
        (err) => hasCode(err, code) && message.test((err as Error).message),
      ));
});
