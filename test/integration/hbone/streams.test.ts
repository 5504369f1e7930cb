// Stream semantics through HBONE on loopback: half-close each way, resets each way, and the server's
// graceful close (open streams finish, new ones are refused, the deadline destroys what is left).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { before, describe, it, type TestContext } from 'node:test';
import { hasCode } from '../../../src/errors/index.ts';
import type { TlsMaterial } from '../../../src/hbone/index.ts';
import {
  CLIENT,
  customUpstream,
  echoServer,
  HBONE_IP,
  hboneServer,
  materialFor,
  newAuthority,
  newPool,
  readAll,
  SERVER,
} from './helpers.ts';

let client: TlsMaterial;
let server: TlsMaterial;

before(async () => {
  const ca = await newAuthority();
  client = await materialFor(ca, CLIENT);
  server = await materialFor(ca, SERVER);
});

async function tunnelTo(t: TestContext, upstreamPort: number) {
  const hbone = await hboneServer(t, { certFor: () => server });
  const tunnel = await newPool(t).connect({
    source: () => client,
    destination: { address: HBONE_IP, port: hbone.port },
    accepted: [SERVER],
    authority: `127.0.0.3:${upstreamPort}`,
  });
  return { hbone, tunnel };
}

/** Resolves once the stream has closed (at once if it already has); never rejects on 'error'. */
function closed(stream: http2.ClientHttp2Stream): Promise<void> {
  return new Promise((resolve) => (stream.closed ? resolve() : stream.once('close', () => resolve())));
}

function collect(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    s.on('data', (d) => {
      text += d;
    });
    s.on('end', () => resolve(text));
  });
}

describe('HBONE streams', () => {
  it('carries the client half-close to the upstream, which answers and then ends', async (t) => {
    const port = await customUpstream(t, (s) => {
      collect(s).then((text) => s.end(`got:${text}`));
    });
    const { tunnel, hbone } = await tunnelTo(t, port);
    const answer = readAll(tunnel.stream);
    tunnel.stream.write('abc');
    tunnel.stream.end('def');
    assert.equal((await answer).toString(), 'got:abcdef');
    await closed(tunnel.stream);
    while (hbone.records.length === 0) await new Promise((r) => setTimeout(r, 5));
    assert.equal(hbone.records[0]!.received, 6);
    assert.equal(hbone.records[0]!.sent, 'got:abcdef'.length);
    assert.equal(hbone.records[0]!.error, undefined);
  });

  it('carries the upstream half-close to the client, which can still send', async (t) => {
    let late: Promise<string> | undefined;
    const port = await customUpstream(t, (s) => {
      late = collect(s);
      s.end('bye');
    });
    const { tunnel } = await tunnelTo(t, port);
    // The client sees the upstream's data and end while its own side is still open.
    assert.equal((await readAll(tunnel.stream)).toString(), 'bye');
    assert.equal(tunnel.stream.writable, true);
    tunnel.stream.end('late words');
    assert.equal(await late, 'late words');
    await closed(tunnel.stream);
    assert.equal(tunnel.stream.rstCode, http2.constants.NGHTTP2_NO_ERROR);
  });

  it('turns an upstream reset into a stream reset the client sees', async (t) => {
    const port = await customUpstream(t, (s) => {
      s.once('data', () => s.resetAndDestroy());
    });
    const { tunnel, hbone } = await tunnelTo(t, port);
    const errors: Error[] = [];
    tunnel.stream.on('error', (err) => errors.push(err));
    tunnel.stream.write('trigger');
    tunnel.stream.resume();
    await closed(tunnel.stream);
    assert.equal(tunnel.stream.rstCode, http2.constants.NGHTTP2_CONNECT_ERROR);
    assert.equal(errors.length, 1);
    while (hbone.records.length === 0) await new Promise((r) => setTimeout(r, 5));
    assert.ok(hbone.records[0]!.error, 'the access record carries the reset');
  });

  it('turns a client stream reset into a TCP reset of the upstream', async (t) => {
    let upstreamError: Promise<NodeJS.ErrnoException> | undefined;
    let got: Promise<unknown> | undefined;
    const port = await customUpstream(t, (s) => {
      got = once(s, 'data');
      upstreamError = new Promise((resolve) => s.on('error', resolve));
    });
    const { tunnel } = await tunnelTo(t, port);
    tunnel.stream.write('hello');
    while (got === undefined) await new Promise((r) => setTimeout(r, 5));
    await got;
    tunnel.stream.close(http2.constants.NGHTTP2_CANCEL);
    assert.equal((await upstreamError!).code, 'ECONNRESET');
  });

  it('closes gracefully: open streams finish, new connections are refused', async (t) => {
    const echo = await echoServer(t);
    const { tunnel, hbone } = await tunnelTo(t, echo.port);
    const closing = hbone.server.close(30_000);
    await assert.rejects(
      newPool(t).connect({
        source: () => client,
        destination: { address: HBONE_IP, port: hbone.port },
        accepted: [SERVER],
        authority: `127.0.0.3:${echo.port}`,
      }),
      (err) => hasCode(err, 'AMBIT_ERR_HBONE_CONNECT'),
    );
    const back = readAll(tunnel.stream);
    tunnel.stream.end('still flowing');
    assert.equal((await back).toString(), 'still flowing');
    await closing;
    assert.deepEqual(hbone.server.stats(), { sessions: 0, streams: 0 });
  });

  it('destroys streams still open at the close deadline', async (t) => {
    const port = await customUpstream(t, () => {});
    const { tunnel, hbone } = await tunnelTo(t, port);
    tunnel.stream.resume();
    tunnel.stream.on('error', () => {});
    const gone = closed(tunnel.stream);
    await hbone.server.close(20);
    await gone;
    assert.notEqual(tunnel.stream.rstCode, http2.constants.NGHTTP2_NO_ERROR);
    assert.deepEqual(hbone.server.stats(), { sessions: 0, streams: 0 });
  });
});
