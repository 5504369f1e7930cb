// L7 benchmark (lab, root): HTTP/1.1 keep-alive requests from a client pod on node-1 to a server pod
// on node-2 over four paths measured in the same run — direct (no mesh), the L4 mesh (two ztunnels),
// the waypoint (client ztunnel → waypoint → server ztunnel, an HTTPRoute with a header rule and a
// default rule in place) and an HAProxy pair in `mode http` with mutual TLS — for requests per second
// per proxy core at saturation (wrk), latency added at a fixed 1,000 requests/s (an open-loop
// generator), and the waypoint's CPU and RSS at that rate, beside the issue's targets. Then, in the same
// run, what each request feature costs the waypoint against the plain waypoint (bench/l7/costs.ts): a
// 100-rule ALLOW, a JWT on every request, a global rate limit through Redis, tracing at 100 %.
// Run with `node bench/run.ts l7` (AMBIT_BENCH_L7_QUICK=1: one round of shorter runs;
// AMBIT_BENCH_L7_PART=paths|costs: only the path comparison or only the features;
// AMBIT_BENCH_L7_FEATURES=authz1,authz,jwt,ratelimit,tracing: only those features;
// AMBIT_BENCH_L7_RAW=<file> also writes the raw figures as JSON; AMBIT_BENCH_L7_WAYPOINT_LOG=<file>
// keeps a copy of the waypoint's log); docs/benchmarks.md explains the method.

import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Mesh, meshDown, meshUp } from '../src/cli/up.ts';
import { waitProgrammed, waypointGateway } from '../src/cli/waypoint.ts';
import { type Lab, nodeAddress, nodeGateway, waitUntil } from '../src/lab/index.ts';
import { type BenchResult, loadAverageRows, round } from './harness.ts';
import { rssKiB } from './l4/proc.ts';
import { type CostFigures, costRows, measureCosts } from './l7/costs.ts';
import { features, jwtMaterial, SINK_PORT } from './l7/features.ts';
import { pairConfig, staticServerConfig, throwawayCa } from './l7/haproxy.ts';
import { inProcessRows } from './l7/in-process.ts';
import {
  atRate,
  type ByProc,
  type Endpoint,
  type LatRun,
  type Percentiles,
  type Procs,
  percentiles,
  type SatRun,
  saturate,
  wrk,
} from './l7/load.ts';
import { REDIS_PORT, redisAnswers, startRedis } from './redis.ts';

const SINK = join(dirname(fileURLToPath(import.meta.url)), 'l7/otlp-sink.ts');

const QUICK = process.env.AMBIT_BENCH_L7_QUICK === '1';
/** Every measurement runs in ROUNDS rounds, each visiting every path in turn, so host noise lands on all. */
const ROUNDS = QUICK ? 1 : 2;
/** Saturation: wrk, one thread, SAT_CONNS keep-alive connections, SAT_MS per path per round. */
const SAT_CONNS = 32;
const SAT_MS = QUICK ? 3_000 : 5_000;
/** Unrecorded wrk run per path before the first round: the Node proxies' JIT warms up on it. */
const WARM_MS = 2_000;
/** One keep-alive connection, closed loop, once per path: the serial rate shows a per-request stall. */
const SERIAL_MS = 2_000;
/** The waypoint's RSS is read again this long after the last run, to tell growth under load from a leak. */
const AFTER_MS = 5_000;
/** Latency: RATE requests/s over LAT_CONNS keep-alive connections; WARMUP_MS unrecorded, then RUN_MS. */
const RATE = 1_000;
const LAT_CONNS = 16;
const WARMUP_MS = 1_000;
const RUN_MS = QUICK ? 3_000 : 5_000;
const AT_RATE = { rate: RATE, conns: LAT_CONNS, warmupMs: WARMUP_MS, runMs: RUN_MS };
/** Which parts run: the four paths, the request features' costs, or both (unset). */
const PART = process.env.AMBIT_BENCH_L7_PART;

const SERVER_PORT = 8080;
const SERVICE_PORT = 80;
const PAIR_PLAIN_PORT = 21080;
const PAIR_TLS_PORT = 22443;
const PLAIN_NS = 'l7-plain';
const MESH_NS = 'l7-mesh';
const WAYPOINT_NS = 'l7-wp';
const WAYPOINT = 'waypoint';
const SERVICE = 'web';
/** The route's header rule: requests carrying it take rule 1; the load sends none, so the default rule. */
const ROUTE_HEADER = 'x-bench-route';
const RULE_HEADER = 'x-bench-rule';

/** Targets from the issue (the Envoy waypoint's published figures, and a floor against HAProxy). */
const TARGET = { vcpu: 0.25, rssMB: 60, perCoreVsHaproxy: 0.3 };

const PATHS = ['direct', 'ztunnel', 'waypoint', 'haproxy'] as const;
type PathName = (typeof PATHS)[number];
const LABEL: Record<PathName, string> = {
  direct: 'direct',
  ztunnel: 'L4 mesh (2 ztunnels)',
  waypoint: 'waypoint',
  haproxy: 'HAProxy http mTLS pair',
};

interface PathFigures {
  /** The waypoint's VmRSS (KiB) once set up, before any load, and AFTER_MS after the last run. */
  waypointIdleRss: number;
  waypointAfterRss: number;
  /** req/s on one connection, closed loop (wrk -c1), per path. */
  serial: Record<PathName, number>;
  sat: Record<PathName, SatRun[]>;
  lat: Record<PathName, LatRun[]>;
  latency: Record<PathName, Percentiles>;
}

interface Figures {
  paths?: PathFigures;
  costs?: CostFigures;
  inProcess?: BenchResult[];
  /** At the end of the run: where the waypoint ran, processes its pod has run (1: never restarted), and its error log lines (pino level ≥ 50). */
  waypoint: { node: string; processes: number; errors: number; log: string };
  load: { start: number; end: number };
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function eventually<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  return waitUntil(what, timeoutMs, probe, 250);
}

const namespace = (name: string, labels: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels },
});

const service = (ns: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: SERVICE, namespace: ns },
  spec: {
    selector: { app: 'server' },
    ports: [{ name: 'http', port: SERVICE_PORT, targetPort: SERVER_PORT, appProtocol: 'http' }],
  },
});

/** The HTTPRoute on the waypoint's Service: a header rule, then the default; each tags its responses. */
const route = () => {
  const backend = [{ name: SERVICE, port: SERVICE_PORT }];
  const tag = (value: string) => [
    { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: RULE_HEADER, value }] } },
  ];
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: SERVICE, namespace: WAYPOINT_NS },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: SERVICE, port: SERVICE_PORT }],
      rules: [
        {
          matches: [{ headers: [{ type: 'Exact', name: ROUTE_HEADER, value: 'header' }] }],
          filters: tag('header'),
          backendRefs: backend,
        },
        { filters: tag('default'), backendRefs: backend },
      ],
    },
  };
};

/** `curl -si` from a pod; the response head and body, or undefined when it failed. */
async function curl(lab: Lab, pod: string, url: string, headers: string[] = []): Promise<string | undefined> {
  const r = await lab.exec(pod, [
    'curl',
    '-si',
    '--max-time',
    '3',
    ...headers.flatMap((h) => ['-H', h]),
    url,
  ]);
  return r.code === 0 && /^HTTP\/1\.1 200/.test(r.stdout) ? r.stdout : undefined;
}

async function vipOf(mesh: Mesh, ns: string): Promise<string> {
  return eventually(`service ${ns}/${SERVICE} to get a VIP`, 30_000, async () => {
    const { items } = await mesh.admin.call<{ items: Array<{ name: string; vips: string[] }> }>(
      'GET',
      `/ambit/v1/services?namespace=${ns}`,
    );
    return items.find((s) => s.name === SERVICE)?.vips[0];
  });
}

/** The running waypoint replica: its pod, node, pid, log and how many processes the pod has run. */
async function waypointProcess(lab: Lab) {
  const pods = (await lab.status())?.pods ?? [];
  for (const pod of pods) {
    const all = pod.processes.filter((p) => p.command[1] === 'waypoint');
    const live = all.find((p) => p.running);
    if (live) return { pod: pod.name, node: pod.node, pid: live.pid, log: live.log, processes: all.length };
  }
  return undefined;
}

async function ztunnelPids(lab: Lab): Promise<Procs> {
  const out: Procs = {};
  for (const node of (await lab.status())?.nodes ?? []) {
    const z = node.processes.find((p) => p.running && p.command[1] === 'ztunnel');
    if (z) out[`ztunnel ${node.name}`] = z.pid;
  }
  return out;
}

/** The haproxy processes the benchmark started (the pair's and the servers'), for stopping them. */
interface Started {
  haproxyPids: Procs;
  serverPids: number[];
}

interface Setup extends Started {
  endpoints: Record<PathName, Endpoint>;
  /** The un-enrolled pod that runs the features' Redis and span sink. */
  backends: { pod: string; address: string };
}

/**
 * Pods, namespaces, Services, the waypoint and its route, the servers and the HAProxy pair; for the
 * features' costs, a second mesh client (another identity) and a pod outside the mesh for their backends.
 */
async function setUp(mesh: Mesh, tlsDir: string, started: Started): Promise<Setup> {
  const { lab, admin } = mesh;
  const pod = (name: string, node: string, ns: string) =>
    lab.addPod({ name, node, namespace: ns, serviceAccount: name, labels: { app: name.split('-')[1]! } });
  await pod('plain-client', 'node-1', PLAIN_NS);
  const plainServer = await pod('plain-server', 'node-2', PLAIN_NS);
  const meshClient = await pod('mesh-client', 'node-1', MESH_NS);
  const meshServer = await pod('mesh-server', 'node-2', MESH_NS);
  const wpServer = await pod('wp-server', 'node-2', WAYPOINT_NS);
  const stranger = await pod('mesh-stranger', 'node-1', MESH_NS);
  const backends = await pod('plain-backends', 'node-2', PLAIN_NS);
  const ambient = { 'istio.io/dataplane-mode': 'ambient' };
  await admin.call('POST', '/ambit/v1/apply', {
    objects: [
      namespace(PLAIN_NS, {}),
      namespace(MESH_NS, ambient),
      namespace(WAYPOINT_NS, ambient),
      service(MESH_NS),
      service(WAYPOINT_NS),
      waypointGateway({ namespace: WAYPOINT_NS, name: WAYPOINT }),
      route(),
    ],
  });

  // The server every path ends at, one per namespace, and the HAProxy pair.
  const { serverPids, haproxyPids } = started;
  const serverCfg = join(tlsDir, 'server.cfg');
  await writeFile(serverCfg, staticServerConfig(SERVER_PORT));
  for (const p of [plainServer, meshServer, wpServer]) {
    serverPids.push((await lab.run(p.name, ['haproxy', '-f', serverCfg, '-db'])).pid);
  }
  const tls = await throwawayCa(tlsDir, nodeAddress(2));
  const hop = {
    plainPort: PAIR_PLAIN_PORT,
    tlsAddress: nodeAddress(2),
    tlsPort: PAIR_TLS_PORT,
    target: `${plainServer.address}:${SERVER_PORT}`,
  };
  for (const [node, text] of [
    ['node-1', pairConfig(tls, [hop], [])],
    ['node-2', pairConfig(tls, [], [hop])],
  ] as const) {
    const cfg = join(tlsDir, `pair-${node}.cfg`);
    await writeFile(cfg, text);
    const check = await lab.exec(node, ['haproxy', '-c', '-f', cfg]);
    if (check.code !== 0) throw new Error(`haproxy rejects ${cfg}: ${check.stderr || check.stdout}`);
    haproxyPids[`haproxy ${node}`] = (await lab.run(node, ['haproxy', '-f', cfg, '-db'])).pid;
  }

  // The waypoint runs before its namespace is labelled to use it (as `ambit waypoint apply --wait`).
  await waitProgrammed(admin, WAYPOINT_NS, WAYPOINT, 60_000, 500);
  await admin.call('POST', '/ambit/v1/apply', {
    objects: [namespace(WAYPOINT_NS, { ...ambient, 'istio.io/use-waypoint': WAYPOINT })],
  });
  for (const [node, addresses] of [
    ['node-1', [meshClient.address, stranger.address]],
    ['node-2', [meshServer.address, wpServer.address]],
  ] as const) {
    await eventually(`${addresses.join(', ')} to be enrolled on ${node}`, 30_000, async () => {
      const r = await lab.exec(node, ['nft', 'list', 'set', 'ip', 'ambit', 'enrolled']);
      return addresses.every((a) => r.stdout.includes(a)) ? true : undefined;
    });
  }

  const endpoints: Record<PathName, Endpoint> = {
    direct: { client: 'plain-client', host: plainServer.address, port: SERVER_PORT },
    ztunnel: { client: 'mesh-client', host: await vipOf(mesh, MESH_NS), port: SERVICE_PORT },
    waypoint: { client: 'mesh-client', host: await vipOf(mesh, WAYPOINT_NS), port: SERVICE_PORT },
    haproxy: { client: 'plain-client', host: nodeGateway(1), port: PAIR_PLAIN_PORT },
  };
  for (const path of PATHS) {
    const e = endpoints[path];
    await eventually(`the ${path} path to answer`, 30_000, () =>
      curl(lab, e.client, `http://${e.host}:${e.port}/`),
    );
  }
  // Routing is exercised: both rules answer, each tagging its responses.
  const url = `http://${endpoints.waypoint.host}:${SERVICE_PORT}/`;
  for (const [headers, rule] of [
    [[`${ROUTE_HEADER}: header`], 'header'],
    [[], 'default'],
  ] as const) {
    await eventually(`the waypoint to route by the ${rule} rule`, 30_000, async () => {
      const r = await curl(lab, 'mesh-client', url, [...headers]);
      return r && new RegExp(`^${RULE_HEADER}: ${rule}\\r?$`, 'im').test(r) ? true : undefined;
    });
  }
  return { endpoints, haproxyPids, serverPids, backends: { pod: backends.name, address: backends.address } };
}

/** The proxy processes a path goes through (none for direct), read afresh (a waypoint may restart). */
async function procsOf(lab: Lab, path: PathName, haproxy: Procs): Promise<Procs> {
  if (path === 'direct') return {};
  if (path === 'haproxy') return haproxy;
  const z = await ztunnelPids(lab);
  if (path === 'ztunnel') return z;
  const w = await waypointProcess(lab);
  if (!w) throw new Error('no waypoint process is running');
  return { waypoint: w.pid, ...z };
}

/** The four paths: warm-up, one connection, then saturation and the fixed rate in interleaved rounds. */
async function measurePaths(lab: Lab, s: Setup): Promise<PathFigures> {
  const idle = await waypointProcess(lab);
  const waypointIdleRss = idle ? await rssKiB(idle.pid) : Number.NaN;
  for (const path of PATHS) await wrk(lab, s.endpoints[path], WARM_MS, SAT_CONNS);
  const serial = {} as Record<PathName, number>;
  for (const path of PATHS) {
    const r = await wrk(lab, s.endpoints[path], SERIAL_MS, 1);
    serial[path] = r.requests / r.seconds;
  }
  const sat = { direct: [], ztunnel: [], waypoint: [], haproxy: [] } as Record<PathName, SatRun[]>;
  const lat = { direct: [], ztunnel: [], waypoint: [], haproxy: [] } as Record<PathName, LatRun[]>;
  const samples = { direct: [], ztunnel: [], waypoint: [], haproxy: [] } as Record<PathName, number[]>;
  for (let round = 0; round < ROUNDS; round++) {
    for (const path of PATHS) {
      const procs = await procsOf(lab, path, s.haproxyPids);
      sat[path].push(await saturate(lab, s.endpoints[path], procs, SAT_MS, SAT_CONNS));
    }
    for (const path of PATHS) {
      const procs = await procsOf(lab, path, s.haproxyPids);
      const { latencies, ...run } = await atRate(lab, s.endpoints[path], procs, AT_RATE);
      samples[path].push(...latencies);
      lat[path].push(run);
    }
  }
  const latency = {} as PathFigures['latency'];
  for (const path of PATHS) latency[path] = percentiles(samples[path]);
  await new Promise((r) => setTimeout(r, AFTER_MS));
  const w = await waypointProcess(lab);
  const waypointAfterRss = w ? await rssKiB(w.pid) : Number.NaN;
  return { waypointIdleRss, waypointAfterRss, serial, sat, lat, latency };
}

/** Redis and the span sink in the un-enrolled backends pod, each answering before it is used. */
async function startBackends(lab: Lab, s: Setup, home: string): Promise<Procs> {
  const { pod, address } = s.backends;
  const redis = { pid: await startRedis(lab, pod, address, home) };
  s.serverPids.push(redis.pid);
  const sink = await lab.run(pod, [process.execPath, SINK, address, String(SINK_PORT)]);
  s.serverPids.push(sink.pid);
  await eventually('redis-server to answer', 15_000, async () =>
    (await redisAnswers(lab, pod, address, REDIS_PORT)) ? true : undefined,
  );
  await eventually('the span sink to answer', 15_000, async () => {
    const r = await lab.exec(pod, ['curl', '-sf', '--max-time', '2', `http://${address}:${SINK_PORT}/stats`]);
    return r.code === 0 ? true : undefined;
  });
  return { redis: redis.pid, sink: sink.pid };
}

/**
 * The plain waypoint and each request feature applied alone, against it (bench/l7/costs.ts); then the
 * two computed features timed in this process (bench/l7/in-process.ts).
 */
async function measureFeatures(
  mesh: Mesh,
  s: Setup,
  home: string,
): Promise<{ costs: CostFigures; inProcess: BenchResult[] }> {
  const { lab } = mesh;
  const backends = await startBackends(lab, s, home);
  const e = s.endpoints.waypoint;
  const jwt = await jwtMaterial();
  const principal = `cluster.local/ns/${MESH_NS}/sa/mesh-client`;
  const list = features(
    {
      mesh,
      namespace: WAYPOINT_NS,
      service: SERVICE,
      url: `http://${e.host}:${e.port}/`,
      client: e.client,
      principal,
      stranger: 'mesh-stranger',
      backends: s.backends,
    },
    jwt,
  );
  const only = process.env.AMBIT_BENCH_L7_FEATURES?.split(',').filter(Boolean);
  const costs = await measureCosts(
    lab,
    e,
    () => procsOf(lab, 'waypoint', s.haproxyPids),
    backends,
    only ? list.filter((f) => only.includes(f.name)) : list,
    { rounds: ROUNDS, warmMs: WARM_MS, satMs: SAT_MS, satConns: SAT_CONNS, rate: AT_RATE },
  );
  const inProcess = await inProcessRows(
    { namespace: WAYPOINT_NS, service: SERVICE, principal, clientNamespace: MESH_NS },
    jwt,
  );
  return { costs, inProcess };
}

/** The waypoint process at the end of the run: its node, how many processes its pod ran, its error lines. */
async function waypointAtEnd(lab: Lab): Promise<Figures['waypoint']> {
  const w = await waypointProcess(lab);
  const log = w?.log ?? '';
  const text = log ? await readFile(log, 'utf8').catch(() => '') : '';
  return {
    node: w?.node ?? 'none running',
    processes: w?.processes ?? 0,
    errors: text.split('\n').filter((l) => /"level":(5|6)\d/.test(l)).length,
    log,
  };
}

const sum = <T>(xs: T[], f: (x: T) => number) => xs.reduce((n, x) => n + f(x), 0);
const cpuSum = (runs: Array<{ cpu: ByProc }>, role?: string) =>
  sum(runs, (r) => sum(Object.entries(r.cpu), ([k, v]) => (role === undefined || k === role ? v : 0)));
const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');

/** The four paths as table rows: ratios to direct or to the HAProxy pair, targets with PASS/MISS in notes. */
function pathRows(f: PathFigures): BenchResult[] {
  const out: BenchResult[] = [];
  const rps = (p: PathName) => sum(f.sat[p], (r) => r.requests) / sum(f.sat[p], (r) => r.seconds);
  const perCore = (p: PathName) => sum(f.sat[p], (r) => r.requests) / cpuSum(f.sat[p]);
  const counted: Record<Exclude<PathName, 'direct'>, string> = {
    ztunnel: 'CPU counted: ztunnel node-1 + ztunnel node-2',
    waypoint: 'CPU counted: waypoint + ztunnel node-1 + ztunnel node-2',
    haproxy: 'CPU counted: haproxy node-1 + haproxy node-2',
  };
  for (const p of PATHS) {
    out.push({
      name: `saturated req/s, ${LABEL[p]}`,
      value: Math.round(rps(p)),
      unit: 'req/s',
      ...(p === 'direct' ? {} : { baseline: Math.round(rps('direct')) }),
      note: `wrk -t1 -c${SAT_CONNS}, ${f.sat[p].length} × ${SAT_MS / 1000} s; baseline: direct`,
    });
  }
  for (const p of PATHS) {
    out.push({
      name: `one connection, closed loop, ${LABEL[p]}`,
      value: Math.round(f.serial[p]),
      unit: 'req/s',
      ...(p === 'direct' ? {} : { baseline: Math.round(f.serial.direct) }),
      note: `wrk -t1 -c1, ${SERIAL_MS / 1000} s: 1,000 ÷ this = ms per request; baseline: direct`,
    });
  }
  for (const p of ['ztunnel', 'waypoint', 'haproxy'] as const) {
    const seconds = sum(f.sat[p], (r) => r.seconds);
    out.push({
      name: `proxy CPU at saturation, ${LABEL[p]}`,
      value: round(cpuSum(f.sat[p]) / seconds),
      unit: 'cores',
      note: counted[p],
    });
  }
  for (const p of ['ztunnel', 'waypoint', 'haproxy'] as const) {
    out.push({
      name: `req/s per proxy core, ${LABEL[p]}`,
      value: Math.round(perCore(p)),
      unit: 'req/core-s',
      ...(p === 'haproxy' ? {} : { baseline: Math.round(perCore('haproxy')) }),
      note: `${counted[p]}${p === 'haproxy' ? '' : '; baseline: HAProxy pair'}`,
    });
  }
  const wAlone = sum(f.sat.waypoint, (r) => r.requests) / cpuSum(f.sat.waypoint, 'waypoint');
  out.push({
    name: 'req/s per core, waypoint process alone',
    value: Math.round(wAlone),
    unit: 'req/core-s',
    baseline: Math.round(perCore('haproxy')),
    note: 'CPU counted: the waypoint process only (for scale; the target counts both ztunnels too)',
  });
  const vsHaproxy = perCore('waypoint') / perCore('haproxy');
  out.push({
    name: 'waypoint req/s per core ÷ HAProxy pair’s',
    value: round(vsHaproxy),
    unit: '×',
    note: `target ≥ ${TARGET.perCoreVsHaproxy}×: ${verdict(vsHaproxy >= TARGET.perCoreVsHaproxy)}`,
  });

  const l = f.latency;
  for (const p of PATHS) {
    out.push({
      name: `p50 / p99 at ${RATE.toLocaleString('en-US')} req/s, ${LABEL[p]}`,
      value: round(l[p].p50),
      unit: 'ms',
      ...(p === 'direct' ? {} : { baseline: round(l.direct.p50) }),
      note: `p90 ${round(l[p].p90)}, p99 ${round(l[p].p99)}, max ${round(l[p].max)} ms; ${l[p].recorded} recorded`,
    });
  }
  for (const p of ['ztunnel', 'waypoint', 'haproxy'] as const) {
    for (const q of ['p50', 'p99'] as const) {
      out.push({
        name: `${q} added by the ${LABEL[p]}`,
        value: round(l[p][q] - l.direct[q]),
        unit: 'ms',
        note: `(${LABEL[p]} − direct) at ${RATE.toLocaleString('en-US')} req/s, open loop`,
      });
    }
  }

  // At RATE: CPU seconds per wall second of the run, scaled to exactly 1,000 req/s.
  const atThousand = (p: PathName, role?: string) => {
    const runs = f.lat[p];
    const seconds = sum(runs, (r) => r.seconds);
    const achieved = sum(runs, (r) => r.completed) / seconds;
    return (cpuSum(runs, role) / seconds) * (1000 / achieved);
  };
  const wCpu = atThousand('waypoint', 'waypoint');
  out.push({
    name: 'waypoint CPU at 1,000 req/s',
    value: round(wCpu),
    unit: 'vCPU',
    baseline: round(atThousand('haproxy')),
    note: `target ≤ ${TARGET.vcpu} vCPU: ${verdict(wCpu <= TARGET.vcpu)}; waypoint process only; baseline: both haproxies`,
  });
  for (const role of ['ztunnel node-1', 'ztunnel node-2']) {
    out.push({
      name: `${role} CPU at 1,000 req/s, waypoint path`,
      value: round(atThousand('waypoint', role)),
      unit: 'vCPU',
      baseline: round(atThousand('ztunnel', role)),
      note: 'baseline: the same ztunnel on the L4 path',
    });
  }
  out.push({
    name: 'waypoint path CPU at 1,000 req/s, all proxies',
    value: round(atThousand('waypoint')),
    unit: 'vCPU',
    baseline: round(atThousand('haproxy')),
    note: 'waypoint + both ztunnels; baseline: both haproxies',
  });
  const rssKib = Math.max(...f.lat.waypoint.map((r) => r.rssMax.waypoint ?? 0));
  const rssMB = (rssKib * 1024) / 1e6;
  out.push({
    name: 'waypoint RSS at 1,000 req/s (highest sample)',
    value: round(rssMB, 1),
    unit: 'MB',
    note: `${(rssKib / 1024).toFixed(1)} MiB; target ≤ ${TARGET.rssMB} MB: ${verdict(rssMB <= TARGET.rssMB)}`,
  });
  out.push({
    name: 'waypoint RSS idle, before any load',
    value: round((f.waypointIdleRss * 1024) / 1e6, 1),
    unit: 'MB',
    note: `${(f.waypointIdleRss / 1024).toFixed(1)} MiB`,
  });
  out.push({
    name: `waypoint RSS ${AFTER_MS / 1000} s after the load`,
    value: round((f.waypointAfterRss * 1024) / 1e6, 1),
    unit: 'MB',
    note: `${(f.waypointAfterRss / 1024).toFixed(1)} MiB`,
  });
  const hRss = Math.max(...f.lat.haproxy.map((r) => sum(Object.values(r.rssMax), (x) => x)));
  out.push({
    name: 'HAProxy pair RSS at 1,000 req/s (both, highest sample)',
    value: round((hRss * 1024) / 1e6, 1),
    unit: 'MB',
  });

  for (const p of PATHS) {
    const s = f.sat[p];
    const r = f.lat[p];
    const bad = sum(s, (x) => x.non2xx + x.socketErrors) + sum(r, (x) => x.failed + x.connectionErrors);
    const lost = sum(r, (x) => x.requests - x.completed);
    const first = r.find((x) => x.firstFailure)?.firstFailure;
    out.push({
      name: `errors, ${LABEL[p]}`,
      value: bad + lost,
      unit: '',
      note: `wrk non-2xx ${sum(s, (x) => x.non2xx)}, socket errors ${sum(s, (x) => x.socketErrors)}; at rate: failed ${sum(r, (x) => x.failed)}, connection errors ${sum(r, (x) => x.connectionErrors)}, unanswered ${lost}${first ? ` (first: ${first})` : ''}`,
    });
  }
  return out;
}

/** The path comparison's rows, then the features' costs, then the waypoint's health and the host's load. */
export function rows(f: Figures): BenchResult[] {
  const w = f.waypoint;
  return [
    ...(f.paths ? pathRows(f.paths) : []),
    ...(f.costs ? costRows(f.costs) : []),
    ...(f.inProcess ?? []),
    {
      name: 'waypoint processes run / error log lines',
      value: w.processes,
      unit: '',
      note: `1 = never restarted; ${w.errors} lines at pino level ≥ 50; on ${w.node}; log ${w.log}`,
    },
    ...loadAverageRows(f.load),
  ];
}

export async function bench(): Promise<BenchResult[]> {
  if (!isRoot()) return [{ name: 'L7 benchmark', value: 0, unit: '', note: 'skipped: needs root' }];
  const home = await mkdtemp(join(tmpdir(), 'ambit-bench-l7-'));
  const lab = `l7${randomBytes(3).toString('hex')}`;
  const tlsDir = join(home, 'haproxy');
  const started: Started = { haproxyPids: {}, serverPids: [] };
  try {
    await mkdir(tlsDir, { mode: 0o700 });
    const mesh = await meshUp({ home, lab, nodes: 2 });
    const setup = await setUp(mesh, tlsDir, started);
    const start = loadavg()[0]!;
    const paths = PART === 'costs' ? undefined : await measurePaths(mesh.lab, setup);
    const costs = PART === 'paths' ? undefined : await measureFeatures(mesh, setup, home);
    const figures: Figures = {
      ...(paths ? { paths } : {}),
      ...(costs ?? {}),
      waypoint: await waypointAtEnd(mesh.lab),
      load: { start, end: loadavg()[0]! },
    };
    const raw = process.env.AMBIT_BENCH_L7_RAW;
    if (raw) await writeFile(raw, `${JSON.stringify(figures, null, 2)}\n`);
    // The waypoint's log lives in the lab's home, which goes: keep a copy only when asked.
    const keep = process.env.AMBIT_BENCH_L7_WAYPOINT_LOG;
    if (keep && figures.waypoint.log) await copyFile(figures.waypoint.log, keep);
    return rows(figures);
  } finally {
    // The haproxies, Redis and the span sink first (meshDown also stops whatever runs in the lab's
    // namespaces), then the lab.
    for (const pid of [...Object.values(started.haproxyPids), ...started.serverPids]) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    await meshDown({ home, lab });
    await rm(home, { recursive: true, force: true });
  }
}
