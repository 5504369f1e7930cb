// The Prometheus client against loopback servers that answer well, badly or not at all: every failure is
// a clear error with a code, within the deadline; a good answer is read as Prometheus documents it.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { DASHBOARD_ERRORS } from '../../../src/dashboard/errors.ts';
import { PrometheusApi, parsePrometheusUrl } from '../../../src/dashboard/prometheus-api.ts';
import { hasCode } from '../../../src/errors/index.ts';

async function serve(
  t: { after: (fn: () => void) => void },
  handler: Parameters<typeof createServer>[1],
): Promise<string> {
  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('PrometheusApi', () => {
  test('reads a vector and a matrix, NaN kept as a number; the query is sent as Prometheus takes it', async (t) => {
    const seen: string[] = [];
    const url = await serve(t, (req, res) => {
      seen.push(req.url ?? '');
      const u = new URL(req.url ?? '', 'http://x');
      res.setHeader('content-type', 'application/json');
      if (u.pathname === '/prefix/api/v1/query')
        res.end(
          JSON.stringify({
            status: 'success',
            data: {
              resultType: 'vector',
              result: [
                { metric: { a: 'b' }, value: [1, 'NaN'] },
                { metric: {}, value: [1, '2.5'] },
              ],
            },
          }),
        );
      else
        res.end(
          JSON.stringify({
            status: 'success',
            data: {
              resultType: 'matrix',
              result: [
                {
                  metric: {},
                  values: [
                    [1, '1'],
                    [2, '3'],
                  ],
                },
              ],
            },
          }),
        );
    });
    const api = new PrometheusApi({ url: `${url}/prefix` });
    const v = await api.query('sum(rate(x{a="b"}[1m]))');
    assert.ok(Number.isNaN(v[0]!.value));
    assert.equal(v[1]!.value, 2.5);
    assert.deepEqual((await api.queryRange('x', 0, 10, 5))[0]!.points, [
      [1, 1],
      [2, 3],
    ]);
    assert.equal(new URL(seen[0]!, 'http://x').searchParams.get('query'), 'sum(rate(x{a="b"}[1m]))');
  });

  const failures: Array<[string, Parameters<typeof createServer>[1], string, RegExp]> = [
    [
      'a query Prometheus refuses',
      (_q, res) =>
        res.end(JSON.stringify({ status: 'error', errorType: 'bad_data', error: 'parse error at char 3' })),
      DASHBOARD_ERRORS.PROMETHEUS_QUERY,
      /refused the query \(bad_data\): parse error at char 3/,
    ],
    [
      'a body that is not its API',
      (_q, res) => res.end('<html>login</html>'),
      DASHBOARD_ERRORS.PROMETHEUS_UNAVAILABLE,
      /HTTP 200 and a body that is not Prometheus's API: <html>/,
    ],
    [
      'a server that never answers',
      () => {},
      DASHBOARD_ERRORS.PROMETHEUS_UNAVAILABLE,
      /no answer within 300 ms/,
    ],
    [
      'a result of the wrong shape',
      (_q, res) =>
        res.end(
          JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [{ value: 'x' }] } }),
        ),
      DASHBOARD_ERRORS.PROMETHEUS_UNAVAILABLE,
      /not Prometheus's API/,
    ],
  ];
  for (const [name, handler, code, message] of failures) {
    test(`${name}: ${code}`, async (t) => {
      const url = await serve(t, handler);
      const started = Date.now();
      await assert.rejects(new PrometheusApi({ url, timeoutMs: 300 }).query('up'), (err) => {
        assert.ok(hasCode(err, code), String(err));
        assert.match((err as Error).message, message);
        return true;
      });
      assert.ok(Date.now() - started < 2000, 'within the deadline');
    });
  }

  test('a refused connection is unavailable, and ready() says false rather than throwing', async () => {
    const api = new PrometheusApi({ url: 'http://127.0.0.1:1', timeoutMs: 500 });
    await assert.rejects(api.query('up'), (err) => hasCode(err, DASHBOARD_ERRORS.PROMETHEUS_UNAVAILABLE));
    assert.equal(await api.ready(), false);
  });

  const badUrls: Array<[string, RegExp]> = [
    ['not a url', /is not a URL/],
    ['ftp://127.0.0.1/', /must be an http:\/\/ or https:\/\/ URL/],
    ['http://user:pw@127.0.0.1:9090', /without credentials/],
    ['http://127.0.0.1:9090/?x=1', /without credentials, query or fragment/],
  ];
  for (const [text, message] of badUrls)
    test(`--prometheus "${text}" is refused`, () =>
      assert.throws(
        () => parsePrometheusUrl(text),
        (err) => hasCode(err, DASHBOARD_ERRORS.BAD_FLAG) && message.test((err as Error).message),
      ));
});
