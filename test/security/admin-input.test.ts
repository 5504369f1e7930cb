// Issue 8, Low items on the admin API's input: a null body, absurd ttlSeconds, duplicate keys and deep
// nesting are 422s naming the field (never 500s, never half-recorded); a body over the limit is 413
// before it is read; open watches are capped (429 TooManyRequests).

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MAX_BODY } from '../../src/control/api/admin.ts';
import { MAX_JSON_DEPTH, parseJsonBody } from '../../src/control/api/json-body.ts';
import { type ControlPlane, startControlPlane } from '../../src/control/index.ts';
import { readInternal } from '../../src/control/store/index.ts';
import { hasCode } from '../../src/errors/index.ts';

async function start(t: { after: (fn: () => Promise<void>) => void }, maxWatches?: number) {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-admin-input-'));
  const cp = await startControlPlane({
    dataDir: dir,
    adminListen: '127.0.0.1:0',
    adminSocket: '',
    grpcListen: '127.0.0.1:0',
    adminMaxWatches: maxWatches,
  });
  t.after(async () => {
    await cp.close();
    await rm(dir, { recursive: true, force: true });
  });
  const token = (await cp.adminTokens.create({ role: 'cluster-admin' })).token;
  const auth = { authorization: `Bearer ${token}` };
  const raw = async (method: string, path: string, text: string) => {
    const res = await fetch(`http://${cp.adminAddress}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...auth },
      body: text,
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
  };
  return { cp, dir, auth, raw };
}

test('a null body, absurd ttlSeconds and bad fields are 422 with a field path, and nothing is recorded', async (t) => {
  const { cp, raw } = await start(t);
  const cases: Array<[string, string, string]> = [
    ['/ambit/v1/tokens', 'null', ''],
    ['/ambit/v1/tokens', '{"node":"node-1","ttlSeconds":1e300}', 'ttlSeconds'],
    ['/ambit/v1/tokens', '{"node":"node-1","ttlSeconds":-5}', 'ttlSeconds'],
    ['/ambit/v1/tokens', '{"node":"node-1","ttlSeconds":1.5}', 'ttlSeconds'],
    ['/ambit/v1/tokens', '{"node":42}', 'node'],
    ['/ambit/v1/revoke-node', 'null', ''],
    ['/ambit/v1/apply', 'null', ''],
    ['/ambit/v1/apply', '[]', ''],
    ['/ambit/v1/apply', '{"objects":{}}', 'objects'],
    ['/ambit/v1/apply', '{"objects":[],"dryRun":"yes"}', 'dryRun'],
    ['/ambit/v1/delete', '{"refs":[null]}', 'refs[0]'],
  ];
  for (const [path, body, field] of cases) {
    const res = await raw('POST', path, body);
    assert.equal(res.status, 422, `${path} ${body}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.reason, 'Invalid');
    assert.equal(res.body.details.causes[0].field, field, `${path} ${body}`);
  }
  assert.equal(readInternal(cp.store, 'join-tokens'), undefined, 'no join token was recorded');
  assert.equal(cp.stream.status().length, 0);
});

test('duplicate keys are refused as the YAML path refuses them, naming the field', async (t) => {
  const { cp, raw } = await start(t);
  const dup =
    '{"objects":[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a","labels":{"x":"1","\\u0078":"2"}}}]}';
  const res = await raw('POST', '/ambit/v1/apply', dup);
  assert.equal(res.status, 422);
  assert.equal(res.body.details.causes[0].field, 'objects[0].metadata.labels.x');
  assert.match(res.body.message, /appears twice/);
  const top = await raw(
    'PUT',
    '/api/v1/namespaces/a',
    '{"kind":"Namespace","kind":"Namespace","apiVersion":"v1"}',
  );
  assert.equal(top.status, 422);
  assert.equal(cp.api.list({ kind: 'Namespace' }).length, 0);
});

test('nesting deeper than the limit is refused before it is parsed (422 naming the limit), even 100,000 deep', async (t) => {
  const { cp, raw } = await start(t);
  for (const depth of [MAX_JSON_DEPTH, 4_000, 100_000]) {
    const deep = `${'['.repeat(depth)}${']'.repeat(depth)}`;
    const body = `{"objects":[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a","labels":{"x":${deep}}}}]}`;
    const res = await raw('POST', '/ambit/v1/apply', body);
    assert.equal(res.status, 422, `depth ${depth}`);
    assert.match(res.body.message, new RegExp(`deeper than ${MAX_JSON_DEPTH} levels`));
    assert.match(res.body.details.causes[0].field, /^objects\[0\]\.metadata\.labels\.x/);
  }
  assert.equal(cp.api.list({ kind: 'Namespace' }).length, 0);
});

test('a body over the limit is refused by its Content-Length with 413, before it is read', async (t) => {
  const { cp, auth } = await start(t);
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      `http://${cp.adminAddress}/ambit/v1/apply`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': MAX_BODY + 1, ...auth },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      },
    );
    req.on('error', reject);
    req.write('{"objects":['); // the rest never comes: the answer must not wait for it
  });
  assert.equal(status, 413);
});

test('open watches are capped: one more is answered 429 TooManyRequests, and a slot frees when one ends', async (t) => {
  const { cp, auth } = await start(t, 2);
  const open = (cp: ControlPlane) =>
    new Promise<{ status: number; close: () => void; body: Promise<string> }>((resolve, reject) => {
      const req = request(
        `http://${cp.adminAddress}/api/v1/namespaces/shop/services?watch=true`,
        { headers: auth },
        (res) => {
          const body = new Promise<string>((done) => {
            let text = '';
            res.on('data', (d: Buffer) => {
              text += d.toString();
            });
            res.on('end', () => done(text));
            res.on('close', () => done(text));
          });
          resolve({ status: res.statusCode ?? 0, close: () => req.destroy(), body });
        },
      );
      req.on('error', (e) => (req.destroyed ? undefined : reject(e)));
      req.end();
    });
  const a = await open(cp);
  const b = await open(cp);
  t.after(() => {
    a.close();
    b.close();
  });
  assert.deepEqual([a.status, b.status], [200, 200]);
  const c = await open(cp);
  assert.equal(c.status, 429);
  assert.equal(JSON.parse(await c.body).reason, 'TooManyRequests');
  a.close();
  let d = await open(cp);
  for (let i = 0; d.status === 429 && i < 50; i++) {
    await new Promise((r) => setTimeout(r, 20)); // the server sees the close a moment later
    d = await open(cp);
  }
  assert.equal(d.status, 200);
  d.close();
});

test('the structure scan: duplicates (also when escaped), depth, and strings that look like structure', () => {
  const ok = [
    '{"a":"}{][,\\"","b":[{"a":1},{"a":2}]}',
    '{"a":{"a":{"a":1}}}',
    '[{"x":1},{"x":1}]',
    '"just a string"',
    '{"a\\\\":1,"a":2}',
  ];
  for (const text of ok) assert.deepEqual(parseJsonBody(text), JSON.parse(text), text);
  const refused: Array<[string, string]> = [
    ['{"a":1,"a":2}', 'a'],
    ['{"a":1,"\\u0061":2}', 'a'],
    ['{"l":[{"k":1},{"k":1,"k":2}]}', 'l[1].k'],
    ['{"weird key":{"x":1,"x":1}}', '["weird key"].x'],
  ];
  for (const [text, field] of refused) {
    assert.throws(
      () => parseJsonBody(text),
      (e) => hasCode(e, 'AMBIT_ERR_API_INVALID') && (e as any).detail.errors[0].path === field,
      text,
    );
  }
  assert.doesNotThrow(() => parseJsonBody(`${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}`));
  assert.throws(
    () => parseJsonBody(`${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`),
    (e) => hasCode(e, 'AMBIT_ERR_API_INVALID'),
  );
  assert.throws(
    () => parseJsonBody('{"a":'),
    (e) => hasCode(e, 'AMBIT_ERR_API_BAD_REQUEST'),
  );
});
