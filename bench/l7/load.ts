// The L7 benchmark's two load generators, run inside a client pod, and what is read around them: wrk at
// saturation (closed loop, keep-alive) and http-load.ts at a fixed rate (open loop), each optionally
// sending extra request headers (a JWT); the CPU seconds and highest RSS of the proxy processes a run
// goes through; percentiles of the latencies.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../src/lab/index.ts';
import { cpuSeconds, rssKiB } from '../l4/proc.ts';

const LOAD = join(dirname(fileURLToPath(import.meta.url)), 'http-load.ts');

/** Where a path's client runs and the address:port it asks for. */
export interface Endpoint {
  client: string;
  host: string;
  port: number;
}

/** A proxy process counted for a path: its role (`ztunnel node-1`, `waypoint`, …) and pid. */
export type Procs = Record<string, number>;
/** CPU seconds, KiB, … per proxy role. */
export type ByProc = Record<string, number>;

export interface WrkRun {
  requests: number;
  seconds: number;
  /** Responses other than 2xx/3xx and socket errors (connect, read, write, timeout), as wrk counts them. */
  non2xx: number;
  socketErrors: number;
}

export interface SatRun extends WrkRun {
  cpu: ByProc;
}

/** What http-load.ts prints. */
export interface LoadRun {
  requests: number;
  completed: number;
  failed: number;
  connectionErrors: number;
  firstFailure?: string;
  seconds: number;
  /** Requests answered 200, per target in the order given. */
  perTarget: number[];
  latencies: number[];
}

/** http-load.ts's JSON line from its run in `client`; its stderr when it failed. */
export function loadOutput(r: { code: number; stdout: string; stderr: string }, client: string): LoadRun {
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.code !== 0 || !last.startsWith('{')) {
    throw new Error(`http-load.ts in ${client} exited ${r.code}: ${r.stderr.trim() || r.stdout}`);
  }
  return JSON.parse(last) as LoadRun;
}

export interface LatRun extends Omit<LoadRun, 'latencies'> {
  cpu: ByProc;
  /** Highest VmRSS (KiB) sampled every 250 ms during the run. */
  rssMax: ByProc;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  recorded: number;
}

/** The open-loop generator's settings: RATE requests/s over CONNS connections, warm-up then recorded. */
export interface RateSettings {
  rate: number;
  conns: number;
  warmupMs: number;
  runMs: number;
}

/** CPU seconds per role; NaN for a process gone meanwhile (a waypoint that died: its restart is counted). */
export async function cpuOf(procs: Procs): Promise<ByProc> {
  const out: ByProc = {};
  for (const [role, pid] of Object.entries(procs)) out[role] = await cpuSeconds(pid).catch(() => Number.NaN);
  return out;
}

export const minus = (a: ByProc, b: ByProc): ByProc =>
  Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - (b[k] ?? 0)]));

/** One wrk run (one thread, `conns` connections, `ms` long) from the path's client, with extra headers. */
export async function wrk(
  lab: Lab,
  e: Endpoint,
  ms: number,
  conns: number,
  headers: readonly string[] = [],
): Promise<WrkRun> {
  const r = await lab.exec(
    e.client,
    [
      'wrk',
      '-t1',
      `-c${conns}`,
      `-d${ms / 1000}s`,
      ...headers.flatMap((h) => ['-H', h]),
      `http://${e.host}:${e.port}/`,
    ],
    { timeoutMs: ms + 30_000 },
  );
  const done = /(\d+) requests in ([\d.]+)(m?s)/.exec(r.stdout);
  if (r.code !== 0 || !done) throw new Error(`wrk in ${e.client} exited ${r.code}: ${r.stderr || r.stdout}`);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(r.stdout);
  return {
    requests: Number(done[1]),
    seconds: Number(done[2]) / (done[3] === 'ms' ? 1000 : 1),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1] ?? 0),
    socketErrors: socket ? socket.slice(1).reduce((n, x) => n + Number(x), 0) : 0,
  };
}

/** wrk at saturation, and the CPU the given processes used over the run. */
export async function saturate(
  lab: Lab,
  e: Endpoint,
  procs: Procs,
  ms: number,
  conns: number,
  headers: readonly string[] = [],
): Promise<SatRun> {
  const before = await cpuOf(procs);
  const run = await wrk(lab, e, ms, conns, headers);
  return { ...run, cpu: minus(await cpuOf(procs), before) };
}

/** One open-loop run at the given rate, the processes' CPU over it and their highest RSS sampled during it. */
export async function atRate(
  lab: Lab,
  e: Endpoint,
  procs: Procs,
  s: RateSettings,
  headers: readonly string[] = [],
): Promise<LoadRun & LatRun> {
  const rssMax: ByProc = {};
  const sample = async () => {
    for (const [role, pid] of Object.entries(procs)) {
      const kib = await rssKiB(pid).catch(() => 0);
      rssMax[role] = Math.max(rssMax[role] ?? 0, kib);
    }
  };
  await sample();
  const before = await cpuOf(procs);
  const sampler = setInterval(() => void sample(), 250);
  let r: Awaited<ReturnType<typeof lab.exec>>;
  try {
    r = await lab.exec(
      e.client,
      [
        process.execPath,
        LOAD,
        String(s.rate),
        String(s.conns),
        String(s.warmupMs),
        String(s.runMs),
        `${e.host}:${e.port}`,
        ...headers,
      ],
      { timeoutMs: s.warmupMs + s.runMs + 30_000 },
    );
  } finally {
    clearInterval(sampler);
  }
  const cpu = minus(await cpuOf(procs), before);
  await sample();
  return { ...loadOutput(r, e.client), cpu, rssMax };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** p50, p90, p99 and max of the samples (sorted in place). */
export function percentiles(samples: number[]): Percentiles {
  const all = samples.sort((a, b) => a - b);
  return {
    p50: percentile(all, 50),
    p90: percentile(all, 90),
    p99: percentile(all, 99),
    max: all.at(-1) ?? Number.NaN,
    recorded: all.length,
  };
}
