// Issue 8, item 2: by default the admin API is a Unix socket only, mode 0600 whatever the umask, in a
// 0700 data directory; and even where the file modes let another user connect, the peer's uid
// (SO_PEERCRED) is checked and anyone but root and the control plane's own user is cut off.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { startControlPlane } from '../../src/control/index.ts';
import { hasCode } from '../../src/errors/index.ts';
import { skipUnlessRoot } from '../helpers/lab.ts';

const execFileP = promisify(execFile);
const NOBODY = 65534;

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-admin-sock-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** curl over a Unix socket, as `uid` (root's own curl when uid is 0); never throws. */
async function curl(uid: number, socket: string, args: string[]): Promise<{ code: number; out: string }> {
  const as = uid === 0 ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
  const argv = [...as, 'curl', '-s', '--max-time', '5', '--unix-socket', socket, ...args];
  try {
    const { stdout } = await execFileP(argv[0]!, argv.slice(1));
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: e.stdout ?? '' };
  }
}

const namespaceBody = JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'owned' } });
const create = ['-X', 'POST', '-H', 'content-type: application/json', '-d', namespaceBody];

test('the socket is 0600 even with umask 000, in a 0700 data directory made by the control plane', async (t) => {
  const parent = await tempDir(t);
  const dataDir = join(parent, 'control');
  const old = process.umask(0);
  let cp: Awaited<ReturnType<typeof startControlPlane>>;
  try {
    cp = await startControlPlane({ dataDir, grpcListen: '127.0.0.1:0' });
  } finally {
    process.umask(old);
  }
  t.after(() => cp.close());
  assert.equal(cp.adminAddress, undefined, 'no TCP listener by default');
  assert.equal((await stat(cp.adminSocket!)).mode & 0o777, 0o600);
  assert.equal((await stat(dataDir)).mode & 0o777, 0o700);
});

test('a data directory open to others is tightened to 0700; one owned by another user is refused', async (t) => {
  if (skipUnlessRoot(t)) return;
  const parent = await tempDir(t);
  const open = join(parent, 'open');
  await mkdir(open, { mode: 0o777 });
  await chmod(open, 0o777);
  const cp = await startControlPlane({ dataDir: open, adminSocket: '', grpcListen: '127.0.0.1:0' });
  await cp.close();
  assert.equal((await stat(open)).mode & 0o777, 0o700);

  const theirs = join(parent, 'theirs');
  await mkdir(theirs, { mode: 0o700 });
  await chown(theirs, NOBODY, NOBODY);
  await assert.rejects(
    startControlPlane({ dataDir: theirs, adminSocket: '', grpcListen: '127.0.0.1:0' }),
    (e) => hasCode(e, 'AMBIT_ERR_CONTROL_DATA_DIR') && /belongs to uid 65534/.test(String(e)),
  );
});

test('another local user cannot drive the control plane through the socket', async (t) => {
  if (skipUnlessRoot(t)) return;
  const parent = await tempDir(t);
  const dataDir = join(parent, 'control');
  const cp = await startControlPlane({ dataDir, grpcListen: '127.0.0.1:0' });
  t.after(() => cp.close());
  const socket = cp.adminSocket!;

  // With the default modes, nobody does not even get to connect.
  const denied = await curl(NOBODY, socket, [...create, 'http://localhost/api/v1/namespaces']);
  assert.notEqual(denied.code, 0);
  assert.equal(cp.api.list({ kind: 'Namespace' }).length, 0);

  // Even with the modes opened up (a mistake, or a socket path elsewhere), the peer check cuts it off.
  await chmod(parent, 0o755);
  await chmod(dataDir, 0o755);
  await chmod(socket, 0o666);
  for (const args of [create, ['-X', 'POST', '-H', 'content-type: application/json', '-d', '{"node":"n"}']]) {
    const path = args === create ? '/api/v1/namespaces' : '/ambit/v1/tokens';
    const res = await curl(NOBODY, socket, [...args, `http://localhost${path}`]);
    // 52: empty reply, 56: connection reset; either way the connection is closed unanswered.
    assert.ok([52, 56].includes(res.code), `curl as nobody is cut off, got exit ${res.code}`);
    assert.equal(res.out, '');
  }
  assert.equal(cp.api.list({ kind: 'Namespace' }).length, 0, 'nothing was created');

  // Root is the control plane's own user here: it acts as cluster-admin.
  const ok = await curl(0, socket, [
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    ...create,
    'http://localhost/api/v1/namespaces',
  ]);
  assert.equal(ok.out, '201');
});
