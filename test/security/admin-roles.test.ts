// Issue 8, item 2: the admin API's TCP listener exists only when asked for, needs a bearer token on
// every request but readiness, and a token's role (Kubernetes' cluster-admin, edit, view) limits
// what it reaches; a batch touching anything out of reach is refused whole.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { authorize, type Principal } from '../../src/control/api/access.ts';
import { AdminTokens } from '../../src/control/api/admin-tokens.ts';
import { type ControlPlane, startControlPlane } from '../../src/control/index.ts';
import { EmbeddedStore } from '../../src/control/store/index.ts';
import { hasCode } from '../../src/errors/index.ts';
import { eventually } from '../helpers/lab.ts';

type After = { after: (fn: () => Promise<void>) => void };

/** A data directory removed when the test ends (after the control planes using it have stopped). */
async function dataDir(t: After): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-admin-sec-'));
  t.after(async () => {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

/** A control plane with a TCP admin listener; stopped when the test ends, before its directory goes. */
async function start(t: After, dir?: string): Promise<ControlPlane> {
  const cp = await startControlPlane({
    dataDir: dir ?? (await dataDir(t)),
    adminListen: '127.0.0.1:0',
    adminSocket: '',
    grpcListen: '127.0.0.1:0',
  });
  stopLater(t, cp);
  return cp;
}

/** Control planes still running; stopped before any data directory is removed. */
const running = new Set<ControlPlane>();
function stopLater(t: After, cp: ControlPlane): void {
  running.add(cp);
  t.after(stopAll);
}
async function stopAll(): Promise<void> {
  const all = [...running];
  running.clear();
  for (const cp of all) await cp.close();
}

function client(cp: ControlPlane, token?: string) {
  return async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`http://${cp.adminAddress}${path}`, {
      method,
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      body: (text.startsWith('{') ? JSON.parse(text) : { text }) as Record<string, any>,
    };
  };
}

const ns = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
const svc = (name: string, namespace: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace },
  spec: { selector: { app: name }, ports: [{ port: 80 }] },
});

test('no TCP admin listener unless asked; a non-loopback one needs the second flag', async (t) => {
  const cp = await startControlPlane({
    dataDir: await dataDir(t),
    adminSocket: '',
    grpcListen: '127.0.0.1:0',
  });
  stopLater(t, cp);
  assert.equal(cp.adminAddress, undefined);

  for (const adminListen of ['0.0.0.0:0', '[::]:0', '198.18.0.1:0']) {
    await assert.rejects(
      startControlPlane({
        dataDir: await dataDir(t),
        adminListen,
        adminSocket: '',
        grpcListen: '127.0.0.1:0',
      }),
      (e) => hasCode(e, 'AMBIT_ERR_CONTROL_REMOTE_ADMIN') && /--admin-listen-allow-remote/.test(String(e)),
      adminListen,
    );
  }
});

test('every request but readiness needs a known bearer token: 401 Unauthorized otherwise', async (t) => {
  const cp = await start(t);
  const anonymous = client(cp);
  assert.equal((await anonymous('GET', '/healthz/ready')).status, 200);
  for (const [method, path, body] of [
    ['GET', '/api/v1/namespaces', undefined],
    ['POST', '/ambit/v1/tokens', { node: 'node-1' }],
    ['POST', '/ambit/v1/apply', { objects: [ns('shop')] }],
    ['GET', '/metrics', undefined],
    ['GET', '/ambit/v1/admin-tokens', undefined],
  ] as const) {
    const res = await anonymous(method, path, body);
    assert.equal(res.status, 401, `${method} ${path}`);
    assert.equal(res.body.reason, 'Unauthorized');
    assert.equal(res.body.details.ambitCode, 'AMBIT_ERR_API_UNAUTHORIZED');
    assert.equal(res.headers.get('www-authenticate'), 'Bearer');
  }
  const forged = await client(cp, 'ambit-admin-forged')('GET', '/api/v1/namespaces');
  assert.equal(forged.status, 401);
  assert.equal(cp.api.list({ kind: 'Namespace' }).length, 0, 'nothing was created');
});

test('an edit token reaches its namespaces only; a batch with anything else is refused whole', async (t) => {
  const cp = await start(t);
  const admin = client(cp, (await cp.adminTokens.create({ role: 'cluster-admin' })).token);
  await admin('POST', '/ambit/v1/apply', { objects: [ns('shop'), ns('bank'), svc('vault', 'bank')] });

  const created = await admin('POST', '/ambit/v1/admin-tokens', {
    name: 'shop-ci',
    role: 'edit',
    namespaces: ['shop'],
  });
  assert.equal(created.status, 201);
  assert.match(created.body.token, /^ambit-admin-/);
  const edit = client(cp, created.body.token);

  assert.equal((await edit('POST', '/ambit/v1/apply', { objects: [svc('web', 'shop')] })).status, 200);
  assert.equal((await edit('PUT', '/api/v1/namespaces/shop/services/db', svc('db', 'shop'))).status, 201);
  assert.equal((await edit('GET', '/api/v1/namespaces/shop/services')).body.items.length, 2);
  assert.equal((await edit('GET', '/api/v1/namespaces/shop')).status, 200, 'its own Namespace object');

  const mixed = await edit('POST', '/ambit/v1/apply', { objects: [svc('api', 'shop'), svc('evil', 'bank')] });
  assert.equal(mixed.status, 403);
  assert.equal(mixed.body.reason, 'Forbidden');
  assert.match(mixed.body.message, /services "evil" is forbidden: User "token:shop-ci".*namespace "bank"/);
  assert.equal(cp.api.list({ kind: 'Service', namespace: 'shop' }).length, 2, 'api was not applied either');

  const forbidden: Array<[string, string, unknown?]> = [
    ['POST', '/ambit/v1/apply', { objects: [ns('shop2')] }], // cluster-scoped
    ['POST', '/ambit/v1/apply', { objects: [svc('x', 'bank')], dryRun: true }],
    ['POST', '/ambit/v1/delete', { refs: [{ kind: 'Service', namespace: 'bank', name: 'vault' }] }],
    ['PUT', '/api/v1/namespaces/bank/services/vault', svc('vault', 'bank')],
    ['DELETE', '/api/v1/namespaces/bank/services/vault'],
    ['GET', '/api/v1/namespaces/bank/services/vault'],
    ['GET', '/api/v1/services'], // a list across namespaces: 403, as Kubernetes answers
    ['GET', '/api/v1/services?watch=true'],
    ['GET', '/api/v1/namespaces'],
    ['GET', '/api/v1/namespaces/bank'],
    ['POST', '/ambit/v1/tokens', { node: 'node-1' }],
    ['POST', '/ambit/v1/revoke-node', { node: 'node-1' }],
    ['GET', '/ambit/v1/admin-tokens'],
    ['POST', '/ambit/v1/admin-tokens', { role: 'cluster-admin' }],
    ['GET', '/ambit/v1/proxies'],
    ['GET', '/ambit/v1/workloads?namespace=bank'],
    ['GET', '/ambit/v1/describe?kind=service&namespace=bank&name=vault'],
  ];
  for (const [method, path, body] of forbidden) {
    const res = await edit(method, path, body);
    assert.equal(res.status, 403, `${method} ${path}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.details.ambitCode, 'AMBIT_ERR_API_FORBIDDEN');
  }
  assert.equal(cp.api.get({ kind: 'Service', namespace: 'bank', name: 'vault' }).metadata.generation, 1);

  // Derived views are filtered to its namespaces; the trust bundle is public. Wait for the registry to
  // hold all three Services first, or an empty list would pass the filter check.
  await eventually(
    async () => ((await admin('GET', '/ambit/v1/services')).body.items?.length === 3 ? true : undefined),
    10_000,
    'the three Services in the registry',
  );
  const services = await edit('GET', '/ambit/v1/services');
  assert.equal(services.status, 200);
  assert.ok(services.body.items.every((s: { namespace: string }) => s.namespace === 'shop'));
  assert.deepEqual(services.body.items.map((s: { key: string }) => s.key).sort(), ['shop/db', 'shop/web']);
  assert.equal((await edit('GET', '/ambit/v1/trust-bundle')).status, 200);
  assert.equal((await edit('GET', '/metrics')).status, 200);

  // Revoked: it stops working at once.
  assert.equal((await admin('DELETE', '/ambit/v1/admin-tokens/shop-ci')).status, 200);
  assert.equal((await edit('GET', '/api/v1/namespaces/shop/services')).status, 401);
});

test('a view token reads its namespaces and writes nothing', async (t) => {
  const cp = await start(t);
  await cp.api.apply([ns('shop'), svc('web', 'shop')]);
  const view = client(cp, (await cp.adminTokens.create({ role: 'view', namespaces: ['shop'] })).token);
  assert.equal((await view('GET', '/api/v1/namespaces/shop/services/web')).status, 200);
  for (const [method, path, body] of [
    ['PUT', '/api/v1/namespaces/shop/services/web', svc('web', 'shop')],
    ['POST', '/api/v1/namespaces/shop/services', svc('db', 'shop')],
    ['DELETE', '/api/v1/namespaces/shop/services/web', undefined],
    ['POST', '/ambit/v1/apply', { objects: [svc('db', 'shop')] }],
    ['POST', '/ambit/v1/delete', { refs: [{ kind: 'Service', namespace: 'shop', name: 'web' }] }],
  ] as const) {
    assert.equal((await view(method, path, body)).status, 403, `${method} ${path}`);
  }
  assert.equal(cp.api.list({ kind: 'Service' }).length, 1);
});

test('admin tokens: only digests on disk (0600), listed without secrets, kept across a restart', async (t) => {
  const dir = await dataDir(t);
  const cp = await start(t, dir);
  const admin = client(cp, (await cp.adminTokens.create({ role: 'cluster-admin', name: 'root' })).token);
  const created = await admin('POST', '/ambit/v1/admin-tokens', {
    role: 'view',
    namespaces: ['shop'],
    ttlSeconds: 3600,
  });
  assert.equal(created.status, 201);
  // The digests live in the store (its log is 0600), as every replica on a shared store reads them.
  const log = join(dir, 'store', 'wal.jsonl');
  assert.equal((await stat(log)).mode & 0o777, 0o600);
  const onDisk = await readFile(log, 'utf8');
  assert.ok(onDisk.includes(createHash('sha256').update(created.body.token).digest('hex')));
  assert.ok(!onDisk.includes(created.body.token), 'the token itself is never stored');
  const listed = await admin('GET', '/ambit/v1/admin-tokens');
  assert.deepEqual(
    listed.body.items.map((i: Record<string, unknown>) => [i.name, i.role, 'token' in i, 'digest' in i]),
    [
      ['root', 'cluster-admin', false, false],
      [created.body.name, 'view', false, false],
    ],
  );
  for (const bad of [
    { role: 'edit' },
    { role: 'cluster-admin', namespaces: ['shop'] },
    { role: 'owner', namespaces: ['shop'] },
    { role: 'view', namespaces: ['Shop!'] },
    { role: 'view', namespaces: ['shop'], ttlSeconds: 1e300 },
    null,
  ]) {
    const res = await admin('POST', '/ambit/v1/admin-tokens', bad);
    assert.equal(res.status, 422, JSON.stringify(bad));
    assert.ok(res.body.details.causes.length > 0);
  }
  assert.equal((await admin('DELETE', '/ambit/v1/admin-tokens/nope')).status, 404);

  running.delete(cp);
  await cp.close();
  const again = await start(t, dir);
  assert.equal(
    (await client(again, created.body.token)('GET', '/api/v1/namespaces/shop/services')).status,
    200,
  );
});

test('an expired token is refused and leaves the list', async (t) => {
  let now = Date.parse('2030-01-01T00:00:00Z');
  const dir = await mkdtemp(join(tmpdir(), 'ambit-admin-sec-'));
  const store = await EmbeddedStore.open(dir);
  t.after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const tokens = new AdminTokens({ store, now: () => now });
  const { token } = await tokens.create({
    role: 'edit',
    namespaces: ['shop'],
    ttlSeconds: 60,
    name: 'brief',
  });
  assert.equal(tokens.authenticate(token)?.user, 'token:brief');
  now += 61_000;
  assert.equal(tokens.authenticate(token), undefined);
  assert.deepEqual(tokens.list(), []);
});

test('authorize follows Kubernetes RBAC for the built-in roles', () => {
  const edit: Principal = { user: 'token:e', role: 'edit', namespaces: ['shop'] };
  const view: Principal = { user: 'token:v', role: 'view', namespaces: ['shop'] };
  const admin: Principal = { user: 'token:a', role: 'cluster-admin', namespaces: [] };
  const svcIn = (verb: 'get' | 'list' | 'create' | 'delete', namespace?: string) => ({
    verb,
    resource: 'services',
    group: '',
    namespaced: true,
    namespace,
  });
  const nsObj = (verb: 'get' | 'list' | 'update', name?: string) => ({
    verb,
    resource: 'namespaces',
    group: '',
    namespaced: false,
    name,
  });
  const cases: Array<[Principal, ReturnType<typeof svcIn> | ReturnType<typeof nsObj>, boolean]> = [
    [edit, svcIn('create', 'shop'), true],
    [edit, svcIn('create', 'bank'), false],
    [edit, svcIn('list', undefined), false],
    [edit, nsObj('get', 'shop'), true],
    [edit, nsObj('get', 'bank'), false],
    [edit, nsObj('list'), false],
    [edit, nsObj('update', 'shop'), false],
    [view, svcIn('get', 'shop'), true],
    [view, svcIn('delete', 'shop'), false],
    [admin, nsObj('update', 'anything'), true],
    [admin, svcIn('list', undefined), true],
  ];
  for (const [p, a, allowed] of cases) {
    const ok = (() => {
      try {
        authorize(p, a);
        return true;
      } catch (e) {
        assert.ok(hasCode(e, 'AMBIT_ERR_API_FORBIDDEN'));
        return false;
      }
    })();
    assert.equal(ok, allowed, `${p.role} ${a.verb} ${a.resource} ${JSON.stringify(a)}`);
  }
});
