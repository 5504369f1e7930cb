// The waypoint's HTTP core over HTTP/1.1 on loopback: real clients → an accepted socket → the proxy →
// the connector → backends the test starts. Behaviour only: what arrives where, what comes back.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import { describe, test } from 'node:test';
import type { RouteDecision } from '../../../src/waypoint/route-types.ts';
import { eventually, forwardTo, HOST, harness, listen, request, table } from './http-harness.ts';

/** A backend that answers with what it received, as JSON. */
function echoServer(name: string) {
  const seen: Array<{ method?: string; url?: string; headers: http.IncomingHttpHeaders; bytes: number }> = [];
  const server = http.createServer((req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
    });
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, bytes });
      res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name, connection: 'keep-alive' });
      res.end(JSON.stringify({ name, url: req.url, host: req.headers.host, bytes }));
    });
  });
  let connections = 0;
  server.on('connection', () => {
    connections++;
  });
  return { server, seen, connections: () => connections };
}

describe('waypoint HTTP/1.1', () => {
  test('a backend that closed an idle keep-alive connection gets the next request on a new one', async (t) => {
    const b = echoServer('idle');
    b.server.keepAliveTimeout = 100;
    const bp = await listen(t, b.server);
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/idle', 80, req)),
      endpoints: { 'shop/idle': [bp] },
      tunnel: true,
    });
    assert.equal((await request(h.port, { path: '/first' })).status, 200);
    await new Promise((r) => setTimeout(r, 1500)); // the backend closes its idle connection
    const second = await request(h.port, { path: '/second' });
    assert.equal(second.status, 200);
    assert.equal(JSON.parse(second.body).url, '/second');
    assert.equal(
      h.connects.get(bp),
      2,
      `the closed connection was not reused: ${h.connects.get(bp)} connects`,
    );
  });

  test('forwards to the backend, drops hop-by-hop headers, sets x-forwarded-proto, logs and counts', async (t) => {
    const b = echoServer('a');
    const bp = await listen(t, b.server);
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [bp] },
    });
    const res = await request(h.port, {
      path: '/books?id=1',
      headers: { host: 'reviews.shop:9080', 'keep-alive': 'timeout=5', 'x-hop': '1', connection: 'x-hop' },
    });
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).url, '/books?id=1');
    const seen = b.seen[0]!;
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-hop'], undefined);
    assert.equal(seen.headers['keep-alive'], undefined);
    assert.equal(seen.headers.host, 'reviews.shop:9080');
    await eventually(() => h.access.length === 1);
    const line = h.access[0]!;
    assert.equal(line.status, 200);
    assert.equal(line.method, 'GET');
    assert.equal(line.upstream, `${HOST}:${bp}`);
    assert.equal(line.source_principal, 'spiffe://cluster.local/ns/shop/sa/web');
    const text = await h.registry.metrics();
    assert.match(
      text,
      /istio_requests_total\{reporter="waypoint",source_workload="web",.*destination_workload="backend-\d+".*destination_service="reviews\.shop\.svc\.cluster\.local".*request_protocol="http",response_code="200",grpc_response_status="",response_flags="-",connection_security_policy="mutual_tls"\} 1/,
    );
    assert.match(text, /istio_request_duration_milliseconds_bucket\{le="0\.5",reporter="waypoint"/);
  });

  test('a route answering itself: 404 with NR, and a redirect', async (t) => {
    const h = await harness(t, {
      routes: table(
        (req): RouteDecision =>
          req.path === '/old'
            ? {
                kind: 'respond',
                status: 302,
                headers: { location: 'http://reviews.shop/new' },
                body: '',
                flags: '-',
              }
            : { kind: 'respond', status: 404, headers: {}, body: 'no route', flags: 'NR' },
      ),
      endpoints: {},
    });
    const missing = await request(h.port, { path: '/nothing' });
    assert.equal(missing.status, 404);
    assert.equal(missing.body, 'no route');
    const moved = await request(h.port, { path: '/old' });
    assert.equal(moved.status, 302);
    assert.equal(moved.headers.location, 'http://reviews.shop/new');
    await eventually(() => h.access.length === 2);
    assert.equal(h.access[0]!.flags, 'NR');
    assert.match(
      await h.registry.metrics(),
      /response_code="404",grpc_response_status="",response_flags="NR"/,
    );
  });

  test('a weighted split sends each backend its share', async (t) => {
    const a = echoServer('a');
    const b = echoServer('b');
    const [ap, bp] = [await listen(t, a.server), await listen(t, b.server)];
    // A deterministic "random": 0, 0.1, …, 0.9 again and again; 30 % to b.
    let i = 0;
    const random = () => (i++ % 10) / 10;
    const h = await harness(t, {
      routes: table((req, r) => forwardTo(r() < 0.7 ? 'shop/a' : 'shop/b', 9080, req)),
      endpoints: { 'shop/a': [ap], 'shop/b': [bp] },
      random,
    });
    for (let n = 0; n < 20; n++) await request(h.port, { path: '/' });
    assert.equal(a.seen.length, 14);
    assert.equal(b.seen.length, 6);
  });

  test('header edits both ways, and a URL rewrite of path and authority', async (t) => {
    const b = echoServer('a');
    const bp = await listen(t, b.server);
    const h = await harness(t, {
      routes: table((req) =>
        forwardTo('shop/reviews', 9080, req, {
          path: req.path.replace(/^\/v1/, '/api'),
          authority: 'reviews-internal',
          requestHeaders: { set: [['x-set', 'one']], add: [['x-add', 'two']], remove: ['x-drop'] },
          responseHeaders: { set: [['x-resp', 'yes']], add: [], remove: ['x-backend'] },
        }),
      ),
      endpoints: { 'shop/reviews': [bp] },
    });
    const res = await request(h.port, {
      path: '/v1/books',
      headers: { 'x-set': 'old', 'x-add': 'one', 'x-drop': 'gone' },
    });
    const seen = b.seen[0]!;
    assert.equal(seen.url, '/api/books');
    assert.equal(seen.headers.host, 'reviews-internal');
    assert.equal(seen.headers['x-set'], 'one');
    assert.equal(seen.headers['x-add'], 'one, two');
    assert.equal(seen.headers['x-drop'], undefined);
    assert.equal(res.headers['x-resp'], 'yes');
    assert.equal(res.headers['x-backend'], undefined);
  });

  test('a chunked upload streams through, and Expect: 100-continue is answered by the proxy', async (t) => {
    const b = echoServer('a');
    const bp = await listen(t, b.server);
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [bp] },
    });
    const res = await new Promise<{ status: number; body: string; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const req = http.request(
        {
          host: HOST,
          port: h.port,
          method: 'POST',
          path: '/upload',
          agent: false,
          headers: { expect: '100-continue' },
        },
        (r) => {
          let body = '';
          r.setEncoding('utf8');
          r.on('data', (c: string) => {
            body += c;
          });
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body, continued }));
        },
      );
      req.on('error', reject);
      req.on('continue', () => {
        continued = true;
        const chunk = Buffer.alloc(64 * 1024, 7);
        for (let n = 0; n < 32; n++) req.write(chunk); // 2 MiB, chunked (no content-length)
        req.end();
      });
    });
    assert.equal(res.continued, true);
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).bytes, 2 * 1024 * 1024);
    assert.equal(b.seen[0]!.headers.expect, undefined);
    assert.equal(b.seen[0]!.headers['transfer-encoding'], 'chunked');
  });

  test('upstream connections are kept alive and reused', async (t) => {
    const b = echoServer('a');
    const bp = await listen(t, b.server);
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [bp] },
    });
    for (let n = 0; n < 5; n++) assert.equal((await request(h.port, { path: `/${n}` })).status, 200);
    assert.equal(b.connections(), 1);
    assert.equal(h.connects.get(bp), 1);
  });

  test("a WebSocket-style upgrade is passed through and echoes, with the rule's rewrite and header edits", async (t) => {
    const upstream = http.createServer((_req, res) => res.writeHead(426).end());
    const seen: Array<{ url?: string; edited?: string | string[] }> = [];
    upstream.on('upgrade', (req, socket: net.Socket) => {
      seen.push({ url: req.url, edited: req.headers['x-edited'] });
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nupgrade: ${req.headers.upgrade}\r\nconnection: Upgrade\r\n\r\n`,
      );
      socket.pipe(socket);
    });
    const up = await listen(t, upstream);
    const h = await harness(t, {
      routes: table((req) =>
        forwardTo('shop/reviews', 9080, req, {
          path: '/v2/ws',
          requestHeaders: { set: [['x-edited', 'yes']], add: [], remove: [] },
        }),
      ),
      endpoints: { 'shop/reviews': [up] },
    });
    const { socket, head } = await new Promise<{ socket: net.Socket; head: Buffer }>((resolve, reject) => {
      const req = http.request({
        host: HOST,
        port: h.port,
        path: '/ws',
        agent: false,
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        },
      });
      req.on('upgrade', (res, s, hd) => {
        assert.equal(res.statusCode, 101);
        resolve({ socket: s, head: hd });
      });
      req.on('error', reject);
      req.end();
    });
    t.after(() => socket.destroy());
    socket.write('ping-frame');
    let got = head.toString();
    while (got.length < 'ping-frame'.length) got += (await once(socket, 'data'))[0].toString();
    assert.equal(got, 'ping-frame');
    assert.deepEqual(seen, [{ url: '/v2/ws', edited: 'yes' }]);
  });

  test('a mirror gets a copy with a -shadow host; its silence never delays the primary', async (t) => {
    const b = echoServer('a');
    const bp = await listen(t, b.server);
    const shadowed: Array<{ host?: string; body: string }> = [];
    const mirror = http.createServer((req) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => {
        body += c;
      });
      req.on('end', () => shadowed.push({ host: req.headers.host, body })); // and never answers
    });
    const mp = await listen(t, mirror);
    const h = await harness(t, {
      routes: table((req) =>
        forwardTo('shop/reviews', 9080, req, {
          mirrors: [{ backend: { service: 'shop/mirror', port: 9080 }, fraction: 1 }],
        }),
      ),
      endpoints: { 'shop/reviews': [bp], 'shop/mirror': [mp] },
    });
    const res = await request(h.port, {
      method: 'POST',
      path: '/order',
      headers: { host: 'reviews.shop:9080' },
      body: 'two books',
    });
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).bytes, 9);
    await eventually(() => shadowed.length === 1);
    assert.deepEqual(shadowed[0], { host: 'reviews.shop-shadow:9080', body: 'two books' });
  });

  test('a per-try timeout on the last attempt answers 504 UT; an earlier one is retried', async (t) => {
    let n = 0;
    const sometimes = http.createServer((_req, res) => {
      n++;
      if (n === 1) return; // the first attempt hangs
      res.end('late but fine');
    });
    const sp = await listen(t, sometimes);
    const hang = http.createServer(() => {});
    const hp = await listen(t, hang);
    const h = await harness(t, {
      routes: table((req) =>
        forwardTo(req.path === '/hang' ? 'shop/hang' : 'shop/reviews', 9080, req, {
          backendTimeoutMs: 100,
          retry: { attempts: 2, codes: [504], backoffMs: 0 },
        }),
      ),
      endpoints: { 'shop/reviews': [sp], 'shop/hang': [hp] },
    });
    const retried = await request(h.port, { path: '/' });
    assert.equal(retried.status, 200);
    assert.equal(retried.body, 'late but fine');
    const timedOut = await request(h.port, { path: '/hang' });
    assert.equal(timedOut.status, 504);
    assert.equal(timedOut.body, 'upstream request timeout');
  });

  test('the request timeout answers 504 upstream request timeout (UT)', async (t) => {
    const hang = http.createServer(() => {}); // never answers
    const hp = await listen(t, hang);
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req, { timeoutMs: 100 })),
      endpoints: { 'shop/reviews': [hp] },
    });
    const res = await request(h.port, { path: '/' });
    assert.equal(res.status, 504);
    assert.equal(res.body, 'upstream request timeout');
    await eventually(() => h.access.length === 1);
    assert.equal(h.access[0]!.flags, 'UT');
  });

  test('retries turn a backend that fails every other request into successes', async (t) => {
    let n = 0;
    const flaky = http.createServer((req, res) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      req.on('end', () => {
        n++;
        if (n % 2 === 1) res.writeHead(503).end('down');
        else res.writeHead(200).end(String(bytes));
      });
    });
    const fp = await listen(t, flaky);
    const h = await harness(t, {
      routes: table((req) =>
        forwardTo('shop/reviews', 9080, req, { retry: { attempts: 3, codes: [503], backoffMs: 1 } }),
      ),
      endpoints: { 'shop/reviews': [fp] },
    });
    for (let i = 0; i < 4; i++) {
      const res = await request(h.port, { method: 'POST', path: '/', body: 'hello body' });
      assert.equal(res.status, 200);
      assert.equal(res.body, '10'); // the buffered body was sent again in full
    }
    assert.equal(n, 8);
  });

  test('retries exhausted pass the last answer on with URX; no endpoint is 503 UH; a refused connect 503 UF', async (t) => {
    const down = http.createServer((_req, res) => res.writeHead(503).end('down'));
    const dp = await listen(t, down);
    const closed = net.createServer();
    const cp = await listen(t, closed);
    closed.close(); // nothing listens there any more: connection refused
    const h = await harness(t, {
      routes: table((req) =>
        forwardTo(
          req.path === '/none' ? 'shop/empty' : req.path === '/refused' ? 'shop/gone' : 'shop/down',
          9080,
          req,
          {
            retry: { attempts: 2, codes: [503], backoffMs: 0 },
          },
        ),
      ),
      endpoints: { 'shop/down': [dp], 'shop/gone': [cp], 'shop/empty': [] },
    });
    const exhausted = await request(h.port, { path: '/' });
    assert.equal(exhausted.status, 503);
    assert.equal(exhausted.body, 'down');
    const none = await request(h.port, { path: '/none' });
    assert.equal(none.status, 503);
    assert.equal(none.body, 'no healthy upstream');
    const refused = await request(h.port, { path: '/refused' });
    assert.equal(refused.status, 503);
    assert.equal(
      refused.body,
      'upstream connect error or disconnect/reset before headers. reset reason: connection failure',
    );
    await eventually(() => h.access.length === 3);
    assert.deepEqual(
      h.access.map((l) => l.flags),
      ['URX', 'UH', 'UF'],
    );
  });

  test('request smuggling (Content-Length with Transfer-Encoding) is refused with 400', async (t) => {
    const b = echoServer('a');
    const bp = await listen(t, b.server);
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [bp] },
    });
    const answer = await raw(
      h.port,
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.equal(b.seen.length, 0);
  });

  test('a request head over the limit is refused with 431', async (t) => {
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: {},
    });
    const answer = await raw(h.port, `GET / HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(70 * 1024)}\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 431 /);
  });

  test('a client that leaves mid-body aborts the upstream request (DC) and leaves no socket open', async (t) => {
    const upstreamSockets = new Set<net.Socket>();
    let received = 0;
    const slow = http.createServer((req) => {
      req.on('data', (c: Buffer) => {
        received += c.length;
      });
    });
    slow.on('connection', (s) => {
      upstreamSockets.add(s);
      s.once('close', () => upstreamSockets.delete(s));
    });
    const sp = await listen(t, slow);
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [sp] },
    });
    const client = net.connect({ host: HOST, port: h.port });
    client.on('error', () => {});
    await once(client, 'connect');
    client.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n');
    client.write(Buffer.alloc(10_000, 1));
    await eventually(() => received >= 10_000);
    client.destroy();
    await eventually(() => upstreamSockets.size === 0);
    await eventually(() => h.proxy.upstreamStats().http1Sockets === 0);
    await eventually(() => h.access.length === 1);
    assert.equal(h.access[0]!.flags, 'DC');
    assert.equal(h.proxy.active, 0);
  });

  test('an upstream that resets mid-response resets the client connection', async (t) => {
    const broken = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('partial');
      setImmediate(() => res.socket?.destroy());
    });
    const bp = await listen(t, broken);
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [bp] },
    });
    await assert.rejects(request(h.port, { path: '/' }));
    await eventually(() => h.access.length === 1);
    assert.equal(h.access[0]!.flags, 'UC');
    assert.equal(h.access[0]!.status, 200);
  });
});

/** Sends `text` on a raw socket and resolves with everything received until the proxy closes it. */
async function raw(port: number, text: string): Promise<string> {
  const s = net.connect({ host: HOST, port });
  s.on('error', () => {});
  await once(s, 'connect');
  s.write(text);
  let got = '';
  s.setEncoding('utf8');
  s.on('data', (c: string) => {
    got += c;
  });
  await Promise.race([once(s, 'close'), once(s, 'end')]);
  s.destroy();
  return got;
}
