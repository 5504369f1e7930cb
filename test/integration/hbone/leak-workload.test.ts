// Issue 9, item 2, in-process (no root): connections end when their workload leaves the mesh, at the
// source's ztunnel and at the destination's, and a connection idle past the ztunnel's idle timeout is cut.
// Two ztunnels with capture "none" on 127.0.0.0/8; clients enter through SOCKS5 from workload addresses.

import assert from 'node:assert/strict';
import type * as net from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import type { ControlPlane } from '../../../src/control/index.ts';
import { Ztunnel } from '../../../src/ztunnel/index.ts';
import { eventually } from '../../helpers/lab.ts';
import { startTestControl } from '../../helpers/mesh.ts';
import { socksConnect } from '../../helpers/socks.ts';
import { ambientNamespace, inProcessZtunnel, workloadEcho, workloadEntry } from '../../helpers/ztunnel.ts';

const CONNECTIONS = 5;

/**
 * Each test has addresses of its own, and no other test file uses these ranges (files run two at a time):
 * node-1 `127.0.16N.1` with the client `.2`, node-2 `127.0.17N.1`, the server `.2`.
 */
function addresses(n: number) {
  return {
    nodes: { 'node-1': `127.0.16${n}.1`, 'node-2': `127.0.17${n}.1` },
    client: `127.0.16${n}.2`,
    server: `127.0.17${n}.2`,
  };
}
type Addresses = ReturnType<typeof addresses>;

const ztunnel = (
  t: TestContext,
  cp: ControlPlane,
  at: Addresses,
  node: 'node-1' | 'node-2',
  idleTimeoutMs?: number,
) => inProcessZtunnel(t, cp, node, at.nodes[node], { idleTimeoutMs });

const we = (name: string, address: string, node: string) => workloadEntry('shop', name, address, node);

async function mesh(t: TestContext, n: number, idleTimeoutMs?: number) {
  const at = addresses(n);
  const cp = await startTestControl(t);
  await cp.api.apply([
    ambientNamespace('shop'),
    we('client', at.client, 'node-1'),
    we('server', at.server, 'node-2'),
  ]);
  const z1 = await ztunnel(t, cp, at, 'node-1', idleTimeoutMs);
  const z2 = await ztunnel(t, cp, at, 'node-2', idleTimeoutMs);
  await eventually(async () =>
    z1.state.snapshot.workloads.size === 2 && z2.state.snapshot.workloads.size === 2 ? true : undefined,
  );
  const open = await workloadEcho(t, at.server);
  /** A connection from the client workload to the server's 8080, one echo done. */
  const connect = async () => {
    const s = await socksConnect(
      { host: at.nodes['node-1'], port: z1.boundPort('socks5') },
      { address: at.server, port: 8080 },
      at.client,
    );
    s.on('error', () => {});
    t.after(() => s.destroy());
    const echoed = new Promise((r) => s.once('data', r));
    s.write('ping');
    await echoed;
    return s;
  };
  return { cp, z1, z2, open, connect };
}

const closed = (s: net.Socket) => new Promise<void>((r) => (s.closed ? r() : s.once('close', () => r())));

describe('connections end with their workload, or when idle', () => {
  test('a source workload removed from the mesh leaves no connection at either ztunnel or the server', async (t) => {
    const { cp, z1, z2, open, connect } = await mesh(t, 1);
    const clients = [];
    for (let i = 0; i < CONNECTIONS; i++) clients.push(await connect());
    assert.equal(open.size, CONNECTIONS);
    assert.equal(z1.connectionsView().length, CONNECTIONS);
    assert.equal(z2.connectionsView().length, CONNECTIONS);
    await cp.api.delete([{ kind: 'WorkloadEntry', namespace: 'shop', name: 'client' }]);
    await eventually(
      async () =>
        open.size === 0 && z1.connectionsView().length === 0 && z2.connectionsView().length === 0
          ? true
          : undefined,
      5_000,
      'the removed workload’s connections closed everywhere',
    );
    await Promise.all(clients.map(closed));
  });

  test('the destination ztunnel cuts them alone when the source node never hears of the removal', async (t) => {
    const { cp, z1, z2, open, connect } = await mesh(t, 2);
    const clients = [];
    for (let i = 0; i < CONNECTIONS; i++) clients.push(await connect());
    z1.xdsClient.stop(); // node-1 keeps its last state, as when its control-plane link is down
    await cp.api.delete([{ kind: 'WorkloadEntry', namespace: 'shop', name: 'client' }]);
    await eventually(
      async () => (open.size === 0 && z2.connectionsView().length === 0 ? true : undefined),
      5_000,
      'the destination closed the removed source’s connections',
    );
    await Promise.all(clients.map(closed));
  });

  test('a connection with no byte either way for the idle timeout is cut; a busy one stays', async (t) => {
    // A timeout well above the gap between the busy connection's bytes, so a loaded machine (slow
    // echoes) cannot make the busy one look idle.
    const { z1, open, connect } = await mesh(t, 3, 1_500);
    const busy = await connect();
    await connect(); // the idle one
    // Traffic every 100 ms keeps one connection alive for well past the timeout.
    for (let i = 0; i < 25; i++) {
      const echoed = new Promise<void>((resolve, reject) => {
        const cut = () => reject(new Error('the busy connection was cut'));
        busy.once('close', cut);
        busy.once('data', () => {
          busy.off('close', cut);
          resolve();
        });
      });
      busy.write('x');
      await echoed;
      await new Promise((r) => setTimeout(r, 100));
    }
    // The idle one is gone from the ztunnel and from the server (watched there: on a loaded machine the
    // client's own socket, in this same process, may notice the reset late), the busy one is not.
    await eventually(
      async () => (open.size === 1 && z1.connectionsView().length === 1 ? true : undefined),
      10_000,
      'the idle connection cut at the ztunnel and the server',
    );
    assert.equal(busy.closed, false, 'the busy connection was cut');
    await eventually(
      async () => (open.size === 0 && z1.connectionsView().length === 0 ? true : undefined),
      5_000,
      'the busy connection cut once it too went idle',
    );
  });

  test('the idle timeout must be a whole number of milliseconds', () => {
    for (const idleTimeoutMs of [-1, 1.5, Number.NaN, 2 ** 31])
      assert.throws(
        () =>
          new Ztunnel({
            node: 'node-1',
            capture: 'none',
            nodeAddresses: [],
            control: { target: '127.0.0.1:1', credentials: () => undefined as never },
            certificates: { fetch: async () => undefined as never },
            idleTimeoutMs,
          }),
        (err: Error & { code?: string }) => err.code === 'AMBIT_ERR_ZTUNNEL_BAD_IDLE_TIMEOUT',
      );
  });
});
