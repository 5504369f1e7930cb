// The config stream over real gRPC with TLS on 127.0.0.1: a joined node subscribes, receives the
// registry, gets incremental updates, NACKs a bad one and keeps its state, resyncs after a control
// plane restart, and a stuck proxy does not hold the others back.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ControlPlane, startControlPlane } from '../../../src/control/index.ts';
import { hasCode } from '../../../src/errors/index.ts';
import { createCsr, generateKeyPair, type SpiffeId } from '../../../src/identity/index.ts';
import {
  CaClient,
  CONTROL_CHANNEL_OPTIONS,
  ConfigStreamClient,
  controlPlaneCredentials,
  type Delta,
  type NodeCredential,
  TYPE,
  XdsClient,
} from '../../../src/xds/index.ts';
import { eventually } from '../../helpers/lab.ts';
import { adminFetch, joinNode, startTestControl } from '../../helpers/mesh.ts';

const ns = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels: { 'istio.io/dataplane-mode': 'ambient' } },
});
const we = (name: string, address: string) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'WorkloadEntry',
  metadata: { name, namespace: 'shop', labels: { app: 'web' } },
  spec: { address, serviceAccount: 'web' },
});

/** A proxy's state as the client applies it: name → value per type. */
function proxy(
  cp: ControlPlane,
  cred: NodeCredential,
  opts: {
    reject?: (type: string, d: Delta) => string | undefined;
    address?: string;
    node?: { kind: string; name: string };
  } = {},
) {
  const state = new Map<string, Map<string, unknown>>();
  const upserts = new Map<string, number>();
  const client = new XdsClient({
    target: opts.address ?? cp.grpcAddress,
    credentials: () => controlPlaneCredentials(cp.ca.trustDomain, cred.trustBundlePem, cred),
    channelOptions: CONTROL_CHANNEL_OPTIONS,
    node: opts.node ?? { kind: 'ztunnel', name: cred.node },
    types: [TYPE.workload, TYPE.service, TYPE.authorization, TYPE.trustBundle],
    apply: (type, delta) => {
      const why = opts.reject?.(type, delta);
      if (why) throw new Error(why);
      upserts.set(type, (upserts.get(type) ?? 0) + delta.upserts.length);
      const m = state.get(type) ?? new Map<string, unknown>();
      for (const u of delta.upserts) m.set(u.name, u.value);
      for (const r of delta.removed) m.delete(r);
      state.set(type, m);
    },
    backoff: { initialMs: 50, maxMs: 200 },
  });
  client.start();
  return { client, state, upserts, names: (type: string) => [...(state.get(type)?.keys() ?? [])].sort() };
}

describe('config stream', () => {
  test('subscribe, incremental updates, proxy-status, NACK keeps the last good state', async (t) => {
    const cp = await startTestControl(t);
    await cp.api.apply([ns('shop'), we('web-1', '198.18.1.2')]);
    const cred = await joinNode(cp, 'node-1');
    let rejectNext = false;
    const p = proxy(cp, cred, {
      reject: (type, d) =>
        rejectNext && type === TYPE.workload && d.upserts.length > 0 ? 'refusing for the test' : undefined,
    });
    t.after(() => p.client.stop());
    await p.client.whenSynced();
    await eventually(async () => (p.names(TYPE.workload).length === 1 ? true : undefined));
    assert.deepEqual(p.names(TYPE.workload), ['Kubernetes/networking.istio.io/WorkloadEntry/shop/web-1']);
    assert.deepEqual(p.names(TYPE.trustBundle), ['bundle']);

    // One change arrives as just that change.
    const updates: string[] = [];
    p.client.on('update', (type: string) => updates.push(type));
    await cp.api.apply([we('web-2', '198.18.2.2')]);
    await eventually(async () => (p.names(TYPE.workload).length === 2 ? true : undefined));
    assert.deepEqual(updates, [TYPE.workload], 'only the workload type changed');
    const status = await eventually(async () => {
      const s = cp.stream.status();
      return s.length === 1 && s[0]?.state === 'SYNCED' ? s[0] : undefined;
    });
    assert.equal(status.name, 'node-1');
    assert.equal(status.kind, 'ztunnel');

    // NACK: the proxy keeps its state; the control plane records the error.
    rejectNext = true;
    await cp.api.apply([we('web-3', '198.18.2.3')]);
    const nacked = await eventually(async () =>
      cp.stream.status()[0]?.state === 'NACKED' ? cp.stream.status()[0] : undefined,
    );
    assert.match(nacked.types[TYPE.workload]?.nack?.error ?? '', /refusing for the test/);
    assert.equal(p.names(TYPE.workload).length, 2);
    rejectNext = false;
    await cp.api.apply([we('web-4', '198.18.2.4')]);
    await eventually(async () => (p.names(TYPE.workload).length === 4 ? true : undefined));
    assert.equal(cp.stream.status()[0]?.state, 'SYNCED');
  });

  test('whatever the configuration accepts reaches the proxies (an IPv6 WorkloadEntry does not freeze the stream)', async (t) => {
    const cp = await startTestControl(t);
    await cp.api.apply([ns('shop'), we('v6', '2001:2::1')]);
    const p = proxy(cp, await joinNode(cp, 'node-1'));
    t.after(() => p.client.stop());
    await eventually(async () => (p.names(TYPE.workload).length === 1 ? true : undefined));
    await cp.api.apply([we('after', '198.18.1.7')]);
    await eventually(async () => (p.names(TYPE.workload).length === 2 ? true : undefined));
    assert.equal(cp.stream.status()[0]?.state === 'NACKED', false);
  });

  test('a burst of 1,000 applies is coalesced into far fewer pushes', async (t) => {
    const cp = await startTestControl(t);
    await cp.api.apply([ns('shop')]);
    const p = proxy(cp, await joinNode(cp, 'node-1'));
    t.after(() => p.client.stop());
    await p.client.whenSynced();
    let pushes = 0;
    p.client.on('update', (type: string) => {
      if (type === TYPE.workload) pushes++;
    });
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        cp.api.apply([we(`w${i}`, `198.18.${1 + (i >> 8)}.${i & 255}`)]),
      ),
    );
    await eventually(async () => (p.names(TYPE.workload).length === 1000 ? true : undefined), 20_000);
    // Unloaded this is a handful; a loaded machine leaves gaps longer than the 20 ms debounce between
    // commits, so the bound is loose — without coalescing it would be about 1,000.
    assert.ok(pushes <= 100, `${pushes} pushes for 1,000 applies`);
  });

  test('a stuck proxy that never ACKs does not hold the others back', async (t) => {
    const cp = await startTestControl(t);
    await cp.api.apply([ns('shop')]);
    const stuckCred = await joinNode(cp, 'node-9');
    const stuck = new ConfigStreamClient(
      cp.grpcAddress,
      controlPlaneCredentials(cp.ca.trustDomain, stuckCred.trustBundlePem, stuckCred),
      CONTROL_CHANNEL_OPTIONS,
    );
    t.after(() => stuck.close());
    const call = (stuck as any).delta();
    call.on('error', () => {});
    let received = 0;
    call.on('data', () => received++); // reads, never ACKs
    call.write({ node: { kind: 'ztunnel', name: 'node-9' }, typeUrl: TYPE.workload });
    t.after(() => call.cancel());
    const p = proxy(cp, await joinNode(cp, 'node-1'));
    t.after(() => p.client.stop());
    await p.client.whenSynced();
    for (let i = 0; i < 20; i++) await cp.api.apply([we(`w${i}`, `198.18.1.${10 + i}`)]);
    await eventually(async () => (p.names(TYPE.workload).length === 20 ? true : undefined));
    assert.equal(received, 1, 'the stuck proxy has exactly one response in flight, nothing queued behind it');
    const states = Object.fromEntries(cp.stream.status().map((s) => [s.name, s.state]));
    assert.deepEqual(states, { 'node-1': 'SYNCED', 'node-9': 'STALE' });
  });

  test('only a node certificate for the named node may open a ztunnel stream or register workloads', async (t) => {
    const cp = await startTestControl(t);
    const cred = await joinNode(cp, 'node-1');
    const liar = new XdsClient({
      target: cp.grpcAddress,
      credentials: () => controlPlaneCredentials(cp.ca.trustDomain, cred.trustBundlePem, cred),
      channelOptions: CONTROL_CHANNEL_OPTIONS,
      node: { kind: 'ztunnel', name: 'node-2' },
      types: [TYPE.workload],
      apply: () => {},
      backoff: { initialMs: 1000, maxMs: 1000 },
    });
    liar.start();
    t.after(() => liar.stop());
    await eventually(async () => (liar.lastError ? true : undefined));
    assert.match(liar.lastError ?? '', /AMBIT_ERR_CA_UNAUTHENTICATED/);
    assert.equal(cp.stream.status().length, 0);

    // A workload certificate may subscribe as a waypoint only when that identity is a waypoint's.
    const pair = await generateKeyPair();
    const id = 'spiffe://cluster.local/ns/shop/sa/web' as SpiffeId;
    const issued = await cp.ca.sign(await createCsr(id, pair.keys), { usage: 'workload' });
    const workloadCred = { certChainPem: issued.chain.slice(0, -1).join(''), keyPem: pair.privateKeyPem };
    const snoop = new XdsClient({
      target: cp.grpcAddress,
      credentials: () => controlPlaneCredentials(cp.ca.trustDomain, cred.trustBundlePem, workloadCred),
      channelOptions: CONTROL_CHANNEL_OPTIONS,
      node: { kind: 'waypoint', name: 'shop/not-a-waypoint' },
      types: [TYPE.workload],
      apply: () => {},
      backoff: { initialMs: 1000, maxMs: 1000 },
    });
    snoop.start();
    t.after(() => snoop.stop());
    await eventually(async () => (snoop.lastError ? true : undefined));
    assert.match(snoop.lastError ?? '', /is not the identity of a waypoint/);
  });

  test("a sidecar subscribes with its node's certificate, named by its pod; revoking the node ends it too", async (t) => {
    const cp = await startTestControl(t);
    await cp.api.apply([ns('shop')]);
    const cred = await joinNode(cp, 'node-1');
    const sidecar = proxy(cp, cred, { node: { kind: 'sidecar', name: 'web-1.shop' } });
    t.after(() => sidecar.client.stop());
    const ztunnel = proxy(cp, cred);
    t.after(() => ztunnel.client.stop());
    await sidecar.client.whenSynced();
    await ztunnel.client.whenSynced();
    const kinds = () =>
      cp.stream
        .status()
        .map((s) => `${s.kind} ${s.name}`)
        .sort();
    assert.deepEqual(kinds(), ['sidecar web-1.shop', 'ztunnel node-1']);

    // A workload's certificate is not a node's: it may not watch the node's configuration as a sidecar.
    const pair = await generateKeyPair();
    const id = 'spiffe://cluster.local/ns/shop/sa/web' as SpiffeId;
    const issued = await cp.ca.sign(await createCsr(id, pair.keys), { usage: 'workload' });
    const workloadCred = { certChainPem: issued.chain.slice(0, -1).join(''), keyPem: pair.privateKeyPem };
    const impostor = new XdsClient({
      target: cp.grpcAddress,
      credentials: () => controlPlaneCredentials(cp.ca.trustDomain, cred.trustBundlePem, workloadCred),
      channelOptions: CONTROL_CHANNEL_OPTIONS,
      node: { kind: 'sidecar', name: 'web-1.shop' },
      types: [TYPE.workload],
      apply: () => {},
      backoff: { initialMs: 1000, maxMs: 1000 },
    });
    impostor.start();
    t.after(() => impostor.stop());
    await eventually(async () => (impostor.lastError ? true : undefined));
    assert.match(impostor.lastError ?? '', /a sidecar must present its node's certificate/);

    const res = await adminFetch(cp, '/ambit/v1/revoke-node', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ node: 'node-1' }),
    });
    assert.deepEqual(await res.json(), { node: 'node-1', revoked: true, streamsEnded: 2 });
    await eventually(
      async () => (/AMBIT_ERR_CA_NODE_REVOKED/.test(sidecar.client.lastError ?? '') ? true : undefined),
      10_000,
      "the sidecar's reconnect to be refused",
    );
  });

  test('the CA signs for a workload on the node only while it is in the mesh', async (t) => {
    const cp = await startTestControl(t);
    await cp.api.apply([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } },
      {
        ...we('web-1', '198.18.1.2'),
        spec: { address: '198.18.1.2', serviceAccount: 'web', node: 'node-1' },
      },
    ]);
    const cred = await joinNode(cp, 'node-1');
    const ca = new CaClient({
      address: cp.grpcAddress,
      trustDomain: cp.ca.trustDomain,
      trustBundlePem: cred.trustBundlePem,
      credential: cred,
    });
    t.after(() => ca.close());
    const id = 'spiffe://cluster.local/ns/shop/sa/web' as SpiffeId;
    const ask = async () => ca.fetch(id, await createCsr(id, (await generateKeyPair()).keys));
    await eventually(async () => (cp.mesh.registry.workloads.length === 1 ? true : undefined));
    await assert.rejects(
      ask(),
      (e) => hasCode(e, 'AMBIT_ERR_CA_IMPERSONATION'),
      'not enrolled: no certificate',
    );
    await cp.api.apply([ns('shop')]);
    const chain = await eventually(
      async () => ask().catch(() => undefined),
      10_000,
      'a certificate once enrolled',
    );
    assert.ok(chain.length >= 2);
  });

  test('a revoked node is cut off until it rejoins with a new token', async (t) => {
    const cp = await startTestControl(t);
    await cp.api.apply([ns('shop')]);
    const cred = await joinNode(cp, 'node-1');
    const p = proxy(cp, cred);
    t.after(() => p.client.stop());
    await p.client.whenSynced();
    const res = await adminFetch(cp, '/ambit/v1/revoke-node', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ node: 'node-1' }),
    });
    assert.deepEqual(await res.json(), { node: 'node-1', revoked: true, streamsEnded: 1 });
    await eventually(
      async () => (/AMBIT_ERR_CA_NODE_REVOKED/.test(p.client.lastError ?? '') ? true : undefined),
      10_000,
      'the reconnect to be refused',
    );
    assert.equal(cp.stream.status().length, 0);
    const ca = new CaClient({
      address: cp.grpcAddress,
      trustDomain: cp.ca.trustDomain,
      trustBundlePem: cred.trustBundlePem,
      credential: cred,
    });
    t.after(() => ca.close());
    const pair = await generateKeyPair();
    const id = 'spiffe://cluster.local/ns/shop/sa/web' as SpiffeId;
    await assert.rejects(ca.fetch(id, await createCsr(id, pair.keys)), (e) =>
      hasCode(e, 'AMBIT_ERR_CA_NODE_REVOKED'),
    );

    const again = proxy(cp, await joinNode(cp, 'node-1')); // a new token: the node is back
    t.after(() => again.client.stop());
    await again.client.whenSynced();
  });

  test('after a control plane restart the proxy keeps its state, reconnects and resyncs only the difference', async (t) => {
    const first = await startTestControl(t);
    await first.api.apply([ns('shop'), we('web-1', '198.18.1.2'), we('web-2', '198.18.1.3')]);
    const cred = await joinNode(first, 'node-1');
    const address = first.grpcAddress;
    const p = proxy(first, cred);
    t.after(() => p.client.stop());
    await eventually(async () => (p.names(TYPE.workload).length === 2 ? true : undefined));
    await first.close();
    await eventually(async () => (!p.client.connected ? true : undefined));
    assert.equal(
      p.names(TYPE.workload).length,
      2,
      'the last good state is kept while the control plane is away',
    );

    // A new control plane on the same data directory and port: same CA, same store, one change.
    const second = await startControlPlane({
      dataDir: first.dataDir,
      adminListen: '127.0.0.1:0',
      adminSocket: '',
      grpcListen: address,
    });
    t.after(() => second.close());
    await second.api.delete([{ kind: 'WorkloadEntry', namespace: 'shop', name: 'web-1' }]);
    p.upserts.clear();
    await eventually(async () =>
      p.client.connected && p.names(TYPE.workload).length === 1 ? true : undefined,
    );
    assert.equal(p.upserts.get(TYPE.workload) ?? 0, 0, 'nothing the proxy already held was sent again');
    assert.equal(p.upserts.get(TYPE.service) ?? 0, 0);
  });
});
