// The admin client with several replicas: a request goes to the one that answered last and moves on
// only when a connection cannot be made (so a write is never sent twice); the local default lists
// each replica's socket that exists.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { AdminClient, localAdminServer } from '../../../src/cli/client.ts';
import { hasCode } from '../../../src/errors/index.ts';

async function home(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-client-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** An HTTP server on a Unix socket answering `{who}` (or `status` with an error body); counts requests. */
async function serve(t: TestContext, path: string, who: string, status = 200) {
  const seen = { requests: 0 };
  const server: Server = createServer((_req, res) => {
    seen.requests++;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(status === 200 ? { who } : { message: `refused by ${who}` }));
  });
  await new Promise<void>((r) => server.listen(path, r));
  t.after(() => new Promise((r) => server.close(r)));
  return { seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('the admin client with several replicas', () => {
  test('a missing or dead socket is passed over; the one that answered is asked first after', async (t) => {
    const dir = await home(t);
    const a = join(dir, 'a.sock');
    const b = join(dir, 'b.sock');
    const served = await serve(t, b, 'b');
    const client = new AdminClient(`unix:${a},unix:${b}`);
    assert.deepEqual(await client.call('GET', '/x'), { who: 'b' });
    const sa = await serve(t, a, 'a');
    assert.deepEqual(await client.call('GET', '/x'), { who: 'b' }, 'sticks to the one that answered');
    await served.close();
    assert.deepEqual(await client.call('GET', '/x'), { who: 'a' });
    assert.equal(sa.seen.requests, 1);
  });

  test('an answer, even an error, is never retried elsewhere', async (t) => {
    const dir = await home(t);
    const a = join(dir, 'a.sock');
    const b = join(dir, 'b.sock');
    await serve(t, a, 'a', 503);
    const sb = await serve(t, b, 'b');
    const client = new AdminClient(`unix:${a},unix:${b}`);
    await assert.rejects(client.call('POST', '/apply', {}), /refused by a/);
    assert.equal(sb.seen.requests, 0);
  });

  test('none reachable: the error names them all', async (t) => {
    const dir = await home(t);
    const client = new AdminClient(`unix:${join(dir, 'a.sock')},unix:${join(dir, 'b.sock')}`);
    await assert.rejects(client.call('GET', '/x'), (err) => {
      assert.ok(hasCode(err, 'AMBIT_ERR_CLI_UNREACHABLE'));
      assert.match((err as Error).message, /a\.sock,unix:.*b\.sock/);
      return true;
    });
  });

  test('each server must be http:// or unix:', () => {
    assert.throws(
      () => new AdminClient('unix:/a.sock,https://h:1'),
      (err) => hasCode(err, 'AMBIT_ERR_CLI_BAD_SERVER') && /https:\/\/h:1/.test((err as Error).message),
    );
  });

  test('the local default: the single control plane, then each replica whose socket exists, in order', async (t) => {
    const dir = await home(t);
    assert.equal(
      localAdminServer(dir),
      `unix:${join(dir, 'control', 'admin.sock')}`,
      'nothing yet: the usual path',
    );
    for (const r of ['control-2', 'control-10', 'control-1', 'control-x']) {
      await mkdir(join(dir, r));
      await writeFile(join(dir, r, 'admin.sock'), '');
    }
    assert.equal(
      localAdminServer(dir),
      ['control-1', 'control-2', 'control-10'].map((r) => `unix:${join(dir, r, 'admin.sock')}`).join(','),
    );
  });
});
