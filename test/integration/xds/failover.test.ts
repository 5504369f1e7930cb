// A proxy given several control-plane replicas (one CA, one etcd) stays on one, and when that one goes
// away it moves to another within seconds, keeps its state meanwhile, and resumes with the versions it
// holds: the new replica sends only what changed.

import assert from 'node:assert/strict';
import { cp as copyDir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { storeChoice } from '../../../src/control/index.ts';
import {
  CaClient,
  CONTROL_CHANNEL_OPTIONS,
  controlPlaneCredentials,
  TYPE,
  XdsClient,
} from '../../../src/xds/index.ts';
import { NO_ETCD, startEtcd } from '../../helpers/etcd.ts';
import { adminFetch, startTestControl } from '../../helpers/mesh.ts';

const entry = (name: string, address: string) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'WorkloadEntry',
  metadata: { name, namespace: 'shop', labels: { app: name } },
  spec: { address, serviceAccount: name, node: 'node-1' },
});

async function until<T>(check: () => T | undefined): Promise<T> {
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('config stream over several control-plane replicas', { skip: NO_ETCD }, () => {
  test('the proxy moves to another replica, keeps its state, and resumes without a full resync', async (t) => {
    const etcd = await startEtcd(t);
    const store = await storeChoice({ store: 'etcd', etcdEndpoints: etcd.url, etcdPrefix: '/ha' });
    const a = await startTestControl(t, undefined, { store });
    // One CA for both replicas: the operator gives each the same CA files.
    const bDir = await mkdtemp(join(tmpdir(), 'ambit-cp-b-'));
    t.after(() => rm(bDir, { recursive: true, force: true }));
    await copyDir(join(a.dataDir, 'ca'), join(bDir, 'ca'), { recursive: true });
    const b = await startTestControl(t, bDir, { store });
    const apply = async (cp: typeof a, objects: unknown[]) => {
      const r = await adminFetch(cp, '/ambit/v1/apply', {
        method: 'POST',
        body: JSON.stringify({ objects }),
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(r.status, 200, await r.text());
    };
    await apply(a, [
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'shop', labels: { 'istio.io/dataplane-mode': 'ambient' } },
      },
      ...Array.from({ length: 5 }, (_, i) => entry(`w${i}`, `198.18.1.${10 + i}`)),
    ]);

    const { token } = await a.tokens.issue('node-1');
    const joiner = new CaClient({
      address: a.grpcAddress,
      trustDomain: a.ca.trustDomain,
      trustBundlePem: a.ca.bundle.toPem(),
    });
    const cred = await joiner.join(token, 'node-1').finally(() => joiner.close());
    const workloads = new Map<string, unknown>();
    const upserts: number[] = [];
    const client = new XdsClient({
      target: `${a.grpcAddress},${b.grpcAddress}`,
      credentials: () => controlPlaneCredentials(a.ca.trustDomain, cred.trustBundlePem, cred),
      channelOptions: CONTROL_CHANNEL_OPTIONS,
      node: { kind: 'ztunnel', name: 'node-1' },
      types: [TYPE.workload],
      apply: (_type, delta) => {
        upserts.push(delta.upserts.length);
        for (const u of delta.upserts) workloads.set(u.name, u.value);
        for (const r of delta.removed) workloads.delete(r);
      },
      backoff: { initialMs: 50, maxMs: 500 },
    });
    client.start();
    t.after(() => client.stop());
    await until(() => workloads.size === 5);
    const first = await until(() => client.peer);
    const [gone, other] = first.endsWith(a.grpcAddress.split(':')[1]!) ? [a, b] : [b, a];
    upserts.length = 0;

    await gone.close();
    assert.equal(workloads.size, 5, 'the last good state stays while the replica is gone');
    const second = await until(() => client.peer);
    assert.ok(
      second.endsWith(`:${other.grpcAddress.split(':')[1]}`),
      `moved to the other replica: ${second}`,
    );
    assert.deepEqual(
      upserts.filter((n) => n > 0),
      [],
      'the other replica sent nothing the proxy already held',
    );
    await apply(other, [entry('w9', '198.18.1.99')]);
    await until(() => workloads.size === 6);
  });
});
