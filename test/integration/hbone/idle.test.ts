// The idle cut of spliced connections (one sweep shared by every connection): a connection with no
// byte either way for the idle time is cut, a busy one stays, and a closed one is no longer watched.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { type SpliceResult, splice } from '../../../src/hbone/index.ts';
import { idleWatched, watchIdle } from '../../../src/proxy/tcp.ts';
import { echoServer, HBONE_IP, listen, UPSTREAM_IP } from './helpers.ts';

const IDLE_MS = 400;

/** A proxy on 127.0.0.2 splicing each client to the echo server, with the idle cut on the client side. */
async function idleProxy(t: TestContext) {
  const echo = await echoServer(t);
  const results: SpliceResult[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ host: UPSTREAM_IP, port: echo.port, allowHalfOpen: true });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    const s = splice(client, upstream, (r) => results.push(r));
    watchIdle(client, IDLE_MS, () => s.abort(new Error('idle')));
  });
  const port = await listen(server, HBONE_IP);
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  const connect = async () => {
    const c = net.connect({ host: HBONE_IP, port });
    c.on('error', () => {});
    t.after(() => c.destroy());
    await once(c, 'connect');
    return c;
  };
  return { results, connect };
}

describe('idle cut', () => {
  it('cuts a connection with no byte either way, keeps a busy one, and forgets closed ones', async (t) => {
    const before = idleWatched();
    const { results, connect } = await idleProxy(t);
    const busy = await connect();
    const idle = await connect();
    // Not events.once: it rejects on the reset ('error') that a cut connection sees before 'close'.
    const idleClosed = new Promise((r) => idle.once('close', r));
    // The busy one echoes a byte every 50 ms for well past the idle time.
    const deadline = Date.now() + IDLE_MS * 4;
    while (Date.now() < deadline) {
      busy.write('x');
      await once(busy, 'data');
      await new Promise((r) => setTimeout(r, 50));
    }
    await idleClosed;
    assert.equal(busy.closed, false, 'the busy connection was cut');
    assert.equal(results.length, 1);
    assert.equal(results[0]?.error?.message, 'idle');
    busy.end();
    await once(busy, 'close');
    // Both splices done: nothing of them is left in the sweep.
    while (results.length < 2) await new Promise((r) => setTimeout(r, 10));
    assert.equal(idleWatched(), before);
  });

  it('watches nothing when the idle time is 0 or the socket is already gone', async (t) => {
    const echo = await echoServer(t);
    const before = idleWatched();
    const c = net.connect({ host: UPSTREAM_IP, port: echo.port });
    t.after(() => c.destroy());
    await once(c, 'connect');
    watchIdle(c, 0, () => assert.fail('an idle time of 0 never cuts'));
    c.destroy();
    await once(c, 'close');
    watchIdle(c, IDLE_MS, () => assert.fail('a closed socket is not watched'));
    assert.equal(idleWatched(), before);
  });
});
