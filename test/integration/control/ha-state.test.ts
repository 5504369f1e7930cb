// The control plane's own state (join tokens, revoked nodes, admin tokens) lives in the store, so two
// replicas on one etcd agree on it: a token issued on one is spent once across both, a revocation made
// on one holds on the other, and a data directory from before hands its files over to the store once.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { digest } from '../../../src/control/ca/tokens.ts';
import { type ControlPlane, storeChoice } from '../../../src/control/index.ts';
import { hasCode } from '../../../src/errors/index.ts';
import type { SpiffeId } from '../../../src/identity/index.ts';
import { CaClient, type NodeCredential } from '../../../src/xds/index.ts';
import { NO_ETCD, startEtcd } from '../../helpers/etcd.ts';
import { eventually } from '../../helpers/lab.ts';
import { adminFetch, startTestControl, syncedZtunnelStream } from '../../helpers/mesh.ts';

/** Two control planes (each its own data directory and CA) on one etcd. */
async function twoReplicas(t: TestContext, prefix: string): Promise<[ControlPlane, ControlPlane]> {
  const etcd = await startEtcd(t);
  const store = await storeChoice({ store: 'etcd', etcdEndpoints: etcd.url, etcdPrefix: prefix });
  return [await startTestControl(t, undefined, { store }), await startTestControl(t, undefined, { store })];
}

function joinThrough(cp: ControlPlane, token: string, node: string): Promise<NodeCredential> {
  const client = new CaClient({
    address: cp.grpcAddress,
    trustDomain: cp.ca.trustDomain,
    trustBundlePem: cp.ca.bundle.toPem(),
  });
  return client.join(token, node).finally(() => client.close());
}

async function post(cp: ControlPlane, path: string, body: unknown): Promise<Record<string, any>> {
  const res = await adminFetch(cp, path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = (await res.json()) as Record<string, any>;
  assert.ok(res.ok, `${path}: ${res.status} ${JSON.stringify(answer)}`);
  return answer;
}

/** The status a request with `token` gets from the control plane's TCP admin listener. */
async function statusWith(cp: ControlPlane, token: string): Promise<number> {
  const res = await fetch(`http://${cp.adminAddress}/api/v1/namespaces`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await res.arrayBuffer();
  return res.status;
}

const code = (c: string) => (err: unknown) => {
  assert.ok(hasCode(err, c), `expected ${c}, got ${(err as Error).message}`);
  return true;
};

describe('control-plane state shared by replicas on etcd', { skip: NO_ETCD }, () => {
  test('a join token issued on one replica is redeemed through the other, once', async (t) => {
    const [a, b] = await twoReplicas(t, '/ha-join');
    const { token } = await post(a, '/ambit/v1/tokens', { node: 'node-1' });
    assert.equal((await joinThrough(b, token, 'node-1')).node, 'node-1');
    await assert.rejects(joinThrough(a, token, 'node-1'), code('AMBIT_ERR_CA_TOKEN_USED'));
    await assert.rejects(joinThrough(b, token, 'node-1'), code('AMBIT_ERR_CA_TOKEN_USED'));

    // Two joins with one token at the same moment, one on each replica: exactly one gets through.
    for (let i = 0; i < 5; i++) {
      const { token: once } = await a.tokens.issue('node-2');
      const results = await Promise.allSettled([
        joinThrough(a, once, 'node-2'),
        joinThrough(b, once, 'node-2'),
      ]);
      assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected'], `round ${i}`);
      const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      code('AMBIT_ERR_CA_TOKEN_USED')(refused.reason);
    }
  });

  test('a node revoked on one replica is refused by the other, and its streams there end', async (t) => {
    const [a, b] = await twoReplicas(t, '/ha-revoke');
    const cred = await joinThrough(b, (await a.tokens.issue('node-1')).token, 'node-1');
    const stream = await syncedZtunnelStream(t, b, cred, 'node-1');
    assert.equal(b.stream.status().length, 1);

    assert.deepEqual(await post(a, '/ambit/v1/revoke-node', { node: 'node-1' }), {
      node: 'node-1',
      revoked: true,
      streamsEnded: 0, // its stream is on the other replica
    });
    await eventually(async () => (b.caService.isRevoked('node-1') ? true : undefined), 10_000, 'B sees it');
    assert.throws(
      () => b.caService.nodeOf('spiffe://cluster.local/ns/ambit-system/sa/node/node-1' as SpiffeId),
      code('AMBIT_ERR_CA_NODE_REVOKED'),
    );
    await eventually(
      async () => (/AMBIT_ERR_CA_NODE_REVOKED/.test(stream.lastError ?? '') ? true : undefined),
      10_000,
      'the stream on B to end and its reconnect to be refused',
    );
    assert.equal(b.stream.status().length, 0);

    // The certificate B issued to node-1 is on the revocation list A publishes (in its trust bundle) too.
    const serial = new X509Certificate(cred.certChainPem).serialNumber;
    const listOf = (cp: ControlPlane) => cp.caService.revokedCertificateList().map((r) => r.serial);
    await eventually(
      async () => (listOf(a).includes(serial) && listOf(b).includes(serial) ? true : undefined),
      10_000,
      "B's certificate on both replicas' revocation lists",
    );
  });

  test('an admin token created on one replica works on the other until it is revoked', async (t) => {
    const [a, b] = await twoReplicas(t, '/ha-admin');
    const { token, name } = await post(a, '/ambit/v1/admin-tokens', { role: 'view', namespaces: ['shop'] });
    // A view token may not list namespaces (cluster-scoped): 403 means it authenticated, 401 that it did not.
    await eventually(
      async () => ((await statusWith(b, token)) === 403 ? true : undefined),
      10_000,
      'B knows it',
    );
    const revoked = await adminFetch(a, `/ambit/v1/admin-tokens/${name}`, { method: 'DELETE' });
    assert.equal(revoked.status, 200, await revoked.text());
    await eventually(
      async () => ((await statusWith(b, token)) === 401 ? true : undefined),
      10_000,
      'B refuses it',
    );
  });
});

test('the files of a data directory from before are taken over once', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-ha-state-'));
  const expiresAt = Date.now() + 3600_000;
  const adminRecord = (name: string, token: string) => ({
    digest: digest(token),
    name,
    role: 'cluster-admin',
    namespaces: [],
    createdAt: new Date().toISOString(),
  });
  const write = (file: string, value: unknown) => writeFile(join(dir, file), JSON.stringify(value));
  await write('join-tokens.json', {
    [digest('ambit-join-old')]: { node: 'node-1', expiresAt, state: 'open' },
  });
  await write('revoked-nodes.json', ['node-9']);
  await write('admin-tokens.json', [adminRecord('old', 'ambit-admin-old')]);
  {
    const cp = await startTestControl(t, dir);
    assert.equal(cp.tokens.check('ambit-join-old'), 'node-1');
    assert.equal(cp.caService.isRevoked('node-9'), true);
    assert.equal(await statusWith(cp, 'ambit-admin-old'), 200);
    assert.equal((await joinThrough(cp, 'ambit-join-old', 'node-1')).node, 'node-1');
    await cp.close();
  }
  // The store holds all three now: the files no longer decide.
  await write('join-tokens.json', {
    [digest('ambit-join-old')]: { node: 'node-1', expiresAt, state: 'open' },
  });
  await write('revoked-nodes.json', []);
  await write('admin-tokens.json', [adminRecord('new', 'ambit-admin-new')]);
  const again = await startTestControl(t, dir);
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.throws(() => again.tokens.check('ambit-join-old'), code('AMBIT_ERR_CA_TOKEN_USED'));
  assert.equal(again.caService.isRevoked('node-9'), true);
  assert.equal(await statusWith(again, 'ambit-admin-old'), 200);
  assert.equal(await statusWith(again, 'ambit-admin-new'), 401);
});
