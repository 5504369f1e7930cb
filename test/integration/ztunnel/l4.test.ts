// The L4 mesh in-process on 127.0.0.0/8, no root: a control plane, two ztunnels (capture "none":
// clients enter through SOCKS5, HBONE listeners bind each workload's loopback address), and real
// TCP servers as workloads. Covers HBONE end to end, pooling, identity, 401, 503 and half-close.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import type { ControlPlane } from '../../../src/control/index.ts';
import type { Ztunnel } from '../../../src/ztunnel/index.ts';
import { eventually } from '../../helpers/lab.ts';
import { startTestControl } from '../../helpers/mesh.ts';
import { roundTrip, socksConnect } from '../../helpers/socks.ts';
import { inProcessZtunnel } from '../../helpers/ztunnel.ts';

const NODES = { 'node-1': '127.0.1.1', 'node-2': '127.0.2.1' } as const;
const CLIENT = '127.0.1.2'; // on node-1, sa client
const OTHER = '127.0.1.3'; // on node-1, sa other
const SERVER = '127.0.2.2'; // on node-2, sa server
const LOCAL = '127.0.1.4'; // on node-1, sa server (same node as the client)

const ztunnel = (t: TestContext, cp: ControlPlane, node: keyof typeof NODES) =>
  inProcessZtunnel(t, cp, node, NODES[node], {
    adminListen: '127.0.0.1', // off by default; the test reads the admin over loopback TCP
    drainMs: 500,
  });

/** A TCP echo server on a workload address; returns what it saw of each connection. */
async function echo(t: TestContext, address: string, port = 8080) {
  const peers: string[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    peers.push(s.remoteAddress ?? '');
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(port, address, r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return peers;
}

const we = (
  name: string,
  address: string,
  node: string,
  sa: string,
  labels: Record<string, string> = {},
) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'WorkloadEntry',
  metadata: { name, namespace: 'shop' },
  spec: { address, serviceAccount: sa, node, labels: { app: name, ...labels } },
});

async function mesh(t: TestContext) {
  const cp = await startTestControl(t);
  await cp.api.apply([
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'shop', labels: { 'istio.io/dataplane-mode': 'ambient' } },
    },
    we('client', CLIENT, 'node-1', 'client'),
    we('other', OTHER, 'node-1', 'other'),
    we('server', SERVER, 'node-2', 'server', { version: 'v1' }),
    we('local', LOCAL, 'node-1', 'server'),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'server', namespace: 'shop' },
      spec: { selector: { app: 'server' }, ports: [{ port: 80, targetPort: 8080 }] },
    },
  ]);
  const z1 = await ztunnel(t, cp, 'node-1');
  const z2 = await ztunnel(t, cp, 'node-2');
  await eventually(async () =>
    z1.state.snapshot.workloads.size === 4 && z2.state.snapshot.services.size === 1 ? true : undefined,
  );
  const via = (z: Ztunnel, from: string, to: { address: string; port: number }) =>
    socksConnect({ host: NODES[z === z1 ? 'node-1' : 'node-2'], port: z.boundPort('socks5') }, to, from);
  return { cp, z1, z2, via };
}

async function metricsOf(z: Ztunnel): Promise<string> {
  return z.metrics.metrics();
}

describe('L4 mesh in-process', () => {
  test('HBONE across nodes and on one node, through a service VIP, with pooling and metrics', async (t) => {
    const { cp, z1, z2, via } = await mesh(t);
    const seenRemote = await echo(t, SERVER);
    const seenLocal = await echo(t, LOCAL);

    const reply = await roundTrip(
      await via(z1, CLIENT, { address: SERVER, port: 8080 }),
      'hello across nodes',
    );
    assert.equal(reply.toString(), 'hello across nodes');
    assert.equal(
      (await roundTrip(await via(z1, CLIENT, { address: LOCAL, port: 8080 }), 'same node')).toString(),
      'same node',
    );
    assert.equal(seenRemote.length, 1);
    assert.equal(seenLocal.length, 1);

    // The service VIP maps port 80 to targetPort 8080 on one of its endpoints.
    const vip = cp.mesh.registry.services[0]!.vips[0]!;
    for (let i = 0; i < 4; i++) {
      assert.equal(
        (await roundTrip(await via(z1, CLIENT, { address: vip, port: 80 }), `vip ${i}`)).toString(),
        `vip ${i}`,
      );
    }

    // 20 concurrent connections to one destination share pooled HBONE connections.
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const r = await roundTrip(await via(z1, CLIENT, { address: SERVER, port: 8080 }), `c${i}`);
        assert.equal(r.toString(), `c${i}`);
      }),
    );
    const stats = z1.pool.stats();
    assert.ok(stats.connections <= 3, `pool used ${stats.connections} connections`);

    const m2 = await metricsOf(z2);
    assert.match(
      m2,
      /istio_tcp_connections_opened_total\{[^}]*reporter="destination"[^}]*source_principal="spiffe:\/\/cluster.local\/ns\/shop\/sa\/client"[^}]*destination_workload="server"[^}]*connection_security_policy="mutual_tls"/,
    );
    const m1 = await metricsOf(z1);
    assert.match(
      m1,
      /istio_tcp_received_bytes_total\{[^}]*reporter="source"[^}]*destination_service="server.shop.svc.cluster.local"/,
    );
    const certs = z1.certs
      .status()
      .map((c) => c.identity)
      .sort();
    assert.deepEqual(certs, [
      'spiffe://cluster.local/ns/shop/sa/client',
      'spiffe://cluster.local/ns/shop/sa/other',
      'spiffe://cluster.local/ns/shop/sa/server',
    ]);
  });

  test('policy: ALLOW by principal and DENY by port, enforced at the destination with 401 and DENY metrics', async (t) => {
    const { cp, z1, z2, via } = await mesh(t);
    await echo(t, SERVER);
    await echo(t, SERVER, 6379);
    await cp.api.apply([
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name: 'only-client', namespace: 'shop' },
        spec: {
          selector: { matchLabels: { app: 'server' } },
          action: 'ALLOW',
          rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/client'] } }] }],
        },
      },
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name: 'no-redis', namespace: 'shop' },
        spec: { action: 'DENY', rules: [{ to: [{ operation: { ports: ['6379'] } }] }] },
      },
    ]);
    await eventually(async () => (z2.state.snapshot.authorizations.size === 2 ? true : undefined));
    assert.equal(
      (await roundTrip(await via(z1, CLIENT, { address: SERVER, port: 8080 }), 'ok')).toString(),
      'ok',
    );
    await assert.rejects(via(z1, OTHER, { address: SERVER, port: 8080 }), (e: any) => e.socksReply === 2);
    await assert.rejects(via(z1, CLIENT, { address: SERVER, port: 6379 }), (e: any) => e.socksReply === 2);
    const m2 = await metricsOf(z2);
    assert.match(
      m2,
      /istio_tcp_connections_opened_total\{[^}]*source_principal="spiffe:\/\/cluster.local\/ns\/shop\/sa\/other"[^}]*response_flags="DENY"/,
    );
  });

  test('a policy change closes open connections it now denies', async (t) => {
    const { cp, z1, z2, via } = await mesh(t);
    await echo(t, SERVER);
    const s = await via(z1, CLIENT, { address: SERVER, port: 8080 });
    s.write('ping');
    await new Promise((r) => s.once('data', r));
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    s.on('error', () => {});
    await cp.api.apply([
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name: 'deny-client', namespace: 'shop' },
        spec: {
          action: 'DENY',
          rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/client'] } }] }],
        },
      },
    ]);
    await closed;
    assert.equal(z2.connectionsView().length, 0);
  });

  test('503 when the destination does not answer; half-close both ways; a 16 MiB transfer intact', async (t) => {
    const { z1, via } = await mesh(t);
    // Nothing listens on SERVER:9999: the destination ztunnel answers 503 and the client is refused.
    await assert.rejects(via(z1, CLIENT, { address: SERVER, port: 9999 }), (e: any) => e.socksReply === 5);

    // Half-close: the server reads until the client's FIN, then answers and ends.
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => s.end(`got ${Buffer.concat(chunks).length} bytes`));
    });
    await new Promise<void>((r) => server.listen(7000, SERVER, r));
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    const s = await via(z1, CLIENT, { address: SERVER, port: 7000 });
    assert.equal((await roundTrip(s, 'x'.repeat(1000))).toString(), 'got 1000 bytes');

    const seen = await echo(t, SERVER, 7001);
    const big = randomBytes(16 * 1024 * 1024);
    const back = await roundTrip(await via(z1, CLIENT, { address: SERVER, port: 7001 }), big);
    assert.equal(
      createHash('sha256').update(back).digest('hex'),
      createHash('sha256').update(big).digest('hex'),
    );
    assert.equal(seen.length, 1);
  });

  test('admin endpoints show config, certificates and connections', async (t) => {
    const { z1 } = await mesh(t);
    const admin = `http://127.0.0.1:${z1.boundPort('admin')}`;
    const dump = (await (await fetch(`${admin}/config_dump`)).json()) as any;
    assert.equal(dump.node, 'node-1');
    assert.equal(dump.workloads.length, 4);
    assert.equal(dump.xds.connected, true);
    const certs = (await (await fetch(`${admin}/certs`)).json()) as any;
    assert.ok(certs.certificates.length >= 1);
    const ready = await fetch(`http://${NODES['node-1']}:${z1.boundPort('readiness')}/healthz/ready`);
    assert.equal(ready.status, 200);
  });
});
