// A control plane on etcd: what is applied through its admin API lands in etcd under the prefix, and a
// control plane started afterwards with another data directory on the same etcd serves it.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { storeChoice } from '../../../src/control/index.ts';
import { NO_ETCD, startEtcd } from '../../helpers/etcd.ts';
import { adminFetch, startTestControl } from '../../helpers/mesh.ts';

const NAMESPACE = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { team: 'a' } } };

describe('control plane on etcd', { skip: NO_ETCD }, () => {
  test('applies land in etcd, and another control plane on the same etcd serves them', async (t) => {
    const etcd = await startEtcd(t);
    const store = await storeChoice({ store: 'etcd', etcdEndpoints: etcd.url, etcdPrefix: '/mesh-a' });
    const first = await startTestControl(t, undefined, { store });
    const applied = await adminFetch(first, '/ambit/v1/apply', {
      method: 'POST',
      body: JSON.stringify({ objects: [NAMESPACE] }),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(applied.status, 200, await applied.text());
    const raw = new Etcd3({ hosts: etcd.url });
    t.after(() => raw.close());
    const value = await raw.get('/mesh-a/resources/Namespace/shop').string();
    assert.ok(value, 'the resource is in etcd under the prefix');
    assert.equal(JSON.parse(value).metadata.labels.team, 'a');

    const second = await startTestControl(t, undefined, { store });
    const got = await adminFetch(second, '/api/v1/namespaces/shop');
    assert.equal(got.status, 200);
    const body = (await got.json()) as {
      metadata: { labels: Record<string, string>; resourceVersion: string };
    };
    assert.equal(body.metadata.labels.team, 'a');
    assert.match(body.metadata.resourceVersion, /^[1-9][0-9]*$/, 'the etcd revision is the resourceVersion');
  });
});
