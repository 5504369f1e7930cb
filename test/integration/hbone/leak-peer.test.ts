// Issue 9, item 1: an HBONE client that goes away (its connection ends with a FIN, is reset, or falls
// silent) leaves no CONNECT stream and no upstream connection behind at the server. The listener here is
// half-open, as the ztunnel's capture listeners are, which is how the leak happened.

import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { before, describe, it, type TestContext } from 'node:test';
import * as tls from 'node:tls';
import { HboneServer, type TlsMaterial } from '../../../src/hbone/index.ts';
import { eventually } from '../../helpers/lab.ts';
import {
  CLIENT,
  dialUpstream,
  HBONE_IP,
  listen,
  materialFor,
  newAuthority,
  SERVER,
  UPSTREAM_IP,
} from './helpers.ts';

const STREAMS = 5;

let client: TlsMaterial;
let server: TlsMaterial;

before(async () => {
  const ca = await newAuthority();
  client = await materialFor(ca, CLIENT);
  server = await materialFor(ca, SERVER);
});

/** An echo server that knows how many of its connections are still open. */
async function upstream(t: TestContext): Promise<{ port: number; open: Set<net.Socket> }> {
  const open = new Set<net.Socket>();
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  const port = await listen(srv, UPSTREAM_IP);
  t.after(async () => {
    for (const s of open) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  });
  return { port, open };
}

/** An HboneServer fed by a half-open listener, like the ztunnel's. */
async function hbone(t: TestContext, options: { pingIntervalMs?: number; pingTimeoutMs?: number } = {}) {
  const hb = new HboneServer({ certFor: () => server, onConnect: dialUpstream, ...options });
  const sockets = new Set<net.Socket>();
  const listener = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    hb.accept(s, s.localAddress!);
  });
  const port = await listen(listener, HBONE_IP);
  t.after(async () => {
    await hb.close(0);
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => listener.close(() => r()));
  });
  return { hb, port };
}

const RELAY_IP = '127.0.0.4';

/**
 * A TCP relay to the HBONE server that the test can reset or freeze: frozen, it moves no byte either way
 * but keeps both connections open, as a stopped process or a vanished node does.
 */
async function relayTo(t: TestContext, port: number) {
  let frozen = false;
  const toServer = new Set<net.Socket>();
  const toClient = new Set<net.Socket>();
  const relay = net.createServer({ allowHalfOpen: true }, (downstream) => {
    const upstreamSide = net.connect({ host: HBONE_IP, port, allowHalfOpen: true });
    toClient.add(downstream);
    toServer.add(upstreamSide);
    for (const s of [downstream, upstreamSide]) s.on('error', () => {});
    downstream.on('data', (d) => frozen || upstreamSide.write(d));
    upstreamSide.on('data', (d) => frozen || downstream.write(d));
  });
  const relayPort = await listen(relay, RELAY_IP);
  t.after(async () => {
    for (const s of [...toServer, ...toClient]) s.destroy();
    await new Promise<void>((r) => relay.close(() => r()));
  });
  return {
    port: relayPort,
    toServer,
    toClient,
    freeze: () => {
      frozen = true;
    },
  };
}

/** A bare HBONE client (TLS + HTTP/2 by hand, so the test owns the socket) with STREAMS open tunnels. */
async function clientWithTunnels(t: TestContext, port: number, authority: string, host = HBONE_IP) {
  const socket = tls.connect({
    host,
    port,
    ca: client.trustBundlePem,
    cert: client.certChainPem,
    key: client.keyPem,
    ALPNProtocols: ['h2'],
    servername: '',
    checkServerIdentity: () => undefined,
  });
  socket.on('error', () => {});
  const session = http2.connect(`https://${host}:${port}`, { createConnection: () => socket });
  session.on('error', () => {});
  t.after(() => {
    session.destroy();
    socket.destroy();
  });
  for (let i = 0; i < STREAMS; i++) {
    const stream = session.request({ ':method': 'CONNECT', ':authority': authority }, { endStream: false });
    stream.on('error', () => {});
    const headers = await new Promise<http2.IncomingHttpHeaders>((r) => stream.once('response', r));
    assert.equal(headers[':status'], 200);
    // A byte each way, so the tunnel really carries data.
    const echoed = new Promise((r) => stream.once('data', r));
    stream.write('x');
    await echoed;
  }
  return { socket, session };
}

/** Waits until nothing of the client's connection is left at the server. */
async function nothingLeft(hb: HboneServer, open: Set<net.Socket>, what: string) {
  await eventually(
    async () => (hb.stats().streams === 0 && hb.stats().sessions === 0 && open.size === 0 ? true : undefined),
    5_000,
    `${what}: no stream, session or upstream connection left (now ${JSON.stringify(hb.stats())}, upstream ${open.size})`,
  );
}

describe('HBONE server when the client goes away', () => {
  it('a client whose TLS socket is destroyed (FIN) leaves nothing behind', async (t) => {
    const up = await upstream(t);
    const { hb, port } = await hbone(t);
    const { socket } = await clientWithTunnels(t, port, `${UPSTREAM_IP}:${up.port}`);
    assert.equal(up.open.size, STREAMS);
    assert.equal(hb.stats().streams, STREAMS);
    socket.destroy();
    await nothingLeft(hb, up.open, 'after a FIN');
  });

  it('a client whose TCP connection is reset leaves nothing behind', async (t) => {
    const up = await upstream(t);
    const { hb, port } = await hbone(t);
    const relay = await relayTo(t, port);
    await clientWithTunnels(t, relay.port, `${UPSTREAM_IP}:${up.port}`, RELAY_IP);
    assert.equal(up.open.size, STREAMS);
    // An RST toward the server, as from a killed process that had unread data.
    for (const s of relay.toServer) s.resetAndDestroy();
    await nothingLeft(hb, up.open, 'after an RST');
  });

  it('a client that falls silent (frozen, no FIN) is dropped when it stops answering PING', async (t) => {
    const up = await upstream(t);
    const { hb, port } = await hbone(t, { pingIntervalMs: 100, pingTimeoutMs: 300 });
    const relay = await relayTo(t, port);
    await clientWithTunnels(t, relay.port, `${UPSTREAM_IP}:${up.port}`, RELAY_IP);
    assert.equal(up.open.size, STREAMS);
    relay.freeze();
    await nothingLeft(hb, up.open, 'after the client froze');
    // The client never closed its side: it was the server that gave up.
    assert.ok([...relay.toClient].every((s) => !s.destroyed));
  });
});
