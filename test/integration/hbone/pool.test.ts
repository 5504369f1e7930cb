// The client pool against a real HboneServer on 127.0.0.2: streams share a connection, spill to another
// beyond the per-connection limit (ours or the server's SETTINGS), and idle connections are released.

import assert from 'node:assert/strict';
import { before, describe, it, type TestContext } from 'node:test';
import { hasCode } from '../../../src/errors/index.ts';
import type { HbonePool, HboneTunnel, TlsMaterial } from '../../../src/hbone/index.ts';
import {
  CLIENT,
  echoServer,
  HBONE_IP,
  hboneServer,
  materialFor,
  newAuthority,
  newPool,
  OTHER,
  readAll,
  SERVER,
} from './helpers.ts';

let client: TlsMaterial;
let server: TlsMaterial;

before(async () => {
  const ca = await newAuthority();
  client = await materialFor(ca, CLIENT);
  server = await materialFor(ca, SERVER);
});

async function setup(t: TestContext, serverOptions: { maxConcurrentStreams?: number } = {}) {
  const echo = await echoServer(t);
  const hbone = await hboneServer(t, { certFor: () => server, ...serverOptions });
  const open = (pool: HbonePool, accepted = [SERVER]) =>
    pool.connect({
      source: () => client,
      destination: { address: HBONE_IP, port: hbone.port },
      accepted,
      authority: `127.0.0.3:${echo.port}`,
    });
  return { echo, hbone, open };
}

/** Proves a tunnel works end to end and closes it cleanly. */
async function roundTrip(tunnel: HboneTunnel, text: string): Promise<void> {
  const back = readAll(tunnel.stream);
  tunnel.stream.end(text);
  assert.equal((await back).toString(), text);
}

function streamsPerConnection(pool: HbonePool): number[] {
  return pool
    .stats()
    .byKey.flatMap((k) => k.connections.map((c) => c.streams))
    .sort((a, b) => b - a);
}

async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

describe('HBONE pool', () => {
  it('carries many concurrent streams on one connection', async (t) => {
    const { hbone, open } = await setup(t);
    const pool = newPool(t);
    const tunnels = await Promise.all(Array.from({ length: 20 }, () => open(pool)));
    assert.equal(hbone.accepted(), 1);
    assert.deepEqual(streamsPerConnection(pool), [20]);
    assert.equal(new Set(tunnels.map((x) => x.connectionId)).size, 1);
    await Promise.all(tunnels.map((x, i) => roundTrip(x, `stream ${i}`)));
    // A later tunnel reuses the same connection.
    const again = await open(pool);
    assert.equal(again.connectionId, tunnels[0]!.connectionId);
    await roundTrip(again, 'again');
    assert.equal(hbone.accepted(), 1);
  });

  it('opens another connection beyond maxStreamsPerConnection', async (t) => {
    const { hbone, open } = await setup(t);
    const pool = newPool(t, { maxStreamsPerConnection: 3 });
    const tunnels = await Promise.all(Array.from({ length: 7 }, () => open(pool)));
    assert.deepEqual(streamsPerConnection(pool), [3, 3, 1]);
    assert.equal(hbone.accepted(), 3);
    const stats = pool.stats();
    assert.equal(stats.connections, 3);
    assert.equal(stats.streams, 7);
    assert.equal(stats.byKey.length, 1);
    assert.equal(stats.byKey[0]!.source, CLIENT);
    assert.deepEqual(stats.byKey[0]!.accepted, [SERVER]);
    assert.equal(stats.byKey[0]!.destination, `${HBONE_IP}:${hbone.port}`);
    await Promise.all(tunnels.map((x, i) => roundTrip(x, `s${i}`)));
  });

  it("honours the server's SETTINGS_MAX_CONCURRENT_STREAMS when it is lower", async (t) => {
    const { hbone, open } = await setup(t, { maxConcurrentStreams: 2 });
    const pool = newPool(t);
    const tunnels = await Promise.all(Array.from({ length: 5 }, () => open(pool)));
    assert.deepEqual(streamsPerConnection(pool), [2, 2, 1]);
    assert.equal(hbone.accepted(), 3);
    for (const c of pool.stats().byKey[0]!.connections) assert.equal(c.maxStreams, 2);
    await Promise.all(tunnels.map((x, i) => roundTrip(x, `s${i}`)));
  });

  it('keeps a separate connection per accepted identity set, whatever their order', async (t) => {
    const { hbone, open } = await setup(t);
    const pool = newPool(t);
    const a = await open(pool, [SERVER, OTHER]);
    const b = await open(pool, [OTHER, SERVER]);
    const c = await open(pool, [SERVER]);
    assert.equal(a.connectionId, b.connectionId);
    assert.notEqual(a.connectionId, c.connectionId);
    assert.equal(pool.stats().byKey.length, 2);
    assert.equal(hbone.accepted(), 2);
    await Promise.all([roundTrip(a, 'a'), roundTrip(b, 'b'), roundTrip(c, 'c')]);
  });

  it('releases a connection once it has been idle for idleTimeoutMs', async (t) => {
    const { hbone, open } = await setup(t);
    const pool = newPool(t, { idleTimeoutMs: 50 });
    const tunnel = await open(pool);
    assert.equal(pool.stats().connections, 1);
    await roundTrip(tunnel, 'bye');
    await waitFor(() => pool.stats().connections === 0);
    await waitFor(() => hbone.server.stats().sessions === 0);
    // The next tunnel dials afresh.
    await roundTrip(await open(pool), 'hello again');
    assert.equal(hbone.accepted(), 2);
  });

  it('closes what a burst opened to one peer after the spare idle time, keeping one warm', async (t) => {
    const { hbone, open } = await setup(t);
    let idleClosed = 0;
    const pool = newPool(t, {
      maxStreamsPerConnection: 1,
      idleTimeoutMs: 60_000,
      spareIdleTimeoutMs: 50,
      onIdleClose: () => idleClosed++,
    });
    const tunnels = await Promise.all([open(pool), open(pool), open(pool)]);
    assert.equal(pool.stats().connections, 3);
    await Promise.all(tunnels.map((tunnel, i) => roundTrip(tunnel, `burst ${i}`)));
    await waitFor(() => pool.stats().connections === 1);
    assert.equal(idleClosed, 2);
    // The last one stays for the whole idle timeout, and the next tunnel uses it.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(pool.stats().connections, 1);
    await roundTrip(await open(pool), 'warm');
    assert.equal(hbone.accepted(), 3);
  });

  it('refuses new tunnels once closed, after the open ones finish', async (t) => {
    const { open } = await setup(t);
    const pool = newPool(t);
    const tunnel = await open(pool);
    const closed = pool.close(10_000);
    await assert.rejects(open(pool), (err) => hasCode(err, 'AMBIT_ERR_HBONE_CLOSED'));
    await roundTrip(tunnel, 'finishing');
    await closed;
    assert.equal(pool.stats().connections, 0);
  });
});
