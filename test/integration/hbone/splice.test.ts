// splice() between plain TCP sockets on loopback, as the ztunnel's plaintext paths use it: a proxy on
// 127.0.0.2 splices each accepted socket to an upstream on 127.0.0.3.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { type SpliceResult, splice } from '../../../src/hbone/index.ts';
import { customUpstream, HBONE_IP, listen, readAll, UPSTREAM_IP } from './helpers.ts';

/** A proxy that splices each connection to the upstream port; resolves each splice's result. */
async function proxyTo(t: TestContext, upstreamPort: number) {
  const results: SpliceResult[] = [];
  let calls = 0;
  const sockets = new Set<net.Socket>();
  const done: Array<(r: SpliceResult) => void> = [];
  const server = net.createServer({ allowHalfOpen: true }, (downstream) => {
    const upstream = net.connect({ host: UPSTREAM_IP, port: upstreamPort, allowHalfOpen: true });
    for (const s of [downstream, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    splice(downstream, upstream, (r) => {
      calls += 1;
      results.push(r);
      done.shift()?.(r);
    });
  });
  const port = await listen(server, HBONE_IP);
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return {
    port,
    calls: () => calls,
    next: () =>
      new Promise<SpliceResult>((resolve) =>
        results.length > 0 ? resolve(results.shift()!) : done.push(resolve),
      ),
  };
}

function connect(port: number): net.Socket {
  return net.connect({ host: HBONE_IP, port, allowHalfOpen: true });
}

describe('splice', () => {
  it('copies both ways, carries half-close, and reports byte counts once', async (t) => {
    const upstreamPort = await customUpstream(t, (s) => {
      readAll(s).then((b) => s.end(`${b.length} bytes, thanks`));
    });
    const proxy = await proxyTo(t, upstreamPort);
    const client = connect(proxy.port);
    t.after(() => client.destroy());
    const answer = readAll(client);
    client.end(Buffer.alloc(100_000, 7));
    assert.equal((await answer).toString(), '100000 bytes, thanks');
    const result = await proxy.next();
    assert.deepEqual(result, { received: 100_000, sent: '100000 bytes, thanks'.length });
    assert.equal(proxy.calls(), 1);
  });

  it('lets the client keep sending after the upstream has ended', async (t) => {
    let late: Promise<Buffer> | undefined;
    const upstreamPort = await customUpstream(t, (s) => {
      late = readAll(s);
      s.end('early end');
    });
    const proxy = await proxyTo(t, upstreamPort);
    const client = connect(proxy.port);
    t.after(() => client.destroy());
    assert.equal((await readAll(client)).toString(), 'early end');
    client.end('after the end');
    assert.equal((await late!).toString(), 'after the end');
    assert.equal((await proxy.next()).error, undefined);
  });

  it('passes an upstream reset on to the client as a reset', async (t) => {
    const upstreamPort = await customUpstream(t, (s) => s.once('data', () => s.resetAndDestroy()));
    const proxy = await proxyTo(t, upstreamPort);
    const client = connect(proxy.port);
    t.after(() => client.destroy());
    const failed = once(client, 'error').then(
      ([err]) => err as NodeJS.ErrnoException,
      () => undefined,
    );
    client.write('boom');
    client.resume();
    assert.equal((await failed)?.code, 'ECONNRESET');
    assert.ok((await proxy.next()).error);
  });

  // Regression: resetting a socket whose write side is still shutting down (end() called, FIN not yet
  // sent) makes libuv refuse (EINVAL); Node then never closed the handle, onDone never ran and the process
  // spun at exit. Here the abort lands in the same tick as the half-close it follows.
  it('finishes when aborted just after passing on a half-close', { timeout: 10_000 }, async (t) => {
    const upstreamPort = await customUpstream(t, (s) => s.resume());
    const result = new Promise<SpliceResult>((resolve) => {
      const server = net.createServer({ allowHalfOpen: true }, (downstream) => {
        const upstream = net.connect({ host: UPSTREAM_IP, port: upstreamPort, allowHalfOpen: true });
        upstream.once('connect', () => {
          const handle = splice(downstream, upstream, resolve);
          // Runs right after splice's own 'end' listener has called upstream.end().
          downstream.once('end', () => handle.abort(new Error('policy now denies this connection')));
        });
      });
      t.after(() => new Promise<void>((r) => server.close(() => r())));
      listen(server, HBONE_IP).then((port) => {
        const client = connect(port);
        client.on('error', () => {});
        client.resume();
        t.after(() => client.destroy());
        client.end('half');
      });
    });
    const r = await result;
    assert.equal(r.error?.message, 'policy now denies this connection');
    assert.equal(r.received, 4);
  });

  it('aborts on request, resetting both sides', async (t) => {
    const upstreamPort = await customUpstream(t, (s) => s.resume());
    let handle: ReturnType<typeof splice> | undefined;
    const results: SpliceResult[] = [];
    const server = net.createServer((downstream) => {
      const upstream = net.connect({ host: UPSTREAM_IP, port: upstreamPort });
      handle = splice(downstream, upstream, (r) => results.push(r));
    });
    const port = await listen(server, HBONE_IP);
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    const client = connect(port);
    client.on('error', () => {});
    const clientClosed = new Promise((resolve) => client.once('close', resolve));
    client.write('x');
    while (handle === undefined || handle.received === 0) await new Promise((r) => setTimeout(r, 5));
    handle.abort(new Error('policy now denies this connection'));
    await clientClosed;
    while (results.length === 0) await new Promise((r) => setTimeout(r, 5));
    assert.equal(results[0]!.error?.message, 'policy now denies this connection');
  });
});
