// Every replica on one store allocates VIPs from the range the store's table was allocated from. A
// replica with another range is refused at start (it would move the others' addresses into its own
// range and they would move them back, forever); the range of a whole mesh changes by exporting it and
// importing it into a new store. A single control plane on its own embedded store may still change it.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { type ControlPlane, storeChoice } from '../../../src/control/index.ts';
import { readInternal } from '../../../src/control/store/index.ts';
import { hasCode } from '../../../src/errors/index.ts';
import { NO_ETCD, startEtcd } from '../../helpers/etcd.ts';
import { adminFetch, startTestControl } from '../../helpers/mesh.ts';

const SHOP = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } },
  ...['web', 'api'].map((name) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'shop' },
    spec: { selector: { app: name }, ports: [{ port: 80 }] },
  })),
];

async function call(cp: ControlPlane, method: string, path: string, body?: unknown) {
  const res = await adminFetch(cp, path, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const json = (await res.json()) as any;
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** The VIPs of shop's Services once both have one, by name. */
async function vips(cp: ControlPlane): Promise<Record<string, string>> {
  for (;;) {
    const found = Object.fromEntries(cp.mesh.registry.services.map((s) => [s.name, s.vips[0] ?? '']));
    if (Object.keys(found).length === 2 && Object.values(found).every(Boolean)) return found;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const mismatch = (err: unknown) => {
  assert.ok(hasCode(err, 'AMBIT_ERR_CONTROL_VIP_RANGE_MISMATCH'), String(err));
  const message = (err as Error).message;
  assert.match(message, /198\.19\.7\.0\/24/);
  assert.match(message, /198\.19\.0\.0\/16/);
  assert.match(message, /every control-plane replica on one store needs the same vipRange/);
  return true;
};

describe('the VIP range replicas share', { skip: NO_ETCD }, () => {
  test('a replica with another range is refused and leaves the VIP table alone', async (t) => {
    const etcd = await startEtcd(t);
    const store = await storeChoice({ store: 'etcd', etcdEndpoints: etcd.url, etcdPrefix: '/vip-range' });
    const a = await startTestControl(t, undefined, { store });
    await call(a, 'POST', '/ambit/v1/apply', { objects: SHOP });
    const before = await vips(a);
    const revision = a.store.revision;

    await assert.rejects(
      startTestControl(t, undefined, { store, registry: { vipRange: '198.19.7.0/24' } }),
      mismatch,
    );
    assert.equal(a.store.revision, revision, 'the refused replica wrote nothing');
    assert.deepEqual(await vips(a), before);
    // A replica with the same range, however it is spelt, is welcome.
    const b = await startTestControl(t, undefined, { store, registry: { vipRange: '198.19.5.0/16' } });
    assert.deepEqual(await vips(b), before);
  });

  test('while nothing is allocated, a replica records its own range', async (t) => {
    const etcd = await startEtcd(t);
    const store = await storeChoice({ store: 'etcd', etcdEndpoints: etcd.url, etcdPrefix: '/vip-fresh' });
    const first = await startTestControl(t, undefined, { store });
    await first.close();
    const cp = await startTestControl(t, undefined, { store, registry: { vipRange: '198.19.7.0/24' } });
    assert.equal(readInternal(cp.store, 'vip-range'), '198.19.7.0/24');
    await call(cp, 'POST', '/ambit/v1/apply', { objects: SHOP });
    for (const ip of Object.values(await vips(cp))) assert.match(ip, /^198\.19\.7\.\d+$/);
  });

  test('export and import into a new store moves the mesh to another range', async (t) => {
    const etcd = await startEtcd(t);
    const old = await storeChoice({ store: 'etcd', etcdEndpoints: etcd.url, etcdPrefix: '/vip-old' });
    const a = await startTestControl(t, undefined, { store: old });
    await call(a, 'POST', '/ambit/v1/apply', { objects: SHOP });
    await vips(a);
    const doc = await call(a, 'GET', '/ambit/v1/export');

    const next = await storeChoice({ store: 'etcd', etcdEndpoints: etcd.url, etcdPrefix: '/vip-new' });
    const narrow = { vipRange: '198.19.7.0/24' };
    const b = await startTestControl(t, undefined, { store: next, registry: narrow });
    await call(b, 'POST', '/ambit/v1/import', doc);
    // The imported addresses lie outside the new range: they are allocated again, from it.
    const moved = await vips(b);
    for (const ip of Object.values(moved)) assert.match(ip, /^198\.19\.7\.\d+$/);
    const c = await startTestControl(t, undefined, { store: next, registry: narrow });
    assert.deepEqual(await vips(c), moved);
    await assert.rejects(startTestControl(t, undefined, { store: next }), (err) => {
      assert.ok(hasCode(err, 'AMBIT_ERR_CONTROL_VIP_RANGE_MISMATCH'), String(err));
      return true;
    });
  });
});

test('a control plane on its own embedded store may change its range on a restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-vip-range-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const before = await startTestControl(t, dir);
  await call(before, 'POST', '/ambit/v1/apply', { objects: SHOP });
  for (const ip of Object.values(await vips(before))) assert.match(ip, /^198\.19\.0\.\d+$/);
  await before.close();
  const after = await startTestControl(t, dir, { registry: { vipRange: '198.19.7.0/24' } });
  for (const ip of Object.values(await vips(after))) assert.match(ip, /^198\.19\.7\.\d+$/);
});
