// An HTTP/1 server answering on an HTTP/2 stream (what the waypoint does on each HBONE tunnel) sends its
// head and body in one writev with the head as a string; buffersOnly makes the client receive the status
// line whole (Node 24's Http2Stream garbles string chunks of a writev). Loopback only.

import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { buffersOnly } from '../../../src/hbone/index.ts';

test('an HTTP/1 answer on an HTTP/2 stream arrives whole', async (t) => {
  const h1 = http.createServer((_req, res) => {
    const body = Buffer.from('route not found');
    res.writeHead(404, { 'content-type': 'text/plain', 'content-length': String(body.length) });
    res.write(body);
    res.end();
  });
  h1.emit('listening');
  const h2 = http2.createServer();
  h2.on('stream', (stream) => {
    stream.respond({ ':status': 200 });
    h1.emit('connection', buffersOnly(stream));
    stream.resume();
  });
  await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
  const session = http2.connect(`http://127.0.0.1:${(h2.address() as AddressInfo).port}`);
  t.after(() => {
    session.destroy();
    h2.close();
    h1.close();
  });
  const req = session.request({ ':method': 'POST', ':path': '/' });
  req.write('GET /missing HTTP/1.1\r\nHost: web\r\n\r\n');
  let got = '';
  for await (const chunk of req) {
    got += (chunk as Buffer).toString('latin1');
    if (got.includes('route not found')) break;
  }
  assert.match(got, /^HTTP\/1\.1 404 Not Found\r\n/);
  assert.match(got, /\r\n\r\nroute not found$/);
});
