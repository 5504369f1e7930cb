// HBONE end to end on loopback: a pool on the client side, an HboneServer behind a listener on 127.0.0.2,
// upstream TCP servers on 127.0.0.3. Certificates come from a test root via the control plane's CA.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import type { CertificateAuthority } from '../../../src/control/ca/index.ts';
import { hasCode } from '../../../src/errors/index.ts';
import { forwardedFor, type TlsMaterial } from '../../../src/hbone/index.ts';
import {
  CLIENT,
  echoServer,
  HBONE_IP,
  hboneServer,
  materialFor,
  newAuthority,
  newPool,
  OTHER,
  readAll,
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

describe('HBONE tunnel', () => {
  it('carries bytes both ways and reports identities, headers and byte counts', async (t) => {
    const echo = await echoServer(t);
    const seen: Record<string, unknown>[] = [];
    const hbone = await hboneServer(t, {
      certFor: (dst) => (dst === HBONE_IP ? server : undefined),
      onConnect: async (ctx) => {
        seen.push({ peer: ctx.peerIdentity, dst: ctx.destinationAddress, headers: ctx.headers });
        const { dialUpstream } = await import('./helpers.ts');
        const d = await dialUpstream(ctx);
        return d.status === 200 ? { ...d, baggage: 'k8s.namespace.name=default' } : d;
      },
    });
    const pool = newPool(t);
    const tunnel = await pool.connect({
      source: () => client,
      destination: { address: HBONE_IP, port: hbone.port },
      accepted: [SERVER],
      authority: `127.0.0.3:${echo.port}`,
      headers: {
        forwarded: forwardedFor({ address: '127.0.0.9', port: 4242 }),
        baggage: 'k8s.namespace.name=src',
      },
    });
    assert.equal(tunnel.peerIdentity, SERVER);
    assert.equal(tunnel.sourceIdentity, CLIENT);
    assert.equal(tunnel.responseHeaders.baggage, 'k8s.namespace.name=default');
    tunnel.stream.end('hello, mesh');
    assert.equal((await readAll(tunnel.stream)).toString(), 'hello, mesh');

    assert.equal(seen.length, 1);
    const headers = seen[0]!.headers as Record<string, string>;
    assert.equal(seen[0]!.peer, CLIENT);
    assert.equal(seen[0]!.dst, HBONE_IP);
    assert.equal(headers.forwarded, 'for="127.0.0.9:4242"');
    assert.equal(headers.baggage, 'k8s.namespace.name=src');
    assert.match(headers.traceparent!, /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/);
    assert.equal(headers.traceparent, tunnel.requestHeaders.traceparent);

    await waitFor(() => hbone.records.length === 1);
    const rec = hbone.records[0]!;
    assert.equal(rec.status, 200);
    assert.equal(rec.received, 'hello, mesh'.length);
    assert.equal(rec.sent, 'hello, mesh'.length);
    assert.equal(rec.error, undefined);
    assert.equal(rec.authority, `127.0.0.3:${echo.port}`);
  });

  it('refuses a server whose identity is not accepted', async (t) => {
    const echo = await echoServer(t);
    const hbone = await hboneServer(t, { certFor: () => server });
    const pool = newPool(t);
    await assert.rejects(
      pool.connect({
        source: () => client,
        destination: { address: HBONE_IP, port: hbone.port },
        accepted: [OTHER],
        authority: `127.0.0.3:${echo.port}`,
      }),
      (err) =>
        hasCode(err, 'AMBIT_ERR_HBONE_IDENTITY') &&
        /spiffe:\/\/cluster.local\/ns\/default\/sa\/server/.test(err.message),
    );
    assert.equal(echo.accepted(), 0);
  });

  it('moves 16 MiB intact through one stream', async (t) => {
    const echo = await echoServer(t);
    const hbone = await hboneServer(t, { certFor: () => server });
    const pool = newPool(t);
    const tunnel = await pool.connect({
      source: () => client,
      destination: { address: HBONE_IP, port: hbone.port },
      accepted: [SERVER],
      authority: `127.0.0.3:${echo.port}`,
    });
    const payload = randomBytes(16 * 1024 * 1024);
    const back = readAll(tunnel.stream);
    tunnel.stream.end(payload);
    const got = await back;
    assert.equal(got.length, payload.length);
    assert.equal(
      createHash('sha256').update(got).digest('hex'),
      createHash('sha256').update(payload).digest('hex'),
    );
  });
});

async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}
