// Issue 9, items 1 and 2, end-to-end in the lab (root): connections end when what carries them goes away.
// A pod that vanishes (its packets dropped, so no FIN ever leaves it; its process killed; then removed
// from the lab) leaves no connection ESTABLISHED at its node's ztunnel or at the server; a source ztunnel
// killed with SIGKILL leaves none of its tunnels' upstream connections open at the destination pod.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, type TestContext, test } from 'node:test';
import type { Lab } from '../../src/lab/index.ts';
import { eventually, isRoot, skipUnlessRoot } from '../helpers/lab.ts';
import { enrolled, labMesh, labOk } from '../helpers/mesh-lab.ts';

const ECHO = `
import net from 'node:net';
net.createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(8080);
`;

/** Opens N connections to HOST:8080, says "open N" once each has had its echo, and holds them. */
const HOLDER = `
import net from 'node:net';
const [host, n] = process.argv.slice(1);
let echoed = 0;
for (let i = 0; i < Number(n); i++) {
  const s = net.connect({ host, port: 8080 });
  s.on('error', (e) => console.log('error ' + e.code));
  s.on('close', () => console.log('closed'));
  s.once('data', () => { if (++echoed === Number(n)) console.log('open ' + echoed); });
  s.write('hi');
}
setInterval(() => {}, 1 << 30);
`;

/** Every output packet dropped: the pod falls silent, and what it sends next (FINs) never arrives. */
const SILENCE = `table inet silence {
  chain output {
    type filter hook output priority 0; policy drop;
  }
}
`;

const upMesh = (t: TestContext) => labMesh(t, 'teardown');

/** ESTABLISHED TCP connections in `where`'s namespace that match the `ss` filter. */
async function established(lab: Lab, where: string, filter: string): Promise<number> {
  const out = await labOk(lab, where, ['ss', '-Htn', 'state', 'established', filter]);
  return out.split('\n').filter((l) => l.trim() !== '').length;
}

/** Starts a holder of `n` connections in `pod` and waits until every one has been echoed. */
async function hold(lab: Lab, pod: string, server: string, n: number): Promise<void> {
  const proc = await lab.run(pod, [process.execPath, '--input-type=module', '-e', HOLDER, server, String(n)]);
  await eventually(
    async () => ((await readFile(proc.log, 'utf8')).includes(`open ${n}`) ? true : undefined),
    20_000,
    `${n} connections from ${pod} open through the mesh`,
  );
}

describe('connections end with what carries them', {
  skip: !isRoot && 'NOT ROOT: teardown end-to-end tests need root (CI runs them as root)',
}, () => {
  test('a vanished pod and a killed source ztunnel leave no connection behind', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { lab, admin } = await upMesh(t);
    const pod = (name: string, node: string) =>
      lab.addPod({ name, node, namespace: 'shop', serviceAccount: name, labels: { app: name } });
    const ghost = await pod('ghost', 'node-1');
    const client = await pod('client', 'node-1');
    const server = await pod('server', 'node-2');
    await admin.call('POST', '/ambit/v1/apply', {
      objects: [
        {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: 'shop', labels: { 'istio.io/dataplane-mode': 'ambient' } },
        },
      ],
    });
    await lab.run('server', [process.execPath, '--input-type=module', '-e', ECHO]);
    for (const p of [ghost, client]) await enrolled(lab, 'node-1', [p.address]);
    await enrolled(lab, 'node-2', [server.address]);
    const atServer = () => established(lab, 'server', '( sport = :8080 )');

    // Item 2: 20 connections from a pod that then vanishes without a FIN, and is removed from the lab.
    await hold(lab, 'ghost', server.address, 20);
    const atZtunnel = () => established(lab, 'node-1', `dst ${ghost.address}`);
    assert.equal(await atZtunnel(), 20);
    assert.equal(await atServer(), 20);
    await labOk(lab, 'ghost', ['nft', '-f', '-'], SILENCE);
    await lab.removePod('ghost');
    await eventually(
      async () => ((await atZtunnel()) === 0 && (await atServer()) === 0 ? true : undefined),
      10_000,
      'no connection of the removed pod at node-1 or at the server',
    );

    // Item 1: the source ztunnel is killed with 5 tunnels open; the destination closes their upstreams.
    await hold(lab, 'client', server.address, 5);
    assert.equal(await atServer(), 5);
    const status = (await lab.status())!;
    const ztunnel = status.nodes
      .find((n) => n.name === 'node-1')!
      .processes.find((p) => p.running && p.command.includes('ztunnel'))!;
    process.kill(ztunnel.pid, 'SIGKILL');
    await eventually(
      async () => ((await atServer()) === 0 ? true : undefined),
      10_000,
      'the upstream connections at the destination pod closed within 10 s of the source ztunnel dying',
    );
  });
});
