// A ztunnel on several threads (`--worker-threads`), in-process on 127.0.0.0/8, no root: both nodes'
// ztunnels run two threads that share their ports. Connections spread over the threads; every thread
// carries HBONE with its own certificates (signed through the main thread), holds the same policy, cuts
// what a policy change denies, and the main thread's /metrics and /connections cover every thread.

import assert from 'node:assert/strict';
import type * as net from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import type { ControlPlane } from '../../../src/control/index.ts';
import type { Ztunnel } from '../../../src/ztunnel/index.ts';
import { eventually } from '../../helpers/lab.ts';
import { startTestControl } from '../../helpers/mesh.ts';
import { socksConnect } from '../../helpers/socks.ts';
import { ambientNamespace, inProcessZtunnel, workloadEcho, workloadEntry } from '../../helpers/ztunnel.ts';

const NODES = { 'node-1': '127.0.1.1', 'node-2': '127.0.2.1' } as const;
const CLIENT = '127.0.1.2';
const SERVER = '127.0.2.2';
const CONNECTIONS = 24;

const ztunnel = (t: TestContext, cp: ControlPlane, node: keyof typeof NODES) =>
  inProcessZtunnel(t, cp, node, NODES[node], { adminListen: '127.0.0.1', drainMs: 300, workerThreads: 2 });

async function mesh(t: TestContext) {
  const cp = await startTestControl(t);
  await cp.api.apply([
    ambientNamespace('shop'),
    workloadEntry('shop', 'client', CLIENT, 'node-1'),
    workloadEntry('shop', 'server', SERVER, 'node-2'),
  ]);
  const z1 = await ztunnel(t, cp, 'node-1');
  const z2 = await ztunnel(t, cp, 'node-2');
  const open = await workloadEcho(t, SERVER);
  const dial = () =>
    socksConnect(
      { host: NODES['node-1'], port: z1.boundPort('socks5') },
      { address: SERVER, port: 8080 },
      CLIENT,
    );
  return { cp, z1, z2, open, dial };
}

/** Writes `payload` and reads it back, leaving the connection open. */
function echoed(s: net.Socket, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got.length < payload.length) return;
      s.off('data', onData);
      resolve(got);
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(payload);
  });
}

async function admin(z: Ztunnel, path: string): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${z.boundPort('admin')}${path}`);
  assert.equal(res.status, 200, path);
  return res.json();
}

async function scrape(z: Ztunnel): Promise<string> {
  const res = await fetch(`http://${NODES['node-1']}:${z.boundPort('metrics')}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

/** The value of one counter, summed over the series whose labels match `labels`. */
function counter(text: string, name: string, labels: RegExp): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && labels.test(l))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe('a ztunnel on worker threads', () => {
  test('connections spread over the threads, and each thread carries HBONE with its own certificate', async (t) => {
    const { z1, z2, open, dial } = await mesh(t);
    const sockets: net.Socket[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      const s = await dial();
      assert.equal((await echoed(s, `hello ${i}`)).toString(), `hello ${i}`);
      sockets.push(s);
    }
    t.after(() => {
      for (const s of sockets) s.destroy();
    });
    await eventually(async () => (open.size === CONNECTIONS ? true : undefined));
    // The client's connections spread over node-1's threads. (Node-2's threads take the HBONE
    // connections, a few pooled ones for all of these streams, so they may all land on one.)
    for (const z of [z1, z2]) {
      const { connections } = await admin(z, '/connections');
      assert.equal(connections.length, CONNECTIONS);
      const threads = new Set(connections.map((c: { thread: number }) => c.thread));
      if (z === z1) assert.deepEqual([...threads].sort(), [0, 1], 'both threads carry connections');
      else assert.ok([...threads].every((n) => n === 0 || n === 1));
      assert.equal((await admin(z, '/memory')).connections, CONNECTIONS);
    }
    // The main thread's /metrics counts every thread's connections.
    const text = await scrape(z1);
    assert.equal(
      counter(text, 'istio_tcp_connections_opened_total', /reporter="source".*destination_workload="server"/),
      CONNECTIONS,
    );
    const ready = await fetch(`http://${NODES['node-1']}:${z1.boundPort('readiness')}/healthz/ready`);
    assert.equal(ready.status, 200);
  });

  test('every thread holds the same policy: a DENY refuses new connections and cuts the open ones', async (t) => {
    const { cp, z1, z2, dial } = await mesh(t);
    const sockets = await Promise.all(Array.from({ length: CONNECTIONS }, () => dial()));
    await eventually(async () =>
      (await admin(z1, '/connections')).connections.length === CONNECTIONS ? true : undefined,
    );
    // The ztunnel ends each one (the client is half-open: it sees the end, or a reset).
    const ended = Promise.all(
      sockets.map((s) => {
        s.on('error', () => {});
        s.resume();
        return new Promise<void>((r) => {
          s.once('end', () => r());
          s.once('close', () => r());
        });
      }),
    );
    await cp.api.apply([
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name: 'deny-client', namespace: 'shop' },
        spec: {
          action: 'DENY',
          rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/client'] } }] }],
        },
      },
    ]);
    await ended; // on whichever thread each was
    for (const z of [z1, z2]) {
      await eventually(async () =>
        (await admin(z, '/connections')).connections.length === 0 ? true : undefined,
      );
    }
    for (const s of sockets) s.destroy();
    await eventually(async () => (z2.state.snapshot.authorizations.size === 1 ? true : undefined));
    for (let i = 0; i < 8; i++) {
      await assert.rejects(dial(), (e: any) => e.socksReply === 2);
    }
  });

  test('a thread that ends is started again, caught up on what changed while it was down', async (t) => {
    const { cp, z1 } = await mesh(t);
    // The thread's worker, reached from outside for this test only: end it as a crash would.
    const threads = (z1 as any).threads.threads as Array<{
      worker?: { terminate(): Promise<number> };
      ready: boolean;
    }>;
    await threads[0]!.worker!.terminate();
    assert.equal(threads[0]!.ready, false);
    // While it is down (it starts again after 0.5 s): a Service the client will reach by its VIP.
    await cp.api.apply([
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'server', namespace: 'shop' },
        spec: { selector: { app: 'server' }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    ]);
    await eventually(async () => (z1.state.snapshot.services.size === 1 ? true : undefined));
    await eventually(async () => (threads[0]!.ready ? true : undefined));
    const vip = cp.mesh.registry.services[0]!.vips[0]!;
    const sockets: net.Socket[] = [];
    t.after(() => {
      for (const s of sockets) s.destroy();
    });
    for (let i = 0; i < CONNECTIONS; i++) {
      const s = await socksConnect(
        { host: NODES['node-1'], port: z1.boundPort('socks5') },
        { address: vip, port: 80 },
        CLIENT,
      );
      sockets.push(s);
      assert.equal(await echoed(s, `again ${i}`), `again ${i}`);
    }
    const { connections } = await admin(z1, '/connections');
    assert.ok(
      connections.some((c: { thread: number }) => c.thread === 1),
      'the restarted thread carries connections to the VIP it learned in its catch-up',
    );
  });
});
