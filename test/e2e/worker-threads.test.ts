// A ztunnel on worker threads in the lab (root): `ambit up` with `--worker-threads 2`, pods captured by
// nftables. The kernel's redirect reaches every thread's listeners (each reads SO_ORIGINAL_DST through
// the addon on its own thread), connections spread over the threads, and the node's /metrics counts them all.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { adminGet } from '../../src/cli/ztunnel.ts';
import { eventually, isRoot, skipUnlessRoot } from '../helpers/lab.ts';
import { CONCURRENT_ECHO, enrolled, labMesh, labOk, namespace } from '../helpers/mesh-lab.ts';

const CONNECTIONS = 32;

describe('ztunnel worker threads end-to-end', {
  skip: !isRoot && 'NOT ROOT: mesh end-to-end tests need root (CI runs them as root)',
}, () => {
  test('captured connections spread over the threads, each reading the original destination', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { lab, admin, home } = await labMesh(t, 'wthreads', { ztunnelArgs: ['--worker-threads', '2'] });
    const client = await lab.addPod({
      name: 'client',
      node: 'node-1',
      namespace: 'shop',
      serviceAccount: 'client',
    });
    const web = await lab.addPod({ name: 'web', node: 'node-2', namespace: 'shop', serviceAccount: 'web' });
    await admin.call('POST', '/ambit/v1/apply', { objects: [namespace('shop', true)] });
    await lab.run('web', ['ambit', 'sample', 'tcp-echo', '--port', '9000']);
    await enrolled(lab, 'node-1', [client.address]);
    await enrolled(lab, 'node-2', [web.address]);
    const hold = (count: number, holdMs: number) =>
      lab.exec(
        'client',
        [
          process.execPath,
          '--input-type=module',
          '-e',
          CONCURRENT_ECHO,
          web.address,
          '9000',
          String(count),
          String(holdMs),
        ],
        { timeoutMs: 30_000 },
      );
    // The echo server is up once one connection echoes.
    await eventually(
      async () => ((await hold(1, 0)).code === 0 ? true : undefined),
      20_000,
      'the echo server',
    );
    /** Connections opened from client to web, by node-1's /metrics (every thread's, merged). */
    const opened = async () =>
      (await labOk(lab, 'node-1', ['curl', '-s', 'http://127.0.0.1:15020/metrics']))
        .split('\n')
        .filter(
          (l) =>
            l.startsWith('istio_tcp_connections_opened_total{') &&
            l.includes('reporter="source"') &&
            l.includes('destination_workload="web"'),
        )
        .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    const before = await opened();
    const holding = hold(CONNECTIONS, 6000);
    const socket = join(home, 'nodes', 'node-1', 'admin.sock');
    const threads = await eventually(
      async () => {
        const { connections } = (await adminGet(socket, '/connections')) as {
          connections: Array<{ thread: number; dst: string }>;
        };
        const ours = connections.filter((c) => c.dst.startsWith(`${web.address}:`));
        return ours.length === CONNECTIONS ? new Set(ours.map((c) => c.thread)) : undefined;
      },
      20_000,
      `${CONNECTIONS} connections open on node-1`,
    );
    assert.deepEqual([...threads].sort(), [0, 1], 'both threads carry captured connections');
    const run = await holding;
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { open: CONNECTIONS, echoed: CONNECTIONS });
    assert.equal((await opened()) - before, CONNECTIONS, 'every thread counted in /metrics');
  });
});
