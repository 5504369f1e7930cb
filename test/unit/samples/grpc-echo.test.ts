import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  type CollectReply,
  createEchoClient,
  type EchoClient,
  type GrpcEchoReply,
  type SampleServer,
  startGrpcEcho,
} from '../../../src/samples/index.ts';

describe('grpc-echo', () => {
  let server: SampleServer;
  let client: EchoClient;
  before(async () => {
    server = await startGrpcEcho({
      host: '127.0.0.1',
      port: 0,
      pod: { pod: 'grpc-echo-1', namespace: 'shop', version: 'v3' },
    });
    client = createEchoClient(`127.0.0.1:${server.address.port}`);
  });
  after(async () => {
    client?.close();
    await server?.close();
  });

  it('answers a unary Echo with the pod and version', async () => {
    const reply = await new Promise<GrpcEchoReply>((resolve, reject) =>
      client.Echo({ message: 'hello' }, (err, r) => (err || !r ? reject(err) : resolve(r))),
    );
    assert.equal(reply.message, 'hello');
    assert.equal(reply.pod, 'grpc-echo-1');
    assert.equal(reply.version, 'v3');
    assert.equal(reply.namespace, 'shop');
    assert.equal(reply.sequence, 0);
    assert.match(reply.peer, /127\.0\.0\.1:\d+$/);
  });

  it('streams n replies for Stream', async () => {
    const got: GrpcEchoReply[] = [];
    const call = client.Stream({ message: 'tick', count: 5, intervalMs: 0 });
    for await (const r of call) got.push(r as GrpcEchoReply);
    assert.deepEqual(
      got.map((r) => [r.message, r.sequence, r.pod]),
      [1, 2, 3, 4, 5].map((n) => ['tick', n, 'grpc-echo-1']),
    );
  });

  it('rejects a Stream asking for too many replies with INVALID_ARGUMENT', async () => {
    const call = client.Stream({ message: 'x', count: 1_000_000 });
    await assert.rejects(
      (async () => {
        for await (const _ of call) {
          // drain
        }
      })(),
      (err: grpc.ServiceError) => err.code === grpc.status.INVALID_ARGUMENT && /count/.test(err.details),
    );
  });

  it('collects a client stream into one reply', async () => {
    const reply = await new Promise<CollectReply>((resolve, reject) => {
      const call = client.Collect((err, r) => (err || !r ? reject(err) : resolve(r)));
      for (const m of ['a', 'b', 'c']) call.write({ message: m });
      call.end();
    });
    assert.deepEqual(reply.messages, ['a', 'b', 'c']);
    assert.equal(reply.count, 3);
    assert.equal(reply.pod, 'grpc-echo-1');
    assert.equal(reply.version, 'v3');
  });

  it('answers each Chat message in order, then ends with the client', async () => {
    const call = client.Chat();
    const got: GrpcEchoReply[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (r: GrpcEchoReply) => {
        got.push(r);
        // Ping-pong: send the next message only after the previous answer arrived.
        if (got.length < 3) call.write({ message: `m${got.length + 1}` });
        else call.end();
      });
      call.on('end', resolve);
      call.on('error', reject);
    });
    call.write({ message: 'm1' });
    await done;
    assert.deepEqual(
      got.map((r) => [r.message, r.sequence, r.version]),
      [
        ['m1', 1, 'v3'],
        ['m2', 2, 'v3'],
        ['m3', 3, 'v3'],
      ],
    );
  });
});

describe('grpc-echo shutdown', () => {
  it('cancels a long stream after the drain deadline and stops listening', { timeout: 15000 }, async () => {
    const server = await startGrpcEcho({ host: '127.0.0.1', port: 0, drainMs: 50, pod: { pod: 'p' } });
    const client = createEchoClient(`127.0.0.1:${server.address.port}`);
    try {
      const call = client.Stream({ message: 'slow', count: 1000, intervalMs: 10_000 });
      const first = await new Promise<GrpcEchoReply>((resolve) => call.once('data', resolve));
      assert.equal(first.sequence, 1);
      const ended = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
      await server.close();
      assert.notEqual((await ended).code, grpc.status.OK);
      const err = await new Promise<grpc.ServiceError | null>((resolve) =>
        client.Echo({ message: 'after' }, { deadline: Date.now() + 2000 }, (e) => resolve(e)),
      );
      assert.ok(err, 'a call after close must fail');
    } finally {
      client.close();
      await server.close();
    }
  });
});
