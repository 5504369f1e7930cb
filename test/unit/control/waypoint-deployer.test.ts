// The waypoint deployment plan: replicas placed on ready nodes, spread, kept where they are, removed when
// their Gateway goes or asks for fewer.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertValid, type GatewayResource } from '../../../src/config/index.ts';
import type { LabPod } from '../../../src/control/registry/index.ts';
import {
  MAX_WAYPOINT_PODS,
  MAX_WAYPOINT_PODS_PER_NAMESPACE,
  planWaypointPods,
  replicaPodName,
} from '../../../src/control/waypoint-deployer.ts';

const gw = (name: string, namespace: string, annotations: Record<string, string> = {}): GatewayResource =>
  assertValid({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace, annotations },
    spec: {
      gatewayClassName: 'istio-waypoint',
      listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
    },
  }) as GatewayResource;

const pod = (
  name: string,
  node: string,
  namespace = 'shop',
  serviceAccount = 'waypoint',
  replica = '0',
): LabPod => ({
  name,
  node,
  namespace,
  serviceAccount,
  address: '198.18.1.9',
  labels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint', 'ambit.dev/waypoint-replica': replica },
});

describe('waypoint deployment plan', () => {
  it('places one replica by default, with the Gateway name as service account and its labels', () => {
    const { add, remove } = planWaypointPods([gw('waypoint', 'shop')], ['node-1', 'node-2'], []);
    assert.equal(add.length, 1);
    assert.deepEqual(remove, []);
    assert.equal(add[0]!.name, replicaPodName('shop', 'waypoint', 0));
    assert.equal(add[0]!.serviceAccount, 'waypoint');
    assert.equal(add[0]!.namespace, 'shop');
    assert.equal(add[0]!.labels['gateway.networking.k8s.io/gateway-name'], 'waypoint');
    assert.ok(['node-1', 'node-2'].includes(add[0]!.node));
  });

  it('spreads replicas over nodes before doubling up', () => {
    const { add } = planWaypointPods(
      [gw('waypoint', 'shop', { 'ambit.dev/waypoint-replicas': '3' })],
      ['node-1', 'node-2'],
      [],
    );
    const perNode: Record<string, number> = {};
    for (const p of add) perNode[p.node] = (perNode[p.node] ?? 0) + 1;
    assert.deepEqual(Object.values(perNode).sort(), [1, 2]);
  });

  it('keeps a replica on its ready node, and moves it when that node is gone', () => {
    const name = replicaPodName('shop', 'waypoint', 0);
    const kept = planWaypointPods([gw('waypoint', 'shop')], ['node-1', 'node-2'], [pod(name, 'node-2')]);
    assert.deepEqual(kept, { add: [], remove: [] });
    const moved = planWaypointPods([gw('waypoint', 'shop')], ['node-1'], [pod(name, 'node-2')]);
    assert.deepEqual(moved.remove, [name]);
    assert.equal(moved.add[0]!.node, 'node-1');
  });

  it('removes replicas of a deleted Gateway or beyond the replicas asked, and leaves other pods alone', () => {
    const other: LabPod = { ...pod('client', 'node-1'), labels: { app: 'client' } };
    const r1 = replicaPodName('shop', 'waypoint', 1);
    const { remove } = planWaypointPods(
      [gw('waypoint', 'shop')],
      ['node-1'],
      [
        other,
        pod(replicaPodName('shop', 'waypoint', 0), 'node-1'),
        pod(r1, 'node-1', 'shop', 'waypoint', '1'),
      ],
    );
    assert.deepEqual(remove, [r1]);
    assert.deepEqual(planWaypointPods([], ['node-1'], [other]).remove, []);
  });

  it("a service account named by the annotation is the replicas' identity; changing it replaces them", () => {
    const g = gw('waypoint', 'shop', { 'gateway.istio.io/service-account': 'edge' });
    const name = replicaPodName('shop', 'waypoint', 0);
    const { add, remove } = planWaypointPods([g], ['node-1'], [pod(name, 'node-1')]);
    assert.deepEqual(remove, [name]);
    assert.equal(add[0]!.serviceAccount, 'edge');
  });

  it('a new replica does not double up beside a kept one while a node is empty', () => {
    const g = gw('waypoint', 'shop', { 'ambit.dev/waypoint-replicas': '2' });
    const kept = replicaPodName('shop', 'waypoint', 1);
    for (const node of ['node-1', 'node-2']) {
      const { add } = planWaypointPods([g], ['node-1', 'node-2'], [pod(kept, node, 'shop', 'waypoint', '1')]);
      assert.deepEqual(
        add.map((p) => p.node),
        [node === 'node-1' ? 'node-2' : 'node-1'],
      );
    }
  });

  it('caps the replicas of a namespace (older Gateways first) and of the mesh', () => {
    const many = Array.from({ length: 3 }, (_, i) =>
      gw(`w${i}`, 'shop', { 'ambit.dev/waypoint-replicas': '5' }),
    );
    const { add } = planWaypointPods(many, ['node-1'], []);
    assert.equal(add.length, MAX_WAYPOINT_PODS_PER_NAMESPACE);
    const spread = Array.from({ length: 8 }, (_, i) =>
      gw('w', `ns${i}`, { 'ambit.dev/waypoint-replicas': '10' }),
    );
    assert.equal(planWaypointPods(spread, ['node-1'], []).add.length, MAX_WAYPOINT_PODS);
  });

  it('a Gateway name with dots still makes a lab pod name', () => {
    assert.match(replicaPodName('shop', 'edge.v2.waypoint', 0), /^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$/);
  });

  it('places nothing without a ready node', () => {
    assert.deepEqual(planWaypointPods([gw('waypoint', 'shop')], [], []), { add: [], remove: [] });
  });

  it('pod names fit the lab (40 characters) and differ per namespace', () => {
    const long = 'a'.repeat(60);
    assert.ok(replicaPodName('shop', long, 9).length <= 40);
    assert.notEqual(replicaPodName('a', 'waypoint', 0), replicaPodName('b', 'waypoint', 0));
  });
});

describe('waypoint Gateway annotations are validated at apply', () => {
  for (const bad of ['0', '11', 'two', '1.5']) {
    it(`replicas "${bad}" is refused with the field path`, () => {
      assert.throws(
        () => gw('waypoint', 'shop', { 'ambit.dev/waypoint-replicas': bad }),
        /waypoint-replicas/,
      );
    });
  }
});
