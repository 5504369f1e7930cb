// Who may scrape a ztunnel's metrics (15020: the node's whole traffic graph, with identities), end to
// end in the lab (root), issue 9 (Low): the node itself and the lab's infrastructure range (where the
// control plane and Prometheus run) may; pods, meshed or not, may not, on their own node or another,
// through the node's underlay address or its pod gateway address; other nodes may not either.
// Readiness (15021) stays open to everyone, as probes need it.

import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { CONTROL_TARGET, type Lab, nodeAddress, nodeGateway } from '../../src/lab/index.ts';
import { isRoot, skipUnlessRoot } from '../helpers/lab.ts';
import { enrolled, labMesh, namespace } from '../helpers/mesh-lab.ts';

const upMesh = (t: TestContext) => labMesh(t, 'metrics');

/** GET from inside `where`: the HTTP status ('000' when the connection was refused or reset) and body. */
async function get(lab: Lab, where: string, url: string): Promise<{ status: string; body: string }> {
  const r = await lab.exec(where, ['curl', '-s', '--max-time', '3', '-w', '\n%{http_code}', url]);
  const at = r.stdout.lastIndexOf('\n');
  return { status: r.stdout.slice(at + 1).trim() || '000', body: r.stdout.slice(0, at) };
}

describe('metrics access', {
  skip: !isRoot && 'NOT ROOT: metrics access end-to-end tests need root (CI runs them as root)',
}, () => {
  test('only the node and the infrastructure range scrape 15020; pods and other nodes are refused', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { lab, admin } = await upMesh(t);
    const meshed = await lab.addPod({
      name: 'meshed',
      node: 'node-1',
      namespace: 'shop',
      serviceAccount: 'meshed',
    });
    await lab.addPod({ name: 'plain', node: 'node-1', namespace: 'legacy', serviceAccount: 'plain' });
    await admin.call('POST', '/ambit/v1/apply', {
      objects: [namespace('shop', true), namespace('legacy', false)],
    });
    await enrolled(lab, 'node-1', [meshed.address]);
    const metrics = (address: string) => `http://${address}:15020/metrics`;

    // Allowed: the node itself (loopback and its own addresses) and the infrastructure range.
    for (const [where, address] of [
      ['node-1', '127.0.0.1'],
      ['node-1', nodeAddress(1)],
      ['node-1', nodeGateway(1)],
      [CONTROL_TARGET, nodeAddress(1)],
      [CONTROL_TARGET, nodeAddress(2)],
    ] as const) {
      const r = await get(lab, where, metrics(address));
      assert.equal(r.status, '200', `${where} → ${address}:15020`);
      assert.match(r.body, /istio_build/, `${where} → ${address}:15020 read the metrics`);
    }

    // Refused: pods (meshed or not) on their own node and another, by either address, and other nodes.
    const refused: Array<[string, string]> = [
      ['node-2', nodeAddress(1)],
      ['node-2', nodeGateway(1)],
    ];
    for (const pod of ['meshed', 'plain'])
      for (const address of [nodeAddress(1), nodeGateway(1), nodeAddress(2), nodeGateway(2)])
        refused.push([pod, address]);
    for (const [where, address] of refused) {
      const r = await get(lab, where, metrics(address));
      // 403 where the scrape reaches the metrics listener; a meshed pod's scrape of its own node is
      // refused earlier, by the ztunnel's outbound plan (the connection is closed: 000).
      assert.ok(['403', '000'].includes(r.status), `${where} → ${address}:15020 answered ${r.status}`);
      assert.doesNotMatch(r.body, /istio_/, `${where} read ${address}:15020`);
    }
    // A pod not in the mesh reaches the listener directly and is told why.
    const plain = await get(lab, 'plain', metrics(nodeGateway(1)));
    assert.equal(plain.status, '403');
    assert.match(plain.body, /AMBIT_ERR_ZTUNNEL_METRICS_FORBIDDEN/);
    // A meshed pod's scrape of another node leaves as passthrough from its node: refused there.
    assert.equal((await get(lab, 'meshed', metrics(nodeAddress(2)))).status, '403');

    // Readiness stays open to anyone that can reach it.
    for (const [where, address] of [
      ['plain', nodeGateway(1)],
      ['plain', nodeAddress(2)],
      ['node-2', nodeAddress(1)],
    ] as const) {
      assert.equal((await get(lab, where, `http://${address}:15021/healthz/ready`)).status, '200');
    }
  });
});
