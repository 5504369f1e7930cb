// Fixtures for HBONE tests on loopback: a test root issuing workload material, an HBONE server fed by a
// net.Server on 127.0.0.2, and upstream TCP servers (echo, reset) on 127.0.0.3. Everything closes itself.

import { once } from 'node:events';
import * as net from 'node:net';
import type { TestContext } from 'node:test';
import { CertificateAuthority, createRootCa } from '../../../src/control/ca/index.ts';
import {
  HbonePool,
  type HbonePoolOptions,
  HboneServer,
  type HboneServerOptions,
  type StreamRecord,
  type TlsMaterial,
} from '../../../src/hbone/index.ts';
import { createCsr, generateKeyPair, type SpiffeId, workloadId } from '../../../src/identity/index.ts';

export const TD = 'cluster.local';
export const CLIENT = workloadId(TD, 'default', 'client');
export const SERVER = workloadId(TD, 'default', 'server');
export const OTHER = workloadId(TD, 'default', 'other');
export const HBONE_IP = '127.0.0.2';
export const UPSTREAM_IP = '127.0.0.3';

export async function newAuthority(): Promise<CertificateAuthority> {
  return CertificateAuthority.create({
    material: await createRootCa({ trustDomain: TD }),
    policy: { trustDomain: TD, minTtlSeconds: 1 },
  });
}

export async function materialFor(ca: CertificateAuthority, id: SpiffeId): Promise<TlsMaterial> {
  const pair = await generateKeyPair();
  const issued = await ca.sign(await createCsr(id, pair.keys));
  return {
    identity: id,
    certChainPem: issued.chain.slice(0, -1).join(''),
    keyPem: pair.privateKeyPem,
    trustBundlePem: ca.bundle.toPem(),
  };
}

export async function listen(server: net.Server, host: string): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** Closes a net.Server and every socket it accepted. */
function closer(server: net.Server, sockets: Set<net.Socket>): () => Promise<void> {
  return async () => {
    for (const s of sockets) s.destroy();
    if (server.listening) await new Promise<void>((r) => server.close(() => r()));
  };
}

/** A TCP echo server that echoes, then ends its side when the client ends (half-close aware). */
export async function echoServer(t: TestContext): Promise<{ port: number; accepted: () => number }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    accepted += 1;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  const port = await listen(server, UPSTREAM_IP);
  t.after(closer(server, sockets));
  return { port, accepted: () => accepted };
}

/** Accepts, then behaves as `handle` says (reset after data, send and end, …). */
export async function customUpstream(t: TestContext, handle: (s: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    handle(s);
  });
  const port = await listen(server, UPSTREAM_IP);
  t.after(closer(server, sockets));
  return port;
}

/** Dials 127.0.0.3:<authority port>, answering 503 when it cannot; the usual ztunnel inbound decision. */
export function dialUpstream(ctx: { authority: { port: number } }) {
  return new Promise<{ status: 200; upstream: net.Socket } | { status: 503; reason: string }>((resolve) => {
    const upstream = net.connect({ host: UPSTREAM_IP, port: ctx.authority.port, allowHalfOpen: true });
    upstream.once('connect', () => resolve({ status: 200, upstream }));
    upstream.once('error', (err) => resolve({ status: 503, reason: err.message }));
  });
}

export interface HboneFixture {
  port: number;
  server: HboneServer;
  records: StreamRecord[];
  /** Raw TCP connections accepted by the listener. */
  accepted: () => number;
}

/** An HboneServer behind a net.Server on 127.0.0.2 that hands it every accepted socket. */
export async function hboneServer(
  t: TestContext,
  options: Partial<HboneServerOptions> & Pick<HboneServerOptions, 'certFor'>,
): Promise<HboneFixture> {
  const records: StreamRecord[] = [];
  const server = new HboneServer({
    onConnect: dialUpstream,
    ...options,
    onComplete: (r) => {
      records.push(r);
      options.onComplete?.(r);
    },
  });
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const listener = net.createServer((s) => {
    accepted += 1;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    server.accept(s, s.localAddress!);
  });
  const port = await listen(listener, HBONE_IP);
  t.after(async () => {
    await server.close(0);
    await closer(listener, sockets)();
  });
  return { port, server, records, accepted: () => accepted };
}

export function newPool(t: TestContext, options: HbonePoolOptions = {}): HbonePool {
  const pool = new HbonePool(options);
  t.after(() => pool.close(0));
  return pool;
}

/**
 * Reads a stream to its end. Not with `for await`: the async iterator destroys the stream when it ends,
 * which would also close our writing half of a half-closed tunnel.
 */
export function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}
