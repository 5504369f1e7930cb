// A sidecar's L7, in process on loopback: which ports it serves as HTTP; coming in, each request
// authorized with the policies its workload's bindings list (and no others), sent to the application and
// counted with reporter="destination"; going out, routes applied and the request counted with
// reporter="source". Connections are in-memory pairs; the application and backends are HTTP servers
// on 127.0.0.1.

import assert from 'node:assert/strict';
import * as http from 'node:http';
import type * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { type Duplex, duplexPair } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { HbonePool } from '../../../src/hbone/index.ts';
import type { CertificateManager, SpiffeId } from '../../../src/identity/index.ts';
import { logger } from '../../../src/log/index.ts';
import { SidecarL7 } from '../../../src/sidecar/index.ts';
import { type Delta, TYPE, type WorkloadResource } from '../../../src/xds/index.ts';
import { workloadFixture } from '../../helpers/workloads.ts';

async function server(name: string): Promise<{ server: http.Server; port: number }> {
  const s = http.createServer((req, res) => res.end(JSON.stringify({ server: name, path: req.url })));
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return { server: s, port: (s.address() as AddressInfo).port };
}

/** One HTTP/1.1 request over `conn`; the status line's code and the body. */
async function request(conn: Duplex, path: string, headers: Record<string, string> = {}) {
  const head = Object.entries({ host: 'x', connection: 'close', ...headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  conn.write(`GET ${path} HTTP/1.1\r\n${head}\r\n`);
  const chunks: Buffer[] = [];
  for await (const chunk of conn) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString();
  return { status: Number(text.split(' ')[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) };
}

const ap = (name: string, spec: Record<string, unknown>) => ({
  name: `shop/${name}`,
  value: {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: 'shop' },
    spec,
  },
});

/** A sidecar's L7 for workload `me`; `allowLoopback`: its backends outside the mesh may be on loopback. */
function sidecar(metrics: Registry, allowLoopback: boolean): SidecarL7 {
  return new SidecarL7({
    workload: 'uid/me',
    allowLoopback,
    parts: {
      metrics,
      // Nothing here opens HBONE: every endpoint is outside the mesh or the application itself.
      certs: {} as CertificateManager,
      pool: new HbonePool({}),
      log: logger('test'),
      connectTimeoutMs: 5_000,
    },
  });
}

describe('sidecar L7', () => {
  const metrics = new Registry();
  let l7: SidecarL7;
  let guarded: SidecarL7;
  let self: WorkloadResource;
  const servers: http.Server[] = [];
  let appPort = 0;

  before(async () => {
    const app = await server('app');
    const other = await server('other');
    servers.push(app.server, other.server);
    appPort = app.port;
    l7 = sidecar(metrics, true);
    guarded = sidecar(new Registry(), false);
    // Both are fed the same configuration.
    const both = {
      apply: (type: string, delta: Delta) => {
        for (const x of [l7, guarded]) x.apply(type, delta);
      },
    };
    const me = workloadFixture('me', '127.0.0.1', {
      sidecar: true,
      labels: { app: 'me', version: 'v1' },
      authorizationPolicies: [
        { policy: 'shop/deny-admin', scope: 'workload', enforcedBy: 'sidecar' },
        { policy: 'shop/custom-ext', scope: 'workload', enforcedBy: 'sidecar' },
      ],
    });
    const plainWeb = workloadFixture('web', '127.0.0.1', { enrolled: false, labels: { app: 'web' } });
    // Two clients with one service account (so one identity): told apart by the address the tunnel proves.
    const twin = 'spiffe://cluster.local/ns/shop/sa/twin';
    const twinA = workloadFixture('twin-a', '198.18.1.5', { identity: twin, labels: { app: 'a' } });
    const twinB = workloadFixture('twin-b', '198.18.1.6', { identity: twin, labels: { app: 'b' } });
    both.apply(TYPE.workload, {
      upserts: [me, plainWeb, twinA, twinB].map((w) => ({ name: w.uid, value: w })),
      removed: [],
    });
    self = l7.state.snapshot.workloads.get('uid/me')!;
    const service = (name: string, vip: string, ports: unknown[], endpoints: unknown[]) => ({
      name: `shop/${name}`,
      value: {
        key: `shop/${name}`,
        name,
        namespace: 'shop',
        hostname: `${name}.shop.svc.cluster.local`,
        vips: [vip],
        ports,
        endpoints,
      },
    });
    const ep = (workload: string, port: number, enrolled: boolean, extra: Record<string, number> = {}) => ({
      workload: `uid/${workload}`,
      name: workload,
      address: '127.0.0.1',
      enrolled,
      ports: { '80': port, ...extra },
    });
    both.apply(TYPE.service, {
      upserts: [
        service(
          'me',
          '198.19.0.1',
          [
            { port: 80, targetPort: appPort, name: 'http' },
            { port: 6379, targetPort: 6379, name: 'redis' },
          ],
          [ep('me', app.port, true, { '6379': 6379 })],
        ),
        service(
          'web',
          '198.19.0.2',
          [{ port: 80, targetPort: app.port, appProtocol: 'http' }],
          [ep('web', app.port, false)],
        ),
        service(
          'other',
          '198.19.0.3',
          [{ port: 80, targetPort: other.port, name: 'http-web' }],
          [ep('web', other.port, false)],
        ),
        service(
          'opaque',
          '198.19.0.4',
          [{ port: 80, targetPort: app.port, name: 'tcp' }],
          [ep('web', app.port, false)],
        ),
      ],
      removed: [],
    });
    both.apply(TYPE.sidecarAuthorization, {
      upserts: [
        // Scoped to the application's own port (the Service's is 80): a sidecar matches the workload's port.
        ap('deny-admin', {
          action: 'DENY',
          rules: [{ to: [{ operation: { ports: [String(app.port)], paths: ['/admin*'] } }] }],
        }),
        // The sidecar calls no external authorizer: denied, even with a provider that fails open.
        ap('custom-ext', {
          action: 'CUSTOM',
          provider: { name: 'ext' },
          rules: [{ to: [{ operation: { paths: ['/ext*'] } }] }],
        }),
        // Not in the workload's bindings (another workload's): never applied here.
        ap('deny-all-elsewhere', { selector: { matchLabels: { app: 'web' } }, action: 'DENY', rules: [{}] }),
      ],
      removed: [],
    });
    both.apply(TYPE.meshConfig, {
      upserts: [
        {
          name: 'default',
          value: {
            apiVersion: 'ambit.dev/v1alpha1',
            kind: 'MeshConfig',
            metadata: { name: 'default' },
            spec: {
              extensionProviders: [
                { name: 'ext', envoyExtAuthzHttp: { service: '127.0.0.1', port: 9, failOpen: true } },
              ],
            },
          },
        },
      ],
      removed: [],
    });
    both.apply(TYPE.httpRoute, {
      upserts: [
        {
          name: 'shop/web-split',
          value: {
            apiVersion: 'gateway.networking.k8s.io/v1',
            kind: 'HTTPRoute',
            metadata: { name: 'web-split', namespace: 'shop' },
            spec: {
              parentRefs: [{ group: '', kind: 'Service', name: 'web', port: 80 }],
              rules: [
                {
                  matches: [{ headers: [{ name: 'x-to', value: 'other' }] }],
                  backendRefs: [{ name: 'other', port: 80 }],
                },
                { backendRefs: [{ name: 'web', port: 80 }] },
              ],
            },
          },
        },
      ],
      removed: [],
    });
  });

  after(async () => {
    await l7.close();
    await guarded.close();
    for (const s of servers) s.close();
  });

  const requests = async (reporter: string) =>
    (await metrics.getSingleMetric('istio_requests_total')?.get())?.values.filter(
      (v) => v.labels.reporter === reporter,
    ) ?? [];

  /** One request over an inbound HBONE stream from `peer` (its tunnel proving address `from`, if given). */
  const inbound = async (path: string, peer = 'spiffe://cluster.local/ns/shop/sa/client', from?: string) => {
    const [client, tunnel] = duplexPair();
    const decision = l7.inbound(
      {
        authority: { address: '127.0.0.1', port: appPort },
        destinationAddress: '127.0.0.1',
        peerIdentity: peer as SpiffeId,
        peerAddress: { address: '198.18.1.9', port: 40000 },
        headers: from ? { forwarded: `for="${from}:41000"` } : {},
        stream: tunnel as never,
      },
      self,
      { address: '127.0.0.1', port: appPort },
    );
    assert.ok(decision.status === 200 && 'take' in decision);
    decision.take(tunnel as never);
    return request(client, path);
  };

  test('serves a port as HTTP when its Service declares it (appProtocol or port name), else leaves it to L4', () => {
    assert.equal(l7.servesInbound(self, appPort), true, 'the target of port 80 named http');
    assert.equal(l7.servesInbound(self, 6379), false, 'a port named redis stays TCP');
    assert.equal(l7.servesInbound(self, 9999), false, 'a port no Service targets stays TCP');
    const [near] = duplexPair();
    const svc = l7.state.snapshot.services.get('shop/opaque')!;
    assert.equal(l7.outbound(near as net.Socket, self, svc, { address: '198.19.0.4', port: 80 }), false);
  });

  test('the admin view lists the routes held and the policies that bind the workload', () => {
    const view = l7.view();
    assert.deepEqual(view.httpRoutes, ['shop/web-split']);
    assert.deepEqual(view.authorizationPolicies, ['shop/custom-ext', 'shop/deny-admin']);
  });

  test('inbound: each request is authorized with the bound policies, then sent to the application', async () => {
    const denied = await inbound('/admin/x');
    assert.equal(denied.status, 403);
    assert.equal(denied.body, 'RBAC: access denied');
    assert.equal((await inbound('/ext/1')).status, 403, 'CUSTOM denies what it matches at a sidecar');
    const allowed = await inbound('/hello');
    assert.equal(allowed.status, 200);
    assert.deepEqual(JSON.parse(allowed.body), { server: 'app', path: '/hello' });
    const counted = await requests('destination');
    const by = (code: string) => counted.find((v) => v.labels.response_code === code)?.labels;
    assert.equal(by('403')?.source_principal, 'spiffe://cluster.local/ns/shop/sa/client');
    // A refused request still names the workload it was for, as Istio's server side reports it.
    assert.equal(by('403')?.destination_workload, 'me');
    assert.equal(by('403')?.destination_principal, 'spiffe://cluster.local/ns/shop/sa/me');
    assert.equal(by('200')?.destination_workload, 'me');
    assert.equal(by('200')?.destination_principal, 'spiffe://cluster.local/ns/shop/sa/me');
    assert.equal(by('200')?.destination_service, 'me.shop.svc.cluster.local');
  });

  test('inbound: a client is named by the address its tunnel proves, not by an identity it shares', async () => {
    for (const [from, pod] of [
      ['198.18.1.5', 'twin-a'],
      ['198.18.1.6', 'twin-b'],
    ] as const) {
      assert.equal((await inbound('/twin', 'spiffe://cluster.local/ns/shop/sa/twin', from)).status, 200);
      const seen = (await requests('destination')).some((v) => v.labels.source_workload === pod);
      assert.ok(seen, `a request counted from ${pod}`);
    }
  });

  test('inbound plaintext (PERMISSIVE): served at L7 too, without a peer identity', async () => {
    const [client, socket] = duplexPair();
    l7.inboundPlain(socket as net.Socket, self, { address: '127.0.0.1', port: appPort }, '198.18.1.9');
    assert.equal((await request(client, '/plain')).status, 200);
    const plain = (await requests('destination')).find((v) => v.labels.connection_security_policy === 'none');
    assert.equal(plain?.labels.source_principal, 'unknown');
    assert.equal(plain?.labels.destination_workload, 'me');
  });

  test('outbound: routes pick the backend; the request is counted as the source reports it', async () => {
    const outbound = async (headers: Record<string, string>) => {
      const [client, captured] = duplexPair();
      const svc = l7.state.snapshot.services.get('shop/web')!;
      const took = l7.outbound(captured as net.Socket, self, svc, { address: '198.19.0.2', port: 80 });
      assert.equal(took, true);
      return request(client, '/p', headers);
    };
    assert.equal(JSON.parse((await outbound({})).body).server, 'app');
    assert.equal(JSON.parse((await outbound({ 'x-to': 'other' })).body).server, 'other');
    const counted = await requests('source');
    const services = counted.map((v) => v.labels.destination_service).sort();
    assert.deepEqual(services, ['other.shop.svc.cluster.local', 'web.shop.svc.cluster.local']);
    assert.ok(counted.every((v) => v.labels.source_workload === 'me' && v.labels.response_code === '200'));
    // Plaintext to an endpoint outside the mesh: the source cannot say mutual TLS (Istio writes unknown).
    assert.ok(counted.every((v) => v.labels.connection_security_policy === 'unknown'));
  });

  test("outbound: a backend outside the mesh on the pod's own loopback is never dialled", async () => {
    const [client, captured] = duplexPair();
    const svc = guarded.state.snapshot.services.get('shop/web')!;
    assert.equal(
      guarded.outbound(captured as net.Socket, self, svc, { address: '198.19.0.2', port: 80 }),
      true,
    );
    const answer = await request(client, '/p');
    assert.equal(answer.status, 503);
  });
});
