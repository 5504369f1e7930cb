// The waypoint's HTTP core over h2c and gRPC on loopback: grpc-js clients and servers on both sides
// (unary, client, server and bidi streaming; status passed through), node:http2, and `auto` sniffing.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { eventually, forwardTo, HOST, harness, listen, request, table } from './http-harness.ts';

const id = (b: Buffer) => b;
const method = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/test.Echo/${name}`,
  requestStream,
  responseStream,
  requestSerialize: id,
  requestDeserialize: id,
  responseSerialize: id,
  responseDeserialize: id,
});
const ECHO = {
  unary: method('Unary', false, false),
  fail: method('Fail', false, false),
  collect: method('Collect', true, false),
  repeat: method('Repeat', false, true),
  bidi: method('Bidi', true, true),
} as const;

type Any = any;

async function grpcBackend(t: TestContext): Promise<number> {
  const server = new grpc.Server();
  server.addService(ECHO as unknown as grpc.ServiceDefinition, {
    unary: (call: Any, cb: Any) => cb(null, Buffer.concat([Buffer.from('echo:'), call.request])),
    fail: (_call: Any, cb: Any) => cb({ code: grpc.status.NOT_FOUND, details: 'no such book' }),
    collect: (call: Any, cb: Any) => {
      const parts: Buffer[] = [];
      call.on('data', (b: Buffer) => parts.push(b));
      call.on('end', () => cb(null, Buffer.from(parts.map(String).join('+'))));
    },
    repeat: (call: Any) => {
      for (let i = 0; i < 3; i++) call.write(Buffer.from(`${call.request}-${i}`));
      call.emit('error', { code: grpc.status.ABORTED, details: 'after three' });
    },
    bidi: (call: Any) => {
      call.on('data', (b: Buffer) => call.write(Buffer.from(`re:${b}`)));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${HOST}:0`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  t.after(() => server.forceShutdown());
  return port;
}

function grpcClient(t: TestContext, port: number): Any {
  const Client = grpc.makeGenericClientConstructor(ECHO as unknown as grpc.ServiceDefinition, 'Echo');
  const client = new Client(`${HOST}:${port}`, grpc.credentials.createInsecure()) as Any;
  t.after(() => client.close());
  return client;
}

describe('waypoint h2c and gRPC', () => {
  test('gRPC unary, client, server and bidi streaming through h2c; status passed through', async (t) => {
    const bp = await grpcBackend(t);
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [bp] },
      protocol: 'grpc',
    });
    const client = grpcClient(t, h.port);

    const unary = await new Promise<Buffer>((resolve, reject) =>
      client.unary(Buffer.from('hi'), (err: Error | null, r: Buffer) => (err ? reject(err) : resolve(r))),
    );
    assert.equal(unary.toString(), 'echo:hi');

    // A trailers-only error response: grpc-status travels in the response head.
    const failed = await new Promise<grpc.ServiceError>((resolve) =>
      client.fail(Buffer.from('x'), (err: grpc.ServiceError) => resolve(err)),
    );
    assert.equal(failed.code, grpc.status.NOT_FOUND);
    assert.equal(failed.details, 'no such book');

    const collected = await new Promise<Buffer>((resolve, reject) => {
      const call = client.collect((err: Error | null, r: Buffer) => (err ? reject(err) : resolve(r)));
      for (const p of ['a', 'b', 'c']) call.write(Buffer.from(p));
      call.end();
    });
    assert.equal(collected.toString(), 'a+b+c');

    // Server streaming, then a status in the trailers after the messages.
    const repeated: string[] = [];
    const status = await new Promise<grpc.ServiceError>((resolve) => {
      const call = client.repeat(Buffer.from('r'));
      call.on('data', (b: Buffer) => repeated.push(b.toString()));
      call.on('error', resolve);
    });
    assert.deepEqual(repeated, ['r-0', 'r-1', 'r-2']);
    assert.equal(status.code, grpc.status.ABORTED);
    assert.equal(status.details, 'after three');

    // Bidi: each message answered before the next is sent, so both directions stream at once.
    const call = client.bidi();
    const replies: string[] = [];
    for (const word of ['one', 'two', 'three']) {
      call.write(Buffer.from(word));
      const [reply] = await once(call, 'data');
      replies.push(String(reply));
    }
    call.end();
    await once(call, 'end');
    assert.deepEqual(replies, ['re:one', 're:two', 're:three']);

    await eventually(() => h.access.length === 5);
    const text = await h.registry.metrics();
    assert.match(
      text,
      /request_protocol="grpc",response_code="200",grpc_response_status="0",response_flags="-"/,
    );
    assert.match(
      text,
      /request_protocol="grpc",response_code="200",grpc_response_status="5",response_flags="-"/,
    );
    assert.match(
      text,
      /request_protocol="grpc",response_code="200",grpc_response_status="10",response_flags="-"/,
    );
    assert.equal(h.connects.get(bp), 1); // one h2c session per endpoint, reused
  });

  test("the waypoint's own gRPC answer (no route: grpc-status 12) is trailers-only, as gRPC clients read it", async (t) => {
    const h = await harness(t, {
      routes: table(() => ({
        kind: 'respond',
        status: 200,
        headers: {
          'content-type': 'application/grpc',
          'grpc-status': '12',
          'grpc-message': 'route not found',
        },
        body: '',
        flags: 'NR',
      })),
      endpoints: {},
      protocol: 'grpc',
    });
    const client = grpcClient(t, h.port);
    const err = await new Promise<grpc.ServiceError>((resolve) =>
      client.unary(Buffer.from('hi'), (e: grpc.ServiceError) => resolve(e)),
    );
    assert.equal(err.code, grpc.status.UNIMPLEMENTED);
    assert.equal(err.details, 'route not found');
  });

  test('node:http2 prior knowledge: forward with response headers, and a local 404', async (t) => {
    const backend = http2.createServer();
    backend.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200, 'x-path': String(headers[':path']) });
      stream.end('h2 ok');
    });
    const bp = await listen(t, backend);
    const h = await harness(t, {
      routes: table((req) =>
        req.path === '/missing'
          ? { kind: 'respond', status: 404, headers: {}, body: 'nope', flags: 'NR' }
          : forwardTo('shop/reviews', 9080, req),
      ),
      endpoints: { 'shop/reviews': [bp] },
      protocol: 'http2',
    });
    const session = http2.connect(`http://${HOST}:${h.port}`);
    t.after(() => session.destroy());
    const get = (path: string) =>
      new Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
        const s = session.request({ ':path': path });
        let body = '';
        let head: http2.IncomingHttpHeaders = {};
        s.setEncoding('utf8');
        s.on('response', (hd) => {
          head = hd;
        });
        s.on('data', (c: string) => {
          body += c;
        });
        s.on('end', () => resolve({ status: Number(head[':status']), headers: head, body }));
        s.on('error', reject);
      });
    const ok = await get('/books');
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['x-path'], '/books');
    assert.equal(ok.body, 'h2 ok');
    const missing = await get('/missing');
    assert.equal(missing.status, 404);
    assert.equal(missing.body, 'nope');
  });

  test('h2c: a client that cancels mid-body cancels the upstream stream (DC); an upstream reset resets the client stream (UR)', async (t) => {
    const upstreamStreams = new Set<http2.ServerHttp2Stream>();
    const cancelled: Array<number | undefined> = [];
    let received = 0;
    const backend = http2.createServer();
    backend.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      if (headers[':path'] === '/reset') {
        stream.respond({ ':status': 200 });
        stream.write('partial');
        setImmediate(() => stream.destroy(new Error('backend broke')));
        return;
      }
      upstreamStreams.add(stream);
      stream.once('close', () => {
        cancelled.push(stream.rstCode);
        upstreamStreams.delete(stream);
      });
      stream.on('data', (c: Buffer) => {
        received += c.length;
      });
    });
    const bp = await listen(t, backend);
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [bp] },
      protocol: 'http2',
    });
    const session = http2.connect(`http://${HOST}:${h.port}`);
    t.after(() => session.destroy());
    const upload = session.request({ ':path': '/upload', ':method': 'POST' });
    upload.on('error', () => {});
    upload.write(Buffer.alloc(10_000, 1));
    await eventually(() => received >= 10_000 && upstreamStreams.size === 1);
    upload.close(http2.constants.NGHTTP2_CANCEL);
    await eventually(() => upstreamStreams.size === 0);
    assert.equal(cancelled[0], http2.constants.NGHTTP2_CANCEL); // a reset, not a clean end of the upload
    await eventually(() => h.access.length === 1);
    assert.equal(h.access[0]!.flags, 'DC');

    const reset = session.request({ ':path': '/reset' });
    reset.on('data', () => {});
    reset.on('error', () => {});
    await new Promise((resolve) => reset.once('close', resolve));
    assert.equal(reset.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
    await eventually(() => h.access.length === 2);
    assert.equal(h.access[1]!.flags, 'UR');
  });

  test('auto: an HTTP/1 request line, the HTTP/2 preface, and anything else passed through as TCP', async (t) => {
    const h1 = http.createServer((_req, res) => res.end('h1 backend'));
    const h2 = http2.createServer((_req, res) => res.end('h2 backend'));
    const tcp = net.createServer((s) => s.pipe(s));
    const [p1, p2, p3] = [await listen(t, h1), await listen(t, h2), await listen(t, tcp)];
    // The route chooses by protocol-free means (the path); TCP goes to the service's own endpoints.
    const h = await harness(t, {
      routes: table((req) => forwardTo(req.path === '/two' ? 'shop/h2' : 'shop/h1', 9080, req)),
      endpoints: { 'shop/h1': [p1], 'shop/h2': [p2], 'shop/reviews': [p3] },
      protocol: 'auto',
    });
    assert.equal((await request(h.port, { path: '/one' })).body, 'h1 backend');

    const session = http2.connect(`http://${HOST}:${h.port}`);
    t.after(() => session.destroy());
    const s = session.request({ ':path': '/two' });
    let body = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => {
      body += c;
    });
    await once(s, 'end');
    assert.equal(body, 'h2 backend');

    const raw = net.connect({ host: HOST, port: h.port });
    t.after(() => raw.destroy());
    await once(raw, 'connect');
    raw.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]));
    const [echoed] = await once(raw, 'data');
    assert.deepEqual([...echoed], [0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]);
  });
});
