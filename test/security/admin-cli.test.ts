// Issue 8, item 2 and the CLI Low items, through the real `ambit` command: a remote admin listener
// needs its second flag; admin tokens are created, listed and revoked; the CLI finds its token
// (--token, then $AMBIT_TOKEN, then $AMBIT_HOME/admin-token, refused when others may read it); an
// alias bomb and an oversized manifest get an Ambit error code, never a stack.

import assert from 'node:assert/strict';
import { chmod, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { ambit, startControl } from '../helpers/control.ts';

const fixture = (name: string) => resolve(import.meta.dirname, '../fixtures', name);

async function home(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-cli-home-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('ambit control refuses a non-loopback --admin-listen without --admin-listen-allow-remote', async (t) => {
  const dir = await home(t);
  const res = await ambit(['control', '--data-dir', join(dir, 'cp'), '--admin-listen', '0.0.0.0:0']);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /AMBIT_ERR_CONTROL_REMOTE_ADMIN/);
  assert.match(res.stderr, /--admin-listen 0\.0\.0\.0:0/);
  assert.match(res.stderr, /--admin-listen-allow-remote/);
  assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack');
});

test('admin tokens from the CLI, and the CLI finds its token by itself', async (t) => {
  const cp = await startControl(t, undefined, ['--admin-listen', '127.0.0.1:0']);
  assert.ok(cp.adminUrl, 'the ready line names the TCP listener');
  const AMBIT_HOME = await home(t);
  const local = { AMBIT_SERVER: cp.server, AMBIT_HOME };
  const ns = await ambit(['apply', '-f', fixture('shop.yaml')], local);
  assert.equal(ns.code, 0, ns.stderr);

  const created = await ambit(
    ['control', 'admin-token', 'create', '--role', 'edit', '-n', 'shop', '--name', 'shop-ci', '--ttl', '24h'],
    local,
  );
  assert.equal(created.code, 0, created.stderr);
  const token = created.stdout.trim();
  assert.match(token, /^ambit-admin-\S+$/);
  assert.match(created.stderr, /shop-ci \(edit in shop, expires/);
  const listed = await ambit(['control', 'admin-token', 'list'], local);
  assert.match(listed.stdout, /shop-ci\s+edit\s+shop/);
  assert.ok(!listed.stdout.includes(token), 'list never shows a secret');
  const badTtl = await ambit(
    ['control', 'admin-token', 'create', '--role', 'view', '-n', 'a', '--ttl', '1e300'],
    local,
  );
  assert.match(badTtl.stderr, /AMBIT_ERR_CLI_USAGE/);

  const remote = { AMBIT_SERVER: cp.adminUrl!, AMBIT_HOME };
  const get = ['get', 'svc', '-n', 'shop', '-o', 'json'];
  const none = await ambit(get, remote);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /AMBIT_ERR_API_UNAUTHORIZED/);
  assert.match(none.stderr, /no token found: pass --token, set \$AMBIT_TOKEN or write it to/);

  const byEnv = await ambit(get, { ...remote, AMBIT_TOKEN: token });
  assert.equal(byEnv.code, 0, byEnv.stderr);
  assert.equal(JSON.parse(byEnv.stdout).items[0].metadata.name, 'web');
  const flagWins = await ambit([...get, '--token', token], { ...remote, AMBIT_TOKEN: 'ambit-admin-wrong' });
  assert.equal(flagWins.code, 0, flagWins.stderr);

  const file = join(AMBIT_HOME, 'admin-token');
  await writeFile(file, `${token}\n`, { mode: 0o644 });
  const open644 = await ambit(get, remote);
  assert.match(open644.stderr, /AMBIT_ERR_CLI_TOKEN_FILE_OPEN/);
  await chmod(file, 0o600);
  const byFile = await ambit(get, remote);
  assert.equal(byFile.code, 0, byFile.stderr);

  // --save writes a new token where the CLI looks, readable by its owner only.
  const saved = await ambit(
    ['control', 'admin-token', 'create', '--role', 'view', '-n', 'shop', '--save'],
    local,
  );
  assert.equal(saved.code, 0, saved.stderr);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal((await readFile(file, 'utf8')).trim(), saved.stdout.trim());
  assert.equal((await ambit(get, remote)).code, 0);
  await writeFile(file, `${token}\n`, { mode: 0o600 });

  // Its role holds on the CLI's paths too: another namespace, or a cluster-scoped kind, is refused.
  const other = await ambit(
    ['apply', '-f', '-'],
    remote,
    'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bank\n',
  );
  assert.equal(other.code, 1);
  assert.match(other.stderr, /namespaces "bank" is forbidden: User "token:shop-ci"/);
  const all = await ambit(['get', 'svc', '-A'], remote);
  assert.match(all.stderr, /AMBIT_ERR_API_FORBIDDEN/);

  const revoked = await ambit(['control', 'admin-token', 'revoke', 'shop-ci'], local);
  assert.equal(revoked.code, 0, revoked.stderr);
  const after = await ambit(get, remote);
  assert.match(after.stderr, /AMBIT_ERR_API_UNAUTHORIZED/);
});

test('ambit apply: an alias bomb is an Ambit error in one line; an oversized manifest is refused before it is read', async (t) => {
  const dir = await home(t);
  const env = { AMBIT_SERVER: 'http://127.0.0.1:1', AMBIT_HOME: dir };
  const rows = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
  for (const [prev, name] of [
    ['a', 'b'],
    ['b', 'c'],
    ['c', 'd'],
    ['d', 'e'],
    ['e', 'f'],
    ['f', 'g'],
  ])
    rows.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
  const bomb = join(dir, 'bomb.yaml');
  await writeFile(bomb, `${rows.join('\n')}\n`);
  const res = await ambit(['apply', '-f', bomb], env);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /AMBIT_ERR_CONFIG_INVALID/);
  assert.match(res.stderr, /bomb\.yaml \(document 1, line 1\).*YAML: Excessive alias count/);
  assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack');

  // A sparse 9 MiB file: refused by its size, never read into memory.
  const big = join(dir, 'big.yaml');
  const fh = await open(big, 'w');
  await fh.truncate(9 * 1024 * 1024);
  await fh.close();
  const large = await ambit(['apply', '-f', big], env);
  assert.equal(large.code, 1);
  assert.match(large.stderr, /AMBIT_ERR_CLI_MANIFEST_TOO_LARGE/);
  assert.match(large.stderr, /9437184 bytes/);
  const piped = await ambit(['apply', '-f', '-'], env, 'x'.repeat(9 * 1024 * 1024));
  assert.match(piped.stderr, /AMBIT_ERR_CLI_MANIFEST_TOO_LARGE/);
});
