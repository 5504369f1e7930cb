// Issue 8, item 6 (certificates): once node B is revoked, the workload certificates B was issued stop
// being accepted by the proxies: a new HBONE connection presenting one is refused (server and client
// side), open ones are closed when the revocation list arrives, and rejoining B does not revive them.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import * as net from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import type { ControlPlane } from '../../src/control/index.ts';
import { HbonePool, HboneServer, type TlsMaterial } from '../../src/hbone/index.ts';
import { type SpiffeId, workloadId } from '../../src/identity/index.ts';
import { eventually } from '../helpers/lab.ts';
import { joinNode, startTestControl } from '../helpers/mesh.ts';
import { socksConnect } from '../helpers/socks.ts';
import { ambientNamespace, inProcessZtunnel, workloadEcho, workloadEntry } from '../helpers/ztunnel.ts';

const NODES = { 'node-1': '127.0.41.1', 'node-2': '127.0.42.1' } as const;
const CLIENT = '127.0.41.2'; // on node-1 (A), sa client
const SERVER = '127.0.42.2'; // on node-2 (B), sa server
const ROGUE = '127.0.43.2'; // where a stolen certificate is served from
const CLIENT_ID = workloadId('cluster.local', 'shop', 'client');
const SERVER_ID = workloadId('cluster.local', 'shop', 'server');
const WATCHDOG_MS = 10_000;

const ztunnel = (t: TestContext, cp: ControlPlane, node: keyof typeof NODES) =>
  inProcessZtunnel(t, cp, node, NODES[node]);

/** Writes `text` and resolves with the echo, leaving the connection open. */
function echoOnce(stream: NodeJS.ReadWriteStream, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got.length >= text.length) {
        stream.off('data', onData);
        resolve(got);
      }
    };
    stream.on('data', onData);
    stream.once('error', reject);
    stream.write(text);
  });
}

function closed(what: string, s: { once(e: 'close', f: () => void): unknown; destroyed?: boolean }) {
  return new Promise<void>((resolve, reject) => {
    if (s.destroyed) return resolve();
    const timer = setTimeout(() => reject(new Error(`${what} was not closed`)), WATCHDOG_MS);
    s.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

const we = (name: string, address: string, node: string) => workloadEntry('shop', name, address, node);

describe('a revoked node’s workload certificates', () => {
  test('are refused in new HBONE handshakes and cut from open connections, also after it rejoins', async (t) => {
    const cp = await startTestControl(t);
    await cp.api.apply([
      ambientNamespace('shop'),
      we('client', CLIENT, 'node-1'),
      we('server', SERVER, 'node-2'),
    ]);
    const z1 = await ztunnel(t, cp, 'node-1');
    const z2 = await ztunnel(t, cp, 'node-2');
    await eventually(async () => (z1.state.snapshot.workloads.size === 2 ? true : undefined));
    await workloadEcho(t, CLIENT);
    await workloadEcho(t, SERVER);

    // Node B's workload certificate, as someone who took over B would hold it.
    const stolen = await z2.certs.get(SERVER_ID as SpiffeId);
    const stolenMaterial: TlsMaterial = {
      identity: stolen.id,
      certChainPem: stolen.chain.join(''),
      keyPem: stolen.privateKeyPem,
      trustBundlePem: cp.ca.bundle.toPem(),
    };
    const intoA = (pool: HbonePool) =>
      pool.connect({
        source: () => stolenMaterial,
        destination: { address: CLIENT, port: 15008 },
        accepted: [CLIENT_ID as SpiffeId],
        authority: `${CLIENT}:8080`,
      });
    const pool = (): HbonePool => {
      const p = new HbonePool();
      t.after(() => p.close());
      return p;
    };

    // Accepted while B is in good standing: an inbound tunnel into A with B's certificate, and an
    // outbound one from A's client to B's server (A's pool verifies B's certificate).
    const inbound = await intoA(pool());
    inbound.stream.on('error', () => {});
    assert.equal(await echoOnce(inbound.stream, 'in'), 'in');
    const outbound = await socksConnect(
      { host: NODES['node-1'], port: z1.boundPort('socks5') },
      { address: SERVER, port: 8080 },
      CLIENT,
    );
    outbound.on('error', () => {});
    assert.equal(await echoOnce(outbound, 'out'), 'out');

    const inboundClosed = closed('the inbound tunnel made with the revoked certificate', inbound.stream);
    const outboundClosed = closed('the outbound connection to the revoked certificate', outbound);
    await cp.caService.revokeNode('node-2');
    cp.stream.disconnectNode('node-2');
    const leaf = new X509Certificate(stolen.chain[0]!);
    await eventually(
      async () => (z1.state.snapshot.revoked.has(leaf) ? true : undefined),
      WATCHDOG_MS,
      'the revocation list reaches node A',
    );
    await inboundClosed;
    await outboundClosed;

    // Server side: a new handshake presenting B's certificate is refused.
    await assert.rejects(intoA(pool()));

    // Client side: A's pool refuses a server that presents B's certificate.
    const rogue = new HboneServer({
      certFor: () => stolenMaterial,
      onConnect: () => ({ status: 503, reason: 'never reached' }),
    });
    const listener = net.createServer((s) => rogue.accept(s, ROGUE));
    await new Promise<void>((r) => listener.listen(0, ROGUE, r));
    t.after(async () => {
      await rogue.close();
      await new Promise<void>((r) => listener.close(() => r()));
    });
    const own = await z1.certs.get(CLIENT_ID as SpiffeId);
    await assert.rejects(
      z1.pool.connect({
        source: () => ({
          identity: own.id,
          certChainPem: own.chain.join(''),
          keyPem: own.privateKeyPem,
          trustBundlePem: cp.ca.bundle.toPem(),
        }),
        destination: { address: ROGUE, port: (listener.address() as net.AddressInfo).port },
        accepted: [SERVER_ID as SpiffeId],
        authority: `${ROGUE}:8080`,
      }),
      (err: Error) => /revoked/.test(err.message),
    );

    // B rejoins with a new token: no longer a revoked node, but its old certificates stay revoked.
    await joinNode(cp, 'node-2');
    assert.equal(cp.caService.isRevoked('node-2'), false);
    await new Promise((r) => setTimeout(r, 200)); // a re-derivation after the rejoin
    assert.ok(z1.state.snapshot.revoked.has(leaf), 'the old certificate is still revoked');
    await assert.rejects(intoA(pool()));
  });
});
