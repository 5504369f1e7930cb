// The admin API in-process on 127.0.0.1: Kubernetes-shaped paths, Status errors and watch.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseResourcePath } from '../../../src/control/api/admin.ts';
import { startControlPlane } from '../../../src/control/index.ts';

async function start(t: { after: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-admin-'));
  const cp = await startControlPlane({
    dataDir: dir,
    adminListen: '127.0.0.1:0',
    adminSocket: '',
    grpcListen: '127.0.0.1:0',
  });
  t.after(async () => {
    await cp.close();
    await rm(dir, { recursive: true, force: true });
  });
  const base = `http://${cp.adminAddress}`;
  const token = (await cp.adminTokens.create({ role: 'cluster-admin' })).token;
  const auth = { authorization: `Bearer ${token}` };
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...auth },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  return { cp, base, call, auth };
}

const svc = (name: string, port = 80) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, labels: { app: name } },
  spec: { selector: { app: name }, ports: [{ port }] },
});

describe('admin API', () => {
  test('resource paths resolve to kind, namespace and name', () => {
    const cases: Array<[string, string | undefined, string | undefined, string | undefined]> = [
      ['/api/v1/namespaces', 'Namespace', undefined, undefined],
      ['/api/v1/namespaces/shop', 'Namespace', undefined, 'shop'],
      ['/api/v1/namespaces/shop/services', 'Service', 'shop', undefined],
      ['/api/v1/namespaces/shop/services/web', 'Service', 'shop', 'web'],
      ['/api/v1/services', 'Service', undefined, undefined],
      ['/apis/security.istio.io/v1/namespaces/a/authorizationpolicies/p', 'AuthorizationPolicy', 'a', 'p'],
      ['/apis/security.istio.io/v1beta1/authorizationpolicies', 'AuthorizationPolicy', undefined, undefined],
      ['/apis/networking.istio.io/v1/namespaces/a/workloadentries', 'WorkloadEntry', 'a', undefined],
    ];
    for (const [path, kind, ns, name] of cases) {
      const got = parseResourcePath(path);
      assert.deepEqual([got?.info.kind, got?.namespace, got?.name], [kind, ns, name], path);
    }
    for (const bad of [
      '/api/v2/services',
      '/api/v1/services/web',
      '/apis/x.io/v1/things',
      '/api/v1/namespaces/a/widgets',
      '/other',
    ]) {
      assert.equal(parseResourcePath(bad), undefined, bad);
    }
  });

  test('create, replace, get, list by selector, delete; errors are Status objects with codes', async (t) => {
    const { call } = await start(t);
    const col = '/api/v1/namespaces/shop/services';
    assert.equal((await call('POST', col, svc('web'))).status, 201);
    const dup = await call('POST', col, svc('web'));
    assert.equal(dup.status, 409);
    assert.equal(dup.body.kind, 'Status');
    assert.equal(dup.body.details.ambitCode, 'AMBIT_ERR_API_ALREADY_EXISTS');

    const put = await call('PUT', `${col}/web`, svc('web', 81));
    assert.equal(put.status, 200);
    assert.equal(put.body.metadata.generation, 2);
    assert.equal(put.body.metadata.namespace, 'shop');
    assert.equal((await call('PUT', `${col}/db`, svc('db'))).status, 201);
    const mismatch = await call('PUT', `${col}/other`, svc('web'));
    assert.equal(mismatch.status, 400);

    const bad = await call('PUT', `${col}/web`, { ...svc('web'), spec: { ports: [{ port: 70000 }] } });
    assert.equal(bad.status, 422);
    assert.equal(bad.body.details.causes[0].field, 'spec.ports[0].port');
    assert.equal(
      (await call('GET', `${col}/web`)).body.spec.ports[0].port,
      81,
      'a refused PUT changed nothing',
    );

    const selected = await call('GET', `${col}?labelSelector=${encodeURIComponent('app=db')}`);
    assert.deepEqual(
      selected.body.items.map((i: any) => i.metadata.name),
      ['db'],
    );
    assert.equal((await call('GET', '/api/v1/services')).body.items.length, 2);
    assert.equal((await call('GET', '/api/v1/namespaces/other/services')).body.items.length, 0);

    assert.equal((await call('DELETE', `${col}/db`)).status, 200);
    const missing = await call('GET', `${col}/db`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.details.ambitCode, 'AMBIT_ERR_API_NOT_FOUND');
    assert.equal((await call('GET', '/api/v1/widgets')).status, 404);
    assert.equal((await call('PATCH', `${col}/web`, {})).status, 405);
    const other = await start(t);
    const notJson = await fetch(`${other.base}${col}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...other.auth },
      body: '{',
    });
    assert.equal(notJson.status, 400);
  });

  test('a web page cannot drive it: names in Host and non-JSON writes are refused', async (t) => {
    const { base, cp, auth } = await start(t);
    const col = '/api/v1/namespaces/shop/services';
    // What a cross-site form or a no-preflight fetch can send: text/plain.
    const plain = await fetch(`${base}${col}`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', ...auth },
      body: JSON.stringify(svc('web')),
    });
    assert.equal(plain.status, 415);
    assert.equal(((await plain.json()) as any).details.ambitCode, 'AMBIT_ERR_API_UNSUPPORTED_MEDIA');
    assert.equal(cp.api.list({ kind: 'Service' }).length, 0, 'nothing was created');
    // DNS rebinding: the browser sends the attacker's name as Host.
    const rebound = await new Promise<number>((resolve, reject) => {
      request(`${base}/api/v1/services`, { headers: { host: 'evil.example:15014', ...auth } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    assert.equal(rebound, 403);
  });

  test('watch streams the current items, then every change', async (t) => {
    const { cp, call, auth } = await start(t);
    await call('PUT', '/api/v1/namespaces/shop/services/web', svc('web'));
    const events: Array<{ type: string; name: string }> = [];
    const done = new Promise<void>((resolve, reject) => {
      const url = `http://${cp.adminAddress}/api/v1/namespaces/shop/services?watch=true`;
      const req = request(url, { headers: auth }, (res) => {
        let buf = '';
        res.on('data', (d: Buffer) => {
          buf += d.toString();
          const lines = buf.split('\n');
          buf = lines.pop() ?? '';
          for (const l of lines) {
            const e = JSON.parse(l) as { type: string; object: { metadata: { name: string } } };
            events.push({ type: e.type, name: e.object.metadata.name });
            if (events.length === 4) {
              req.destroy();
              resolve();
            }
          }
        });
      });
      req.on('error', (e) => (events.length >= 4 ? undefined : reject(e)));
      req.end();
    });
    await new Promise((r) => setTimeout(r, 100));
    await call('PUT', '/api/v1/namespaces/shop/services/db', svc('db'));
    await call('PUT', '/api/v1/namespaces/other/services/x', svc('x')); // another namespace: not seen
    await call('PUT', '/api/v1/namespaces/shop/services/web', svc('web', 8080));
    await call('DELETE', '/api/v1/namespaces/shop/services/db');
    await done;
    assert.deepEqual(events, [
      { type: 'ADDED', name: 'web' },
      { type: 'ADDED', name: 'db' },
      { type: 'MODIFIED', name: 'web' },
      { type: 'DELETED', name: 'db' },
    ]);
  });
});
