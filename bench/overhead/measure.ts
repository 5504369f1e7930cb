// One measured load run of the overhead benchmark: the open-loop generator (bench/l7/http-load.ts) in the client
// pod, at a fixed total rate spread over the N servers, with the CPU seconds of every proxy process over
// the run and their resident memory sampled through it (/proc, as bench/l4/proc.ts reads it).

import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../src/lab/index.ts';
import { rssKiB } from '../l4/proc.ts';
import { type ByProc, cpuOf, type LoadRun, loadOutput, minus, type Procs } from '../l7/load.ts';
import type { Fleet, ModeProcs } from './lab.ts';

const LOAD = join(dirname(fileURLToPath(import.meta.url)), '../l7/http-load.ts');

/** The host's CPU time so far (all cores, in clock ticks): busy and total, from /proc/stat. */
export async function hostTicks(): Promise<{ busy: number; total: number }> {
  const v = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - (v[3] ?? 0) - (v[4] ?? 0), total };
}

/** The share of all the host's cores that was busy between two readings (0–1). */
export const busyShare = (a: { busy: number; total: number }, b: { busy: number; total: number }): number =>
  (b.busy - a.busy) / Math.max(1, b.total - a.total);

/** CPU cores the processes used over `ms` of no load (what the proxies cost doing nothing). */
export async function idleCores(procs: Procs, ms: number): Promise<number> {
  const before = await cpuOf(procs);
  await new Promise((r) => setTimeout(r, ms));
  const used = minus(await cpuOf(procs), before);
  return Object.values(used).reduce((a, b) => a + b, 0) / (ms / 1000);
}

export interface LoadSettings {
  /** Total requests per second over all servers. */
  rate: number;
  warmupMs: number;
  runMs: number;
  /** How often the proxies' RSS is sampled during the run. */
  sampleMs: number;
}

/** Keep-alive connections per server: 16 in all for one server, at least one each for many. */
export const connsPerTarget = (n: number): number => Math.max(1, Math.ceil(16 / n));

/** What one run measured; CPU and RSS per proxy kind (`ztunnel`, `waypoint`, `sidecar`, …). */
export interface Run extends Omit<LoadRun, 'perTarget' | 'latencies'> {
  achievedRps: number;
  /** Requests answered 200 per server: every server had its share. */
  perTargetMin: number;
  perTargetMax: number;
  /** The counted proxies: how many processes, their CPU seconds over the run, RSS before and highest total during it. */
  proxies: number;
  cpuSeconds: number;
  idleRssKiB: number;
  rssKiB: number;
  /** The same per kind of proxy (summed over processes of a kind) and for the processes beside them. */
  byKind: Record<string, { processes: number; cpuSeconds: number; rssKiB: number }>;
  beside: Record<string, { cpuSeconds: number; rssKiB: number }>;
  /** Share of all the host's cores busy during the run (everything: load, servers, proxies, other work). */
  hostBusy: number;
  /** The host's 1-minute load average when the run ended. */
  loadAverage: number;
  /** Cores the counted proxies used over a quiet window just before the run (no load). */
  idleCores: number;
  /** How many of the counted processes run from the TypeScript sources, not the build (its log says so). */
  fromSources: number;
  /** Recorded latencies (ms), after the warm-up. */
  latencies: number[];
}

const kindOf = (role: string) => role.split(' ')[0]!;

async function rssOf(procs: Procs): Promise<ByProc> {
  const out: ByProc = {};
  await Promise.all(
    Object.entries(procs).map(async ([role, pid]) => {
      out[role] = await rssKiB(pid).catch(() => 0);
    }),
  );
  return out;
}

const total = (x: ByProc) => Object.values(x).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);

/** One run at `s.rate` from the fleet's client to all its servers, with the mode's proxies read around it. */
export async function loadRun(
  lab: Lab,
  f: Fleet,
  procs: ModeProcs,
  s: LoadSettings,
  idleMs = 0,
): Promise<Run> {
  const idle = idleMs > 0 ? await idleCores(procs.counted, idleMs) : 0;
  const all = { ...procs.counted, ...procs.beside };
  const idleRss = await rssOf(procs.counted);
  const rssMax: ByProc = { ...idleRss };
  let highestTotal = total(idleRss);
  const besideRss = await rssOf(procs.beside);
  let sampling = Promise.resolve();
  const sample = () => {
    sampling = sampling.then(async () => {
      const now = await rssOf(all);
      let t = 0;
      for (const [role, kib] of Object.entries(now)) {
        rssMax[role] = Math.max(rssMax[role] ?? 0, kib);
        if (role in procs.counted) t += kib;
        else besideRss[role] = Math.max(besideRss[role] ?? 0, kib);
      }
      highestTotal = Math.max(highestTotal, t);
    });
  };
  const before = await cpuOf(all);
  const host = await hostTicks();
  const timer = setInterval(sample, s.sampleMs);
  let r: Awaited<ReturnType<typeof lab.exec>>;
  try {
    r = await lab.exec(
      f.client,
      [
        process.execPath,
        LOAD,
        String(s.rate),
        String(connsPerTarget(f.n)),
        String(s.warmupMs),
        String(s.runMs),
        f.targets.join(','),
      ],
      { timeoutMs: s.warmupMs + s.runMs + 60_000 },
    );
  } finally {
    clearInterval(timer);
  }
  const cpu = minus(await cpuOf(all), before);
  const hostBusy = busyShare(host, await hostTicks());
  sample();
  await sampling;
  const out = loadOutput(r, f.client);
  const byKind: Run['byKind'] = {};
  for (const role of Object.keys(procs.counted)) {
    const k = byKind[kindOf(role)] ?? { processes: 0, cpuSeconds: 0, rssKiB: 0 };
    byKind[kindOf(role)] = k;
    k.processes++;
    k.cpuSeconds += cpu[role] ?? 0;
    k.rssKiB += rssMax[role] ?? 0;
  }
  const beside: Run['beside'] = {};
  for (const role of Object.keys(procs.beside)) {
    const key = kindOf(role) === 'ztunnel' ? 'ztunnels' : role;
    const k = beside[key] ?? { cpuSeconds: 0, rssKiB: 0 };
    beside[key] = k;
    k.cpuSeconds += cpu[role] ?? 0;
    k.rssKiB += besideRss[role] ?? 0;
  }
  const counted = Object.keys(procs.counted);
  const fromSources = (
    await Promise.all(
      procs.logs.map(async (log) =>
        (await readFile(log, 'utf8').catch(() => '')).includes('running from the sources'),
      ),
    )
  ).filter(Boolean).length;
  return {
    requests: out.requests,
    completed: out.completed,
    failed: out.failed,
    connectionErrors: out.connectionErrors,
    ...(out.firstFailure ? { firstFailure: out.firstFailure } : {}),
    seconds: out.seconds,
    achievedRps: out.completed / out.seconds,
    perTargetMin: Math.min(...out.perTarget),
    perTargetMax: Math.max(...out.perTarget),
    proxies: counted.length,
    cpuSeconds: counted.reduce((a, role) => a + (cpu[role] ?? 0), 0),
    idleRssKiB: total(idleRss),
    rssKiB: highestTotal,
    byKind,
    beside,
    hostBusy,
    loadAverage: loadavg()[0]!,
    idleCores: idle,
    fromSources,
    latencies: out.latencies,
  };
}
