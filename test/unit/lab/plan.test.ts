import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LAB_INFRASTRUCTURE_CIDRS } from '../../../src/cli/up.ts';
import { hasCode } from '../../../src/errors/index.ts';
import { clusterDns } from '../../../src/lab/index.ts';
import {
  allocatePodHost,
  hostAddress,
  hostBridgePort,
  isHostName,
  labNames,
  MAX_NODES,
  nodeAddress,
  nodeGateway,
  nodeIndex,
  nodeResolvConf,
  parseLabels,
  planPodAdd,
  planUp,
  podResolvConf,
  podSubnet,
  validateLabName,
  validateNodeCount,
  validatePodName,
} from '../../../src/lab/plan.ts';
import { ipInCidr } from '../../../src/policy/index.ts';

const code = (c: string) => (err: unknown) => hasCode(err, c);

describe('lab address plan', () => {
  test('nodes and pods follow the lab address plan', () => {
    assert.equal(nodeAddress(1), '198.18.0.1');
    assert.equal(nodeAddress(7), '198.18.0.7');
    assert.equal(nodeGateway(2), '198.18.2.1');
    assert.equal(podSubnet(3), '198.18.3.0/24');
  });

  test('pod hosts: lowest free from .2, never the gateway, error when full', () => {
    const cases: Array<[string[], number]> = [
      [[], 2],
      [['198.18.1.2'], 3],
      [['198.18.1.3'], 2],
      [['198.18.1.2', '198.18.1.3', '198.18.1.5'], 4],
      [['198.18.2.2'], 2], // another node's address does not count
    ];
    for (const [taken, want] of cases) assert.equal(allocatePodHost(1, taken), want, JSON.stringify(taken));
    const full = Array.from({ length: 253 }, (_, i) => `198.18.1.${i + 2}`);
    assert.throws(() => allocatePodHost(1, full), code('AMBIT_ERR_LAB_NODE_FULL'));
  });

  test('node names resolve only within the lab', () => {
    const cases: Array<[string, number, number | undefined]> = [
      ['node-1', 2, 1],
      ['node-2', 2, 2],
      ['node-3', 2, undefined],
      ['node-0', 2, undefined],
      ['node-01', 2, undefined],
      ['node1', 2, undefined],
      ['web', 2, undefined],
    ];
    for (const [name, count, want] of cases) assert.equal(nodeIndex(name, count), want, name);
  });

  test('every namespace carries the lab prefix', () => {
    const n = labNames('t1');
    assert.equal(n.net, 'ambit-t1-net');
    assert.equal(n.node(2), 'ambit-t1-node-2');
    assert.equal(n.pod('web'), 'ambit-t1-pod-web');
    for (const step of [...planUp(n, 3), ...planPodAdd(n, 'web', 2, 5)]) {
      if (step.netns) assert.ok(step.netns.startsWith(n.prefix), JSON.stringify(step));
      if (step.args[0] === 'netns') assert.ok(step.args[2]?.startsWith(n.prefix), JSON.stringify(step));
    }
  });

  test("up routes each node, and the control plane's namespace, to every other node's pod subnet via its underlay address", () => {
    const n = labNames('t1');
    const routes = planUp(n, 3).filter((s) => s.args[0] === 'route');
    assert.deepEqual(
      routes.map((s) => [s.netns, ...s.args]),
      [
        [n.node(1), 'route', 'add', '198.18.2.0/24', 'via', '198.18.0.2'],
        [n.node(1), 'route', 'add', '198.18.3.0/24', 'via', '198.18.0.3'],
        [n.net, 'route', 'add', '198.18.1.0/24', 'via', '198.18.0.1'],
        [n.node(2), 'route', 'add', '198.18.1.0/24', 'via', '198.18.0.1'],
        [n.node(2), 'route', 'add', '198.18.3.0/24', 'via', '198.18.0.3'],
        [n.net, 'route', 'add', '198.18.2.0/24', 'via', '198.18.0.2'],
        [n.node(3), 'route', 'add', '198.18.1.0/24', 'via', '198.18.0.1'],
        [n.node(3), 'route', 'add', '198.18.2.0/24', 'via', '198.18.0.2'],
        [n.net, 'route', 'add', '198.18.3.0/24', 'via', '198.18.0.3'],
      ],
    );
  });

  test('infrastructure hosts: fixed addresses by name, on the bridge, routed to every pod subnet', () => {
    assert.equal(hostAddress('etcd-1'), '198.18.0.201');
    assert.equal(hostAddress('etcd-7'), '198.18.0.207');
    assert.equal(hostAddress('control-1'), '198.18.0.211');
    assert.equal(hostAddress('control-9'), '198.18.0.219');
    for (const bad of ['etcd-0', 'etcd-8', 'control-10', 'node-1', 'web'])
      assert.throws(() => hostAddress(bad), code('AMBIT_ERR_LAB_INVALID_NAME'), bad);
    assert.ok(isHostName('control-2') && !isHostName('control-2x'));
    const n = labNames('t1');
    assert.equal(n.host('etcd-1'), 'ambit-t1-host-etcd-1');
    const steps = planUp(n, 2, ['etcd-1']);
    const mine = steps.filter((s) => s.netns === n.host('etcd-1') || s.args.includes('h-etcd-1'));
    assert.deepEqual(
      mine.map((s) => [s.netns ?? '', ...s.args].join(' ')),
      [
        'ambit-t1-host-etcd-1 link set lo up',
        'ambit-t1-host-etcd-1 link add eth0 type veth peer name h-etcd-1 netns ambit-t1-net',
        'ambit-t1-net link set h-etcd-1 master br0',
        'ambit-t1-net link set h-etcd-1 up',
        'ambit-t1-host-etcd-1 addr add 198.18.0.201/24 dev eth0',
        'ambit-t1-host-etcd-1 link set eth0 up',
        'ambit-t1-host-etcd-1 route add 198.18.1.0/24 via 198.18.0.1',
        'ambit-t1-host-etcd-1 route add 198.18.2.0/24 via 198.18.0.2',
      ],
    );
    // The bridge port's name fits an interface name (15 bytes) for every host.
    assert.ok(hostBridgePort('control-9').length <= 15);
  });

  test('a pod gets a /32, a route on its node and a default route via the node', () => {
    const n = labNames('t1');
    const steps = planPodAdd(n, 'web', 2, 5).map((s) => [s.netns ?? '', ...s.args].join(' '));
    assert.ok(steps.includes('ambit-t1-node-2 route add 198.18.2.5/32 dev pod5'));
    assert.ok(steps.includes('ambit-t1-pod-web addr add 198.18.2.5/32 dev eth0'));
    assert.ok(steps.includes('ambit-t1-pod-web route add default via 198.18.2.1 dev eth0'));
  });
});

describe('lab argument validation', () => {
  test('labels', () => {
    assert.deepEqual(parseLabels(''), {});
    assert.deepEqual(parseLabels('app=web,version=v1'), { app: 'web', version: 'v1' });
    assert.deepEqual(parseLabels('istio.io/dataplane-mode=ambient'), {
      'istio.io/dataplane-mode': 'ambient',
    });
    assert.deepEqual(parseLabels('empty='), { empty: '' });
    assert.deepEqual(parseLabels('constructor=x'), { constructor: 'x' });
    for (const bad of ['app', '=web', 'app=web,app=v2', 'a b=c', 'app=-bad', `k=${'x'.repeat(64)}`]) {
      assert.throws(() => parseLabels(bad), code('AMBIT_ERR_LAB_INVALID_LABEL'), bad);
    }
  });

  test('names and counts', () => {
    for (const good of ['web', 'catalog-v1', 'a1']) assert.equal(validatePodName(good), good);
    for (const bad of ['', 'Web', '-web', 'web-', 'we_b', 'x'.repeat(41)]) {
      assert.throws(() => validatePodName(bad), code('AMBIT_ERR_LAB_INVALID_POD_NAME'), bad);
    }
    assert.equal(validateLabName('lab'), 'lab');
    assert.throws(() => validateLabName('a'.repeat(17)), code('AMBIT_ERR_LAB_INVALID_NAME'));
    assert.throws(
      () => validateLabName('a-b'),
      code('AMBIT_ERR_LAB_INVALID_NAME'),
      "a '-' would make lab a's prefix match lab a-b",
    );
    assert.equal(validateNodeCount(2), 2);
    for (const bad of [0, -1, 1.5, 200, 251, Number.NaN]) {
      assert.throws(() => validateNodeCount(bad), code('AMBIT_ERR_LAB_INVALID_NODES'), String(bad));
    }
    // No node's address falls in the infrastructure range that `ambit up` lets scrape every node's metrics.
    assert.equal(validateNodeCount(MAX_NODES), MAX_NODES);
    for (let i = 1; i <= MAX_NODES; i++) {
      const inside = LAB_INFRASTRUCTURE_CIDRS.filter((c) => ipInCidr(nodeAddress(i), c));
      assert.deepEqual(inside, [], `${nodeAddress(i)} may scrape every node`);
    }
  });
});

describe('resolv.conf for the lab', () => {
  test("a pod's searches its own namespace first, then the cluster's, at the cluster DNS", () => {
    const text = podResolvConf('shop');
    assert.match(text, /^search shop\.svc\.cluster\.local svc\.cluster\.local cluster\.local$/m);
    assert.match(text, /^nameserver 198\.18\.0\.254$/m);
    assert.match(text, /^options ndots:5$/m);
    assert.equal(text.match(/^nameserver /gm)?.length, 1, 'one resolver: nothing outside the lab');
  });
  test("a node's searches the cluster's Services", () => {
    assert.match(nodeResolvConf(), /^search svc\.cluster\.local cluster\.local$/m);
    assert.match(nodeResolvConf(), /^nameserver 198\.18\.0\.254$/m);
  });
  test("the cluster DNS: the control hosts' addresses, else the bridge's", () => {
    assert.deepEqual(clusterDns([]), ['198.18.0.254']);
    assert.deepEqual(clusterDns(['etcd-1']), ['198.18.0.254']);
    assert.deepEqual(clusterDns(['control-1', 'etcd-1', 'control-2']), ['198.18.0.211', '198.18.0.212']);
  });
  test('with several cluster DNS servers (HA replicas), each is named, three at most, a dead one costing a second', () => {
    const text = podResolvConf('shop', ['198.18.0.211', '198.18.0.212', '198.18.0.213', '198.18.0.214']);
    assert.deepEqual(text.match(/^nameserver .*$/gm), [
      'nameserver 198.18.0.211',
      'nameserver 198.18.0.212',
      'nameserver 198.18.0.213',
    ]);
    assert.match(text, /^options ndots:5 timeout:1 attempts:2 rotate$/m);
    assert.match(nodeResolvConf(['198.18.0.211', '198.18.0.212']), /^nameserver 198\.18\.0\.212$/m);
  });
});
