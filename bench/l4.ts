// L4 benchmark (lab, root): direct TCP vs two ztunnels (HBONE mTLS) vs an HAProxy mTLS pair on the
// same path, cross-node and same-node: single-stream throughput, latency at a fixed request rate
// (open loop), proxy CPU per 1,000 requests, ztunnel memory per idle proxied connection, ztunnel memory
// under a 5,000-connection flood from one pod and after it, real clients (redis-benchmark SET/GET,
// pgbench select-only) cross-node, ztunnel memory fresh, before the load and a settling time after it,
// and the cost of the per-connection checks (connection caps, window budget) measured in-process.
// Run with `node bench/run.ts l4` (AMBIT_BENCH_L4_RAW=<file> also writes the raw figures as JSON;
// AMBIT_BENCH_L4_PHASES=throughput,latency,idle,flood,redis,pgbench runs only those load phases;
// AMBIT_BENCH_L4_SETTLE_S=<s> waits that long after the load instead of 60 s;
// AMBIT_BENCH_L4_WORKER_THREADS=<n> runs the ztunnels with `--worker-threads n`);
// docs/benchmarks.md explains the method and records figures.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { meshDown, meshUp } from '../src/cli/up.ts';
import { WindowBudget } from '../src/hbone/index.ts';
import { type Lab, nodeAddress, nodeGateway, waitUntil } from '../src/lab/index.ts';
import type { MemoryReport } from '../src/proxy/index.ts';
import { Admission, workerThreadsOption } from '../src/ztunnel/index.ts';
import { type BenchResult, loadAverageRows, round } from './harness.ts';
import { type HaproxyRoute, haproxyConfig } from './l4/haproxy.ts';
import { PATHS, type PathName } from './l4/paths.ts';
import { POSTGRES_PORT } from './l4/postgres.ts';
import { cpuSeconds, rssKiB } from './l4/proc.ts';
import {
  type PgbenchFigures,
  pgbenchPhase,
  pgbenchRows,
  type RealEndpoint,
  type RedisFigures,
  redisPhase,
  redisRows,
  type ServerPod,
} from './l4/real-clients.ts';
import { REDIS_PORT } from './redis.ts';

const execFileP = promisify(execFile);
const HERE = dirname(fileURLToPath(import.meta.url));
const AMBIT = resolve(HERE, '../bin/ambit.js');
const SCRIPT = {
  stream: join(HERE, 'l4/stream.ts'),
  load: join(HERE, 'l4/echo-load.ts'),
  hold: join(HERE, 'l4/hold.ts'),
};

const STREAM_MAX_BYTES = 1024 ** 3;
/** Stop a stream early after this long: 1 GiB through a slow path would blow the time budget. */
const STREAM_MAX_MS = 4_000;
/**
 * Every measurement runs in ROUNDS rounds, each round visiting every path in turn, so that load from
 * anything else on the host lands on all paths alike rather than on whichever ran at the wrong moment.
 */
const ROUNDS = 2;
const RATE = 1_000;
const CONNS = 16;
const MESSAGE = 1024;
/** Per round: WARMUP_MS unrecorded, then RUN_MS recorded; ROUNDS × RUN_MS = 10 s recorded per path. */
const WARMUP_MS = 1_000;
const RUN_MS = 5_000;
const IDLE_CONNS = 8_000;
/**
 * The idle connections come from this many pods: one pod alone may hold only its share, an eighth of
 * what its ztunnel may hold (1,122 when, as in containers without CAP_SYS_RESOURCE, the ztunnel cannot
 * be raised above a 20,000 open-file limit; 3,968 at 65,536), and the whole must fit too (8,976 at 20,000).
 */
const IDLE_CLIENTS = 8;
const FLOOD_CONNS = 5_000;
/**
 * The fresh idle reading waits this long after the ztunnels report ready: their first configuration
 * and start-up garbage land in the first seconds, and a reading taken at once would catch them mid-way.
 */
const FRESH_WAIT_MS = 5_000;
/** After the last load phase, wait this long and read each ztunnel's RSS again (the issue's bar: 60 s). */
const SETTLE_S = 60;

/** The load phases, in the order they run; AMBIT_BENCH_L4_PHASES picks some for a quick run. */
const ALL_PHASES = ['throughput', 'latency', 'idle', 'flood', 'redis', 'pgbench'] as const;
type Phase = (typeof ALL_PHASES)[number];

/** What the environment asks of this run: the load phases and the settling time, checked up front. */
export function runOptions(env: NodeJS.ProcessEnv): {
  phases: Set<Phase>;
  settleS: number;
  workerThreads: number;
} {
  const asked = env.AMBIT_BENCH_L4_PHASES?.split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const unknown = asked?.filter((p) => !(ALL_PHASES as readonly string[]).includes(p)) ?? [];
  if (unknown.length > 0) {
    throw new Error(
      `AMBIT_BENCH_L4_PHASES: unknown phase ${unknown.join(', ')}; known: ${ALL_PHASES.join(', ')}`,
    );
  }
  const settleS = Number(env.AMBIT_BENCH_L4_SETTLE_S ?? SETTLE_S);
  if (!Number.isFinite(settleS) || settleS < 0) {
    throw new Error(
      `AMBIT_BENCH_L4_SETTLE_S must be a number of seconds ≥ 0, not "${env.AMBIT_BENCH_L4_SETTLE_S}"`,
    );
  }
  const workerThreads = workerThreadsOption(
    env.AMBIT_BENCH_L4_WORKER_THREADS ?? 1,
    'AMBIT_BENCH_L4_WORKER_THREADS',
  );
  // Unset or empty: every phase.
  return { phases: new Set(asked?.length ? (asked as Phase[]) : ALL_PHASES), settleS, workerThreads };
}

const ECHO_PORT = 9000;
const SINK_PORT = 9001;
const AMBIENT_NS = 'bench';
const PLAIN_NS = 'bench-plain';

const PLACEMENTS = ['cross-node', 'same-node'] as const;
type Placement = (typeof PLACEMENTS)[number];

/** Where one path's client runs and what it dials for the echo and the sink. */
interface Endpoint {
  client: string;
  host: string;
  echoPort: number;
  sinkPort: number;
}

/** What echo-load.ts prints for one run. */
interface LoadRun {
  requests: number;
  completed: number;
  seconds: number;
  latencies: number[];
  sendLate: number[];
}

/** The runs of one path pooled: percentiles over every recorded request, totals over every run. */
interface Latency {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** p99 of (actual send − scheduled send): the generator's own lateness plus queueing behind a slow reply. */
  sendLateP99: number;
  recorded: number;
  requests: number;
  completed: number;
  seconds: number;
}

/** One figure per node (CPU seconds, KiB, a count), keyed by node name. */
type ByNode = Record<string, number>;

/** Each ztunnel's VmRSS (KiB) at one moment, and how many pod addresses its node had enrolled then. */
interface MemorySnapshot {
  rss: ByNode;
  /** Entries in the node's nftables set of enrolled pod addresses; -1 when it could not be read. */
  enrolled: ByNode;
}

/** MB/s per path, best of the rounds, and every round's figure. */
interface ThroughputFigures {
  throughput: Record<Placement, Record<PathName, number>>;
  throughputRuns: Record<Placement, Record<PathName, number[]>>;
}

interface LatencyFigures {
  latency: Record<Placement, Record<PathName, Latency>>;
  /** Proxy CPU per latency run: the ztunnels for the ztunnel path, the haproxies for the haproxy path. */
  cpu: Record<Placement, { ztunnel: ByNode; haproxy: ByNode }>;
}

/** A phase left out by AMBIT_BENCH_L4_PHASES leaves its figures out. */
interface Figures extends Partial<ThroughputFigures>, Partial<LatencyFigures> {
  /** The load phases this run made. */
  phases: Phase[];
  memory: {
    /** FRESH_WAIT_MS after the mesh was up and ready: no pods yet, no traffic. */
    fresh: MemorySnapshot;
    /** After the setup: pods enrolled, servers up, each path probed once; before any measured load. */
    beforeLoad: MemorySnapshot;
    /** Right after the last load phase ended (its connections closed), and `settleS` later. */
    loadEnded: ByNode;
    settled: ByNode;
    /** Where each ztunnel's memory is at `settled`, from its admin `/memory`. */
    settledParts: Record<string, MemoryReport | undefined>;
    settleS: number;
  };
  redis?: RedisFigures;
  pgbench?: PgbenchFigures;
  /** Lines each ztunnel logged at error level or worse (pino level ≥ 50) during the whole benchmark. */
  ztunnelErrors: ByNode;
  /** The host's 1-minute load average when measuring started and ended (other work skews figures). */
  load: { start: number; end: number };
  rss?: {
    /** VmRSS in KiB, idle, with the connections held, and after they closed. */
    idle: ByNode;
    loaded: ByNode;
    afterClose: ByNode;
    /** Connections each ztunnel still tracked (admin /connections) up to 20 s after the client closed. */
    leftAfterClose: ByNode;
    open: number;
    echoed: number;
    failed: number;
    error?: string;
  };
  /** VmRSS in KiB before, during and after FLOOD_CONNS connections held from one pod, and what it got. */
  flood?: {
    before: ByNode;
    during: ByNode;
    after: ByNode;
    leftAfterClose: ByNode;
    open: number;
    echoed: number;
    failed: number;
    firstError?: string;
    /** Refused by node-1's ztunnel over the per-source cap (response_flags="UO"). */
    refused: number;
  };
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function eventually<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  return waitUntil(what, timeoutMs, probe, 200);
}

/** Runs one of the bench/l4 scripts in a pod and parses the JSON it prints last. */
async function script<T>(
  lab: Lab,
  pod: string,
  file: string,
  args: Array<string | number>,
  timeoutMs: number,
) {
  const r = await lab.exec(pod, [process.execPath, file, ...args.map(String)], { timeoutMs });
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.code !== 0 || !last.startsWith('{')) {
    throw new Error(
      `${file} ${args.join(' ')} in pod ${pod} exited ${r.code}: ${r.stderr.trim() || r.stdout}`,
    );
  }
  return JSON.parse(last) as T;
}

const ns = (name: string, ambient: boolean) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels: ambient ? { 'istio.io/dataplane-mode': 'ambient' } : {} },
});

/** Root CA plus one certificate per side, issued with the CLI; returns haproxy's crt files and ca-file. */
async function issueCertificates(dir: string) {
  const root = join(dir, 'root');
  await execFileP(process.execPath, [AMBIT, 'ca', 'create-root', '--out', root]);
  const crt: Record<string, string> = {};
  for (const sa of ['a', 'b']) {
    const out = join(dir, sa);
    await execFileP(process.execPath, [
      AMBIT,
      'ca',
      'issue',
      '--ca',
      root,
      '--id',
      `spiffe://cluster.local/ns/bench/sa/${sa}`,
      '--out',
      out,
    ]);
    crt[sa] = join(dir, `${sa}.pem`);
    const [cert, key] = await Promise.all([
      readFile(join(out, 'cert.pem'), 'utf8'),
      readFile(join(out, 'key.pem'), 'utf8'),
    ]);
    await writeFile(crt[sa], cert + key, { mode: 0o600 });
  }
  return { client: crt.a!, server: crt.b!, caFile: join(root, 'cert.pem') };
}

/** Pods, namespaces, servers and the HAProxy pair; returns each path's endpoint once all of them answer. */
async function setUp(lab: Lab, admin: { call: (m: string, p: string, b?: unknown) => Promise<unknown> }) {
  const pod = (name: string, node: string, namespace: string, serviceAccount: string) =>
    lab.addPod({ name, node, namespace, serviceAccount, labels: { app: name } });
  const meshClient = await pod('mesh-client', 'node-1', AMBIENT_NS, 'a');
  for (let i = 2; i <= IDLE_CLIENTS; i++) await pod(`mesh-client-${i}`, 'node-1', AMBIENT_NS, 'a');
  const meshFar = await pod('mesh-far', 'node-2', AMBIENT_NS, 'b');
  const meshNear = await pod('mesh-near', 'node-1', AMBIENT_NS, 'b');
  await pod('plain-client', 'node-1', PLAIN_NS, 'a');
  const plainFar = await pod('plain-far', 'node-2', PLAIN_NS, 'b');
  const plainNear = await pod('plain-near', 'node-1', PLAIN_NS, 'b');
  await admin.call('POST', '/ambit/v1/apply', { objects: [ns(AMBIENT_NS, true), ns(PLAIN_NS, false)] });
  for (const server of ['mesh-far', 'mesh-near', 'plain-far', 'plain-near']) {
    await lab.run(server, ['ambit', 'sample', 'tcp-echo', '--port', String(ECHO_PORT)]);
    await lab.run(server, ['ambit', 'sample', 'sink', '--port', String(SINK_PORT)]);
  }

  const tls = await issueCertificates(join(lab.home, 'bench-ca'));
  const route = (
    name: string,
    base: number,
    tlsNode: number,
    target: string,
    port: number,
  ): HaproxyRoute => ({
    name,
    plainPort: 21000 + base,
    tlsAddress: nodeAddress(tlsNode),
    tlsPort: 22000 + base,
    target: `${target}:${port}`,
  });
  const far = [
    route('far_echo', 0, 2, plainFar.address, ECHO_PORT),
    route('far_sink', 1, 2, plainFar.address, SINK_PORT),
    // The real clients' servers, cross-node only; started by their phases.
    route('far_redis', 2, 2, plainFar.address, REDIS_PORT),
    route('far_postgres', 3, 2, plainFar.address, POSTGRES_PORT),
  ];
  const near = [
    route('near_echo', 100, 1, plainNear.address, ECHO_PORT),
    route('near_sink', 101, 1, plainNear.address, SINK_PORT),
  ];
  const certs = { clientCrt: tls.client, serverCrt: tls.server, caFile: tls.caFile };
  // Same node: node-1's haproxy holds both ends, as one ztunnel does.
  const configs = {
    'node-1': haproxyConfig(certs, [...far, ...near], near),
    'node-2': haproxyConfig(certs, [], far),
  };
  for (const [node, text] of Object.entries(configs)) {
    const cfg = join(lab.home, `haproxy-${node}.cfg`);
    await writeFile(cfg, text);
    const check = await lab.exec(node, ['haproxy', '-c', '-f', cfg]);
    if (check.code !== 0) throw new Error(`haproxy rejects ${cfg}: ${check.stderr || check.stdout}`);
    await lab.run(node, ['haproxy', '-f', cfg, '-db']);
  }

  const gateway = nodeGateway(1);
  const endpoints: Record<Placement, Record<PathName, Endpoint>> = {
    'cross-node': {
      direct: { client: 'plain-client', host: plainFar.address, echoPort: ECHO_PORT, sinkPort: SINK_PORT },
      ztunnel: { client: 'mesh-client', host: meshFar.address, echoPort: ECHO_PORT, sinkPort: SINK_PORT },
      haproxy: { client: 'plain-client', host: gateway, echoPort: 21000, sinkPort: 21001 },
    },
    'same-node': {
      direct: { client: 'plain-client', host: plainNear.address, echoPort: ECHO_PORT, sinkPort: SINK_PORT },
      ztunnel: { client: 'mesh-client', host: meshNear.address, echoPort: ECHO_PORT, sinkPort: SINK_PORT },
      haproxy: { client: 'plain-client', host: gateway, echoPort: 21100, sinkPort: 21101 },
    },
  };

  // Enrolled on both nodes, then every path answers on both ports.
  for (const [node, addresses] of [
    ['node-1', [meshClient.address, meshNear.address, ...(await extraClientAddresses(lab))]],
    ['node-2', [meshFar.address]],
  ] as const) {
    await eventually(`${addresses.join(', ')} to be enrolled on ${node}`, 30_000, async () => {
      const r = await lab.exec(node, ['nft', 'list', 'set', 'ip', 'ambit', 'enrolled']);
      return addresses.every((a) => r.stdout.includes(a)) ? true : undefined;
    });
  }
  for (const placement of PLACEMENTS) {
    for (const path of PATHS) {
      const e = endpoints[placement][path];
      await eventually(`the ${placement} ${path} echo`, 30_000, async () => {
        const r = await script<{ echoed: number }>(
          lab,
          e.client,
          SCRIPT.hold,
          [e.host, e.echoPort, 1, 1, 0],
          15_000,
        );
        return r.echoed === 1 ? true : undefined;
      });
      await eventually(`the ${placement} ${path} sink`, 30_000, async () => {
        const r = await script<{ received: number }>(
          lab,
          e.client,
          SCRIPT.stream,
          [e.host, e.sinkPort, 1, 1000],
          15_000,
        );
        return r.received === 1 ? true : undefined;
      });
    }
  }
  const real = (port: number, haproxyPort: number): Record<PathName, RealEndpoint> => ({
    direct: { client: 'plain-client', host: plainFar.address, port },
    ztunnel: { client: 'mesh-client', host: meshFar.address, port },
    haproxy: { client: 'plain-client', host: gateway, port: haproxyPort },
  });
  return {
    endpoints,
    redis: real(REDIS_PORT, 21002),
    postgres: real(POSTGRES_PORT, 21003),
    servers: [
      { pod: 'plain-far', address: plainFar.address },
      { pod: 'mesh-far', address: meshFar.address },
    ] as ServerPod[],
  };
}

type Setup = Awaited<ReturnType<typeof setUp>>;

/** The pid of each node's running process whose command `is`, from the lab's records. */
async function nodePids(
  lab: Lab,
  what: string,
  is: (command: string[]) => boolean,
): Promise<Record<string, number>> {
  const pids: Record<string, number> = {};
  for (const node of (await lab.status())?.nodes ?? []) {
    for (const p of node.processes) if (p.running && is(p.command)) pids[node.name] = p.pid;
  }
  for (const node of ['node-1', 'node-2']) {
    if (!pids[node]) throw new Error(`no running ${what} recorded on ${node}`);
  }
  return pids;
}

const ztunnelPids = (lab: Lab) => nodePids(lab, 'ztunnel', (c) => c[0] === 'ambit' && c[1] === 'ztunnel');

/** The pid of each node's `ambit ztunnel` and `haproxy`, from the lab's records. */
async function proxyPids(
  lab: Lab,
): Promise<{ ztunnel: Record<string, number>; haproxy: Record<string, number> }> {
  return {
    ztunnel: await ztunnelPids(lab),
    haproxy: await nodePids(lab, 'haproxy', (c) => c[0] === 'haproxy'),
  };
}

/** How many pod addresses node's ztunnel has enrolled (its nftables set), -1 when the set cannot be read. */
async function enrolledCount(lab: Lab, node: string): Promise<number> {
  const r = await lab.exec(node, ['nft', 'list', 'set', 'ip', 'ambit', 'enrolled']);
  if (r.code !== 0) return -1;
  const elements = /elements = \{([^}]*)\}/.exec(r.stdout)?.[1] ?? '';
  return elements.split(',').filter((e) => e.trim() !== '').length;
}

async function memoryNow(lab: Lab, pids: Record<string, number>): Promise<MemorySnapshot> {
  const enrolled: ByNode = {};
  for (const node of Object.keys(pids)) enrolled[node] = await enrolledCount(lab, node);
  return { rss: await rssOf(pids), enrolled };
}

async function cpuOf(pids: Record<string, number>): Promise<ByNode> {
  const out: ByNode = {};
  for (const [node, pid] of Object.entries(pids)) out[node] = await cpuSeconds(pid);
  return out;
}

async function rssOf(pids: Record<string, number>): Promise<ByNode> {
  const out: ByNode = {};
  for (const [node, pid] of Object.entries(pids)) out[node] = await rssKiB(pid);
  return out;
}

const minus = (a: ByNode, b: ByNode): ByNode =>
  Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - (b[k] ?? 0)]));

/** The addresses of the extra idle-connection clients (mesh-client-2 …), from the lab's records. */
async function extraClientAddresses(lab: Lab): Promise<string[]> {
  const names = new Set(Array.from({ length: IDLE_CLIENTS - 1 }, (_, i) => `mesh-client-${i + 2}`));
  return ((await lab.status())?.pods ?? []).filter((p) => names.has(p.name)).map((p) => p.address);
}

interface Held {
  open: number;
  echoed: number;
  failed: number;
  firstError?: string;
}

/**
 * Starts hold.ts in each of `pods` (COUNT connections each to host's echo, 200 opening at a time), waits
 * until every holder has printed what it holds, calls `whileHeld`, then stops the holders.
 */
async function holding<T>(
  lab: Lab,
  pods: string[],
  host: string,
  count: number,
  whileHeld: (held: Held) => Promise<T>,
): Promise<{ held: Held; result: T }> {
  const holders = [];
  for (const pod of pods) {
    holders.push(
      await lab.run(pod, [
        process.execPath,
        SCRIPT.hold,
        host,
        String(ECHO_PORT),
        String(count),
        '200',
        '120000',
      ]),
    );
  }
  try {
    const each = await Promise.all(
      holders.map((h) =>
        eventually(`the connections from ${h.command.join(' ')} to open`, 120_000, async () => {
          const text = await readFile(h.log, 'utf8');
          const line = text.split('\n').find((l) => l.startsWith('{"open"'));
          return line ? (JSON.parse(line) as Held) : undefined;
        }),
      ),
    );
    const held: Held = {
      open: each.reduce((n, h) => n + h.open, 0),
      echoed: each.reduce((n, h) => n + h.echoed, 0),
      failed: each.reduce((n, h) => n + h.failed, 0),
      firstError: each.find((h) => h.firstError)?.firstError,
    };
    // Let the proxies finish their per-connection work (access log, metrics) before reading.
    await new Promise((r) => setTimeout(r, 2_000));
    return { held, result: await whileHeld(held) };
  } finally {
    for (const h of holders) {
      try {
        process.kill(h.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }
}

/** Waits up to 20 s for each ztunnel to track no connection; what is left per node (-1: no answer). */
async function leftAfterClose(lab: Lab, pids: Record<string, number>): Promise<ByNode> {
  const left: ByNode = {};
  for (const node of Object.keys(pids)) {
    left[node] = await trackedConnections(lab, node);
    const deadline = Date.now() + 20_000;
    while (left[node]! > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      left[node] = await trackedConnections(lab, node);
    }
  }
  return left;
}

/**
 * IDLE_CONNS idle connections through the ztunnels (IDLE_CLIENTS pods on node-1 → mesh-far's echo), held
 * while RSS is read.
 */
async function idleConnections(
  lab: Lab,
  host: string,
  pids: Record<string, number>,
): Promise<Figures['rss']> {
  const idle = await rssOf(pids);
  const pods = ['mesh-client', ...Array.from({ length: IDLE_CLIENTS - 1 }, (_, i) => `mesh-client-${i + 2}`)];
  const { held, result: loaded } = await holding(lab, pods, host, IDLE_CONNS / IDLE_CLIENTS, () =>
    rssOf(pids),
  );
  const left = await leftAfterClose(lab, pids);
  return {
    idle,
    loaded,
    afterClose: await rssOf(pids),
    leftAfterClose: left,
    open: held.open,
    echoed: held.echoed,
    failed: held.failed,
    error: held.firstError,
  };
}

/** FLOOD_CONNS connections held from one pod (mesh-client): RSS before, during and after, and the refusals. */
async function floodFromOnePod(
  lab: Lab,
  host: string,
  pids: Record<string, number>,
): Promise<Figures['flood']> {
  const before = await rssOf(pids);
  const refusedBefore = await overflowCount(lab, 'node-1');
  const { held, result: during } = await holding(lab, ['mesh-client'], host, FLOOD_CONNS, () => rssOf(pids));
  const refused = (await overflowCount(lab, 'node-1')) - refusedBefore;
  const left = await leftAfterClose(lab, pids);
  return { before, during, after: await rssOf(pids), leftAfterClose: left, ...held, refused };
}

/** Connections node's ztunnel refused over a cap so far (response_flags="UO", its own metrics). */
async function overflowCount(lab: Lab, node: string): Promise<number> {
  const r = await lab.exec(node, ['curl', '-sf', '--max-time', '5', 'http://127.0.0.1:15020/metrics']);
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('istio_tcp_connections_opened_total{') && l.includes('response_flags="UO"'))
    .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
}

/** GET path from the node's ztunnel admin socket, as JSON; undefined when it does not answer. */
async function ztunnelAdmin<T>(lab: Lab, node: string, path: string): Promise<T | undefined> {
  const socket = join(lab.home, 'nodes', node, 'admin.sock');
  const r = await lab.exec(node, [
    'curl',
    '-sf',
    '--max-time',
    '5',
    '--unix-socket',
    socket,
    `http://ztunnel${path}`,
  ]);
  return r.code === 0 ? (JSON.parse(r.stdout) as T) : undefined;
}

/** How many connections the node's ztunnel tracks (admin `/connections`), -1 when it cannot say. */
async function trackedConnections(lab: Lab, node: string): Promise<number> {
  const view = await ztunnelAdmin<{ connections: unknown[] }>(lab, node, '/connections');
  return view === undefined ? -1 : view.connections.length;
}

/** Where the node's ztunnel's memory is (admin `/memory`), undefined when it cannot say. */
function memoryParts(lab: Lab, node: string): Promise<MemoryReport | undefined> {
  return ztunnelAdmin<MemoryReport>(lab, node, '/memory');
}

/**
 * What the per-connection checks cost, in-process: a connection slot taken and given back (outbound and
 * inbound each do one), and a stream counted in and out of the window budget (each HBONE stream does).
 */
export function checkCosts(): { slotNs: number; windowNs: number } {
  const N = 1_000_000;
  const slots = new Admission(1_000_000, 100_000);
  const keys = Array.from({ length: 64 }, (_, i) => `Kubernetes/Pod/bench/client-${i}`);
  const time = (f: (i: number) => void) => {
    for (let i = 0; i < N / 10; i++) f(i); // warm up
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) f(i);
    return Number(process.hrtime.bigint() - t0) / N;
  };
  const slotNs = time((i) => {
    const key = keys[i & 63]!;
    if (slots.tryAcquire(key)) slots.releaser(key)();
  });
  const budget = new WindowBudget();
  const session = {
    destroyed: false,
    pendingSettingsAck: false,
    settings: () => {},
    once: () => session,
  };
  budget.track(session);
  for (let i = 0; i < 10; i++) budget.opened(session); // a session with a few streams open
  const windowNs = time(() => {
    budget.opened(session);
    budget.closed(session);
  });
  return { slotNs, windowNs };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

export function pool(runs: LoadRun[]): Latency {
  const all = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const late = runs.flatMap((r) => r.sendLate).sort((a, b) => a - b);
  const sum = (f: (r: LoadRun) => number) => runs.reduce((n, r) => n + f(r), 0);
  return {
    p50: percentile(all, 50),
    p90: percentile(all, 90),
    p99: percentile(all, 99),
    max: all.at(-1) ?? Number.NaN,
    sendLateP99: percentile(late, 99),
    recorded: all.length,
    requests: sum((r) => r.requests),
    completed: sum((r) => r.completed),
    seconds: sum((r) => r.seconds),
  };
}

function table<T>(make: () => T): Record<Placement, Record<PathName, T>> {
  const row = () => ({ direct: make(), ztunnel: make(), haproxy: make() });
  return { 'cross-node': row(), 'same-node': row() };
}

/** Single-stream throughput on every path, ROUNDS interleaved rounds. */
async function throughputPhase(
  lab: Lab,
  endpoints: Record<Placement, Record<PathName, Endpoint>>,
): Promise<ThroughputFigures> {
  const throughputRuns = table<number[]>(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const placement of PLACEMENTS) {
      for (const path of PATHS) {
        const e = endpoints[placement][path];
        const r = await script<{ sent: number; received: number; seconds: number }>(
          lab,
          e.client,
          SCRIPT.stream,
          [e.host, e.sinkPort, STREAM_MAX_BYTES, STREAM_MAX_MS],
          60_000,
        );
        if (r.received !== r.sent) {
          throw new Error(`${placement} ${path}: sent ${r.sent} bytes, the sink counted ${r.received}`);
        }
        throughputRuns[placement][path].push(r.received / r.seconds / 1e6);
      }
    }
  }
  const throughput = table(() => 0);
  for (const placement of PLACEMENTS) {
    for (const path of PATHS) throughput[placement][path] = Math.max(...throughputRuns[placement][path]);
  }
  return { throughput, throughputRuns };
}

/** Latency at a fixed rate and the proxies' CPU on every path, ROUNDS interleaved rounds. */
async function latencyPhase(
  lab: Lab,
  endpoints: Record<Placement, Record<PathName, Endpoint>>,
  pids: { ztunnel: Record<string, number>; haproxy: Record<string, number> },
): Promise<LatencyFigures> {
  const runs = table<LoadRun[]>(() => []);
  const cpu = table<ByNode>(() => ({}));
  for (let round = 0; round < ROUNDS; round++) {
    for (const placement of PLACEMENTS) {
      for (const path of PATHS) {
        const e = endpoints[placement][path];
        const procs = path === 'haproxy' ? pids.haproxy : pids.ztunnel;
        const before = await cpuOf(procs);
        const run = await script<LoadRun>(
          lab,
          e.client,
          SCRIPT.load,
          [e.host, e.echoPort, RATE, CONNS, MESSAGE, WARMUP_MS, RUN_MS],
          WARMUP_MS + RUN_MS + 30_000,
        );
        if (run.completed !== run.requests) {
          throw new Error(`${placement} ${path}: ${run.requests - run.completed} requests got no reply`);
        }
        runs[placement][path].push(run);
        const spent = minus(await cpuOf(procs), before);
        const acc = cpu[placement][path];
        for (const [node, s] of Object.entries(spent)) acc[node] = (acc[node] ?? 0) + s;
      }
    }
  }
  const latency = table<Latency | undefined>(() => undefined) as Record<Placement, Record<PathName, Latency>>;
  for (const placement of PLACEMENTS) {
    for (const path of PATHS) latency[placement][path] = pool(runs[placement][path]);
  }
  return {
    latency,
    cpu: {
      'cross-node': { ztunnel: cpu['cross-node'].ztunnel, haproxy: cpu['cross-node'].haproxy },
      'same-node': { ztunnel: cpu['same-node'].ztunnel, haproxy: cpu['same-node'].haproxy },
    },
  };
}

/**
 * The load phases asked for, in order, with each ztunnel's memory before them (`fresh` was read by the
 * caller before the setup), right after the last, and `settleS` later.
 */
async function measure(
  lab: Lab,
  setup: Setup,
  fresh: MemorySnapshot,
  run: { phases: Set<Phase>; settleS: number },
): Promise<Figures> {
  const { endpoints } = setup;
  const pids = await proxyPids(lab);
  const beforeLoad = await memoryNow(lab, pids.ztunnel);
  const loadAtStart = loadavg()[0]!;
  const has = (p: Phase) => run.phases.has(p);
  const throughput = has('throughput') ? await throughputPhase(lab, endpoints) : undefined;
  const latency = has('latency') ? await latencyPhase(lab, endpoints, pids) : undefined;
  const far = endpoints['cross-node'].ztunnel.host;
  const rss = has('idle') ? await idleConnections(lab, far, pids.ztunnel) : undefined;
  const flood = has('flood') ? await floodFromOnePod(lab, far, pids.ztunnel) : undefined;
  const redis = has('redis')
    ? await redisPhase(lab, setup.servers, setup.redis, ROUNDS, lab.home)
    : undefined;
  const pgbench = has('pgbench') ? await pgbenchPhase(lab, setup.servers, setup.postgres, ROUNDS) : undefined;
  const loadAtEnd = loadavg()[0]!;
  const loadEnded = await rssOf(pids.ztunnel);
  await new Promise((r) => setTimeout(r, run.settleS * 1000));
  const settled = await rssOf(pids.ztunnel);
  const settledParts: Record<string, MemoryReport | undefined> = {};
  for (const node of Object.keys(pids.ztunnel)) settledParts[node] = await memoryParts(lab, node);
  const ztunnelErrors: ByNode = {};
  for (const node of (await lab.status())?.nodes ?? []) {
    const ztunnel = node.processes.find((p) => p.command[1] === 'ztunnel');
    const text = ztunnel ? await readFile(ztunnel.log, 'utf8') : '';
    ztunnelErrors[node.name] = text.split('\n').filter((l) => /"level":(5|6)\d/.test(l)).length;
  }
  return {
    phases: ALL_PHASES.filter(has),
    ...throughput,
    ...latency,
    memory: { fresh, beforeLoad, loadEnded, settled, settledParts, settleS: run.settleS },
    ztunnelErrors,
    load: { start: loadAtStart, end: loadAtEnd },
    rss,
    flood,
    redis,
    pgbench,
  };
}

/** The figures as table rows: ratios to direct (or to the HAProxy pair), the issue's bar in the note. */
export function rows(f: Figures): BenchResult[] {
  return [
    ...(f.throughput ? throughputRows(f.throughput) : []),
    ...(f.latency && f.cpu ? latencyRows({ latency: f.latency, cpu: f.cpu }) : []),
    ...errorRows(f.ztunnelErrors),
    ...loadAverageRows(f.load),
    ...memoryBeforeRows(f.memory),
    ...(f.rss ? idleRows(f.rss) : []),
    ...(f.flood ? floodRows(f.flood) : []),
    ...(f.redis ? redisRows(f.redis) : []),
    ...(f.pgbench ? pgbenchRows(f.pgbench) : []),
    ...memoryAfterRows(f.memory),
  ];
}

function throughputRows(best: ThroughputFigures['throughput']): BenchResult[] {
  const out: BenchResult[] = [];
  for (const placement of PLACEMENTS) {
    const t = best[placement];
    out.push({ name: `${placement} throughput, direct`, value: t.direct, unit: 'MB/s' });
    out.push({
      name: `${placement} throughput, 2 ztunnels`,
      value: t.ztunnel,
      unit: 'MB/s',
      baseline: t.direct,
    });
    out.push({
      name: `${placement} throughput, HAProxy pair`,
      value: t.haproxy,
      unit: 'MB/s',
      baseline: t.direct,
    });
    out.push({
      name: `${placement} throughput, ztunnels vs HAProxy`,
      value: t.ztunnel,
      unit: 'MB/s',
      baseline: t.haproxy,
      note: 'bar: ≥ 1.00× the HAProxy pair',
    });
  }
  return out;
}

function latencyRows(f: LatencyFigures): BenchResult[] {
  const out: BenchResult[] = [];
  for (const placement of PLACEMENTS) {
    const l = f.latency[placement];
    for (const p of ['p50', 'p90', 'p99'] as const) {
      out.push({ name: `${placement} ${p}, direct`, value: round(l.direct[p]), unit: 'ms' });
      out.push({
        name: `${placement} ${p}, 2 ztunnels`,
        value: round(l.ztunnel[p]),
        unit: 'ms',
        baseline: round(l.direct[p]),
      });
      out.push({
        name: `${placement} ${p}, HAProxy pair`,
        value: round(l.haproxy[p]),
        unit: 'ms',
        baseline: round(l.direct[p]),
      });
    }
    out.push({
      name: `${placement} p50 added by the ztunnels`,
      value: round(l.ztunnel.p50 - l.direct.p50),
      unit: 'ms',
      baseline: round(l.haproxy.p50 - l.direct.p50),
      note: 'baseline: added by HAProxy',
    });
    out.push({
      name: `${placement} p99 added by the ztunnels`,
      value: round(l.ztunnel.p99 - l.direct.p99),
      unit: 'ms',
      baseline: round(l.haproxy.p99 - l.direct.p99),
      note: 'bar: ≤ 0.20 ms; baseline: added by HAProxy',
    });
  }
  for (const placement of PLACEMENTS) {
    const requests = f.latency[placement].ztunnel.requests;
    const seconds = f.latency[placement].ztunnel.seconds;
    const c = f.cpu[placement];
    const nodes = placement === 'same-node' ? ['node-1'] : ['node-1', 'node-2'];
    for (const node of nodes) {
      const role = placement === 'same-node' ? 'both ends' : node === 'node-1' ? 'outbound' : 'inbound';
      const z = c.ztunnel[node]!;
      const h = c.haproxy[node]!;
      const hRequests = f.latency[placement].haproxy.requests;
      out.push({
        name: `${placement} CPU per 1,000 req, ztunnel ${node} (${role})`,
        value: round(z / (requests / 1000), 4),
        unit: 'CPU-s',
        baseline: round(h / (hRequests / 1000), 4),
        note: 'baseline: that node’s haproxy',
      });
      // CPU seconds per wall second of the run, scaled to 1,000 req/s: what a core would carry.
      out.push({
        name: `${placement} vCPU at 1,000 req/s, ztunnel ${node} (${role})`,
        value: round((z / seconds) * (1000 / (requests / seconds)), 4),
        unit: 'vCPU',
        baseline: round(
          (h / f.latency[placement].haproxy.seconds) *
            (1000 / (hRequests / f.latency[placement].haproxy.seconds)),
          4,
        ),
        note: 'bar: ≤ 0.06 vCPU per ztunnel',
      });
    }
  }
  return out;
}

function errorRows(errors: ByNode): BenchResult[] {
  return Object.entries(errors).map(([node, n]) => ({
    name: `ztunnel ${node} error log lines`,
    value: n,
    unit: '',
    note: 'pino level ≥ 50, whole run',
  }));
}

/** The issue's bar for a fresh idle ztunnel: 64 MB. */
const FRESH_BAR_KIB = 64 * 1024;
/** …and for one after the load: at most this times its fresh figure, SETTLE_S after the load ends. */
const SETTLED_BAR = 1.25;

const enrolledNote = (n: number) => (n < 0 ? 'enrolled pods: unknown' : `${n} pod address(es) enrolled`);

function memoryBeforeRows(m: Figures['memory']): BenchResult[] {
  const out: BenchResult[] = [];
  for (const node of ['node-1', 'node-2']) {
    const fresh = m.fresh.rss[node]!;
    out.push({
      name: `ztunnel ${node} RSS fresh idle`,
      value: fresh,
      unit: 'KiB',
      note: `${FRESH_WAIT_MS / 1000} s after ready, no traffic; ${enrolledNote(m.fresh.enrolled[node]!)}; bar: ≤ ${FRESH_BAR_KIB.toLocaleString('en-US')} KiB`,
    });
    out.push({
      name: `ztunnel ${node} RSS idle before the load`,
      value: m.beforeLoad.rss[node]!,
      unit: 'KiB',
      baseline: fresh,
      note: `servers up, each path probed once; ${enrolledNote(m.beforeLoad.enrolled[node]!)}; baseline: fresh`,
    });
  }
  return out;
}

function memoryAfterRows(m: Figures['memory']): BenchResult[] {
  const out: BenchResult[] = [];
  for (const node of ['node-1', 'node-2']) {
    const fresh = m.fresh.rss[node]!;
    out.push({
      name: `ztunnel ${node} RSS when the load ended`,
      value: m.loadEnded[node]!,
      unit: 'KiB',
      baseline: fresh,
      note: 'after the last load phase; baseline: fresh idle',
    });
    out.push({
      name: `ztunnel ${node} RSS ${m.settleS} s after the load ended`,
      value: m.settled[node]!,
      unit: 'KiB',
      baseline: fresh,
      note: `bar: ≤ ${SETTLED_BAR.toFixed(2)}× fresh idle (= ${Math.round(fresh * SETTLED_BAR).toLocaleString('en-US')} KiB)${partsNote(m.settledParts[node])}`,
    });
  }
  return out;
}

/** A /memory report in a row's note: where the resident set is, in KiB. */
function partsNote(m: MemoryReport | undefined): string {
  if (m === undefined) return '';
  const k = (n: number) => Math.round(n / 1024).toLocaleString('en-US');
  const c = m.malloc ? `; C heap live ${k(m.malloc.inUse)}, free but held ${k(m.malloc.free)}` : '';
  return `; anonymous ${k(m.rssAnon)}, file-backed ${k(m.rssFile)}; V8 heap used ${k(m.heap.used)} of ${k(m.heap.total)}${c}`;
}

function idleRows(r: NonNullable<Figures['rss']>): BenchResult[] {
  const out: BenchResult[] = [];
  const held = r.open === IDLE_CONNS && r.echoed === IDLE_CONNS;
  const why = held
    ? ''
    : `; only ${r.echoed} of ${IDLE_CONNS} echoed (${r.failed} failed: ${r.error ?? 'unknown'})`;
  for (const node of ['node-1', 'node-2']) {
    const idle = r.idle[node]!;
    const loaded = r.loaded[node]!;
    out.push({ name: `ztunnel ${node} RSS idle`, value: idle, unit: 'KiB' });
    out.push({
      name: `ztunnel ${node} RSS, ${IDLE_CONNS.toLocaleString('en-US')} idle conns`,
      value: loaded,
      unit: 'KiB',
      baseline: idle,
    });
    out.push({
      name: `ztunnel ${node} memory per idle conn`,
      value: round((loaded - idle) / Math.max(1, r.echoed), 2),
      unit: 'KiB',
      note: `bar: ≤ 8 KiB${why}`,
    });
    out.push({
      name: `ztunnel ${node} RSS after they closed`,
      value: r.afterClose[node]!,
      unit: 'KiB',
      baseline: idle,
    });
    out.push({
      name: `ztunnel ${node} connections still tracked after close`,
      value: r.leftAfterClose[node]!,
      unit: '',
      note: 'should be 0 within 20 s; -1: admin did not answer',
    });
  }
  return out;
}

function floodRows(fl: NonNullable<Figures['flood']>): BenchResult[] {
  const out: BenchResult[] = [];
  for (const node of ['node-1', 'node-2']) {
    const before = fl.before[node]!;
    out.push({
      name: `ztunnel ${node} RSS, ${FLOOD_CONNS.toLocaleString('en-US')}-conn flood from one pod`,
      value: fl.during[node]!,
      unit: 'KiB',
      baseline: before,
      note: 'baseline: just before the flood',
    });
    out.push({
      name: `ztunnel ${node} RSS after the flood`,
      value: fl.after[node]!,
      unit: 'KiB',
      baseline: before,
    });
    out.push({
      name: `ztunnel ${node} connections still tracked after the flood`,
      value: fl.leftAfterClose[node]!,
      unit: '',
      note: 'should be 0 within 20 s; -1: admin did not answer',
    });
  }
  out.push({
    name: `flood: connections the pod got through (of ${FLOOD_CONNS.toLocaleString('en-US')})`,
    value: fl.echoed,
    unit: '',
    note: `refused UO by node-1: ${fl.refused}; failed at the client: ${fl.failed}${fl.firstError ? ` (${fl.firstError})` : ''}`,
  });
  return out;
}

/** The per-connection checks' cost, as rows (no root needed). */
function costRows(): BenchResult[] {
  const c = checkCosts();
  return [
    {
      name: 'per-connection check: connection slot taken and given back',
      value: round(c.slotNs, 1),
      unit: 'ns',
      note: 'in-process; one per proxied connection at each ztunnel',
    },
    {
      name: 'per-stream check: window budget, stream counted in and out',
      value: round(c.windowNs, 1),
      unit: 'ns',
      note: 'in-process; one per HBONE stream at the server',
    },
  ];
}

export async function bench(): Promise<BenchResult[]> {
  const costs = costRows();
  if (!isRoot())
    return [...costs, { name: 'L4 mesh benchmark', value: 0, unit: '', note: 'skipped: needs root' }];
  const run = runOptions(process.env);
  const home = await mkdtemp(join(tmpdir(), 'ambit-bench-l4-'));
  const lab = `l4${randomBytes(3).toString('hex')}`;
  try {
    const mesh = await meshUp({
      home,
      lab,
      nodes: 2,
      ztunnelArgs: run.workerThreads > 1 ? ['--worker-threads', String(run.workerThreads)] : [],
    });
    await new Promise((r) => setTimeout(r, FRESH_WAIT_MS));
    const fresh = await memoryNow(mesh.lab, await ztunnelPids(mesh.lab));
    const setup = await setUp(mesh.lab, mesh.admin);
    const figures = await measure(mesh.lab, setup, fresh, run);
    // The raw figures (latency max, the generator's own send lateness, …) for docs and diagnosis.
    const raw = process.env.AMBIT_BENCH_L4_RAW;
    if (raw) await writeFile(raw, `${JSON.stringify(figures, null, 2)}\n`);
    return [...costs, ...rows(figures)];
  } finally {
    await meshDown({ home, lab });
    await rm(home, { recursive: true, force: true });
  }
}
