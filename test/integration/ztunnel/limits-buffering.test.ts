// Issue 9 item 4, in-process: many HBONE streams into upstreams that never read. What the server side
// holds (each stream's unread data, each upstream's queued writes) stays under the budgets instead of
// growing to 4 MiB + 512 KiB per stream: stream windows shrink as streams open (per session and per
// process), splice thresholds shrink as splices open, and both grow back when the streams are gone.

import assert from 'node:assert/strict';
import type * as net from 'node:net';
import { Duplex } from 'node:stream';
import { before, describe, type TestContext, test } from 'node:test';
import {
  type HboneTunnel,
  PROCESS_WINDOW_BUDGET,
  SPLICE_PROCESS_BUFFER_BYTES,
  spliceStats,
  type TlsMaterial,
} from '../../../src/hbone/index.ts';
import {
  CLIENT,
  HBONE_IP,
  hboneServer,
  materialFor,
  newAuthority,
  newPool,
  SERVER,
} from '../hbone/helpers.ts';

const MiB = 1024 * 1024;
const STREAMS = 24;
const PER_STREAM = 6 * MiB;

let client: TlsMaterial;
let server: TlsMaterial;

before(async () => {
  const ca = await newAuthority();
  client = await materialFor(ca, CLIENT);
  server = await materialFor(ca, SERVER);
});

/** An upstream that accepts one write and never finishes it: nothing it is sent is ever taken. */
function stalledUpstream(): Duplex {
  return new Duplex({
    read() {},
    write(_chunk, _encoding, _done) {
      // never calls _done: the writes queue in writableLength
    },
  });
}

/**
 * STREAMS tunnels to the HBONE server on `port`, one authority each from `firstPort` on; they and the
 * upstreams are destroyed when the test ends.
 */
async function openTunnels(
  t: TestContext,
  port: number,
  firstPort: number,
  upstreams: Duplex[],
): Promise<HboneTunnel[]> {
  const pool = newPool(t);
  const tunnels: HboneTunnel[] = [];
  for (let i = 0; i < STREAMS; i++) {
    tunnels.push(
      await pool.connect({
        source: () => client,
        destination: { address: HBONE_IP, port },
        accepted: [SERVER],
        authority: `127.0.0.3:${firstPort + i}`,
      }),
    );
  }
  t.after(() => {
    for (const tunnel of tunnels) tunnel.stream.destroy();
    for (const up of upstreams) up.destroy();
  });
  return tunnels;
}

/** Waits until nothing moves any more: `measure` gives the same value three times in a row, 300 ms apart. */
async function settled(measure: () => number): Promise<void> {
  let last = -1;
  for (let stable = 0; stable < 3; ) {
    await new Promise((r) => setTimeout(r, 300));
    const now = measure();
    stable = now === last ? stable + 1 : 0;
    last = now;
  }
}

describe('buffering bounds', () => {
  test('streams into upstreams that never read hold the budget, not the windows', async (t) => {
    const upstreams: Duplex[] = [];
    const streams: Array<{ readableLength: number }> = [];
    const hbone = await hboneServer(t, {
      certFor: () => server,
      onConnect: (ctx) => {
        const up = stalledUpstream();
        upstreams.push(up);
        streams.push(ctx.stream);
        return { status: 200, upstream: up as unknown as net.Socket };
      },
    });
    const tunnels = await openTunnels(t, hbone.port, 9000, upstreams);
    const payload = Buffer.alloc(PER_STREAM, 7);
    for (const tunnel of tunnels) tunnel.stream.write(payload);

    // Wait until nothing moves any more: every stream is paused with its window closed.
    const held = () => ({
      unread: streams.reduce((n, s) => n + s.readableLength, 0),
      queued: upstreams.reduce((n, u) => n + u.writableLength, 0),
    });
    await settled(() => {
      const h = held();
      return h.unread + h.queued;
    });
    const h = held();
    const window = PROCESS_WINDOW_BUDGET.windowFor(STREAMS);
    const threshold = spliceStats().highWaterBytes;
    t.diagnostic(`unread ${h.unread} B (window ${window}), queued ${h.queued} B (threshold ${threshold})`);
    // Without the budgets: 24 × (4 MiB window + 512 KiB) ≈ 108 MiB.
    assert.ok(window < 4 * MiB, `the stream window shrank with ${STREAMS} streams open: ${window}`);
    assert.ok(
      h.unread <= STREAMS * window + 2 * MiB && h.unread <= 16 * MiB + 2 * MiB,
      `unread ${h.unread} bytes within ${STREAMS} × ${window} (the session's 16 MiB)`,
    );
    assert.ok(
      h.queued <= STREAMS * (threshold + 64 * 1024) && h.queued <= SPLICE_PROCESS_BUFFER_BYTES,
      `queued ${h.queued} bytes within ${STREAMS} × ${threshold} (the process's splice budget)`,
    );
    assert.ok(h.unread + h.queued < 40 * MiB, `held ${(h.unread + h.queued) / MiB} MiB in all`);

    // When they are gone, a lone stream gets the full window and threshold again.
    for (const tunnel of tunnels) tunnel.stream.destroy();
    for (const up of upstreams) up.destroy();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(PROCESS_WINDOW_BUDGET.stats().streams, 0);
    assert.equal(PROCESS_WINDOW_BUDGET.windowFor(1), 4 * MiB);
    assert.deepEqual(spliceStats(), { open: 0, highWaterBytes: 512 * 1024 });
  });

  test('a local reader that never reads holds the budget at the source too', async (t) => {
    const upstreams: Duplex[] = [];
    // Upstreams that answer with PER_STREAM bytes each, as fast as they are taken.
    const hbone = await hboneServer(t, {
      certFor: () => server,
      onConnect: () => {
        let sent = 0;
        const up = new Duplex({
          read() {
            if (sent >= PER_STREAM) return;
            sent += 64 * 1024;
            this.push(Buffer.alloc(64 * 1024, 9));
          },
          write(_chunk, _encoding, done) {
            done();
          },
        });
        upstreams.push(up);
        return { status: 200, upstream: up as unknown as net.Socket };
      },
    });
    const tunnels = await openTunnels(t, hbone.port, 9100, upstreams);
    // Nobody reads the tunnels: what arrives stays in their readable buffers, up to their windows.
    const unread = () => tunnels.reduce((n, tunnel) => n + tunnel.stream.readableLength, 0);
    await settled(unread);
    t.diagnostic(`unread at the source: ${unread()} B`);
    // Without the budget on the client side: 24 × 4 MiB = 96 MiB. With it, each stream fills the window it
    // had when it opened (4 MiB while few are open, less as more open): about 36 MiB for 24 opened one by
    // one, data already received under a larger window staying until it is read.
    assert.ok(unread() > 0, 'data arrived');
    assert.ok(unread() <= 40 * MiB, `unread ${unread()} bytes, not 24 × 4 MiB`);
  });
});
