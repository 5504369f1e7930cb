// ServiceEntries end to end in-process on 127.0.0.0/8, no root: a control plane, two ztunnels (capture
// "none", clients through SOCKS5), a ServiceEntry's VIP reached over HBONE (MESH_INTERNAL, selected
// WorkloadEntry) and a DNS endpoint resolved through the node's resolver (`localhost`, from /etc/hosts),
// which the ztunnel refuses to relay to because it is the node's own loopback.

import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import type { ControlPlane } from '../../../src/control/index.ts';
import type { Ztunnel } from '../../../src/ztunnel/index.ts';
import { eventually } from '../../helpers/lab.ts';
import { startTestControl } from '../../helpers/mesh.ts';
import { roundTrip, socksConnect } from '../../helpers/socks.ts';
import { ambientNamespace, inProcessZtunnel, workloadEcho, workloadEntry } from '../../helpers/ztunnel.ts';

const NODES = { 'node-1': '127.0.1.1', 'node-2': '127.0.2.1' } as const;
const CLIENT = '127.0.1.2';
const DB = '127.0.2.2';

const serviceEntry = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name, namespace: 'shop' },
  spec,
});

async function mesh(t: TestContext) {
  const cp = await startTestControl(t);
  await cp.api.apply([
    ambientNamespace('shop'),
    workloadEntry('shop', 'client', CLIENT, 'node-1'),
    workloadEntry('shop', 'db', DB, 'node-2'),
    serviceEntry('db', {
      hosts: ['db.internal'],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      ports: [{ number: 5432, name: 'pg', protocol: 'TCP', targetPort: 8080 }],
      workloadSelector: { labels: { app: 'db' } },
    }),
    serviceEntry('outside', {
      hosts: ['outside.example.com'],
      resolution: 'DNS',
      ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
      endpoints: [{ address: 'localhost', ports: { http: 8080 } }],
    }),
  ]);
  const z1 = await inProcessZtunnel(t, cp, 'node-1', NODES['node-1']);
  await inProcessZtunnel(t, cp, 'node-2', NODES['node-2']);
  await eventually(async () => (z1.state.snapshot.services.size === 2 ? true : undefined));
  return { cp, z1 };
}

const vipOf = (cp: ControlPlane, host: string): string => {
  const vip = cp.mesh.registry.services.find((s) => s.hostname === host)?.vips[0];
  assert.ok(vip, `${host} has no VIP`);
  return vip;
};

const via = (z: Ztunnel, to: { address: string; port: number }) =>
  socksConnect({ host: NODES['node-1'], port: z.boundPort('socks5') }, to, CLIENT);

describe('ServiceEntry through an in-process ztunnel', () => {
  test('MESH_INTERNAL: the auto-allocated VIP reaches the selected WorkloadEntry over HBONE, counted against the host', async (t) => {
    const { cp, z1 } = await mesh(t);
    await workloadEcho(t, DB);
    const vip = vipOf(cp, 'db.internal');
    assert.match(vip, /^198\.19\./);
    const reply = await roundTrip(await via(z1, { address: vip, port: 5432 }), 'to the VM');
    assert.equal(reply.toString(), 'to the VM');
    assert.match(
      await z1.metrics.metrics(),
      /istio_tcp_connections_opened_total\{[^}]*reporter="source"[^}]*destination_workload="db"[^}]*destination_service="db\.internal"[^}]*destination_service_name="db"[^}]*connection_security_policy="mutual_tls"/,
    );
  });

  test('DNS: the endpoint name is resolved by the node; one that resolves to loopback is refused, counted against the host', async (t) => {
    const { cp, z1 } = await mesh(t);
    const vip = vipOf(cp, 'outside.example.com');
    await assert.rejects(via(z1, { address: vip, port: 80 }), (err: { socksReply?: number }) => {
      assert.equal(err.socksReply, 2, 'SOCKS5 "connection not allowed by ruleset"');
      return true;
    });
    await eventually(async () =>
      /istio_tcp_connections_opened_total\{[^}]*destination_service="outside\.example\.com"[^}]*response_flags="NR"/.test(
        await z1.metrics.metrics(),
      )
        ? true
        : undefined,
    );
  });
});
