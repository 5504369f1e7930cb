// Every way an HBONE tunnel is refused, on loopback, and the code the client sees: foreign clients, a
// server without a certificate for the address, 400/401/503 answers, bad input that opens nothing.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { before, describe, it, type TestContext } from 'node:test';
import * as tls from 'node:tls';
import { CertificateAuthority, createRootCa } from '../../../src/control/ca/index.ts';
import { hasCode } from '../../../src/errors/index.ts';
import { authorityMatchesDestination, type TlsMaterial } from '../../../src/hbone/index.ts';
import { workloadId } from '../../../src/identity/index.ts';
import {
  CLIENT,
  dialUpstream,
  echoServer,
  HBONE_IP,
  hboneServer,
  listen,
  materialFor,
  newAuthority,
  newPool,
  SERVER,
} from './helpers.ts';

let ca: CertificateAuthority;
let client: TlsMaterial;
let server: TlsMaterial;

before(async () => {
  ca = await newAuthority();
  client = await materialFor(ca, CLIENT);
  server = await materialFor(ca, SERVER);
});

async function connectVia(t: TestContext, hbonePort: number, authority: string, source = client) {
  return newPool(t).connect({
    source: () => source,
    destination: { address: HBONE_IP, port: hbonePort },
    accepted: [SERVER],
    authority,
  });
}

/** A raw HTTP/2 client with the client identity, to send what the pool never would. */
async function rawSession(t: TestContext, port: number): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`https://${HBONE_IP}:${port}`, {
    createConnection: () =>
      tls.connect({
        host: HBONE_IP,
        port,
        cert: client.certChainPem,
        key: client.keyPem,
        ca: client.trustBundlePem,
        ALPNProtocols: ['h2'],
        checkServerIdentity: () => undefined,
      }),
  });
  t.after(() => session.destroy());
  await once(session, 'remoteSettings');
  return session;
}

async function statusOf(stream: http2.ClientHttp2Stream): Promise<number> {
  const [headers] = await once(stream, 'response');
  stream.resume();
  return Number(headers[':status']);
}

describe('HBONE refusals', () => {
  it('refuses a client whose certificate comes from another root', async (t) => {
    const echo = await echoServer(t);
    let asked = 0;
    const hbone = await hboneServer(t, {
      certFor: () => server,
      onConnect: (ctx) => {
        asked += 1;
        return dialUpstream(ctx);
      },
    });
    const foreignCa = await newAuthority();
    const foreign = await materialFor(foreignCa, CLIENT);
    // The foreign client trusts our server, so only the server's check can stop it.
    const trusting = { ...foreign, trustBundlePem: foreign.trustBundlePem + client.trustBundlePem };
    await assert.rejects(connectVia(t, hbone.port, `127.0.0.3:${echo.port}`, trusting), (err) =>
      hasCode(err, 'AMBIT_ERR_HBONE_CONNECT'),
    );
    assert.equal(asked, 0);
    assert.equal(echo.accepted(), 0);
  });

  it('refuses a client from another trust domain even when its root is trusted', async (t) => {
    const echo = await echoServer(t);
    const otherTd = await CertificateAuthority.create({
      material: await createRootCa({ trustDomain: 'other.local' }),
      policy: { trustDomain: 'other.local', minTtlSeconds: 1 },
    });
    const outsider = await materialFor(otherTd, workloadId('other.local', 'default', 'client'));
    const both = client.trustBundlePem + outsider.trustBundlePem;
    const hbone = await hboneServer(t, { certFor: () => ({ ...server, trustBundlePem: both }) });
    await assert.rejects(
      connectVia(t, hbone.port, `127.0.0.3:${echo.port}`, { ...outsider, trustBundlePem: both }),
      (err) => hasCode(err, 'AMBIT_ERR_HBONE_CONNECT'),
    );
    assert.equal(echo.accepted(), 0);
    // The same server still serves its own trust domain.
    const ok = await connectVia(t, hbone.port, `127.0.0.3:${echo.port}`);
    ok.stream.end();
    ok.stream.resume();
  });

  it('closes the connection when there is no certificate for the destination address', async (t) => {
    const hbone = await hboneServer(t, { certFor: () => undefined });
    await assert.rejects(
      connectVia(t, hbone.port, '127.0.0.3:80'),
      (err) => hasCode(err, 'AMBIT_ERR_HBONE_CONNECT') && /blocking HBONE port/.test(err.message),
    );
  });

  it('reports a refused TCP connection as AMBIT_ERR_HBONE_CONNECT with the network-policy hint', async (t) => {
    const probe = net.createServer();
    const port = await listen(probe, HBONE_IP);
    await new Promise<void>((r) => probe.close(() => r()));
    await assert.rejects(
      connectVia(t, port, '127.0.0.3:80'),
      (err) =>
        hasCode(err, 'AMBIT_ERR_HBONE_CONNECT') &&
        err.message.includes(`maybe a network policy is blocking HBONE port ${port}`),
    );
  });

  it('turns 401 and 503 answers into DENIED and UNREACHABLE', async (t) => {
    const echo = await echoServer(t);
    const hbone = await hboneServer(t, {
      certFor: () => server,
      onConnect: (ctx) =>
        ctx.authority.port === echo.port ? { status: 401, reason: 'policy deny-all' } : dialUpstream(ctx),
    });
    await assert.rejects(connectVia(t, hbone.port, `127.0.0.3:${echo.port}`), (err) =>
      hasCode(err, 'AMBIT_ERR_HBONE_DENIED'),
    );
    // Nothing listens on a port we just released: the server cannot reach it and answers 503.
    const probe = net.createServer();
    const closedPort = await listen(probe, '127.0.0.3');
    await new Promise<void>((r) => probe.close(() => r()));
    await assert.rejects(connectVia(t, hbone.port, `127.0.0.3:${closedPort}`), (err) =>
      hasCode(err, 'AMBIT_ERR_HBONE_UNREACHABLE'),
    );
    assert.deepEqual(
      hbone.records.map((r) => [r.status, r.authority, r.peerIdentity]),
      [
        [401, `127.0.0.3:${echo.port}`, CLIENT],
        [503, `127.0.0.3:${closedPort}`, CLIENT],
      ],
    );
    assert.equal(hbone.records[0]!.reason, 'policy deny-all');
    assert.equal(echo.accepted(), 0);
  });

  it('answers 400 when the authority does not match where the connection went (ztunnel decision)', async (t) => {
    const echo = await echoServer(t);
    const hbone = await hboneServer(t, {
      certFor: () => server,
      onConnect: (ctx) =>
        authorityMatchesDestination(ctx.authority, ctx.destinationAddress)
          ? dialUpstream(ctx)
          : { status: 400, reason: 'authority is not this destination' },
    });
    await assert.rejects(connectVia(t, hbone.port, `127.0.0.3:${echo.port}`), (err) =>
      hasCode(err, 'AMBIT_ERR_HBONE_BAD_REQUEST'),
    );
    assert.equal(echo.accepted(), 0);
  });

  it('answers 400 to a method other than CONNECT and to a malformed authority, without asking', async (t) => {
    let asked = 0;
    const hbone = await hboneServer(t, {
      certFor: () => server,
      onConnect: (ctx) => {
        asked += 1;
        return dialUpstream(ctx);
      },
    });
    const session = await rawSession(t, hbone.port);
    assert.equal(await statusOf(session.request({ ':method': 'GET', ':path': '/' })), 400);
    assert.equal(
      await statusOf(session.request({ ':method': 'POST', ':path': '/', ':authority': '127.0.0.3:1' })),
      400,
    );
    assert.equal(
      await statusOf(
        session.request({ ':method': 'CONNECT', ':authority': 'example.com:80' }, { endStream: false }),
      ),
      400,
    );
    assert.equal(
      await statusOf(
        session.request({ ':method': 'CONNECT', ':authority': '127.0.0.3' }, { endStream: false }),
      ),
      400,
    );
    assert.equal(asked, 0);
    assert.deepEqual(
      hbone.records.map((r) => r.status),
      [400, 400, 400, 400],
    );
  });

  it('sends no SNI', async (t) => {
    const names: Array<string | false | null> = [];
    const tlsServer = tls.createServer({
      cert: server.certChainPem,
      key: server.keyPem,
      ca: server.trustBundlePem,
      requestCert: true,
      ALPNProtocols: ['h2'],
    });
    tlsServer.on('secureConnection', (s) => {
      names.push(s.servername);
      s.destroy();
    });
    const port = await listen(tlsServer, HBONE_IP);
    t.after(() => new Promise<void>((r) => tlsServer.close(() => r())));
    await assert.rejects(connectVia(t, port, '127.0.0.3:80'));
    assert.deepEqual(names, [false]);
  });

  it('rejects bad input with a coded error and opens nothing', async (t) => {
    const hbone = await hboneServer(t, { certFor: () => server });
    const pool = newPool(t);
    const base = {
      source: () => client,
      destination: { address: HBONE_IP, port: hbone.port },
      accepted: [SERVER],
      authority: '127.0.0.3:80',
    };
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['host-name authority', { authority: 'web.default:80' }, 'AMBIT_ERR_HBONE_BAD_AUTHORITY'],
      ['authority without port', { authority: '127.0.0.3' }, 'AMBIT_ERR_HBONE_BAD_AUTHORITY'],
      [
        'destination not an IP',
        { destination: { address: 'node-1', port: 15008 } },
        'AMBIT_ERR_HBONE_BAD_AUTHORITY',
      ],
      [
        'destination port 0',
        { destination: { address: HBONE_IP, port: 0 } },
        'AMBIT_ERR_HBONE_BAD_AUTHORITY',
      ],
      ['no accepted identity', { accepted: [] }, 'AMBIT_ERR_HBONE_BAD_OPTIONS'],
      ['accepted not a SPIFFE ID', { accepted: ['web'] }, 'AMBIT_ERR_IDENTITY_INVALID_SPIFFE_ID'],
      ['pseudo-header', { headers: { ':path': '/' } }, 'AMBIT_ERR_HBONE_BAD_HEADER'],
      ['connection header', { headers: { connection: 'close' } }, 'AMBIT_ERR_HBONE_BAD_HEADER'],
      ['CRLF in a value', { headers: { baggage: 'a=1\r\nx: y' } }, 'AMBIT_ERR_HBONE_BAD_HEADER'],
      ['source not a function', { source: client }, 'AMBIT_ERR_HBONE_BAD_OPTIONS'],
      [
        'material without a key',
        { source: () => ({ ...client, keyPem: '' }) },
        'AMBIT_ERR_HBONE_BAD_OPTIONS',
      ],
    ];
    for (const [name, patch, code] of cases) {
      await assert.rejects(pool.connect({ ...base, ...patch } as never), (err) => hasCode(err, code), name);
    }
    assert.equal(hbone.accepted(), 0);
    assert.equal(pool.stats().connections, 0);
  });

  it('rejects bad pool options', () => {
    assert.throws(
      () => newPool({ after() {} } as never, { maxStreamsPerConnection: 0 }),
      (err) => hasCode(err, 'AMBIT_ERR_HBONE_BAD_OPTIONS') && /maxStreamsPerConnection/.test(err.message),
    );
    assert.throws(
      () => newPool({ after() {} } as never, { flowControl: { maxFrameBytes: 100 } }),
      (err) => hasCode(err, 'AMBIT_ERR_HBONE_BAD_OPTIONS') && /maxFrameBytes/.test(err.message),
    );
  });
});
