// Drives `ambit sample …` as a child process: bad flags exit non-zero with a clear message, a good
// run serves with the pod environment as defaults and exits 0 on SIGTERM.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { EchoReply } from '../../../src/samples/index.ts';
import { freePort } from '../../helpers/ports.ts';
import { exchange, get1 } from './client.ts';

const AMBIT = fileURLToPath(new URL('../../../bin/ambit.js', import.meta.url));

interface Run {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, [AMBIT, 'sample', ...args], {
    env: { ...process.env, AMBIT_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stderr: () => err, exited };
}

/** Kills a child that is still running and waits for it, whatever happened in the test. */
async function reap(r: Run): Promise<void> {
  if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  await r.exited;
}

/** Resolves once the child logs its start line (its port is then accepting). */
async function started(r: Run, what: string): Promise<void> {
  while (!r.stderr().includes(what)) {
    if (r.child.exitCode !== null) throw new Error(`exited early: ${r.stderr()}`);
    await Promise.race([
      new Promise<void>((resolve) => r.child.stderr?.once('data', () => resolve())),
      r.exited,
    ]);
  }
}

describe('ambit sample: bad flags', () => {
  const cases: Array<[string[], RegExp]> = [
    [['echo', '--port', 'http'], /--port must be an integer from 1 to 65535, got 'http'/],
    [['tcp-echo', '--port', '70000'], /--port must be an integer/],
    [['sink', '--port', '0'], /--port must be an integer/],
    [['storefront', 'basket'], /Allowed choices are frontend, catalog, ratings/],
    [['storefront', 'frontend', '--catalog', 'catalog:8080'], /--catalog 'catalog:8080' must use http/],
    [['storefront', 'frontend', '--catalog', 'http://127.0.0.1:1,::'], /--catalog '::' is not a URL/],
    [['storefront', 'frontend'], /frontend needs --catalog/],
    [
      ['storefront', 'ratings', '--catalog', 'http://127.0.0.1:1'],
      /--catalog is for the storefront frontend/,
    ],
    [['storefront', 'catalog', '--version', 'v2', '--host', '127.0.0.1'], /needs the ratings service's URL/],
    [['grpc-echo', '--labels', 'version'], /--labels entry 'version' must be written key=value/],
    [['echo', '--tls-cert', '/dev/null'], /--tls-cert and --tls-key go together/],
    [
      ['echo', '--tls-cert', '/nonexistent/cert.pem', '--tls-key', '/nonexistent/key.pem'],
      /--tls-cert \/nonexistent\/cert.pem: .*ENOENT/,
    ],
  ];
  for (const [args, message] of cases) {
    it(`${args.join(' ')} → non-zero with a clear message`, async () => {
      const r = run(args);
      try {
        const { code } = await r.exited;
        assert.notEqual(code, 0);
        assert.match(r.stderr(), message);
      } finally {
        await reap(r);
      }
    });
  }
});

describe('ambit sample: running', () => {
  it('echo takes its identity from the pod environment, flags win, SIGTERM exits 0', async () => {
    const port = await freePort();
    const r = run(['echo', '--host', '127.0.0.1', '--port', String(port), '--namespace', 'flag-ns'], {
      AMBIT_POD: 'echo-abc',
      AMBIT_NODE: 'node-3',
      AMBIT_NAMESPACE: 'env-ns',
      AMBIT_LABELS: 'app=echo,version=v7',
    });
    try {
      await started(r, 'echo listening');
      const body = JSON.parse((await get1(port, '/hi')).body) as EchoReply;
      assert.deepEqual(
        [body.pod, body.version, body.node, body.namespace],
        ['echo-abc', 'v7', 'node-3', 'flag-ns'],
      );
      r.child.kill('SIGTERM');
      assert.deepEqual(await r.exited, { code: 0, signal: null });
    } finally {
      await reap(r);
    }
  });

  it('sink counts bytes and logs the count, then stops on SIGINT', async () => {
    const port = await freePort();
    const r = run(['sink', '--host', '127.0.0.1', '--port', String(port)]);
    try {
      await started(r, 'sink listening');
      assert.equal((await exchange(port, [Buffer.alloc(4242)])).toString(), '4242\n');
      await started(r, '"bytes":4242');
      r.child.kill('SIGINT');
      assert.deepEqual(await r.exited, { code: 0, signal: null });
    } finally {
      await reap(r);
    }
  });
});
