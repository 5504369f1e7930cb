// `ambit waypoint apply|list|status|delete` as a child process against an in-process control plane on
// 127.0.0.1: the Gateway stored, the namespace label added beside the others, list and status printed
// from the stored status, --wait timing out while nothing programs waypoints, and delete refusing
// Gateways that are not waypoints.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WaypointGateway } from '../../src/cli/waypoint.ts';
import type { ControlPlane } from '../../src/control/index.ts';
import { ambit } from '../helpers/control.ts';
import { adminFetch, startTestControl } from '../helpers/mesh.ts';

const SETUP = `
apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { istio.io/dataplane-mode: ambient, team: storefront } }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: web, namespace: shop }
spec: { gatewayClassName: istio, listeners: [{ name: http, port: 80, protocol: HTTP }] }
`;

async function get<T>(cp: ControlPlane, path: string): Promise<{ status: number; body: T }> {
  const res = await adminFetch(cp, path);
  return { status: res.status, body: (await res.json()) as T };
}

const gatewayPath = (ns: string, name: string) =>
  `/apis/gateway.networking.k8s.io/v1/namespaces/${ns}/gateways/${name}`;

test('ambit waypoint apply, list, status, delete against the control plane', async (t) => {
  const cp = await startTestControl(t);
  const env = {
    AMBIT_SERVER: `http://${cp.adminAddress}`,
    AMBIT_TOKEN: (await cp.adminTokens.create({ role: 'cluster-admin' })).token,
  };
  const run = (...args: string[]) => ambit(['waypoint', ...args], env);
  const setup = await ambit(['apply', '-f', '-'], env, SETUP);
  assert.equal(setup.code, 0, setup.stderr);

  // apply: the Gateway istioctl writes, the replicas annotation, and the namespace enrolled.
  const applied = await run(
    'apply',
    '-n',
    'shop',
    '--for',
    'workload',
    '--replicas',
    '2',
    '--enroll-namespace',
  );
  assert.equal(applied.code, 0, applied.stderr);
  assert.deepEqual(applied.stdout.trim().split('\n'), [
    '✅ waypoint shop/waypoint applied',
    '✅ namespace shop labeled with "istio.io/use-waypoint: waypoint"',
  ]);
  assert.equal(applied.stderr, '', 'an ambient namespace draws no warning');
  const stored = await get<WaypointGateway>(cp, gatewayPath('shop', 'waypoint'));
  assert.equal(stored.status, 200);
  assert.deepEqual(stored.body.spec, {
    gatewayClassName: 'istio-waypoint',
    listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
  });
  assert.deepEqual(stored.body.metadata.labels, { 'istio.io/waypoint-for': 'workload' });
  assert.deepEqual(stored.body.metadata.annotations, { 'ambit.dev/waypoint-replicas': '2' });
  const ns = await get<{ metadata: { labels: Record<string, string> } }>(cp, '/api/v1/namespaces/shop');
  assert.deepEqual(ns.body.metadata.labels, {
    'istio.io/dataplane-mode': 'ambient',
    team: 'storefront',
    'istio.io/use-waypoint': 'waypoint',
  });

  // Another waypoint may not take over the namespace without --overwrite; nothing is written.
  const taken = await run('apply', '-n', 'shop', '--name', 'other', '--enroll-namespace');
  assert.equal(taken.code, 1);
  assert.match(
    taken.stderr,
    /namespace shop already uses waypoint waypoint.*--overwrite.*AMBIT_ERR_CLI_WAYPOINT_ENROLLED/,
  );
  assert.equal((await adminFetch(cp, gatewayPath('shop', 'other'))).status, 404);
  // Nor may apply turn an existing Gateway of another class into a waypoint.
  const clash = await run('apply', '-n', 'shop', '--name', 'web');
  assert.equal(clash.code, 1);
  assert.match(
    clash.stderr,
    /gateway shop\/web is of class "istio", not a waypoint.*AMBIT_ERR_CLI_NOT_A_WAYPOINT/,
  );
  // --enroll-namespace needs the Namespace; nothing is applied without it.
  const nowhere = await run('apply', '-n', 'nowhere', '--enroll-namespace');
  assert.equal(nowhere.code, 1);
  assert.match(nowhere.stderr, /namespace nowhere not found.*AMBIT_ERR_CLI_NO_NAMESPACE/);
  assert.equal((await adminFetch(cp, gatewayPath('nowhere', 'waypoint'))).status, 404);

  // --wait: nothing programs waypoints in this control plane, so it times out, saying what the status says.
  const slow = await run('apply', '-n', 'shop', '--name', 'slow', '--wait', '--timeout', '2s');
  assert.equal(slow.code, 1, slow.stdout);
  assert.match(slow.stdout, /✅ waypoint shop\/slow applied/);
  assert.match(
    slow.stderr,
    /timed out after 2s waiting for waypoint shop\/slow to be programmed; .*AMBIT_ERR_CLI_WAYPOINT_TIMEOUT/,
  );
  const slowGw = (await get<WaypointGateway>(cp, gatewayPath('shop', 'slow'))).body;
  const said =
    slowGw.status?.conditions?.find((c) => c.type === 'Programmed') ?? slowGw.status?.conditions?.at(-1);
  assert.ok(said, 'the control plane reports some condition on a Gateway');
  assert.ok(
    slow.stderr.includes(`${said.type}=${said.status} (${said.reason}): ${said.message}`),
    slow.stderr,
  );

  // list: waypoints only (not the istio-class Gateway), PROGRAMMED from the stored status.
  // Read again: the control plane may have updated the status since.
  const now = async (name: string) => (await get<WaypointGateway>(cp, gatewayPath('shop', name))).body;
  const programmed = (gw: WaypointGateway) =>
    gw.status?.conditions?.find((c) => c.type === 'Programmed')?.status ?? 'False';
  const listed = await run('list', '-n', 'shop');
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(
    listed.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s{2,}/)),
    [
      ['NAME', 'REVISION', 'TRAFFIC TYPE', 'PROGRAMMED'],
      ['slow', 'default', 'service', programmed(await now('slow'))],
      ['waypoint', 'default', 'workload', programmed(await now('waypoint'))],
    ],
  );
  const all = await run('list', '-A', '-o', 'json');
  assert.equal(all.code, 0, all.stderr);
  const items = (JSON.parse(all.stdout) as { items: WaypointGateway[] }).items;
  assert.deepEqual(
    items.map((i) => `${i.metadata.namespace}/${i.metadata.name}`),
    ['shop/slow', 'shop/waypoint'],
  );
  const allTable = await run('list', '-A');
  assert.match(allTable.stdout, /^NAMESPACE\s+NAME\s+REVISION\s+TRAFFIC TYPE\s+PROGRAMMED\nshop\s+slow/);

  // status: the Programmed condition, or what the control plane reports today.
  const status = await run('status', '-n', 'shop', '--name', 'waypoint');
  assert.equal(status.code, 0, status.stderr);
  const [header, row, ...rest] = status.stdout.trim().split('\n');
  assert.match(header ?? '', /^NAMESPACE\s+NAME\s+STATUS\s+TYPE\s+REASON\s+MESSAGE$/);
  const current = await now('waypoint');
  const cond =
    current.status?.conditions?.find((c) => c.type === 'Programmed') ?? current.status?.conditions?.at(-1);
  assert.ok(cond);
  assert.deepEqual(row?.split(/\s{2,}/), [
    'shop',
    'waypoint',
    cond.status,
    cond.type,
    cond.reason,
    cond.message,
  ]);
  assert.deepEqual(rest, []);
  assert.equal((await run('status', '-n', 'shop')).stdout.trim().split('\n').length, 3, 'both waypoints');
  const notWaypoint = await run('status', '-n', 'shop', '--name', 'web');
  assert.match(notWaypoint.stderr, /AMBIT_ERR_CLI_NOT_A_WAYPOINT/);

  // delete: a Gateway of another class is refused, and nothing in the same call is deleted.
  const refused = await run('delete', 'waypoint', 'web', '-n', 'shop');
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    /nothing was deleted: gateway shop\/web is of class "istio", not a waypoint.*AMBIT_ERR_CLI_NOT_A_WAYPOINT/,
  );
  assert.equal((await adminFetch(cp, gatewayPath('shop', 'waypoint'))).status, 200);
  assert.equal((await adminFetch(cp, gatewayPath('shop', 'web'))).status, 200);
  const both = await run('delete', 'waypoint', 'ghost', '-n', 'shop');
  assert.equal(both.code, 1, 'a name not found is an error, as in ambit delete');
  assert.deepEqual(both.stdout.trim().split('\n'), [
    'waypoint shop/ghost not found',
    'waypoint shop/waypoint deleted',
  ]);
  const usage = await run('delete', 'slow', '--all', '-n', 'shop');
  assert.match(usage.stderr, /cannot specify waypoint names.*AMBIT_ERR_CLI_USAGE/);
  const everything = await run('delete', '--all', '-n', 'shop');
  assert.equal(everything.code, 0, everything.stderr);
  assert.equal(everything.stdout.trim(), 'waypoint shop/slow deleted');
  assert.equal((await adminFetch(cp, gatewayPath('shop', 'web'))).status, 200, 'other Gateways stay');
  const none = await run('list', '-n', 'shop');
  assert.equal(none.code, 0);
  assert.equal(none.stdout, '');
  assert.match(none.stderr, /No waypoints found\./);
});
