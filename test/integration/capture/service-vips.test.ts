// Service VIPs in a real kernel (issue 13 item 3): pods outside the mesh reach a Service's endpoints
// through its VIP, load-balanced; endpoints follow each sync; no endpoint is a reset; a pod that reaches
// itself through the VIP is answered (hairpin); and an enrolled pod's connection, which the capture
// table redirects to the ztunnel first, is never DNATed as well (the kernel's first NAT binding wins).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { NftablesCapture } from '../../../src/capture/nftables.ts';
import { type ServiceVipInput, ServiceVips, servicePlan } from '../../../src/capture/services.ts';
import { GATEWAY, Topology } from './topology.ts';

const isRoot = process.getuid?.() === 0;
const SKIP =
  'NOT ROOT: the Service VIP integration test builds network namespaces and was SKIPPED (CI runs it as root)';
if (!isRoot) console.error(`\n*** ${SKIP} ***\n`);

const VIP = '198.19.7.7';
const A = 2;
const B = 3;
const CLIENT = 4;

const web = (hosts: number[]): ServiceVipInput => ({
  key: 'shop/web',
  vips: [VIP],
  ports: [{ port: 80, protocol: 'TCP' }],
  endpoints: hosts.map((h) => ({ address: `198.18.1.${h}`, ports: { '80': 8080 } })),
});

describe('Service VIPs for pods outside the mesh', { skip: isRoot ? false : SKIP }, () => {
  const topo = new Topology();
  const vips = new ServiceVips({ inNetns: topo.exec(topo.node) });
  const client = topo.pod(CLIENT);
  const names = (replies: string[]) => new Set(replies.map((r) => r.split(' ')[0]));
  /** Packets the Service port's chain has counted (connections, as NAT chains see only the first). */
  const counted = async () => {
    const chain = servicePlan([web([A])])[0]!.chain;
    const text = await topo.in(topo.node, 'nft', 'list', 'chain', 'ip', 'ambit_services', chain);
    return Number(/counter packets (\d+)/.exec(text)?.[1]);
  };

  before(async () => {
    await topo.build([A, B, CLIENT]);
    await topo.echo(topo.pod(A).ns, 'a', 8080);
    await topo.echo(topo.pod(B).ns, 'b', 8080);
  });
  after(() => topo.destroy());

  test('the VIP reaches both endpoints on their target port, and the echo comes back unchanged', async () => {
    await vips.sync([web([A, B])]);
    const replies = await topo.connect(client.ns, VIP, 80, 40);
    assert.deepEqual(names(replies), new Set(['a', 'b']), `replies: ${replies.join(' | ')}`);
    for (const r of replies) assert.match(r, new RegExp(`^[ab] ${client.address} hello$`));
    assert.equal(await counted(), 40);
  });

  test('syncing the same services again writes nothing (the counters survive)', async () => {
    const before = await counted();
    await vips.sync([web([B, A])]);
    assert.equal(await counted(), before);
  });

  test('an endpoint removed is no longer picked', async () => {
    await vips.sync([web([A])]);
    assert.deepEqual(names(await topo.connect(client.ns, VIP, 80, 20)), new Set(['a']));
  });

  test('no endpoint, or a port the Service lacks: connection refused (a reset), not a timeout', async () => {
    await vips.sync([web([])]);
    assert.deepEqual(await topo.connect(client.ns, VIP, 80, 3), [
      'ECONNREFUSED',
      'ECONNREFUSED',
      'ECONNREFUSED',
    ]);
    await vips.sync([web([A])]);
    assert.deepEqual(await topo.connect(client.ns, VIP, 81, 1), ['ECONNREFUSED']);
  });

  test('a pod that reaches itself through the VIP is answered, from the node (masqueraded)', async () => {
    await vips.sync([web([A])]);
    assert.deepEqual(await topo.connect(topo.pod(A).ns, VIP, 80, 3), Array(3).fill(`a ${GATEWAY} hello`));
  });

  test("an enrolled pod's connection to the VIP goes to the ztunnel's :15001, not DNATed; others' still are", async () => {
    const capture = new NftablesCapture({ inNetns: topo.exec(topo.node) });
    await capture.install([client.address]);
    try {
      // A plain listener stands in for the ztunnel's outbound port.
      await topo.echo(topo.node, 'ztunnel', 15001);
      await vips.sync([web([A, B])]);
      const before = await counted();
      assert.deepEqual(
        await topo.connect(client.ns, VIP, 80, 10),
        Array(10).fill(`ztunnel ${client.address} hello`),
      );
      assert.equal(await counted(), before, 'the service chain saw none of the enrolled pod connections');
      // B is not enrolled: its connection is still load-balanced (to A alone here, so the answer is known).
      await vips.sync([web([A])]);
      assert.deepEqual(
        await topo.connect(topo.pod(B).ns, VIP, 80, 2),
        Array(2).fill(`a ${topo.pod(B).address} hello`),
      );
    } finally {
      await capture.remove();
    }
  });

  test("a meshed pod on this node behind the VIP: DNAT would skip inbound capture, so it goes to the ztunnel's 15006", async () => {
    const meshed = topo.pod(A);
    const capture = new NftablesCapture({ inNetns: topo.exec(topo.node) });
    await capture.install([meshed.address]);
    try {
      await topo.echo(topo.node, 'inbound', 15006);
      // Direct, the capture table sends the connection to the ztunnel's inbound listener.
      assert.deepEqual(await topo.connect(client.ns, meshed.address, 8080, 1), [
        `inbound ${client.address} hello`,
      ]);
      // Through a plain DNAT (Service rules written before the pod was enrolled) the one NAT binding is
      // the DNAT and the inbound redirect never runs: the capture table's forward rule resets it rather
      // than let plaintext reach the pod unseen.
      await vips.sync([web([A])]);
      assert.deepEqual(await topo.connect(client.ns, VIP, 80, 1), ['ECONNREFUSED']);
      // Marked as meshed and local, it is redirected to the inbound listener instead.
      await vips.sync([{ ...web([]), endpoints: [{ ...web([A]).endpoints[0]!, inboundCapture: true }] }]);
      assert.deepEqual(
        await topo.connect(client.ns, VIP, 80, 3),
        Array(3).fill(`inbound ${client.address} hello`),
      );
    } finally {
      await capture.remove();
    }
  });

  test('remove takes the table away, and again is no error', async () => {
    await vips.remove();
    await vips.remove();
    const tables = await topo.in(topo.node, 'nft', 'list', 'tables');
    assert.doesNotMatch(tables, /ambit_services/);
  });
});
