// What one proxied connection costs each ztunnel, in process on loopback, without the lab: the real data
// path (conn-role.ts) as client → outbound ztunnel → HBONE → inbound ztunnel → echo server, one process
// each for the two ztunnels and the echo, the clients here. Reports memory per idle connection (RSS,
// heap, external, array buffers, after full collections) at each count, memory after they close (and,
// with --after-wait-s, that long later), heap objects per connection by constructor (heap snapshots),
// and vCPU per 1,000 req/s with the top self-time functions at a fixed request rate. The `tcp` mode is
// the same shape with a plain TCP hop instead of HBONE: what Node's sockets alone cost, the baseline.
// With --throughput-s, single-stream throughput too, each way: one connection carries bytes as fast as the
// chain allows (conn-throughput.ts), MB/s where they land and each ztunnel's vCPU while it runs.
//
// Usage: npx node --expose-gc bench/l4/conn-cost.ts [--counts 1000,10000] [--modes hbone,tcp]
//   [--after-wait-s 0] [--snapshot-conns 1000] [--rate 1000] [--conns 16] [--size 1024] [--cpu-s 10]
//   [--throughput-s 0] [--throughput-profile] [--json out.json] [--v8='<flags for the ztunnel processes>' (default: the ztunnel's, from bin/daemon-settings.json)] [--hold-s 0 (hold the connections open this long at each count, to inspect)]

import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import settings from '../../bin/daemon-settings.json' with { type: 'json' };
import { CertificateAuthority, createRootCa } from '../../src/control/ca/index.ts';
import { createCsr, generateKeyPair, type SpiffeId, workloadId } from '../../src/identity/index.ts';
import { openLoop } from '../open-loop.ts';
import { countHeap, type PerConnection, perConnection } from './conn-heap.ts';
import { type CpuProfile, type SelfTime, topSelfTime } from './conn-profile.ts';
import type { Measure, Mode, Request, RoleSetup } from './conn-role.ts';
import { pump } from './conn-throughput.ts';

const { values: args } = parseArgs({
  options: {
    counts: { type: 'string', default: '1000,10000' },
    modes: { type: 'string', default: 'hbone,tcp' },
    'after-wait-s': { type: 'string', default: '0' },
    'snapshot-conns': { type: 'string', default: '1000' },
    rate: { type: 'string', default: '1000' },
    conns: { type: 'string', default: '16' },
    size: { type: 'string', default: '1024' },
    'cpu-s': { type: 'string', default: '10' },
    'throughput-s': { type: 'string', default: '0' },
    'throughput-profile': { type: 'boolean', default: false },
    json: { type: 'string' },
    'hold-s': { type: 'string', default: '0' },
    // The V8 flags bin/ambit.js gives the ztunnel.
    v8: { type: 'string', default: settings.v8Flags.ztunnel.join(' ') },
  },
});
const counts = args.counts.split(',').filter(Boolean).map(Number);
const modes = args.modes.split(',') as Mode[];
const afterWaitMs = Number(args['after-wait-s']) * 1000;
const snapshotConns = Number(args['snapshot-conns']);
const rate = Number(args.rate);
const loadConns = Number(args.conns);
const size = Number(args.size);
const cpuMs = Number(args['cpu-s']) * 1000;
const holdMs = Number(args['hold-s']) * 1000;
const throughputMs = Number(args['throughput-s']) * 1000;

/** The soft RLIMIT_NOFILE, from procfs (1024 where there is none). */
function fdLimit(): number {
  try {
    const soft = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
    return soft === undefined ? 1024 : soft === 'unlimited' ? 2 ** 20 : Number(soft);
  } catch {
    return 1024;
  }
}

const HOSTS = { outbound: '127.0.0.1', inbound: '127.0.0.2', echo: '127.0.0.3' } as const;
const KiB = 1024;
const ROLE = new URL('./conn-role.ts', import.meta.url).pathname;

class Child {
  private readonly proc: ChildProcess;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  readonly ready: Promise<void>;
  readonly name: string;

  constructor(name: string) {
    this.name = name;
    this.proc = fork(ROLE, [], {
      execArgv: ['--expose-gc', ...args.v8.split(' ').filter(Boolean)],
      // As bin/ambit.js runs the daemons.
      env: {
        ...process.env,
        AMBIT_LOG_LEVEL: process.env.AMBIT_LOG_LEVEL ?? 'warn',
        MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? settings.env.MALLOC_ARENA_MAX,
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.ready = new Promise((resolve, reject) => {
      this.proc.once('exit', (code) => reject(new Error(`${name} exited (${code})`)));
      this.proc.on('message', (msg: { ready?: true; id?: number; result?: unknown; error?: string }) => {
        if (msg.ready) return resolve();
        const p = this.pending.get(msg.id ?? 0);
        this.pending.delete(msg.id ?? 0);
        if (msg.error !== undefined) p?.reject(new Error(`${name}: ${msg.error}`));
        else p?.resolve(msg.result);
      });
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  call<T>(body: Request | { cmd: 'start'; setup: RoleSetup }): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ id, body });
    });
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => this.proc.once('exit', r));
    await this.call({ cmd: 'stop' }).catch(() => {});
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
    this.proc.kill();
  }
}

async function material(ca: CertificateAuthority, id: SpiffeId) {
  const pair = await generateKeyPair();
  const issued = await ca.sign(await createCsr(id, pair.keys));
  return {
    identity: id,
    certChainPem: issued.chain.slice(0, -1).join(''),
    keyPem: pair.privateKeyPem,
    trustBundlePem: ca.bundle.toPem(),
  };
}

/** Opens `n` client connections (256 opening at once), each proven live by a one-byte echo. */
async function openClients(port: number, n: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  let next = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const s = net.connect({ host: HOSTS.outbound, port });
      sockets.push(s);
      s.on('error', () => {}); // a reset after the echo is the proxies' to report, not the client's
      const timer = setTimeout(() => reject(new Error('no echo within 20 s')), 20_000);
      s.once('error', (err) => reject(new Error(`client ${sockets.length} of ${n}: ${err.message}`)));
      s.once('connect', () => s.write('x'));
      s.once('data', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  const worker = async () => {
    while (next < n) {
      next++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: Math.min(256, n) }, worker));
  return sockets;
}

async function closeClients(sockets: net.Socket[], ztunnels: Child[]): Promise<void> {
  for (const s of sockets) s.end();
  await until(ztunnels, 0);
  for (const s of sockets) s.destroy();
}

/** Polls until every ztunnel reports `open` proxied connections. */
async function until(ztunnels: Child[], open: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const now = await Promise.all(ztunnels.map((z) => z.call<number>({ cmd: 'open' })));
    if (now.every((n) => n === open)) return;
    if (Date.now() > deadline) throw new Error(`connections still open: ${now.join(', ')} (want ${open})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Load {
  done: number;
  latencies: number[];
}

/** `rate` requests per second of `size` bytes over `sockets`, open loop, for `ms`; answers counted. */
async function runLoad(sockets: net.Socket[], ms: number): Promise<Load> {
  const load: Load = { done: 0, latencies: [] };
  const body = Buffer.alloc(size, 0x61);
  const lanes = sockets.map((s) => ({ s, due: [] as number[], pending: 0 }));
  for (const lane of lanes) {
    lane.s.removeAllListeners('data');
    lane.s.on('data', (d: Buffer) => {
      lane.pending += d.length;
      while (lane.pending >= size) {
        lane.pending -= size;
        load.done++;
        const due = lane.due.shift();
        if (due !== undefined) load.latencies.push(performance.now() - due);
      }
    });
  }
  const total = Math.round((rate * ms) / 1000);
  openLoop(lanes, total, 1000 / rate, (lane) => lane.s.write(body));
  await new Promise((r) => setTimeout(r, ms + 500));
  return load;
}

interface ModeResult {
  mode: Mode;
  base: Record<string, Measure>;
  byCount: Array<{ n: number; at: Record<string, Measure>; afterClose: Record<string, Measure> }>;
  afterWait?: Record<string, Measure>;
  heap?: Record<string, PerConnection[]>;
  cpu?: { rate: number; p50Ms: number; p99Ms: number; vcpu: Record<string, number> };
  profile?: Record<string, SelfTime[]>;
  throughput?: Partial<Record<Direction, Throughput>>;
}

async function runMode(mode: Mode, ca: CertificateAuthority): Promise<ModeResult> {
  const client = workloadId('cluster.local', 'bench', 'client');
  const server = workloadId('cluster.local', 'bench', 'server');
  const echo = new Child('echo');
  const inbound = new Child('inbound');
  const outbound = new Child('outbound');
  const all = [echo, inbound, outbound];
  const ztunnels = [outbound, inbound];
  try {
    await Promise.all(all.map((c) => c.ready));
    const idleTimeoutMs = 3_600_000; // the ztunnel's default
    const e = await echo.call<{ port: number }>({
      cmd: 'start',
      setup: { role: 'echo', mode, host: HOSTS.echo, idleTimeoutMs },
    });
    const i = await inbound.call<{ port: number }>({
      cmd: 'start',
      setup: {
        role: 'inbound',
        mode,
        host: HOSTS.inbound,
        idleTimeoutMs,
        next: { address: HOSTS.echo, port: e.port },
        material: await material(ca, server),
      },
    });
    const o = await outbound.call<{ port: number }>({
      cmd: 'start',
      setup: {
        role: 'outbound',
        mode,
        host: HOSTS.outbound,
        idleTimeoutMs,
        next: { address: HOSTS.inbound, port: i.port },
        authority: `${HOSTS.echo}:${e.port}`,
        material: await material(ca, client),
        accepted: [server],
      },
    });
    const measure = async () => ({
      outbound: await outbound.call<Measure>({ cmd: 'measure' }),
      inbound: await inbound.call<Measure>({ cmd: 'measure' }),
    });
    // Warm the paths (code compiled, pools and sessions up) before the baseline.
    await closeClients(await openClients(o.port, 64), ztunnels);
    const result: ModeResult = { mode, base: await measure(), byCount: [] };
    for (const wanted of counts) {
      // A plain TCP hop holds two descriptors per connection in each ztunnel (HBONE: one, plus its
      // sessions); stay under the descriptor limit, which the children share with this process.
      const n = mode === 'tcp' ? Math.min(wanted, Math.floor((fdLimit() - 1000) / 2)) : wanted;
      const sockets = await openClients(o.port, n);
      await until(ztunnels, n);
      const at = await measure();
      if (holdMs > 0) {
        log(
          `${mode}: holding ${n} connections ${holdMs / 1000} s (pids ${ztunnels.map((z) => `${z.name} ${z.pid}`).join(', ')})`,
        );
        await new Promise((r) => setTimeout(r, holdMs));
      }
      await closeClients(sockets, ztunnels);
      result.byCount.push({ n, at, afterClose: await measure() });
      log(`${mode}: ${n} connections measured`);
    }
    if (afterWaitMs > 0) {
      await new Promise((r) => setTimeout(r, afterWaitMs));
      result.afterWait = await measure();
    }
    if (snapshotConns > 0) result.heap = await heapPerConnection(o.port, ztunnels);
    if (cpuMs > 0) {
      const cpu = await cpuPhase(o.port, ztunnels);
      result.cpu = cpu.cpu;
      result.profile = cpu.profile;
    }
    if (throughputMs > 0) result.throughput = await throughputPhase(o.port, ztunnels, echo);
    return result;
  } finally {
    await Promise.all(all.map((c) => c.stop()));
  }
}

async function heapPerConnection(port: number, ztunnels: Child[]): Promise<Record<string, PerConnection[]>> {
  const dir = mkdtempSync(join(tmpdir(), 'conn-cost-'));
  try {
    const snap = (z: Child, tag: string) =>
      z.call<{ file: string }>({ cmd: 'snapshot', file: join(dir, `${z.name}-${tag}.heapsnapshot`) });
    const before = await Promise.all(ztunnels.map((z) => snap(z, 'before')));
    const sockets = await openClients(port, snapshotConns);
    await until(ztunnels, snapshotConns);
    const after = await Promise.all(ztunnels.map((z) => snap(z, 'after')));
    await closeClients(sockets, ztunnels);
    const out: Record<string, PerConnection[]> = {};
    ztunnels.forEach((z, k) => {
      out[z.name] = perConnection(countHeap(before[k]!.file), countHeap(after[k]!.file), snapshotConns);
    });
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function cpuPhase(port: number, ztunnels: Child[]) {
  const sockets = await openClients(port, loadConns);
  try {
    await runLoad(sockets, 2000); // warm
    await Promise.all(ztunnels.map((z) => z.call({ cmd: 'cpu' })));
    const load = await runLoad(sockets, cpuMs);
    const used = await Promise.all(ztunnels.map((z) => z.call<{ vcpu: number }>({ cmd: 'cpu' })));
    const achieved = load.done / (cpuMs / 1000);
    const sorted = load.latencies.sort((a, b) => a - b);
    const at = (q: number) =>
      sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
    const vcpu: Record<string, number> = {};
    ztunnels.forEach((z, k) => {
      vcpu[z.name] = used[k]!.vcpu / (achieved / 1000);
    });
    await Promise.all(ztunnels.map((z) => z.call({ cmd: 'profile-start' })));
    await runLoad(sockets, cpuMs);
    const profiles = await Promise.all(
      ztunnels.map((z) => z.call<{ profile: CpuProfile }>({ cmd: 'profile-stop' })),
    );
    const profile: Record<string, SelfTime[]> = {};
    ztunnels.forEach((z, k) => {
      profile[z.name] = topSelfTime(profiles[k]!.profile);
    });
    return { cpu: { rate: achieved, p50Ms: at(0.5), p99Ms: at(0.99), vcpu }, profile };
  } finally {
    await closeClients(sockets, ztunnels);
  }
}

type Direction = 'up' | 'down';

interface Throughput {
  mbPerS: number;
  vcpu: Record<string, number>;
  profile?: Record<string, SelfTime[]>;
}

/**
 * One stream at full speed each way for `throughputMs` after a second's warm-up: MB/s counted where the
 * bytes land (the echo's sink uploading, the client downloading) over the window, each ztunnel's vCPU over
 * the same window, and (--throughput-profile) their profiles.
 */
async function throughputPhase(port: number, ztunnels: Child[], echo: Child) {
  const out: Partial<Record<Direction, Throughput>> = {};
  for (const direction of ['up', 'down'] as const) {
    out[direction] = await oneStream(port, ztunnels, echo, direction);
  }
  return out;
}

async function oneStream(port: number, ztunnels: Child[], echo: Child, direction: Direction) {
  const stream = await pump(HOSTS.outbound, port, direction);
  const landed = () =>
    direction === 'up' ? echo.call<number>({ cmd: 'sunk' }) : Promise.resolve(stream.bytes);
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const from = await landed();
    const started = performance.now();
    await Promise.all(ztunnels.map((z) => z.call({ cmd: 'cpu' })));
    await new Promise((r) => setTimeout(r, throughputMs));
    const used = await Promise.all(ztunnels.map((z) => z.call<{ vcpu: number }>({ cmd: 'cpu' })));
    const to = await landed();
    const mbPerS = (to - from) / 1e6 / ((performance.now() - started) / 1000);
    const vcpu: Record<string, number> = {};
    ztunnels.forEach((z, k) => {
      vcpu[z.name] = used[k]!.vcpu;
    });
    if (!args['throughput-profile']) return { mbPerS, vcpu };
    await Promise.all(ztunnels.map((z) => z.call({ cmd: 'profile-start' })));
    await new Promise((r) => setTimeout(r, throughputMs));
    const profiles = await Promise.all(
      ztunnels.map((z) => z.call<{ profile: CpuProfile }>({ cmd: 'profile-stop' })),
    );
    const profile: Record<string, SelfTime[]> = {};
    ztunnels.forEach((z, k) => {
      profile[z.name] = topSelfTime(profiles[k]!.profile);
    });
    return { mbPerS, vcpu, profile };
  } finally {
    stream.stop();
    await until(ztunnels, 0);
  }
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

const kib = (bytes: number) => (bytes / KiB).toFixed(2);
const mib = (bytes: number) => (bytes / KiB / KiB).toFixed(1);

function report(r: ModeResult): void {
  console.log(`\n## ${r.mode}\n`);
  for (const z of ['outbound', 'inbound'] as const) {
    const b = r.base[z]!;
    console.log(
      `${z}: base RSS ${mib(b.rss)} MiB (malloc ${mib(b.mallocRss)}, anonymous ${mib(b.anonRss)}), heapUsed ${mib(b.heapUsed)} MiB, heapTotal ${mib(b.heapTotal)} MiB, external ${mib(b.external)} MiB, arrayBuffers ${mib(b.arrayBuffers)} MiB`,
    );
    for (const { n, at, afterClose } of r.byCount) {
      const a = at[z]!;
      const c = afterClose[z]!;
      const per = (k: keyof Measure) => kib((a[k] - b[k]) / n);
      console.log(
        `  ${n} idle, per connection (KiB): RSS ${per('rss')} = malloc ${per('mallocRss')} + anonymous ${per('anonRss')} + other; heapUsed ${per('heapUsed')}, heapTotal ${per('heapTotal')}, external ${per('external')}, arrayBuffers ${per('arrayBuffers')}  (RSS ${mib(a.rss)} MiB)`,
      );
      console.log(
        `    after close: RSS ${mib(c.rss)} MiB (${(c.rss / b.rss).toFixed(2)}× base; malloc ${mib(c.mallocRss)} (C heap live ${mib(c.mallocInUse)}, free but held ${mib(c.mallocFree)}), anonymous ${mib(c.anonRss)}), heapUsed ${mib(c.heapUsed)} MiB, heapTotal ${mib(c.heapTotal)} MiB`,
      );
    }
    const w = r.afterWait?.[z];
    if (w)
      console.log(
        `  after ${afterWaitMs / 1000} s: RSS ${mib(w.rss)} MiB (${(w.rss / b.rss).toFixed(2)}× base)`,
      );
  }
  if (r.heap) {
    for (const [z, rows] of Object.entries(r.heap)) {
      const total = rows.reduce((s, x) => s + x.bytesPerConn, 0);
      console.log(`\n${z}: heap objects per connection (top ${rows.length}, ${total.toFixed(0)} B shown)`);
      for (const x of rows)
        console.log(
          `  ${x.bytesPerConn.toFixed(0).padStart(6)} B  ${x.perConn.toFixed(2).padStart(6)} × ${x.what}`,
        );
    }
  }
  if (r.cpu) {
    console.log(
      `\nload: ${r.cpu.rate.toFixed(0)} req/s of ${size} B over ${loadConns} connections, p50 ${r.cpu.p50Ms.toFixed(3)} ms, p99 ${r.cpu.p99Ms.toFixed(3)} ms`,
    );
    for (const [z, v] of Object.entries(r.cpu.vcpu))
      console.log(`  ${z}: ${v.toFixed(3)} vCPU per 1,000 req/s`);
  }
  for (const [z, rows] of Object.entries(r.profile ?? {})) {
    console.log(`\n${z}: top self time`);
    for (const x of rows) console.log(`  ${(x.share * 100).toFixed(1).padStart(5)}%  ${x.fn}`);
  }
  for (const [direction, t] of Object.entries(r.throughput ?? {})) {
    console.log(`\nsingle stream ${direction}: ${t.mbPerS.toFixed(1)} MB/s over ${throughputMs / 1000} s`);
    for (const [z, v] of Object.entries(t.vcpu))
      console.log(`  ${z}: ${v.toFixed(3)} vCPU, ${((v / t.mbPerS) * 1000).toFixed(2)} vCPU-ms per MB`);
    for (const [z, rows] of Object.entries(t.profile ?? {})) {
      console.log(`\n${z}: top self time at full speed ${direction}`);
      for (const x of rows) console.log(`  ${(x.share * 100).toFixed(1).padStart(5)}%  ${x.fn}`);
    }
  }
}

if (!(globalThis as { gc?: unknown }).gc)
  log('note: run with --expose-gc for the parent too (children always have it)');
const ca = await CertificateAuthority.create({
  material: await createRootCa({ trustDomain: 'cluster.local' }),
  policy: { trustDomain: 'cluster.local', minTtlSeconds: 1 },
});
const results: ModeResult[] = [];
for (const mode of modes) {
  const r = await runMode(mode, ca);
  results.push(r);
  report(r);
}
if (args.json) {
  writeFileSync(args.json, JSON.stringify(results, null, 2));
}
process.exit(0);
