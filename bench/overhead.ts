// Overhead benchmark (lab, root): what the mesh costs a node as it fills with pods, in four modes measured
// in one run — direct (no mesh), ambient L4 (the two ztunnels), ambient with a waypoint for the
// namespace, and sidecars (every pod its own proxy, a sidecar pair on every request) — for N = 1, 10 and
// 50 server pods on node-2 with a client pod on node-1 sending a fixed total rate spread over them (open
// loop). Per mode and N: total proxy RSS, proxy CPU per 1,000 req/s, p50/p99 and the latency added
// against direct, the achieved rate and errors, and the time to enroll the N pods (ambient: a label;
// sidecars: a restart). Writes bench/results/latest.{json,md} and SVG charts (AMBIT_BENCH_RESULTS=<dir>
// writes them there instead; `--quick` defaults to bench/results/quick/), and returns the harness's rows.
// `npm run bench -- overhead [--quick]`; docs/benchmarks.md explains the method.
// Settings: AMBIT_BENCH_OVERHEAD_NS=1,10 (sizes), AMBIT_BENCH_OVERHEAD_ROUNDS, AMBIT_BENCH_OVERHEAD_RATE.

import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { meshDown, meshUp } from '../src/cli/up.ts';
import type { BenchOptions, BenchResult } from './harness.ts';
import { writeCharts } from './overhead/charts.ts';
import {
  type Enrollment,
  enrollAmbient,
  enrollSidecars,
  enrollWaypoint,
  type Fleet,
  MODE_LABEL,
  MODES,
  type Mode,
  mtlsConnections,
  procsOf,
  removeWaypoint,
  settle,
  setUpFleet,
  tearDownFleet,
} from './overhead/lab.ts';
import { connsPerTarget, type LoadSettings, loadRun, type Run } from './overhead/measure.ts';
import {
  benchRows,
  FIGURES,
  markdown,
  type Report,
  relate,
  type Scenario,
  scenario,
  targets,
} from './overhead/report.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

interface Plan {
  ns: number[];
  rounds: number;
  load: LoadSettings;
  /** An unrecorded run before each mode's rounds (the proxies' JIT and connection pools warm up). */
  warmRunMs: number;
  /** Longest wait for the host to go quiet after a mode change (50 sidecars starting load both cores). */
  settleMs: number;
  /** The quiet window before each round in which the proxies' idle CPU is read. */
  idleMs: number;
}

function plan(quick: boolean): Plan {
  const env = process.env;
  const ns = env.AMBIT_BENCH_OVERHEAD_NS?.split(',').map(Number) ?? (quick ? [1, 10] : [1, 10, 50]);
  return {
    ns,
    rounds: Number(env.AMBIT_BENCH_OVERHEAD_ROUNDS ?? (quick ? 1 : 3)),
    load: {
      rate: Number(env.AMBIT_BENCH_OVERHEAD_RATE ?? 500),
      warmupMs: quick ? 500 : 1_000,
      runMs: quick ? 2_500 : 5_000,
      sampleMs: 500,
    },
    warmRunMs: quick ? 2_000 : 5_000,
    settleMs: quick ? 3_000 : 15_000,
    idleMs: quick ? 1_000 : 2_000,
  };
}

/** Whether `ambit ztunnel|waypoint|sidecar` run from dist/daemons (bin/ambit.js's own test). */
function daemonsFromBuild(): boolean {
  try {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'dist/daemons/manifest.json'), 'utf8')) as {
      builtAt: number;
      sources: string[];
    };
    return manifest.sources.every((s) => {
      try {
        return statSync(join(ROOT, s)).mtimeMs <= manifest.builtAt;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

const log = (msg: string) => console.error(`[overhead ${new Date().toISOString().slice(11, 19)}] ${msg}`);

/** The unrecorded warm-up, then the rounds, each with the mode's proxies read afresh. */
async function measure(
  mesh: Awaited<ReturnType<typeof meshUp>>,
  f: Fleet,
  mode: Mode,
  p: Plan,
): Promise<Run[]> {
  const { lab } = mesh;
  await loadRun(lab, f, await procsOf(lab, f, mode), { ...p.load, warmupMs: 0, runMs: p.warmRunMs });
  const runs: Run[] = [];
  for (let r = 0; r < p.rounds; r++) {
    const run = await loadRun(lab, f, await procsOf(lab, f, mode), p.load, p.idleMs);
    log(
      `N=${f.n} ${mode} round ${r + 1}: ${run.achievedRps.toFixed(0)} req/s, ${run.proxies} proxies, RSS ${(run.rssKiB / 1024).toFixed(0)} MiB, CPU ${run.cpuSeconds.toFixed(2)} s (idle ${run.idleCores.toFixed(3)} cores), ${run.failed + run.connectionErrors} errors, host ${(run.hostBusy * 100).toFixed(0)} % busy`,
    );
    runs.push(run);
  }
  return runs;
}

/** One size: the fleet, then direct, ambient, the waypoint and the sidecars in turn, then the fleet removed. */
async function measureSize(
  mesh: Awaited<ReturnType<typeof meshUp>>,
  n: number,
  p: Plan,
  dir: string,
  last: boolean,
): Promise<Scenario[]> {
  const t0 = performance.now();
  const f = await setUpFleet(mesh, n, dir);
  log(`N=${n}: ${n} servers and the client up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const out: Scenario[] = [];
  try {
    const done = async (mode: Mode, enrollments: Enrollment[]) => {
      if (enrollments.length > 0)
        log(`N=${n} ${mode}: enrolled in ${enrollments.map((e) => e.seconds.toFixed(2)).join(', ')} s`);
      await settle(p.settleMs);
      const runs = await measure(mesh, f, mode, p);
      out.push(scenario(mode, n, runs, enrollments, await mtlsConnections(mesh.lab, f, mode)));
    };
    await done('direct', []);

    const ambient: Enrollment[] = [];
    for (let r = 0; r < p.rounds; r++) ambient.push(await enrollAmbient(mesh, f));
    await done('ambient', ambient);

    const waypoint: Enrollment[] = [];
    for (let r = 0; r < p.rounds; r++) waypoint.push(await enrollWaypoint(mesh, f, r > 0));
    await done('waypoint', waypoint);

    // Sidecars: no ambient label and no waypoint; the pods themselves carry the injection label.
    await removeWaypoint(mesh, f, {});
    const sidecar: Enrollment[] = [];
    for (let r = 0; r < p.rounds; r++) {
      // A short wait only: the restart itself loads both cores, whatever the previous one left.
      if (r > 0) await settle(Math.min(p.settleMs, 5_000));
      sidecar.push(await enrollSidecars(mesh, f));
    }
    await done('sidecar', sidecar);
  } finally {
    // The last size's pods go with the lab (meshDown), which is quicker than one by one.
    if (!last) await tearDownFleet(mesh, f);
  }
  return out;
}

function resultsDir(quick: boolean): string {
  return process.env.AMBIT_BENCH_RESULTS ?? join(ROOT, 'bench', 'results', ...(quick ? ['quick'] : []));
}

export async function bench(options?: BenchOptions): Promise<BenchResult[]> {
  if (process.getuid?.() !== 0)
    return [{ name: 'overhead benchmark', value: 0, unit: '', note: 'skipped: needs root' }];
  const quick = options?.quick ?? false;
  const p = plan(quick);
  const started = performance.now();
  const startLoad = loadavg()[0]!;
  const fromBuild = daemonsFromBuild();
  if (!fromBuild)
    log('the daemons will run from the TypeScript sources: the build in dist/ is stale (npm run build)');
  const home = await mkdtemp(join(tmpdir(), 'ambit-bench-overhead-'));
  const lab = `oh${randomBytes(3).toString('hex')}`;
  const scenarios: Scenario[] = [];
  try {
    const mesh = await meshUp({ home, lab, nodes: 2 });
    log(`mesh up (lab ${lab}); N = ${p.ns.join(', ')}, ${p.rounds} round(s), ${p.load.rate} req/s`);
    for (const [i, n] of p.ns.entries())
      scenarios.push(...(await measureSize(mesh, n, p, home, i === p.ns.length - 1)));
  } finally {
    await meshDown({ home, lab });
    await rm(home, { recursive: true, force: true });
  }
  relate(scenarios);
  const report: Report = {
    benchmark: 'overhead',
    generatedAt: new Date().toISOString(),
    quick,
    durationS: Math.round((performance.now() - started) / 100) / 10,
    host: {
      cpus: availableParallelism(),
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.versions.node,
      loadAverage: { start: startLoad, end: loadavg()[0]! },
    },
    daemonsFromBuild: fromBuild,
    settings: {
      ns: p.ns,
      rounds: p.rounds,
      rate: p.load.rate,
      warmupMs: p.load.warmupMs,
      runMs: p.load.runMs,
      connsPerTarget: Object.fromEntries(p.ns.map((n) => [String(n), connsPerTarget(n)])),
      server: 'haproxy (one thread) answering 200 itself, one per server pod, behind a Service of its own',
    },
    modes: MODES.map((mode) => ({
      mode,
      label: MODE_LABEL[mode],
      counts: {
        direct: 'no proxy',
        ambient: 'the ztunnels of both nodes',
        waypoint: 'the ztunnels of both nodes and the waypoint replica',
        sidecar:
          'every sidecar: the N servers’ and the client’s (the ztunnels, idle node agents here, are reported beside)',
      }[mode],
    })),
    figureNames: FIGURES,
    scenarios,
    targets: targets(scenarios),
  };
  const dir = resultsDir(quick);
  await mkdir(dir, { recursive: true });
  const charts = await writeCharts(report, dir);
  await writeFile(join(dir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join(dir, 'latest.md'), markdown(report, charts));
  log(`wrote ${join(dir, 'latest.json')}, latest.md and ${charts.length} charts in ${report.durationS} s`);
  return benchRows(report);
}
