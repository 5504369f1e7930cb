// Issue 9 item 3, in-process (SOCKS5 on 127.0.7x.x, no root): a source over its share of connections is
// refused while another source still gets through, at the source ztunnel (outbound) and at the
// destination ztunnel (inbound streams); silent pre-handshake connections to 15008 over a source's share
// are closed at once; every refusal is counted with response_flags="UO"; a released slot is reusable.

import assert from 'node:assert/strict';
import * as net from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import type { ControlPlane } from '../../../src/control/index.ts';
import type { ConnectionLimits } from '../../../src/ztunnel/index.ts';
import { eventually } from '../../helpers/lab.ts';
import { startTestControl } from '../../helpers/mesh.ts';
import { roundTrip, socksConnect } from '../../helpers/socks.ts';
import { ambientNamespace, inProcessZtunnel, workloadEcho, workloadEntry } from '../../helpers/ztunnel.ts';

const NODES = { 'node-1': '127.0.71.1', 'node-2': '127.0.72.1' } as const;
const CLIENT = '127.0.71.2';
const OTHER = '127.0.71.3';
const LOCAL = '127.0.71.4'; // on node-1, next to the client
const SERVER = '127.0.72.2';
const FLOODER = '127.0.73.1'; // not a workload: anything that can reach 15008

const ztunnel = (
  t: TestContext,
  cp: ControlPlane,
  node: keyof typeof NODES,
  limits: Partial<ConnectionLimits>,
) => inProcessZtunnel(t, cp, node, NODES[node], { limits });

const we = (name: string, address: string, node: string) => workloadEntry('limits', name, address, node);

/** One echoed byte: the connection is really through, not just accepted. */
async function live(s: net.Socket): Promise<net.Socket> {
  s.write('x');
  await new Promise<void>((resolve, reject) => {
    s.once('data', () => resolve());
    s.once('error', reject);
  });
  return s;
}

/** `overflows(text, 'source', 'client')`: the UO refusals counted for that reporter and label. */
function overflows(metrics: string, reporter: string, label: string): number {
  let n = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('istio_tcp_connections_opened_total{')) continue;
    if (!line.includes('response_flags="UO"') || !line.includes(`reporter="${reporter}"`)) continue;
    if (!line.includes(label)) continue;
    n += Number(line.split(' ').at(-1));
  }
  return n;
}

describe('connection and handshake limits', () => {
  test('a source over its share is refused, others get through, refusals count as UO', async (t) => {
    const cp = await startTestControl(t);
    await cp.api.apply([
      ambientNamespace('limits'),
      we('client', CLIENT, 'node-1'),
      we('other', OTHER, 'node-1'),
      we('local', LOCAL, 'node-1'),
      we('server', SERVER, 'node-2'),
    ]);
    const z1 = await ztunnel(t, cp, 'node-1', { maxConnectionsPerSource: 5 });
    const z2 = await ztunnel(t, cp, 'node-2', {
      maxConnectionsPerSource: 3,
      maxHandshakes: 8,
      maxHandshakesPerSource: 3,
    });
    assert.equal(z2.limits.maxConnectionsPerSource, 3);
    assert.ok(z2.limits.maxConnections > 3, 'the whole is derived from the descriptor limit');
    await eventually(async () =>
      z1.state.snapshot.workloads.size === 4 && z2.state.snapshot.workloads.size === 4 ? true : undefined,
    );
    await workloadEcho(t, SERVER);
    await workloadEcho(t, LOCAL);
    const via = (from: string, to: string) =>
      socksConnect(
        { host: NODES['node-1'], port: z1.boundPort('socks5') },
        { address: to, port: 8080 },
        from,
      );
    const held: net.Socket[] = [];
    t.after(() => {
      for (const s of held) s.destroy();
    });

    // Inbound, at the destination: the client's fourth stream to node-2 is over its share there (503, UO).
    for (let i = 0; i < 3; i++) held.push(await live(await via(CLIENT, SERVER)));
    await assert.rejects(via(CLIENT, SERVER), (err: { socksReply?: number }) => err.socksReply === 5);
    // Outbound, at the source: two more to a neighbour make five, and the sixth is refused by node-1.
    for (let i = 0; i < 2; i++) held.push(await live(await via(CLIENT, LOCAL)));
    await assert.rejects(via(CLIENT, LOCAL), (err: { socksReply?: number }) => err.socksReply === 1);

    // Another source on the same node still gets through, both ways.
    assert.equal((await roundTrip(await via(OTHER, SERVER), 'other')).toString(), 'other');
    assert.equal((await roundTrip(await via(OTHER, LOCAL), 'other')).toString(), 'other');

    // Refusals are counted, with the source workload that was refused.
    assert.equal(overflows(await z1.metrics.metrics(), 'source', 'source_workload="client"'), 1);
    assert.equal(overflows(await z2.metrics.metrics(), 'destination', 'destination_workload="server"'), 1);

    // A closed connection gives its slot back.
    held.shift()?.destroy();
    await eventually(async () => {
      const s = await via(CLIENT, SERVER).catch(() => undefined);
      if (s) held.push(await live(s));
      return s ? true : undefined;
    });

    // Silent connections to 15008 (no TLS handshake) beyond a source's share are closed at once; the
    // share's worth waits for the handshake deadline; a peer ztunnel still completes its handshakes.
    const silent = await Promise.all(
      Array.from(
        { length: 5 },
        () =>
          new Promise<net.Socket>((resolve, reject) => {
            const s = net.connect({ host: SERVER, port: 15008, localAddress: FLOODER });
            s.once('connect', () => resolve(s));
            s.once('error', reject);
          }),
      ),
    );
    t.after(() => {
      for (const s of silent) s.destroy();
    });
    const closed = () => silent.filter((s) => s.closed || s.readableEnded).length;
    for (const s of silent) {
      s.on('error', () => {});
      s.resume();
    }
    await eventually(async () => (closed() === 2 ? true : undefined));
    assert.equal((await roundTrip(await via(OTHER, SERVER), 'after flood')).toString(), 'after flood');
    assert.equal(closed(), 2, 'the share held on, waiting for the handshake deadline');
    assert.equal(
      overflows(await z2.metrics.metrics(), 'destination', 'connection_security_policy="mutual_tls"'),
      3,
    );
  });
});
