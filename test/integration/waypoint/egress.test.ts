// Egress through the waypoint on loopback: endpoints outside the mesh (a ServiceEntry's) reached in plain
// TCP, by a DNS name, and with the TLS a DestinationRule originates (SIMPLE: the server verified against
// the rule's CA and names; refused when it does not verify). The servers are the sample echo, over TLS
// where the test says; behaviour only.

import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { describe, test } from 'node:test';
import { startEcho } from '../../../src/samples/index.ts';
import type { Endpoint } from '../../../src/waypoint/http/index.ts';
import { CertificateFiles, connectOutside } from '../../../src/waypoint/outside.ts';
import { type OriginationTls, originationOf } from '../../../src/waypoint/traffic-policy/index.ts';
import { serverCertificateFiles } from '../../helpers/tls-files.ts';
import { forwardTo, HOST, harness, request, table } from './http-harness.ts';

const SERVICE = 'ServiceEntry/egress/api.outside.test';
const HOSTNAME = 'api.outside.test';

async function echo(
  t: import('node:test').TestContext,
  tls?: { certPem: string; keyPem: string },
  host = HOST,
) {
  const server = await startEcho({
    host,
    port: 0,
    drainMs: 100,
    ...(tls ? { tls } : {}),
    pod: { pod: 'outside' },
  });
  t.after(() => server.close());
  return server.address.port;
}

/** The waypoint's HTTP core with one outside endpoint, reached by the real connector. */
async function egress(
  t: import('node:test').TestContext,
  endpoint: Endpoint,
  protocol: 'http' | 'http2' = 'http',
) {
  const files = new CertificateFiles();
  return harness(t, {
    routes: table((req) => forwardTo(SERVICE, 80, req)),
    endpoints: {},
    protocol,
    meta: { service: SERVICE, port: 80, destination: { hostname: HOSTNAME } },
    endpointsOf: (backend) => (backend.service === SERVICE ? [endpoint] : []),
    connect: (ep, signal, how) => connectOutside(ep, signal, how, files, 2_000),
  });
}

const simple = (more: Partial<OriginationTls> = {}): OriginationTls => ({
  ...(originationOf({ mode: 'SIMPLE' }) as OriginationTls),
  ...more,
});

const get = (port: number, host = HOSTNAME) => request(port, { path: '/get', headers: { host } });

describe('egress through the waypoint', () => {
  test('a ServiceEntry endpoint outside the mesh is reached in plain TCP', async (t) => {
    const port = await echo(t);
    const h = await egress(t, { address: HOST, port, host: HOSTNAME });
    const r = await get(h.port);
    assert.equal(r.status, 200, r.body);
    const body = JSON.parse(r.body);
    assert.equal(body.pod, 'outside');
    assert.equal(body.request.authority, HOSTNAME);
    assert.equal(body.request.tls, undefined, 'cleartext: no TLS was asked for');
    const line = h.access.at(-1)!;
    assert.equal(line.backend, `${SERVICE}:80`);
    assert.equal(line.upstream, `${HOST}:${port}`);
  });

  test('a DNS endpoint is resolved when the waypoint connects', async (t) => {
    // `localhost` may resolve to either loopback address: the echo listens on both.
    const port = await echo(t);
    const v6 = await startEcho({ host: '::1', port, drainMs: 100, pod: { pod: 'outside' } }).catch(
      () => undefined,
    );
    if (v6) t.after(() => v6.close());
    const h = await egress(t, { address: 'localhost', port, resolve: true, host: HOSTNAME });
    const r = await get(h.port);
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).pod, 'outside');
  });

  test('a name that does not resolve is a connection failure (503 UF), not a hang', async (t) => {
    const h = await egress(t, { address: 'no-such-host.invalid', port: 80, resolve: true });
    const r = await get(h.port);
    assert.equal(r.status, 503);
    assert.match(r.body, /connection failure/);
    assert.equal(h.access.at(-1)!.flags, 'UF');
  });

  test('tls SIMPLE originates TLS: the request host as SNI, the server verified against caCertificates', async (t) => {
    const files = await serverCertificateFiles(t, [HOSTNAME]);
    const port = await echo(t, files);
    const h = await egress(t, {
      address: HOST,
      port,
      host: HOSTNAME,
      tls: simple({ caCertificates: files.caPath }),
    });
    const r = await get(h.port);
    assert.equal(r.status, 200, r.body);
    const body = JSON.parse(r.body);
    assert.deepEqual(body.request.tls, { sni: HOSTNAME, alpn: null });
    assert.equal(body.request.authority, HOSTNAME, 'the Host header is the client’s');
  });

  test('a server whose certificate does not verify is refused (503 UF)', async (t) => {
    const files = await serverCertificateFiles(t, [HOSTNAME]);
    const port = await echo(t, files);
    const cases: Array<[string, Endpoint, string]> = [
      [
        'the system roots do not know the CA',
        { address: HOST, port, host: HOSTNAME, tls: simple() },
        HOSTNAME,
      ],
      [
        'the certificate does not name the request host',
        { address: HOST, port, host: HOSTNAME, tls: simple({ caCertificates: files.caPath }) },
        'other.outside.test',
      ],
      [
        'subjectAltNames name someone else',
        {
          address: HOST,
          port,
          host: HOSTNAME,
          tls: simple({ caCertificates: files.caPath, subjectAltNames: ['billing.outside.test'] }),
        },
        HOSTNAME,
      ],
    ];
    for (const [why, endpoint, host] of cases) {
      const h = await egress(t, endpoint);
      const r = await get(h.port, host);
      assert.equal(r.status, 503, `${why}: ${r.body}`);
      assert.equal(h.access.at(-1)!.flags, 'UF', why);
    }
  });

  test('sni, subjectAltNames and insecureSkipVerify do what the DestinationRule says', async (t) => {
    const files = await serverCertificateFiles(t, [HOSTNAME]);
    const port = await echo(t, files);
    const fixed = await egress(t, {
      address: HOST,
      port,
      tls: simple({ caCertificates: files.caPath, sni: HOSTNAME, subjectAltNames: [HOSTNAME] }),
    });
    const r1 = await get(fixed.port, 'anything.example');
    assert.equal(r1.status, 200, r1.body);
    assert.equal(JSON.parse(r1.body).request.tls.sni, HOSTNAME, 'a fixed sni, whatever the host');
    const skip = await egress(t, { address: HOST, port, tls: simple({ insecureSkipVerify: true }) });
    const r2 = await get(skip.port, 'not-in-the-cert.test');
    assert.equal(r2.status, 200, `insecureSkipVerify: ${r2.body}`);
  });

  test('HTTP/2 to a TLS server offers h2 by ALPN and sends :scheme https', async (t) => {
    const files = await serverCertificateFiles(t, [HOSTNAME]);
    const port = await echo(t, files);
    const h = await egress(
      t,
      { address: HOST, port, host: HOSTNAME, tls: simple({ caCertificates: files.caPath }) },
      'http2',
    );
    const session = http2.connect(`http://${HOST}:${h.port}`);
    t.after(() => session.close());
    const stream = session.request({ ':path': '/get', ':authority': HOSTNAME });
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    const status = await new Promise<number>((resolve) =>
      stream.once('response', (hd) => resolve(Number(hd[':status']))),
    );
    await new Promise((resolve) => stream.once('end', resolve));
    const body = JSON.parse(Buffer.concat(chunks).toString());
    assert.equal(status, 200);
    assert.deepEqual(body.request.tls, { sni: HOSTNAME, alpn: 'h2' });
    assert.equal(body.request.httpVersion, '2.0');
  });

  test('a rule that names a Secret (credentialName) fails its connections and says why', async (t) => {
    const files = await serverCertificateFiles(t, [HOSTNAME]);
    const port = await echo(t, files);
    const h = await egress(t, {
      address: HOST,
      port,
      host: HOSTNAME,
      tls: simple({ credentialName: 'outside-ca' }),
    });
    const r = await get(h.port);
    assert.equal(r.status, 503);
    assert.match(String(h.access.at(-1)!.error), /credentialName outside-ca .*no secret store/);
  });

  test('an unreadable caCertificates file is named in the error', async (t) => {
    const files = await serverCertificateFiles(t, [HOSTNAME]);
    const port = await echo(t, files);
    const missing = `${files.dir}/missing.pem`;
    const h = await egress(t, {
      address: HOST,
      port,
      host: HOSTNAME,
      tls: simple({ caCertificates: missing }),
    });
    const r = await get(h.port);
    assert.equal(r.status, 503);
    assert.match(String(h.access.at(-1)!.error), new RegExp(`tls.caCertificates ${missing}`));
  });
});
