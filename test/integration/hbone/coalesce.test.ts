// Bulk through an HBONE stream reaches the upstream socket in few writes: HTTP/2 hands the stream's data
// over in chunks cut at TLS record and DATA frame boundaries (16,375 B and 9 B), and a write per chunk was
// two system calls per 16 KiB frame. splice corks the upstream for the rest of the loop turn instead.

import assert from 'node:assert/strict';
import type * as net from 'node:net';
import { before, describe, it } from 'node:test';
import type { TlsMaterial } from '../../../src/hbone/index.ts';
import {
  CLIENT,
  customUpstream,
  dialUpstream,
  HBONE_IP,
  hboneServer,
  materialFor,
  newAuthority,
  newPool,
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

/** Counts the writes the socket hands to its handle (one `_write` or `_writev` each), leaving them as they were. */
function countWrites(s: net.Socket): () => number {
  let writes = 0;
  const socket = s as net.Socket & { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
  const write = socket._write;
  const writev = socket._writev;
  socket._write = (...a: unknown[]) => {
    writes += 1;
    write.apply(socket, a);
  };
  socket._writev = (...a: unknown[]) => {
    writes += 1;
    writev.apply(socket, a);
  };
  return () => writes;
}

describe('HBONE bulk to the upstream', () => {
  it('arrives whole in fewer writes than the DATA frames that carried it', async (t) => {
    const bytes = 4 * 1024 * 1024;
    const frames = bytes / (16 * 1024);
    const upstreamPort = await customUpstream(t, (s) => {
      readAll(s).then((b) => s.end(`${b.length}`));
    });
    let writes: (() => number) | undefined;
    const hbone = await hboneServer(t, {
      certFor: () => server,
      onConnect: async (ctx) => {
        const decision = await dialUpstream(ctx);
        if (decision.status === 200) writes = countWrites(decision.upstream);
        return decision;
      },
    });
    const tunnel = await newPool(t).connect({
      source: () => client,
      destination: { address: HBONE_IP, port: hbone.port },
      accepted: [SERVER],
      authority: `127.0.0.3:${upstreamPort}`,
    });
    t.after(() => tunnel.stream.destroy());
    const answer = readAll(tunnel.stream);
    tunnel.stream.end(Buffer.alloc(bytes, 0x61));
    assert.equal((await answer).toString(), String(bytes));
    assert.ok(writes, 'the upstream was dialled');
    // A write per chunk is about two per frame; coalesced, at most one per TLS read of the turn.
    assert.ok(writes() < frames / 2, `${writes()} writes to the upstream for ${frames} DATA frames`);
  });
});
