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

const service = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'shop' },
  spec: { selector: { app: name }, ports: [{ name: 'http', port: 80 }] },
});

async function apply(cp: Parameters<typeof adminFetch>[0], objects: unknown[]): Promise<void> {
  const r = await adminFetch(cp, '/ambit/v1/apply', {
    method: 'POST',
    body: JSON.stringify({ objects }),
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(r.status, 200, await r.text());
}

const vipsOf = (cp: Parameters<typeof adminFetch>[0]) =>
  Object.fromEntries(cp.mesh.registry.services.map((s) => [s.name, s.vips[0]]));

describe('VIP allocation on a shared store', { skip: NO_ETCD }, () => {
  test('two control planes applying at once hand out one address per Service, the same on both', async (t) => {
    const etcd = await startEtcd(t);
    const store = await storeChoice({ store: 'etcd', etcdEndpoints: etcd.url, etcdPrefix: '/mesh-b' });
    const a = await startTestControl(t, undefined, { store });
    const b = await startTestControl(t, undefined, { store });
    await apply(a, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } }]);
    const names = Array.from({ length: 16 }, (_, i) => `svc-${i}`);
    await Promise.all(names.map((name, i) => apply(i % 2 === 0 ? a : b, [service(name)])));
    const settled = async () => {
      for (;;) {
        const [va, vb] = [vipsOf(a), vipsOf(b)];
        if (names.every((n) => va[n] && va[n] === vb[n])) return va;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const vips = await settled();
    const addresses = names.map((n) => vips[n]);
    assert.equal(
      new Set(addresses).size,
      names.length,
      `every Service its own address: ${JSON.stringify(vips)}`,
    );
  });

  test('a replica started later hands out the addresses the others did, not its own', async (t) => {
    const etcd = await startEtcd(t);
    const store = await storeChoice({ store: 'etcd', etcdEndpoints: etcd.url, etcdPrefix: '/mesh-c' });
    const a = await startTestControl(t, undefined, { store });
    const derived = async (check: (v: Record<string, string | undefined>) => boolean) => {
      while (!check(vipsOf(a))) await new Promise((resolve) => setTimeout(resolve, 20));
    };
    await apply(a, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } }, service('first')]);
    await derived((v) => v.first !== undefined);
    await apply(a, [service('second')]);
    await derived((v) => v.second !== undefined);
    const r = await adminFetch(a, '/api/v1/namespaces/shop/services/first', { method: 'DELETE' });
    assert.equal(r.status, 200, await r.text());
    await derived((v) => v.first === undefined);
    // `second` keeps the address it was given, though a lower one is free now.
    assert.notEqual(vipsOf(a).second, '198.19.0.1');
    const b = await startTestControl(t, undefined, { store });
    assert.equal(vipsOf(b).second, vipsOf(a).second);
  });
});
