import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type SampleServer, startSink, startTcpEcho } from '../../../src/samples/index.ts';
import { exchange } from './client.ts';

describe('tcp-echo', () => {
  let echo: SampleServer;
  before(async () => {
    echo = await startTcpEcho({ host: '127.0.0.1', port: 0, pod: { pod: 'tcp-echo-1' } });
  });
  after(() => echo.close());

  it('echoes every byte, then ends after the client half-closes', async () => {
    const chunks = [randomBytes(1), randomBytes(70_000), Buffer.from('last words')];
    const got = await exchange(echo.address.port, chunks);
    assert.deepEqual(got, Buffer.concat(chunks));
  });

  it('echoes an empty exchange as nothing and still ends', async () => {
    assert.deepEqual(await exchange(echo.address.port, []), Buffer.alloc(0));
  });

  it('keeps echoing while the client is still open (no premature end)', async () => {
    const socket = connect({ host: '127.0.0.1', port: echo.address.port, allowHalfOpen: true });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      for (const word of ['ping', 'pong']) {
        socket.write(word);
        assert.equal(await readText(socket, word.length), word);
      }
      const ended = new Promise<void>((resolve) => socket.once('end', resolve));
      socket.end('bye');
      assert.equal(await readText(socket, 3), 'bye');
      await ended;
    } finally {
      socket.destroy();
    }
  });
});

/** Reads exactly `n` bytes as text (TCP may split or join writes). */
function readText(socket: Socket, n: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (c: Buffer) => {
      got += c.toString();
      if (got.length < n) return;
      socket.off('data', onData);
      socket.off('error', reject);
      resolve(got);
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

describe('sink', () => {
  let sink: SampleServer;
  before(async () => {
    sink = await startSink({ host: '127.0.0.1', port: 0, pod: { pod: 'sink-1' } });
  });
  after(() => sink.close());

  it('answers the byte count and a newline after the client half-closes', async () => {
    const got = await exchange(sink.address.port, [randomBytes(123_456), randomBytes(7)]);
    assert.equal(got.toString(), '123463\n');
  });

  it('counts zero for an empty connection', async () => {
    assert.equal((await exchange(sink.address.port, [])).toString(), '0\n');
  });

  it('counts each connection on its own', async () => {
    const [a, b] = await Promise.all([
      exchange(sink.address.port, [Buffer.alloc(10)]),
      exchange(sink.address.port, [Buffer.alloc(20), Buffer.alloc(5)]),
    ]);
    assert.equal(a.toString(), '10\n');
    assert.equal(b.toString(), '25\n');
  });
});
