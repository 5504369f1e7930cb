// Interoperability with standard TLS tooling: `ambit ca` output checked by `openssl verify`, and an
// `openssl s_server` / `s_client` mutual-TLS handshake on 127.0.0.1 with two issued certificates.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { subjectAltNames } from '../../../src/identity/index.ts';
import { freePort } from '../../helpers/ports.ts';

const AMBIT = join(import.meta.dirname, '../../../bin/ambit.js');

function run(
  cmd: string,
  args: string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    // A client refused at the handshake may exit before it reads its input: EPIPE is its answer, not ours.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });
}

const ambit = (...args: string[]) => run(process.execPath, [AMBIT, ...args]);

describe('ambit ca and OpenSSL', () => {
  let dir: string;
  const servers: ChildProcess[] = [];
  const p = (...parts: string[]) => join(dir, ...parts);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ambit-identity-'));
  });
  after(async () => {
    for (const s of servers) s.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('create-root and issue produce files openssl verify accepts, with the URI as the only SAN', async () => {
    const r1 = await ambit('ca', 'create-root', '--out', p('root'));
    assert.equal(r1.code, 0, r1.stderr);
    const r2 = await ambit(
      'ca',
      'issue',
      '--ca',
      p('root'),
      '--id',
      'spiffe://cluster.local/ns/default/sa/web',
      '--out',
      p('web'),
    );
    assert.equal(r2.code, 0, r2.stderr);
    const v = await run('openssl', ['verify', '-CAfile', p('root', 'cert.pem'), p('web', 'cert.pem')]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /: OK/);
    const leaf = new X509Certificate(await readFile(p('web', 'cert.pem')));
    assert.deepEqual(subjectAltNames(leaf), {
      uris: ['spiffe://cluster.local/ns/default/sa/web'],
      dns: [],
      ips: [],
      other: 0,
    });
    const text = await run('openssl', [
      'x509',
      '-in',
      p('web', 'cert.pem'),
      '-noout',
      '-ext',
      'subjectAltName',
    ]);
    assert.match(text.stdout, /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/web/);
    assert.equal((await stat(p('root', 'key.pem'))).mode & 0o777, 0o600);
    assert.equal((await stat(p('web', 'key.pem'))).mode & 0o777, 0o600);
  });

  it('verifies a chain through an intermediate made by create-intermediate', async () => {
    assert.equal((await ambit('ca', 'create-intermediate', '--root', p('root'), '--out', p('int'))).code, 0);
    const r = await ambit(
      'ca',
      'issue',
      '--ca',
      p('int'),
      '--id',
      'spiffe://cluster.local/ns/shop/sa/cart',
      '--ttl',
      '2h',
      '--out',
      p('cart'),
    );
    assert.equal(r.code, 0, r.stderr);
    const v = await run('openssl', [
      'verify',
      '-CAfile',
      p('root', 'cert.pem'),
      '-untrusted',
      p('cart', 'chain.pem'),
      p('cart', 'cert.pem'),
    ]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    // Without the intermediate the leaf does not verify: the chain file is what makes it work.
    const bare = await run('openssl', ['verify', '-CAfile', p('root', 'cert.pem'), p('cart', 'cert.pem')]);
    assert.notEqual(bare.code, 0);
  });

  it('refuses bad input with a non-zero exit and a message naming the problem, writing nothing', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--id', 'spiffe://cluster.local/ns/Default/sa/web'], /namespace "Default"/],
      [['--id', 'https://cluster.local/ns/default/sa/web'], /scheme must be "spiffe:\/\/"/],
      [['--id', 'spiffe://other.example/ns/default/sa/web'], /AMBIT_ERR_CA_FOREIGN_TRUST_DOMAIN/],
      [
        ['--id', 'spiffe://cluster.local/ns/default/sa/web', '--ttl', 'soon'],
        /--ttl "soon" is not a duration/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await ambit('ca', 'issue', '--ca', p('root'), '--out', p('bad'), ...args);
      assert.equal(r.code, 1);
      assert.match(r.stderr, message);
      await assert.rejects(stat(p('bad')));
    }
    const again = await ambit('ca', 'create-root', '--out', p('root'));
    assert.equal(again.code, 1);
    assert.match(again.stderr, /AMBIT_ERR_CA_FILES_EXIST/);
    const missing = await ambit(
      'ca',
      'issue',
      '--ca',
      p('nowhere'),
      '--id',
      'spiffe://cluster.local/ns/a/sa/b',
      '--out',
      p('bad'),
    );
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no CA in/);
  });

  async function startServer(certDir: string, caFile: string): Promise<number> {
    const port = await freePort();
    const child = spawn(
      'openssl',
      [
        's_server',
        '-accept',
        `127.0.0.1:${port}`,
        '-cert',
        p(certDir, 'cert.pem'),
        '-key',
        p(certDir, 'key.pem'),
        '-CAfile',
        caFile,
        '-Verify',
        '1',
        '-verify_return_error',
        '-www',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    servers.push(child);
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`s_server exited with ${code}`)));
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('ACCEPT') && resolve());
    });
    return port;
  }

  const client = (port: number, certDir: string, caFile: string) =>
    run(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-cert',
        p(certDir, 'cert.pem'),
        '-key',
        p(certDir, 'key.pem'),
        '-CAfile',
        caFile,
        '-verify_return_error',
        '-ign_eof',
      ],
      'GET / HTTP/1.0\r\n\r\n',
    );

  it('completes an s_server/s_client mutual-TLS handshake with two issued certificates, and fails with another root', async () => {
    assert.equal(
      (
        await ambit(
          'ca',
          'issue',
          '--ca',
          p('root'),
          '--id',
          'spiffe://cluster.local/ns/default/sa/server',
          '--out',
          p('srv'),
        )
      ).code,
      0,
    );
    assert.equal((await ambit('ca', 'create-root', '--out', p('evil'))).code, 0);
    assert.equal(
      (
        await ambit(
          'ca',
          'issue',
          '--ca',
          p('evil'),
          '--id',
          'spiffe://cluster.local/ns/default/sa/web',
          '--out',
          p('evil-web'),
        )
      ).code,
      0,
    );
    const rootFile = p('root', 'cert.pem');
    const port = await startServer('srv', rootFile);

    const ok = await client(port, 'web', rootFile);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Verify return code: 0 \(ok\)/);
    assert.match(ok.stdout, /HTTP\/1.0 200 ok/);

    const foreignClient = await client(port, 'evil-web', rootFile);
    assert.notEqual(foreignClient.code, 0);
    assert.doesNotMatch(foreignClient.stdout, /HTTP\/1.0 200 ok/);
    assert.match(foreignClient.stderr, /unknown ca/);

    // And the other direction: a client that trusts only the other root refuses our server.
    const foreignTrust = await client(port, 'evil-web', p('evil', 'cert.pem'));
    assert.notEqual(foreignTrust.code, 0);
    assert.doesNotMatch(foreignTrust.stdout, /HTTP\/1.0 200 ok/);
  });
});
