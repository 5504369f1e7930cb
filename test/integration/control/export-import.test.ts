// A mesh moved between stores with `ambit control export` and `ambit control import`: from the
// embedded store to etcd and back, every resource keeps its uid, generation and creationTimestamp and
// every Service its VIP; an import into a store that holds resources, or of something that is not an
// export, is refused and changes nothing.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, test } from 'node:test';
import { storeChoice } from '../../../src/control/index.ts';
import { ambit } from '../../helpers/control.ts';
import { NO_ETCD, startEtcd } from '../../helpers/etcd.ts';
import { eventually } from '../../helpers/lab.ts';
import { adminFetch, joinNode, startTestControl } from '../../helpers/mesh.ts';

type Cp = Awaited<ReturnType<typeof startTestControl>>;

const MESH = [
  {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'shop', labels: { 'istio.io/dataplane-mode': 'ambient' } },
  },
  ...['web', 'api', 'db'].map((name) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'shop' },
    spec: { selector: { app: name }, ports: [{ port: 80 }] },
  })),
  {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'allow-web', namespace: 'shop' },
    spec: {
      selector: { matchLabels: { app: 'api' } },
      rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/web'] } }] }],
    },
  },
];

async function call(
  cp: Cp,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: any }> {
  const r = await adminFetch(cp, path, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: r.status, json: await r.json() };
}

/** What must survive a move: each resource's identity and age, and each Service's VIP. */
async function fingerprint(cp: Cp) {
  const doc = (await call(cp, 'GET', '/ambit/v1/export')).json;
  const items = (doc.items as Array<{ kind: string; metadata: Record<string, unknown>; spec?: unknown }>).map(
    (o) => ({
      kind: o.kind,
      name: o.metadata.name,
      uid: o.metadata.uid,
      generation: o.metadata.generation,
      creationTimestamp: o.metadata.creationTimestamp,
      spec: o.spec,
    }),
  );
  for (;;) {
    const vips = Object.fromEntries(cp.mesh.registry.services.map((s) => [s.name, s.vips[0]]));
    if (Object.keys(vips).length === 3 && Object.values(vips).every(Boolean)) return { items, vips, doc };
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('moving a mesh between stores', { skip: NO_ETCD }, () => {
  test('embedded → etcd → embedded keeps uids, timestamps and VIPs', async (t) => {
    const embedded = await startTestControl(t);
    assert.equal((await call(embedded, 'POST', '/ambit/v1/apply', { objects: MESH })).status, 200);
    // A Service deleted before the move: the others keep the addresses they had, not the lowest free.
    assert.equal((await call(embedded, 'POST', '/ambit/v1/apply', { objects: [] })).status, 200);
    // A revoked node, and with it the certificate it was issued: both move with the mesh.
    const cred = await joinNode(embedded, 'node-1');
    assert.equal((await call(embedded, 'POST', '/ambit/v1/revoke-node', { node: 'node-1' })).status, 200);
    const serial = new X509Certificate(cred.certChainPem).serialNumber;
    await eventually(
      async () => (JSON.stringify(await fingerprint(embedded)).includes(serial) ? true : undefined),
      5_000,
      'the revoked certificate in the store',
    );
    const before = await fingerprint(embedded);

    const etcd = await startEtcd(t);
    const onEtcd = await startTestControl(t, undefined, {
      store: await storeChoice({ store: 'etcd', etcdEndpoints: etcd.url }),
    });
    const imported = await call(onEtcd, 'POST', '/ambit/v1/import', before.doc);
    assert.equal(imported.status, 200, JSON.stringify(imported.json));
    assert.equal(imported.json.imported, MESH.length);
    const moved = await fingerprint(onEtcd);
    assert.deepEqual(moved.items, before.items);
    assert.deepEqual(moved.vips, before.vips);
    assert.ok(onEtcd.caService.isRevoked('node-1'), 'the revoked node');
    assert.ok(
      onEtcd.caService.revokedCertificateList().some((r) => r.serial === serial),
      'its certificate on the revocation list the trust bundle carries',
    );

    // Into a store that holds resources: refused, nothing changed.
    const again = await call(onEtcd, 'POST', '/ambit/v1/import', before.doc);
    assert.equal(again.status, 409, JSON.stringify(again.json));
    assert.match(again.json.message, /import writes into an empty store, and this one holds 5 resources/);

    // And back, through the CLI.
    const back = await startTestControl(t);
    const token = (args: string[]) => [...args, '--server', `http://${back.adminAddress}`];
    const exported = await ambit(
      ['control', 'export', '-o', 'json', '--server', `http://${onEtcd.adminAddress}`],
      {
        AMBIT_TOKEN: await tokenOf(onEtcd),
      },
    );
    assert.equal(exported.code, 0, exported.stderr);
    const done = await ambit(
      token(['control', 'import', '-f', '-']),
      { AMBIT_TOKEN: await tokenOf(back) },
      exported.stdout,
    );
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /imported 5 resources/);
    const home = await fingerprint(back);
    assert.deepEqual(home.items, before.items);
    assert.deepEqual(home.vips, before.vips);
  });

  test('what is not an export, or holds an invalid resource, is refused with where and why', async (t) => {
    const cp = await startTestControl(t);
    const notExport = await call(cp, 'POST', '/ambit/v1/import', { kind: 'List', items: [] });
    assert.equal(notExport.status, 422);
    assert.match(notExport.json.message, /not a mesh export .*apiVersion.*kind/);
    const bad = await call(cp, 'POST', '/ambit/v1/import', {
      apiVersion: 'ambit.dev/v1alpha1',
      kind: 'MeshExport',
      state: { vips: { 'shop/web': 'not-an-ip' } },
      items: [],
    });
    assert.equal(bad.status, 422);
    assert.match(bad.json.message, /state\.vips\.shop\/web: must be an IPv4 address/);
    const badToken = await call(cp, 'POST', '/ambit/v1/import', {
      apiVersion: 'ambit.dev/v1alpha1',
      kind: 'MeshExport',
      state: { 'join-tokens': { ['a'.repeat(64)]: { node: 'node-1', state: 'open' } } },
      items: [],
    });
    assert.equal(badToken.status, 422);
    assert.match(badToken.json.message, /state\.join-tokens\.a{64}\.expiresAt/);
    const noUid = await call(cp, 'POST', '/ambit/v1/import', {
      apiVersion: 'ambit.dev/v1alpha1',
      kind: 'MeshExport',
      items: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } }],
    });
    assert.equal(noUid.status, 422);
    assert.match(JSON.stringify(noUid.json), /metadata\.uid/);
    const list = await call(cp, 'GET', '/api/v1/namespaces');
    assert.equal(list.json.items.length, 0, 'nothing was written');
  });
});

async function tokenOf(cp: Cp): Promise<string> {
  const created = await call(cp, 'POST', '/ambit/v1/admin-tokens', { role: 'cluster-admin' });
  return created.json.token as string;
}
