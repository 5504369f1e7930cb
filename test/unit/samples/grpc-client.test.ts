import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hasCode } from '../../../src/errors/index.ts';
import {
  callEcho,
  type EchoCallResult,
  type SampleServer,
  startGrpcEcho,
  statusName,
  validateCall,
} from '../../../src/samples/index.ts';

const AMBIT = fileURLToPath(new URL('../../../bin/ambit.js', import.meta.url));

/** `ambit sample grpc-client ARGS`: its exit code and the JSON it printed. */
function cli(args: string[]): Promise<{ code: number | null; result: EchoCallResult; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AMBIT, 'sample', 'grpc-client', ...args], {
      env: { ...process.env, AMBIT_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      resolve({ code, result: (out.trim() ? JSON.parse(out) : {}) as EchoCallResult, stderr: err }),
    );
  });
}

describe('grpc-client', () => {
  let server: SampleServer;
  let target: string;
  before(async () => {
    server = await startGrpcEcho({
      host: '127.0.0.1',
      port: 0,
      pod: { pod: 'grpc-echo-1', namespace: 'shop', version: 'v3' },
    });
    target = `127.0.0.1:${server.address.port}`;
  });
  after(() => server.close());

  it('makes a unary call and reports the reply and OK', async () => {
    const r = await callEcho({ target, message: 'hello' });
    assert.equal(r.rpc, 'Echo');
    assert.equal(r.status.code, 0);
    assert.equal(r.status.name, 'OK');
    assert.deepEqual(
      r.replies.map((x) => [x.message, x.pod, x.version, x.sequence]),
      [['hello', 'grpc-echo-1', 'v3', 0]],
    );
  });

  it('collects every reply of a server stream, in order', async () => {
    const r = await callEcho({ target, message: 'tick', stream: 4, intervalMs: 5 });
    assert.equal(r.rpc, 'Stream');
    assert.equal(r.status.code, 0);
    assert.deepEqual(
      r.replies.map((x) => [x.message, x.sequence]),
      [
        ['tick', 1],
        ['tick', 2],
        ['tick', 3],
        ['tick', 4],
      ],
    );
  });

  it("reports the server's non-OK status and details instead of throwing", async () => {
    const r = await callEcho({ target, message: 'x', stream: 10_001 });
    assert.equal(r.status.code, 3);
    assert.equal(r.status.name, 'INVALID_ARGUMENT');
    assert.match(r.status.details, /count must be at most 10000/);
    assert.deepEqual(r.replies, []);
  });

  it('reports DEADLINE_EXCEEDED when the deadline passes mid-stream', async () => {
    const r = await callEcho({ target, message: 'slow', stream: 3, intervalMs: 2000, timeoutMs: 200 });
    assert.equal(r.status.name, 'DEADLINE_EXCEEDED');
    assert.equal(r.replies.length, 1, 'the first reply came before the deadline');
  });

  it('reports UNAVAILABLE when nothing listens', async () => {
    const closed = await startGrpcEcho({ host: '127.0.0.1', port: 0 });
    const port = closed.address.port;
    await closed.close();
    const r = await callEcho({ target: `127.0.0.1:${port}`, message: 'x', timeoutMs: 2000 });
    assert.equal(r.status.name, 'UNAVAILABLE');
  });

  it('refuses a target that is not host:port', () => {
    for (const bad of ['nohost', 'http://x:1', 'x:', ':80']) {
      assert.throws(
        () => validateCall({ target: bad, message: 'm' }),
        (err) => hasCode(err, 'AMBIT_ERR_SAMPLE_BAD_ARG'),
        bad,
      );
    }
    validateCall({ target: '[::1]:9090', message: 'm' });
    validateCall({ target: 'echo.shop.svc:9090', message: 'm' });
  });

  it('names status codes', () => {
    assert.equal(statusName(0), 'OK');
    assert.equal(statusName(14), 'UNAVAILABLE');
    assert.equal(statusName(99), 'CODE_99');
  });

  it('`ambit sample grpc-client` prints the result as JSON and exits 0 on OK, 1 otherwise', async () => {
    const ok = await cli(['--target', target, '--message', 'hi', '--stream', '2']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.result.status.name, 'OK');
    assert.deepEqual(
      ok.result.replies.map((x) => x.message),
      ['hi', 'hi'],
    );
    const refused = await cli(['--target', target, '--stream', '10001']);
    assert.equal(refused.code, 1);
    assert.equal(refused.result.status.name, 'INVALID_ARGUMENT');
    const usage = await cli(['--target', target, '--stream', 'many']);
    assert.notEqual(usage.code, 0);
    assert.match(usage.stderr, /--stream/);
  });
});
