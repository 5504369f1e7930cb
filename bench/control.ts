// Control-plane benchmark: how long the registry derivation takes (pure, 1k and 10k workloads), how
// long one changed resource takes to reach and be ACKed by 10 and 100 proxies over real gRPC+TLS on
// 127.0.0.1 (proxies in a worker thread, then in the control plane's own thread), and how many
// resource bytes that change costs each proxy beside a full snapshot. Then the same push and the apply
// rate with the resources in etcd (a local member), beside the embedded store measured in this run.
// Run with `node bench/run.ts control` (prints a table) or `node bench/control.ts`.

import { cp as copyDir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Resource, validateResource } from '../src/config/index.ts';
import {
  type ControlPlane,
  deriveRegistry,
  type StoreChoice,
  type StoreSettings,
  startControlPlane,
  storeChoice,
} from '../src/control/index.ts';
import { type NodeCredential, TYPE, type TypeUrl } from '../src/xds/index.ts';
import { hasEtcd, launchEtcd } from '../test/helpers/etcd.ts';
import {
  type MeshShape,
  meshManifests,
  serviceName,
  workloadManifest,
  workloadName,
} from './control/fixtures.ts';
import { type Expectation, joinNodes, LocalFleet, type ProxyFleet, WorkerFleet } from './control/fleet.ts';
import type { BenchResult } from './harness.ts';

const SHAPE_1K: MeshShape = { workloads: 1_000, services: 1_000, namespaces: 4, selectorPolicies: 20 };
const SHAPE_10K: MeshShape = { ...SHAPE_1K, workloads: 10_000 };
const DERIVE_RUNS = { '1k': 9, '10k': 5 } as const;
const FLEETS = [10, 100];
/** Proxies in a worker thread (as on other machines: the control plane's loop runs only its own work), then in its thread. */
const PLACEMENTS: Placement[] = ['worker', 'same thread'];
const WARMUP_CHANGES = 3;
const CHANGES = 15;
/** MeshState's default quiet time after a commit before it derives (src/control/mesh.ts). */
const DEBOUNCE_MS = 20;
const CHANGE_TIMEOUT_MS = 15_000;

const ms = (ns: bigint): number => Number(ns) / 1e6;
/** CPU time of this thread only (ms): the control plane's work when the proxies run in a worker. */
const threadCpu = (): number => {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
};
const now = (): bigint => process.hrtime.bigint();

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const max = (xs: readonly number[]): number => Math.max(...xs);
const round = (n: number, digits = 1): number => Number(n.toFixed(digits));

/** Validated resources, as the store hands them to the registry; a fixture that does not validate is a bug here. */
function validated(shape: MeshShape): Resource[] {
  return meshManifests(shape).map((m, i) => {
    const r = validateResource(m, `fixture ${i + 1}`);
    if (!r.ok) throw new Error(`bench fixture is invalid: ${JSON.stringify(r.errors)}`);
    return r.resource;
  });
}

/** Median wall time of `runs` derivations after one warm-up, and what one derivation produced. */
function timeDerivation(shape: MeshShape, runs: number): { median: number; summary: string } {
  const resources = validated(shape);
  const first = deriveRegistry({ resources });
  if (first.issues.length > 0) throw new Error(`bench mesh has issues: ${first.issues[0]!.message}`);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = now();
    deriveRegistry({ resources });
    times.push(ms(now() - t0));
  }
  const endpoints = first.services.reduce((n, s) => n + s.endpoints.length, 0);
  return {
    median: median(times),
    summary: `${first.workloads.length} workloads, ${first.services.length} services (${endpoints} endpoints), ${resources.length} resources, ${first.authorizations.length} AuthorizationPolicies; median of ${runs} (min ${round(Math.min(...times))}, max ${round(max(times))})`,
  };
}

/**
 * Resolves when every proxy of `nodes` has ACKed `version` of every type, as the control plane records
 * it: the moment, and the CPU time the polling itself took (to subtract from the control plane's).
 */
async function controlPlaneSawAcks(
  cp: ControlPlane,
  nodes: ReadonlySet<string>,
  version: string,
): Promise<{ at: bigint; pollCpu: number }> {
  const deadline = Date.now() + CHANGE_TIMEOUT_MS;
  let pollCpu = 0;
  for (;;) {
    const c0 = threadCpu();
    const mine = cp.stream.status().filter((s) => nodes.has(s.name));
    const done =
      mine.length === nodes.size &&
      mine.every(
        (s) => s.state === 'SYNCED' && Object.values(s.types).every((t) => t.ackedVersion === version),
      );
    pollCpu += threadCpu() - c0;
    if (done) return { at: now(), pollCpu };
    if (Date.now() > deadline)
      throw new Error(`proxies did not ACK version ${version} within ${CHANGE_TIMEOUT_MS} ms`);
    // A 1 ms timer, not setImmediate: polling must not compete with the ACKs for the event loop.
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not happen within ${CHANGE_TIMEOUT_MS} ms`)),
      CHANGE_TIMEOUT_MS,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

interface ChangeSample {
  /** apply() called → every proxy held the change and had written its ACK. */
  lastReceived: number;
  /** apply() called → the control plane had recorded every proxy's ACK. */
  allAcked: number;
  /** apply() called → apply() resolved (validated, committed, fsynced). */
  applied: number;
  /** Store commit → registry derived and snapshot built (debounce + derivation). */
  commitToDerived: number;
  /** Snapshot built → last proxy received (fan-out over the streams). */
  fanOut: number;
  /** CPU time of the control plane's thread from apply to the last ACK (bench polling subtracted). */
  cpu: number;
  /** Resource body bytes each proxy received for this change. */
  bytes: number[];
}

type Placement = 'worker' | 'same thread';

interface PushRun {
  proxies: number;
  placement: Placement;
  samples: ChangeSample[];
  initialSyncBytes: readonly number[];
}

let nextAddress = 0;
/** Addresses no fixture workload uses (those end in 198.18.40.x), for the moved workload. */
function freshAddress(): string {
  const k = nextAddress++;
  return `198.18.${200 + Math.floor(k / 250)}.${1 + (k % 250)}`;
}

/** What proxies hold once workload 0 is at `address`: its WorkloadEntry and the Service selecting it. */
function movedExpectations(cp: ControlPlane, address: string): Expectation[] {
  const workload = cp.mesh.registry.workloads.find((w) => w.name === workloadName(0));
  const service = cp.mesh.registry.services.find((s) => s.name === serviceName(0));
  if (!workload || !service) throw new Error('the bench mesh lost workload 0 or service 0');
  // The workload's addresses and the service's endpoint both carry the new address, quoted in JSON.
  return [
    { type: TYPE.workload, name: workload.uid, contains: `"${address}"` },
    { type: TYPE.service, name: service.key, contains: `"${address}"` },
  ];
}

/** Moves workload 0 to a new address; its WorkloadEntry and the Service selecting it change. */
async function oneChange(cp: ControlPlane, fleet: ProxyFleet, shape: MeshShape): Promise<ChangeSample> {
  const address = freshAddress();
  const expectations = movedExpectations(cp, address);
  let committedAt: bigint | undefined;
  let derivedAt: bigint | undefined;
  let version: string | undefined;
  const unwatch = cp.store.watch(() => {
    committedAt ??= now();
  });
  // Before the stream's own listener, so this marks the snapshot built, not yet fanned out.
  const onDerived = (_registry: unknown, snapshot: { version: string }) => {
    derivedAt ??= now();
    version ??= snapshot.version;
  };
  cp.mesh.prependListener('derived', onDerived);
  try {
    const { arrived } = await fleet.expect(expectations);
    const t0 = now();
    const cpu0 = threadCpu();
    await cp.api.apply([workloadManifest(0, shape, address)]);
    const applied = now();
    const arrival = await withTimeout(arrived, `delivery of the change to all ${fleet.nodes.length} proxies`);
    const received = arrival.doneAt.map((at) => ms(at - t0));
    const acked = await controlPlaneSawAcks(cp, new Set(fleet.nodes), version!);
    const cpu = threadCpu() - cpu0 - acked.pollCpu;
    return {
      lastReceived: max(received),
      allAcked: ms(acked.at - t0),
      cpu,
      applied: ms(applied - t0),
      commitToDerived: ms(derivedAt! - committedAt!),
      fanOut: max(received) - ms(derivedAt! - t0),
      bytes: arrival.bytes,
    };
  } finally {
    unwatch();
    cp.mesh.off('derived', onDerived);
  }
}

async function pushRun(
  cp: ControlPlane,
  shape: MeshShape,
  creds: NodeCredential[],
  placement: Placement,
): Promise<PushRun> {
  const target = { address: cp.grpcAddress, trustDomain: cp.ca.trustDomain };
  const fleet =
    placement === 'worker' ? await WorkerFleet.start(target, creds) : await LocalFleet.start(target, creds);
  try {
    for (let i = 0; i < WARMUP_CHANGES; i++) await oneChange(cp, fleet, shape);
    const samples: ChangeSample[] = [];
    for (let i = 0; i < CHANGES; i++) samples.push(await oneChange(cp, fleet, shape));
    return { proxies: creds.length, placement, samples, initialSyncBytes: fleet.initialBytes };
  } finally {
    await fleet.stop();
  }
}

/** A control plane on 127.0.0.1 (ports chosen by the kernel) in `dataDir`, on `store` or its embedded one. */
function benchControlPlane(dataDir: string, store?: StoreChoice): Promise<ControlPlane> {
  return startControlPlane({
    dataDir,
    adminListen: '127.0.0.1:0',
    adminSocket: '',
    grpcListen: '127.0.0.1:0',
    ...(store ? { store } : {}),
  });
}

/** Applies the mesh of `shape` and waits until it is derived. */
async function loadMesh(cp: ControlPlane, shape: MeshShape): Promise<void> {
  // An apply carries at most 1,000 objects; namespaces come first in the manifests, so order holds.
  const manifests = meshManifests(shape);
  for (let i = 0; i < manifests.length; i += 1000) await cp.api.apply(manifests.slice(i, i + 1000));
  await derivedCurrent(cp);
}

/** Waits until the mesh has derived the store's current revision. */
async function derivedCurrent(cp: ControlPlane): Promise<void> {
  const deadline = Date.now() + CHANGE_TIMEOUT_MS;
  while (!cp.mesh.snapshot.version.startsWith(`${cp.store.revision}.`)) {
    if (Date.now() > deadline) throw new Error('the control plane did not derive the loaded mesh in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function snapshotBytes(cp: ControlPlane): { total: number; byType: Map<TypeUrl, number> } {
  const byType = new Map<TypeUrl, number>();
  let total = 0;
  for (const [type, items] of cp.mesh.snapshot.types) {
    let n = 0;
    for (const r of items.values()) n += r.body.length;
    byType.set(type, n);
    total += n;
  }
  return { total, byType };
}

async function pushBench(
  shape: MeshShape,
  opts: { store?: StoreSettings; fleets?: readonly number[]; placements?: readonly Placement[] } = {},
): Promise<{ runs: PushRun[]; full: ReturnType<typeof snapshotBytes>; changed: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-bench-control-'));
  let cp: ControlPlane | undefined;
  try {
    cp = await benchControlPlane(dir, opts.store ? await storeChoice(opts.store) : undefined);
    await loadMesh(cp, shape);
    const runs: PushRun[] = [];
    for (const n of opts.fleets ?? FLEETS) {
      const creds = await joinNodes(cp, `bench${n}`, n);
      for (const placement of opts.placements ?? PLACEMENTS)
        runs.push(await pushRun(cp, shape, creds, placement));
    }
    // What the one change is made of, in the final snapshot: the workload's body and its service's body.
    const w = cp.mesh.registry.workloads.find((x) => x.name === workloadName(0))!;
    const s = cp.mesh.registry.services.find((x) => x.name === serviceName(0))!;
    const changed =
      cp.mesh.snapshot.types.get(TYPE.workload)!.get(w.uid)!.body.length +
      cp.mesh.snapshot.types.get(TYPE.service)!.get(s.key)!.body.length;
    return { runs, full: snapshotBytes(cp), changed };
  } finally {
    await cp?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function bench(): Promise<BenchResult[]> {
  const rows: BenchResult[] = [];
  for (const [label, shape] of [
    ['1k', SHAPE_1K],
    ['10k', SHAPE_10K],
  ] as const) {
    const d = timeDerivation(shape, DERIVE_RUNS[label]);
    rows.push({
      name: `deriveRegistry, ${label} workloads + 1k services`,
      value: round(d.median),
      unit: 'ms',
      note: d.summary,
    });
  }

  const push = await pushBench(SHAPE_1K);
  for (const run of push.runs) {
    const col = (f: (s: ChangeSample) => number) => run.samples.map(f);
    const acked = col((s) => s.allAcked);
    const where =
      run.placement === 'worker' ? 'proxies in a worker thread' : "proxies in the control plane's thread";
    const breakdown = `median apply ${round(median(col((s) => s.applied)))} ms, commit→derived ${round(median(col((s) => s.commitToDerived)))} ms (${DEBOUNCE_MS} ms of it debounce), derived→last proxy ${round(median(col((s) => s.fanOut)))} ms`;
    rows.push(
      {
        name: `apply → ${run.proxies} proxies ACKed, ${where}: median`,
        value: round(median(acked)),
        unit: 'ms',
        note: `${run.samples.length} changes; ${breakdown}`,
      },
      {
        name: `apply → ${run.proxies} proxies ACKed, ${where}: max`,
        value: round(max(acked)),
        unit: 'ms',
        note: `last proxy held it and wrote its ACK: median ${round(median(col((s) => s.lastReceived)))} ms, max ${round(max(col((s) => s.lastReceived)))} ms`,
      },
      {
        name: `control plane thread CPU per change, ${run.proxies} proxies, ${where}: median`,
        value: round(median(col((s) => s.cpu))),
        unit: 'ms',
        note:
          run.placement === 'worker'
            ? 'apply to last ACK: validate, commit, derive, serialise, fan out, take ACKs; not the proxies'
            : "includes the proxies' own work (TLS, parsing, ACKs)",
      },
    );
  }

  const perChange = push.runs.flatMap((r) => r.samples.flatMap((s) => s.bytes));
  const initial = push.runs.flatMap((r) => r.initialSyncBytes);
  const change = median(perChange);
  const spread = `min ${Math.min(...perChange)}, max ${max(perChange)} over ${perChange.length} proxy-changes`;
  const types = [...push.full.byType]
    .map(([t, n]) => `${t.split('/')[1]} ${n.toLocaleString('en-US')}`)
    .join(', ');
  rows.push(
    {
      name: 'bytes per proxy for one changed WorkloadEntry',
      value: change,
      unit: 'B',
      note: `resource bodies (WorkloadEntry + the Service selecting it; snapshot says ${push.changed} B); ${spread}`,
    },
    {
      name: 'bytes of a full snapshot (a fresh proxy’s sync)',
      value: push.full.total,
      unit: 'B',
      note: `${types}; first sync measured at the proxies: min ${Math.min(...initial)}, max ${max(initial)} B`,
    },
    {
      name: 'full snapshot / one change',
      value: round(push.full.total / change, 0),
      unit: '×',
      note: `one change is ${((100 * change) / push.full.total).toFixed(3)}% of a resync from empty`,
    },
  );
  rows.push(...(await etcdRows(push.runs)));
  return rows;
}

/**
 * The etcd store beside the embedded one: apply → 100 proxies ACKed (proxies in a worker) and the rate
 * of sequential applies, each against the embedded store's figure from this run as the baseline.
 */
async function etcdRows(embedded: readonly PushRun[]): Promise<BenchResult[]> {
  const base = embedded.find((r) => r.proxies === 100 && r.placement === 'worker');
  if (!base) return [];
  if (!hasEtcd)
    return [{ name: 'etcd store: not measured (no etcd binary; install etcd-server)', value: 0, unit: '' }];
  // Limits raised so the 1,000-object applies that load the mesh fit one transaction each.
  const etcd = await launchEtcd(['--max-txn-ops', '2000', '--max-request-bytes', '16777216']);
  try {
    const store: StoreSettings = { store: 'etcd', etcdEndpoints: etcd.url, etcdMaxTxnOps: 2000 };
    const push = await pushBench(SHAPE_1K, { store, fleets: [100], placements: ['worker'] });
    const run = push.runs[0]!;
    const col = (r: PushRun, f: (s: ChangeSample) => number) => r.samples.map(f);
    const acked = (r: PushRun) => median(col(r, (s) => s.allAcked));
    const rate = (r: PushRun) => 1000 / median(col(r, (s) => s.applied));
    return [
      {
        name: 'etcd store: apply → 100 proxies ACKed, proxies in a worker thread: median',
        value: round(acked(run)),
        unit: 'ms',
        baseline: round(acked(base)),
        note: `${run.samples.length} changes, one local etcd member; baseline: the embedded store, this run`,
      },
      {
        name: 'etcd store: applies per second (one WorkloadEntry each, one after another)',
        value: round(rate(run)),
        unit: '/s',
        baseline: round(rate(base)),
        note: `median apply ${round(median(col(run, (s) => s.applied)), 2)} ms (embedded ${round(median(col(base, (s) => s.applied)), 2)} ms): the commit returns once etcd has it and the watch delivered it`,
      },
      ...(await twoReplicaRows(store, base)),
    ];
  } finally {
    await etcd.remove();
  }
}

/**
 * Two replicas on one etcd (the second given the first's CA), 50 proxies (in a worker) on each: a change
 * applied on one replica until all 100 have it and both replicas saw every ACK, and applies alternating
 * between the replicas (each commit then follows the other replica's), beside the embedded store.
 */
async function twoReplicaRows(settings: StoreSettings, base: PushRun): Promise<BenchResult[]> {
  const dirA = await mkdtemp(join(tmpdir(), 'ambit-bench-ha-'));
  const dirB = await mkdtemp(join(tmpdir(), 'ambit-bench-ha-'));
  const cps: ControlPlane[] = [];
  const fleets: ProxyFleet[] = [];
  try {
    const store = await storeChoice({ ...settings, etcdPrefix: '/bench-ha' });
    const a = await benchControlPlane(dirA, store);
    cps.push(a);
    await loadMesh(a, SHAPE_1K);
    await copyDir(join(dirA, 'ca'), join(dirB, 'ca'), { recursive: true });
    const b = await benchControlPlane(dirB, store);
    cps.push(b);
    await derivedCurrent(b);
    const creds = await joinNodes(a, 'ha', 100);
    const halves = [creds.slice(0, 50), creds.slice(50)];
    for (const [i, r] of [a, b].entries())
      fleets.push(
        await WorkerFleet.start({ address: r.grpcAddress, trustDomain: r.ca.trustDomain }, halves[i]!),
      );
    const pairs = [
      { cp: a, fleet: fleets[0]! },
      { cp: b, fleet: fleets[1]! },
    ];
    const acked: number[] = [];
    const applied: number[] = [];
    for (let i = 0; i < WARMUP_CHANGES + CHANGES; i++) {
      const s = await changeAcross(pairs, i % 2 === 0 ? a : b);
      if (i >= WARMUP_CHANGES) {
        acked.push(s.allAcked);
        applied.push(s.applied);
      }
    }
    const col = (f: (s: ChangeSample) => number) => base.samples.map(f);
    return [
      {
        name: 'etcd store, two replicas: apply on one → 100 proxies (50 on each) ACKed: median',
        value: round(median(acked)),
        unit: 'ms',
        baseline: round(median(col((s) => s.allAcked))),
        note: `${acked.length} changes, applied on each replica in turn; baseline: one embedded-store control plane with 100 proxies, this run`,
      },
      {
        name: 'etcd store, two replicas: applies per second, alternating replicas',
        value: round(1000 / median(applied)),
        unit: '/s',
        baseline: round(1000 / median(col((s) => s.applied))),
        note: `median apply ${round(median(applied), 2)} ms: each commit is built on the other replica's`,
      },
    ];
  } finally {
    for (const f of fleets) await f.stop();
    for (const c of cps.reverse()) await c.close();
    await rm(dirA, { recursive: true, force: true });
    await rm(dirB, { recursive: true, force: true });
  }
}

/** Workload 0 moved by an apply on `on`; done when every proxy of every replica holds it and each replica saw its proxies' ACKs. */
async function changeAcross(
  pairs: ReadonlyArray<{ cp: ControlPlane; fleet: ProxyFleet }>,
  on: ControlPlane,
): Promise<{ allAcked: number; applied: number }> {
  const address = freshAddress();
  const expectations = movedExpectations(on, address);
  const versions = new Map<ControlPlane, string>();
  const listeners = pairs.map(({ cp: c }) => {
    const onDerived = (_registry: unknown, snapshot: { version: string }) => {
      if (!versions.has(c)) versions.set(c, snapshot.version);
    };
    c.mesh.prependListener('derived', onDerived);
    return () => c.mesh.off('derived', onDerived);
  });
  try {
    const arrivals = await Promise.all(pairs.map(({ fleet }) => fleet.expect(expectations)));
    const t0 = now();
    await on.api.apply([workloadManifest(0, SHAPE_1K, address)]);
    const applied = now();
    await withTimeout(
      Promise.all(arrivals.map((x) => x.arrived)),
      'delivery of the change to the proxies of both replicas',
    );
    let last = t0;
    for (const { cp: c, fleet } of pairs) {
      const { at } = await controlPlaneSawAcks(c, new Set(fleet.nodes), versions.get(c)!);
      if (at > last) last = at;
    }
    return { allAcked: ms(last - t0), applied: ms(applied - t0) };
  } finally {
    for (const off of listeners) off();
  }
}

if (import.meta.main) {
  const { formatTable } = await import('./harness.ts');
  console.log(formatTable('Control plane: registry derivation and config push', await bench()));
}
