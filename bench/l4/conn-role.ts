// One process of the conn-cost bench: the outbound ztunnel's data path (TCP listener → HBONE pool →
// splice), the inbound one's (TCP listener → HBONE server → upstream dial → splice), or the echo server.
// Each is the real code the ztunnel runs (src/hbone, src/proxy), wired as outbound.ts and inbound-hbone.ts
// wire it, without the control plane; `tcp` mode replaces HBONE by a plain TCP hop (Node's floor).
// The parent drives it over IPC: measure memory, write a heap snapshot, sample CPU, profile.

import { readFileSync } from 'node:fs';
import * as inspector from 'node:inspector/promises';
import type * as net from 'node:net';
import * as v8 from 'node:v8';
import { Registry } from 'prom-client';
import {
  forwardedFor,
  HbonePool,
  HboneServer,
  resetStream,
  type StreamRecord,
  splice,
  type TlsMaterial,
} from '../../src/hbone/index.ts';
import type { SpiffeId } from '../../src/identity/index.ts';
import { accessLogger, logger } from '../../src/log/index.ts';
import { addon } from '../../src/os/index.ts';
import {
  ConnectionTable,
  connectTcp,
  listenTcp,
  trimMemoryWhenQuiet,
  watchIdle,
} from '../../src/proxy/index.ts';
import { TcpMetrics } from '../../src/telemetry/index.ts';
import { echoOrSink } from './conn-throughput.ts';

export type Role = 'outbound' | 'inbound' | 'echo';
export type Mode = 'hbone' | 'tcp';

export interface RoleSetup {
  role: Role;
  mode: Mode;
  host: string;
  /** Where the next hop listens (outbound: the inbound's; inbound: the echo's). */
  next?: { address: string; port: number };
  /** The ztunnel's idle cut (its default is an hour: a timer per connection that never fires). */
  idleTimeoutMs: number;
  material?: TlsMaterial;
  /** The CONNECT authority (outbound): where the client meant to go. */
  authority?: string;
  accepted?: SpiffeId[];
}

export type Request =
  | { cmd: 'measure' }
  | { cmd: 'open' }
  | { cmd: 'snapshot'; file: string }
  | { cmd: 'cpu' }
  | { cmd: 'profile-start' }
  | { cmd: 'profile-stop' }
  /** The echo's count of bytes its sink connections received (conn-throughput.ts). */
  | { cmd: 'sunk' }
  | { cmd: 'stop' };

const log = logger('bench');
const gc = (globalThis as { gc?: () => void }).gc;

/** Full collections until the heap stops shrinking (one pass leaves weakly-held and finalised objects). */
function collect(): void {
  if (!gc) return;
  let before = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 6; i++) {
    gc();
    const used = process.memoryUsage().heapUsed;
    if (used >= before - 1024) break;
    before = used;
  }
}

interface Running {
  port: number;
  open: () => number;
  stop: () => void;
  sunk?: () => number;
}

async function start(setup: RoleSetup): Promise<Running> {
  if (setup.role === 'echo') return echo(setup.host);
  const table = new ConnectionTable<undefined>(new TcpMetrics(new Registry()), accessLogger());
  return setup.role === 'outbound' ? outbound(setup, table) : inbound(setup, table);
}

async function echo(host: string): Promise<Running> {
  const sockets = new Set<net.Socket>();
  const sunk = { bytes: 0 };
  const server = await listenTcp({
    host,
    port: 0,
    maxConnections: 100_000,
    log,
    onSocket: (s) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      echoOrSink(s, sunk);
    },
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    open: () => sockets.size,
    sunk: () => sunk.bytes,
    stop: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

const labels = { reporter: 'source' as const, connection_security_policy: 'mutual_tls' };

/** As outbound.ts: a slot, a tunnel (or a plain dial), one splice, tracked, the idle cut on the client. */
async function outbound(setup: RoleSetup, table: ConnectionTable<undefined>) {
  const next = setup.next!;
  const pool = new HbonePool();
  const material = setup.material!;
  const server = await listenTcp({
    host: setup.host,
    port: 0,
    maxConnections: 100_000,
    log,
    onSocket: (client) => {
      const started = Date.now();
      const dial =
        setup.mode === 'tcp'
          ? connectTcp(next, 10_000, 'BENCH_TIMEOUT')
          : pool
              .connect({
                source: () => material,
                destination: next,
                accepted: setup.accepted!,
                authority: setup.authority ?? `${next.address}:${next.port}`,
                headers: {
                  forwarded: forwardedFor({ address: client.remoteAddress!, port: client.remotePort ?? 0 }),
                  baggage: 'k8s.namespace.name=bench,k8s.workload.name=client',
                },
              })
              .then((t) => t.stream);
      dial.then(
        (upstream) => {
          const id = table.opened(labels);
          const s = splice(client, upstream, (r) =>
            table.finish(
              id,
              labels,
              { fromClient: r.received, toClient: r.sent },
              {
                direction: 'outbound',
                src: { addr: `${client.remoteAddress}:${client.remotePort}` },
                dst: { addr: `${next.address}:${next.port}` },
                bytes_sent: r.received,
                bytes_recv: r.sent,
                duration_ms: Date.now() - started,
                flags: '-',
              },
            ),
          );
          table.track(id, {
            direction: 'outbound',
            src: `${client.remoteAddress}:${client.remotePort}`,
            dst: `${next.address}:${next.port}`,
            workload: 'client',
            startedAt: new Date(started).toISOString(),
            meta: undefined,
            abort: (why) => s.abort(why),
          });
          watchIdle(client, setup.idleTimeoutMs, () => s.abort(new Error('idle')));
        },
        (err) => {
          log.warn({ err }, 'bench outbound dial failed');
          resetStream(client);
        },
      );
    },
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    open: () => table.size,
    stop: () => {
      table.cutAll(() => new Error('stop'));
      server.close();
      void pool.close(0);
    },
  };
}

/** As inbound-hbone.ts: the HBONE server's CONNECT dials the upstream, tracked, with the idle cut. */
async function inbound(setup: RoleSetup, table: ConnectionTable<undefined>) {
  const next = setup.next!;
  const material = setup.material!;
  const record = (r: StreamRecord) =>
    table.closed(
      { ...labels, reporter: 'destination' },
      { fromClient: r.received, toClient: r.sent },
      {
        direction: 'inbound',
        src: { addr: r.peerAddress ? `${r.peerAddress.address}:${r.peerAddress.port}` : '' },
        dst: { addr: r.authority ?? '' },
        bytes_sent: r.sent,
        bytes_recv: r.received,
        duration_ms: Math.round(r.durationMs),
        flags: '-',
      },
    );
  const hbone = new HboneServer({
    certFor: () => material,
    onComplete: record,
    onConnect: async (c) => {
      const upstream = await connectTcp(next, 10_000, 'BENCH_TIMEOUT');
      const id = table.opened({ ...labels, reporter: 'destination' });
      const abort = () => {
        resetStream(upstream);
        c.stream.close(0x8);
      };
      table.track(id, {
        direction: 'inbound',
        src: c.peerAddress?.address ?? '',
        dst: `${next.address}:${next.port}`,
        workload: 'server',
        peerIdentity: c.peerIdentity,
        startedAt: new Date().toISOString(),
        meta: undefined,
        abort,
      });
      upstream.once('close', () => table.untrack(id));
      watchIdle(upstream, setup.idleTimeoutMs, abort);
      return { status: 200, upstream, baggage: 'k8s.namespace.name=bench,k8s.workload.name=server' };
    },
  });
  const plain = new Set<net.Socket>();
  const server = await listenTcp({
    host: setup.host,
    port: 0,
    maxConnections: 100_000,
    log,
    onSocket: (socket) => {
      if (setup.mode === 'hbone') {
        hbone.accept(socket, socket.localAddress!);
        return;
      }
      plain.add(socket);
      socket.once('close', () => plain.delete(socket));
      connectTcp(next, 10_000, 'BENCH_TIMEOUT').then(
        (upstream) => {
          const s = splice(socket, upstream, () => {});
          watchIdle(upstream, setup.idleTimeoutMs, () => s.abort(new Error('idle')));
        },
        (err) => {
          log.warn({ err }, 'bench inbound dial failed');
          resetStream(socket);
        },
      );
    },
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    open: () => (setup.mode === 'hbone' ? hbone.stats().streams : plain.size),
    stop: () => {
      for (const s of plain) s.destroy();
      server.close();
      void hbone.close(0);
    },
  };
}

/** What one measurement reports: process.memoryUsage() after full collections, and the open count. */
export interface Measure {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** RSS of malloc's main arena (`[heap]` in smaps): what native code (nghttp2, OpenSSL, libuv) holds. */
  mallocRss: number;
  /** RSS of anonymous mappings: V8's heap pages, other malloc arenas, large allocations. */
  anonRss: number;
  /** The C heap (every malloc arena): bytes live, and bytes free but still held (mallinfo2). */
  mallocInUse: number;
  mallocFree: number;
  open: number;
}

/** RSS split by mapping kind, from /proc/self/smaps (0 where there is no procfs). */
function mappedRss(): { mallocRss: number; anonRss: number } {
  let text: string;
  try {
    text = readFileSync('/proc/self/smaps', 'utf8');
  } catch {
    return { mallocRss: 0, anonRss: 0 };
  }
  let mallocRss = 0;
  let anonRss = 0;
  let kind: 'malloc' | 'anon' | 'other' = 'other';
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      const path = head[1] ?? '';
      kind = path === '[heap]' ? 'malloc' : path === '' ? 'anon' : 'other';
      continue;
    }
    if (!line.startsWith('Rss:')) continue;
    const bytes = Number(line.slice(4).trim().split(' ')[0]) * 1024;
    if (kind === 'malloc') mallocRss += bytes;
    else if (kind === 'anon') anonRss += bytes;
  }
  return { mallocRss, anonRss };
}

if (process.send) {
  const send = process.send.bind(process);
  let running: Running | undefined;
  let session: inspector.Session | undefined;
  let cpuFrom = process.cpuUsage();
  let wallFrom = performance.now();
  const handle = async (msg: Request | { cmd: 'start'; setup: RoleSetup }): Promise<unknown> => {
    switch (msg.cmd) {
      case 'start':
        running = await start(msg.setup);
        return { port: running.port };
      case 'open':
        return running?.open() ?? 0;
      case 'sunk':
        return running?.sunk?.() ?? 0;
      case 'measure': {
        collect();
        const m = process.memoryUsage();
        const mallocNow = addon().mallocInfo();
        return {
          rss: m.rss,
          heapUsed: m.heapUsed,
          heapTotal: m.heapTotal,
          external: m.external,
          arrayBuffers: m.arrayBuffers,
          ...mappedRss(),
          mallocInUse: mallocNow?.inUse ?? 0,
          mallocFree: mallocNow?.free ?? 0,
          open: running?.open() ?? 0,
        } satisfies Measure;
      }
      case 'snapshot':
        collect();
        return { file: v8.writeHeapSnapshot(msg.file) };
      case 'cpu': {
        // CPU seconds per wall second since the last call: the process's vCPU.
        const used = process.cpuUsage(cpuFrom);
        const wall = performance.now() - wallFrom;
        cpuFrom = process.cpuUsage();
        wallFrom = performance.now();
        return { vcpu: (used.user + used.system) / 1000 / wall };
      }
      case 'profile-start':
        session = new inspector.Session();
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.setSamplingInterval', { interval: 200 });
        await session.post('Profiler.start');
        return {};
      case 'profile-stop': {
        const { profile } = await session!.post('Profiler.stop');
        session!.disconnect();
        session = undefined;
        return { profile };
      }
      case 'stop':
        running?.stop();
        setTimeout(() => process.exit(0), 200);
        return {};
    }
  };
  process.on('message', (msg: { id: number; body: Parameters<typeof handle>[0] }) => {
    handle(msg.body).then(
      (result) => send({ id: msg.id, result }),
      (err: Error) => send({ id: msg.id, error: err.stack ?? String(err) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
  // As the daemons do (src/cli/serve.ts): give memory back once quiet.
  trimMemoryWhenQuiet({
    onTrim: (before, after) =>
      process.stderr.write(`TRIM ${process.pid} ${before >> 20} -> ${after >> 20} MiB\n`),
  });
  send({ ready: true });
}
