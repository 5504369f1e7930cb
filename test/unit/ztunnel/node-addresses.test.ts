// The node's own addresses (issue 9 item 6): every address the node has, including the pods' gateway
// address that each pod link brings, is the node; a captured connection there is refused, whatever the port.

import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, test } from 'node:test';
import { TYPE } from '../../../src/xds/index.ts';
import { localAddresses } from '../../../src/ztunnel/node-agent.ts';
import { planOutbound } from '../../../src/ztunnel/plan.ts';
import { ZtunnelState } from '../../../src/ztunnel/state.ts';
import { workloadFixture } from '../../helpers/workloads.ts';

function workload(name: string, address: string, node: string, enrolled = true) {
  return workloadFixture(name, address, { node, enrolled });
}

function state() {
  const s = new ZtunnelState();
  s.apply(TYPE.workload, {
    upserts: [
      workload('client', '198.18.1.2', 'node-1'),
      workload('legacy', '198.18.2.9', 'node-2', false),
    ].map((w) => ({ name: w.uid, value: w })),
    removed: [],
  });
  return s.snapshot;
}

const v4 = (address: string): NetworkInterfaceInfo => ({
  address,
  netmask: '255.255.255.255',
  family: 'IPv4',
  mac: '00:00:00:00:00:00',
  internal: false,
  cidr: `${address}/32`,
});
const v6 = (address: string): NetworkInterfaceInfo => ({
  address,
  netmask: 'ffff:ffff:ffff:ffff::',
  family: 'IPv6',
  mac: '00:00:00:00:00:00',
  internal: false,
  cidr: `${address}/64`,
  scopeid: 0,
});

/** A lab node with two pods: the gateway address sits on both pod links. */
const node1 = {
  lo: [v4('127.0.0.1'), v6('::1')],
  eth0: [v4('198.18.0.1'), v6('fe80::1')],
  pod2: [v4('198.18.1.1'), v6('fe80::2')],
  pod3: [v4('198.18.1.1')],
  down: undefined,
};

describe("the node's own addresses", () => {
  test('every IPv4 address of every link, once each, sorted', () => {
    assert.deepEqual(localAddresses(node1), ['127.0.0.1', '198.18.0.1', '198.18.1.1']);
    assert.deepEqual(localAddresses({}), []);
  });

  test('the pod gateway address is refused like the primary address, on every port', () => {
    const snapshot = state();
    const ctx = { node: 'node-1', nodeAddresses: new Set(localAddresses(node1)) };
    // [target, port, kind]: the ztunnel's own ports and any other port of any node address.
    const cases: Array<[string, number, string]> = [
      ['198.18.1.1', 15020, 'refuse'],
      ['198.18.1.1', 15006, 'refuse'],
      ['198.18.1.1', 15008, 'refuse'],
      ['198.18.1.1', 15001, 'refuse'],
      ['198.18.1.1', 15000, 'refuse'],
      ['198.18.1.1', 7070, 'refuse'],
      ['198.18.0.1', 15020, 'refuse'],
      ['198.18.0.1', 22, 'refuse'],
      ['127.0.0.1', 8080, 'refuse'],
      // Another node's addresses and pods outside the mesh are not this node: passthrough.
      ['198.18.2.1', 7070, 'passthrough'],
      ['198.18.0.2', 15020, 'passthrough'],
      ['198.18.2.9', 8080, 'passthrough'],
    ];
    for (const [address, port, kind] of cases) {
      const plan = planOutbound(snapshot, '198.18.1.2', { address, port }, ctx);
      assert.equal(plan.kind, kind, `${address}:${port}: ${JSON.stringify(plan)}`);
    }
  });

  test('addresses read before the pod links existed miss the gateway: they must be kept current', () => {
    const before = { lo: node1.lo, eth0: node1.eth0 };
    const ctx = { node: 'node-1', nodeAddresses: new Set(localAddresses(before)) };
    const plan = planOutbound(state(), '198.18.1.2', { address: '198.18.1.1', port: 15020 }, ctx);
    assert.equal(plan.kind, 'passthrough');
  });
});
