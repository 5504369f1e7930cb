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

/** curl over a Unix socket as root; never throws. */
async function rootCurl(socket: string, args: string[]): Promise<string> {
  const argv = ['-s', '--max-time', '5', '--unix-socket', socket, ...args];
  return (await execFileP('curl', argv).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' })))
    .stdout;
}

/**
 * Sends one HTTP request over the socket as another uid and reports what happened: whether the
 * kernel let it connect, the error if any, and what came back.
 */
const CLIENT = `
const s = require('node:net').connect(process.argv[1]);
let connected = false, got = '';
const done = (error) => { console.log(JSON.stringify({ connected, error, got })); process.exit(0); };
s.on('connect', () => { connected = true; s.write(process.argv[2]); });
s.on('data', (d) => { got += d; });
s.on('error', (e) => done(e.code));
s.on('close', () => done(null));
setTimeout(() => done('TIMEOUT'), 5000);
`;
async function requestAs(
  uid: number,
  socket: string,
  path: string,
  body: string,
): Promise<{ connected: boolean; error: string | null; got: string }> {
  const http = `POST ${path} HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const { stdout } = await execFileP('setpriv', [
    `--reuid=${uid}`,
    `--regid=${uid}`,
    '--clear-groups',
    process.execPath,
    '-e',
    CLIENT,
    socket,
    http,
  ]);
  return JSON.parse(stdout);
}

const namespaceBody = JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'owned' } });

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
  const denied = await requestAs(NOBODY, socket, '/api/v1/namespaces', namespaceBody);
  assert.deepEqual(denied, { connected: false, error: 'EACCES', got: '' });
  assert.equal(cp.api.list({ kind: 'Namespace' }).length, 0);

  // Even with the modes opened up (a mistake, or a socket path elsewhere), the peer check cuts it off.
  await chmod(parent, 0o755);
  await chmod(dataDir, 0o755);
  await chmod(socket, 0o666);
  for (const [path, body] of [
    ['/api/v1/namespaces', namespaceBody],
    ['/ambit/v1/tokens', '{"node":"node-1"}'],
  ] as const) {
    // The kernel lets it connect now; the control plane closes the connection without a word.
    const res = await requestAs(NOBODY, socket, path, body);
    assert.equal(res.connected, true, `${path}: ${JSON.stringify(res)}`);
    assert.equal(res.got, '', `${path}: no answer at all`);
    assert.ok(res.error === null || ['ECONNRESET', 'EPIPE'].includes(res.error), JSON.stringify(res));
  }
  assert.equal(cp.api.list({ kind: 'Namespace' }).length, 0, 'nothing was created');

  // Root is the control plane's own user here: it acts as cluster-admin.
  const ok = await rootCurl(socket, [
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '-X',
    'POST',
    '-H',
    'content-type: application/json',
    '-d',
    namespaceBody,
    'http://localhost/api/v1/namespaces',
  ]);
  assert.equal(ok, '201');
});
