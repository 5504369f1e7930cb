// Issue 8, item 1: a node credential cannot obtain an identity nobody placed on its node. Which
// workloads a node runs is the operator's word (the lab's pod API, or WorkloadEntries with spec.node);
// a node reports nothing, so there is nothing it can claim.

import assert from 'node:assert/strict';
import { chmod, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type ControlPlane, startControlPlane } from '../../src/control/index.ts';
import { hasCode } from '../../src/errors/index.ts';
import { createCsr, generateKeyPair, type SpiffeId } from '../../src/identity/index.ts';
import { CaClient, controlPlaneCredentials, type NodeCredential } from '../../src/xds/index.ts';
import { eventually } from '../helpers/lab.ts';
import { adminFetch, joinNode } from '../helpers/mesh.ts';

interface Pod {
  name: string;
  node: string;
  address: string;
  namespace: string;
  serviceAccount: string;
  labels?: Record<string, string>;
}

/** Writes a lab state file as `ambit lab` does (atomically), with these pods. */
async function writeLab(file: string, pods: Pod[]): Promise<void> {
  const state = {
    version: 1,
    name: 'sec',
    nodes: 2,
    createdAt: new Date(0).toISOString(),
    nodeProcesses: {},
    pods: pods.map((p, i) => ({ labels: {}, host: i + 2, processes: [], ...p })),
  };
  await writeFile(`${file}.tmp`, JSON.stringify(state));
  await rename(`${file}.tmp`, file);
}

async function setup(t: import('node:test').TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-sec-id-'));
  const labState = join(dir, 'state.json');
  await writeLab(labState, [
    {
      name: 'web',
      node: 'node-1',
      address: '198.18.1.2',
      namespace: 'shop',
      serviceAccount: 'web',
      labels: { app: 'web' },
    },
  ]);
  const cp = await startControlPlane({
    dataDir: join(dir, 'control'),
    adminListen: '127.0.0.1:0',
    adminSocket: '',
    grpcListen: '127.0.0.1:0',
    labState,
  });
  // after() hooks run in the order they were added: close first, then remove its directory.
  t.after(() => cp.close());
  t.after(() => rm(dir, { recursive: true, force: true }));
  await cp.api.apply([
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'shop', labels: { 'istio.io/dataplane-mode': 'ambient' } },
    },
  ]);
  return { cp, labState };
}

function caFor(t: import('node:test').TestContext, cp: ControlPlane, cred: NodeCredential) {
  const ca = new CaClient({
    address: cp.grpcAddress,
    trustDomain: cp.ca.trustDomain,
    trustBundlePem: cred.trustBundlePem,
    credential: cred,
  });
  t.after(() => ca.close());
  return async (sa: string) => {
    const id = `spiffe://cluster.local/ns/shop/sa/${sa}` as SpiffeId;
    return ca.fetch(id, await createCsr(id, (await generateKeyPair()).keys));
  };
}

const impersonation = (e: unknown) => hasCode(e, 'AMBIT_ERR_CA_IMPERSONATION');

test('a node gets certificates only for the pods the operator placed on it', async (t) => {
  const { cp, labState } = await setup(t);
  const ask1 = caFor(t, cp, await joinNode(cp, 'node-1'));
  const ask2 = caFor(t, cp, await joinNode(cp, 'node-2'));
  const chain = await eventually(() => ask1('web').catch(() => undefined), 10_000, 'node-1 gets shop/web');
  assert.ok(chain.length >= 2);
  await assert.rejects(ask2('web'), impersonation, 'node-2 has no pod running as shop/web');
  await assert.rejects(ask1('admin'), impersonation, 'nobody placed shop/admin anywhere');

  // The operator moves the pod: the identity follows the operator's record, not a node's claim.
  await writeLab(labState, [
    { name: 'web', node: 'node-2', address: '198.18.2.2', namespace: 'shop', serviceAccount: 'web' },
  ]);
  await eventually(() => ask2('web').catch(() => undefined), 10_000, 'node-2 gets shop/web after the move');
  await assert.rejects(ask1('web'), impersonation, 'node-1 no longer has it');
});

test('a pod list that another user could write places nothing', async (t) => {
  const { cp, labState } = await setup(t);
  const ask1 = caFor(t, cp, await joinNode(cp, 'node-1'));
  await eventually(() => ask1('web').catch(() => undefined), 10_000, 'node-1 gets shop/web');
  // The lab's directory becomes world-writable: anyone could now swap in a pod list of their own.
  const dir = dirname(labState);
  await chmod(dir, 0o777);
  await writeLab(labState, [
    { name: 'web', node: 'node-1', address: '198.18.1.2', namespace: 'shop', serviceAccount: 'web' },
    { name: 'evil', node: 'node-1', address: '198.18.1.3', namespace: 'shop', serviceAccount: 'admin' },
  ]);
  await new Promise((r) => setTimeout(r, 1_000)); // several polls
  await assert.rejects(ask1('admin'), impersonation, 'nothing from an untrusted pod list');
  assert.ok(await ask1('web'), 'the last trusted pod list keeps serving');
  await chmod(dir, 0o700);
  await eventually(
    () => ask1('admin').catch(() => undefined),
    10_000,
    'read again once only its owner can write it',
  );
});

test('a node cannot register workloads: the registration service is gone', async (t) => {
  const { cp } = await setup(t);
  const cred = await joinNode(cp, 'node-1');
  // What an attacker holding node-1's credential used to do: report a workload running as any
  // service account in any ordinary namespace, then ask the CA to sign that identity.
  const client = new grpc.Client(
    cp.grpcAddress,
    controlPlaneCredentials(cp.ca.trustDomain, cred.trustBundlePem, cred),
  );
  t.after(() => client.close());
  const status = await new Promise<grpc.StatusObject | undefined>((resolve) => {
    client.makeUnaryRequest(
      '/ambit.xds.v1.NodeRegistration/Register',
      (b: Buffer) => b,
      (b: Buffer) => b,
      // RegisterRequest { workloads: [{ name: "x", namespace: "shop", service_account: "admin", address: "198.18.1.9" }] }
      Buffer.from('0a1c0a0178120473686f701a0561646d696e2a0a3139382e31382e312e39', 'hex'),
      (err) => resolve(err ?? undefined),
    );
  });
  assert.equal(status?.code, grpc.status.UNIMPLEMENTED);
  assert.equal(cp.api.list({ kind: 'WorkloadEntry' }).length, 0, 'nothing was stored');
  await assert.rejects(caFor(t, cp, cred)('admin'), impersonation);
});

test("a revoked node's workloads leave the mesh until it rejoins", async (t) => {
  const { cp } = await setup(t);
  await cp.api.apply([
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'shop' },
      spec: { selector: { app: 'web' }, ports: [{ port: 80 }] },
    },
  ]);
  await joinNode(cp, 'node-1');
  const endpoints = () => cp.mesh.registry.services.find((s) => s.key === 'shop/web')?.endpoints.length;
  await eventually(async () => (endpoints() === 1 ? true : undefined), 10_000, 'web is an endpoint');
  const revoke = await adminFetch(cp, '/ambit/v1/revoke-node', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ node: 'node-1' }),
  });
  assert.equal(revoke.status, 200);
  await eventually(async () => (endpoints() === 0 ? true : undefined), 10_000, 'web leaves the service');
  assert.equal(cp.mesh.registry.workloads.length, 0, 'and the registry (so the CA signs nothing for it)');
  assert.ok(cp.mesh.registry.issues.some((i) => /revoked/.test(i.message)));
  await joinNode(cp, 'node-1');
  await eventually(async () => (endpoints() === 1 ? true : undefined), 10_000, 'back after rejoining');
});
