// DNS capture in a real kernel (issue 13 item 2): an enrolled pod's DNS, UDP and TCP to port 53 of any
// server, reaches the ztunnel's DNS port on its node instead; a pod outside the mesh still reaches the
// server it asked; without the `dns` option nothing of port 53 is captured.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { NftablesCapture } from '../../../src/capture/nftables.ts';
import { GATEWAY, Topology } from './topology.ts';

const isRoot = process.getuid?.() === 0;
const SKIP =
  'NOT ROOT: the DNS capture integration test builds network namespaces and was SKIPPED (CI runs it as root)';
if (!isRoot) console.error(`\n*** ${SKIP} ***\n`);

const SERVER = 2;
const ENROLLED = 3;
const PLAIN = 4;

describe("DNS capture to the ztunnel's DNS port", { skip: isRoot ? false : SKIP }, () => {
  const topo = new Topology();
  const server = topo.pod(SERVER);
  const enrolled = topo.pod(ENROLLED);
  const plain = topo.pod(PLAIN);

  before(async () => {
    await topo.build([SERVER, ENROLLED, PLAIN]);
    // A stand-in DNS server in a pod, and stand-ins for the ztunnel's DNS proxy (15053) on the node.
    await topo.echo(server.ns, 'server', 53, 'udp');
    await topo.echo(server.ns, 'server', 53);
    await topo.echo(topo.node, 'ztunnel', 15053, 'udp');
    await topo.echo(topo.node, 'ztunnel', 15053);
  });
  after(() => topo.destroy());

  test('with dns: the enrolled pod reaches the ztunnel over UDP and TCP; the other pod the server', async () => {
    await new NftablesCapture({ inNetns: topo.exec(topo.node), dns: true }).install([enrolled.address]);
    assert.equal(await topo.datagram(enrolled.ns, server.address, 53), `ztunnel ${enrolled.address} hello`);
    assert.deepEqual(await topo.connect(enrolled.ns, server.address, 53, 1), [
      `ztunnel ${enrolled.address} hello`,
    ]);
    assert.equal(await topo.datagram(plain.ns, server.address, 53), `server ${plain.address} hello`);
    assert.deepEqual(await topo.connect(plain.ns, server.address, 53, 1), [`server ${plain.address} hello`]);
    // The proxy is the enrolled pods' (and the node's): a pod outside the mesh asking it straight is dropped.
    assert.equal(await topo.datagram(plain.ns, GATEWAY, 15053), 'TIMEOUT');
    assert.equal(await topo.datagram(enrolled.ns, GATEWAY, 15053), `ztunnel ${enrolled.address} hello`);
  });

  test("without dns: the enrolled pod's UDP DNS reaches the server it asked", async () => {
    await new NftablesCapture({ inNetns: topo.exec(topo.node) }).install([enrolled.address]);
    assert.equal(await topo.datagram(enrolled.ns, server.address, 53), `server ${enrolled.address} hello`);
  });
});
