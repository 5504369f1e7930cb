// What each request feature costs the waypoint, measured in the L7 benchmark's run after the path
// comparison: the plain waypoint, then the waypoint with one feature applied (features.ts), in rounds
// that visit all of them in turn so host noise lands on each alike. Per configuration: an unrecorded wrk
// warm-up (the feature's code and connections warm up on it), wrk at saturation, the open-loop generator
// at a fixed rate, and what the feature's backend saw of those requests. Rows: each feature against the
// plain waypoint of the same run, as a ratio (req/s, CPU per request) or a difference (p50, p99).

import { loadavg } from 'node:os';
import type { Lab } from '../../src/lab/index.ts';
import { type BenchResult, round } from '../harness.ts';
import type { Evidence, Feature, FeatureName } from './features.ts';
import {
  atRate,
  type Endpoint,
  type LatRun,
  type Percentiles,
  type Procs,
  percentiles,
  type RateSettings,
  type SatRun,
  saturate,
  wrk,
} from './load.ts';

export interface CostMethod {
  rounds: number;
  /** Unrecorded wrk run before each configuration's measurement. */
  warmMs: number;
  satMs: number;
  satConns: number;
  rate: RateSettings;
}

export interface ConfigFigures {
  label: string;
  sat: SatRun[];
  lat: LatRun[];
  latency: Percentiles;
  evidence: Evidence[];
  /** What the load carrying the feature's refused headers got (proves the load's headers are read). */
  refused?: string;
}

export interface CostFigures {
  plain: ConfigFigures;
  features: Partial<Record<FeatureName, ConfigFigures>>;
  method: CostMethod;
  /** The host's 1-minute load average when the phase's rounds started and ended. */
  load: { start: number; end: number };
}

/** Both generators send the headers the feature must refuse; every request must be refused. */
async function checkRefused(lab: Lab, e: Endpoint, f: Feature, m: CostMethod, procs: Procs): Promise<string> {
  const headers = f.refusedHeaders ?? [];
  const w = await wrk(lab, e, 1_000, m.satConns, headers);
  if (w.requests === 0 || w.non2xx !== w.requests)
    throw new Error(
      `${f.label}: wrk with refused headers got ${w.non2xx} refusals of ${w.requests} requests`,
    );
  const o = await atRate(lab, e, procs, { ...m.rate, warmupMs: 0, runMs: 500 }, headers);
  if (o.completed === 0 || o.failed !== o.completed)
    throw new Error(`${f.label}: http-load with refused headers got ${o.failed} refusals of ${o.completed}`);
  return `wrk ${w.non2xx}/${w.requests} and http-load ${o.failed}/${o.completed} refused (${o.firstFailure})`;
}

/**
 * The plain waypoint and each feature in turn, `rounds` times. `procs` reads the processes to count
 * afresh (a waypoint may restart); `backends` are the feature backends' processes (Redis, the sink).
 */
export async function measureCosts(
  lab: Lab,
  e: Endpoint,
  procs: () => Promise<Procs>,
  backends: Procs,
  features: readonly Feature[],
  m: CostMethod,
): Promise<CostFigures> {
  const configs: Array<Feature | undefined> = [undefined, ...features];
  const runs = new Map<Feature | undefined, ConfigFigures & { samples: number[] }>();
  for (const f of configs) {
    runs.set(f, {
      label: f?.label ?? 'plain waypoint',
      sat: [],
      lat: [],
      latency: percentiles([]),
      evidence: [],
      samples: [],
    });
  }
  // The plain waypoint warms up first (in a costs-only run nothing has loaded it yet).
  await wrk(lab, e, 2 * m.warmMs, m.satConns);
  const loadAtStart = loadavg()[0]!;
  for (let r = 0; r < m.rounds; r++) {
    // Odd rounds run backwards (plain, A, B, …, then …, B, A, plain): a drift over the phase (the host's
    // load, the waypoint's heap) falls on every configuration alike instead of on the last ones.
    for (const f of r % 2 === 0 ? configs : [...configs].reverse()) {
      const into = runs.get(f)!;
      const headers = f?.headers ?? [];
      await f?.apply();
      let measured = false;
      try {
        const counted = { ...(await procs()), ...backends };
        if (f?.refusedHeaders && r === 0) into.refused = await checkRefused(lab, e, f, m, counted);
        await wrk(lab, e, m.warmMs, m.satConns, headers);
        await f?.reset?.();
        const sat = await saturate(lab, e, counted, m.satMs, m.satConns, headers);
        const { latencies, ...lat } = await atRate(lab, e, counted, m.rate, headers);
        into.sat.push(sat);
        into.lat.push(lat);
        into.samples.push(...latencies);
        if (f?.evidence) into.evidence.push(await f.evidence(sat.requests + lat.completed));
        measured = true;
      } finally {
        // A failed removal after a failed measurement must not hide the measurement's error.
        await f?.remove().catch((err: unknown) => {
          if (measured) throw err;
        });
      }
    }
  }
  const out: CostFigures = {
    plain: undefined as unknown as ConfigFigures,
    features: {},
    method: m,
    load: { start: loadAtStart, end: loadavg()[0]! },
  };
  for (const [f, { samples, ...figures }] of runs) {
    const done = { ...figures, latency: percentiles(samples) };
    if (f) out.features[f.name] = done;
    else out.plain = done;
  }
  return out;
}

const sum = <T>(xs: T[], fn: (x: T) => number) => xs.reduce((n, x) => n + fn(x), 0);

/** Saturated req/s over all rounds. */
const rps = (c: ConfigFigures) => sum(c.sat, (r) => r.requests) / sum(c.sat, (r) => r.seconds);
/** The waypoint's CPU per request (µs) over the fixed-rate runs. */
const cpuPerRequest = (c: ConfigFigures, role = 'waypoint') =>
  (sum(c.lat, (r) => r.cpu[role] ?? 0) / sum(c.lat, (r) => r.completed)) * 1e6;
/** The waypoint's CPU per request (µs) at saturation. */
const satCpuPerRequest = (c: ConfigFigures) =>
  (sum(c.sat, (r) => r.cpu.waypoint ?? 0) / sum(c.sat, (r) => r.requests)) * 1e6;

/** The rate the open loop achieved: well under the rate asked, the latencies are queueing, not cost. */
function achieved(c: ConfigFigures): string {
  const rate = sum(c.lat, (r) => r.completed) / sum(c.lat, (r) => r.seconds);
  return `${Math.round(rate)} req/s achieved`;
}

/** The rows: each feature against the plain waypoint of the same phase. */
export function costRows(f: CostFigures): BenchResult[] {
  const out: BenchResult[] = [];
  const { plain, method: m } = f;
  const rate = m.rate.rate.toLocaleString('en-US');
  const all = Object.entries(f.features) as Array<[FeatureName, ConfigFigures]>;
  const satNote = `wrk -t1 -c${m.satConns}, ${plain.sat.length} × ${m.satMs / 1000} s; baseline: plain waypoint, same phase`;
  out.push({
    name: 'saturated req/s, plain waypoint (feature phase)',
    value: Math.round(rps(plain)),
    unit: 'req/s',
    note: `${satNote.split(';')[0]}; waypoint CPU ${Math.round(satCpuPerRequest(plain))} µs/request`,
  });
  for (const [, c] of all) {
    out.push({
      name: `saturated req/s, + ${c.label}`,
      value: Math.round(rps(c)),
      unit: 'req/s',
      baseline: Math.round(rps(plain)),
      note: `${satNote}; waypoint CPU ${Math.round(satCpuPerRequest(c))} µs/request`,
    });
  }
  out.push({
    name: `waypoint CPU per request at ${rate} req/s, plain waypoint`,
    value: Math.round(cpuPerRequest(plain)),
    unit: 'µs',
    note: 'waypoint process only (utime + stime over the fixed-rate runs ÷ requests answered)',
  });
  for (const [name, c] of all) {
    const backend =
      name === 'ratelimit'
        ? `; redis-server ${Math.round(cpuPerRequest(c, 'redis'))} µs/request beside it`
        : name === 'tracing'
          ? `; the span sink ${Math.round(cpuPerRequest(c, 'sink'))} µs/request beside it`
          : '';
    out.push({
      name: `waypoint CPU per request at ${rate} req/s, + ${c.label}`,
      value: Math.round(cpuPerRequest(c)),
      unit: 'µs',
      baseline: Math.round(cpuPerRequest(plain)),
      note: `added ${Math.round(cpuPerRequest(c) - cpuPerRequest(plain))} µs${backend}`,
    });
  }
  const l = plain.latency;
  out.push({
    name: `p50 / p99 at ${rate} req/s, plain waypoint (feature phase)`,
    value: round(l.p50),
    unit: 'ms',
    note: `p90 ${round(l.p90)}, p99 ${round(l.p99)}, max ${round(l.max)} ms; ${l.recorded} recorded; ${achieved(plain)}`,
  });
  for (const [, c] of all) {
    for (const q of ['p50', 'p99'] as const) {
      out.push({
        name: `${q} added by ${c.label}`,
        value: round(c.latency[q] - l[q]),
        unit: 'ms',
        note: `${round(c.latency[q])} ms with, ${round(l[q])} ms without, at ${rate} req/s, open loop; ${c.latency.recorded} recorded; ${achieved(c)}`,
      });
    }
  }
  for (const [, c] of all) {
    if (c.evidence.length === 0) continue;
    out.push({
      name: `in effect: ${c.label}`,
      value: round(sum(c.evidence, (x) => x.ratio) / c.evidence.length),
      unit: '×',
      note: `per request answered; ${c.evidence.map((x) => x.note).join(' | ')}`,
    });
  }
  for (const [, c] of all) {
    if (c.refused)
      out.push({ name: `in effect: ${c.label}, forged token`, value: 1, unit: '', note: c.refused });
  }
  for (const c of [plain, ...all.map(([, x]) => x)]) {
    const bad =
      sum(c.sat, (x) => x.non2xx + x.socketErrors) + sum(c.lat, (x) => x.failed + x.connectionErrors);
    const lost = sum(c.lat, (x) => x.requests - x.completed);
    const first = c.lat.find((x) => x.firstFailure)?.firstFailure;
    out.push({
      name: `errors, ${c === plain ? 'plain waypoint (feature phase)' : `+ ${c.label}`}`,
      value: bad + lost,
      unit: '',
      note: `wrk non-2xx ${sum(c.sat, (x) => x.non2xx)}, socket errors ${sum(c.sat, (x) => x.socketErrors)}; at rate: failed ${sum(c.lat, (x) => x.failed)}, connection errors ${sum(c.lat, (x) => x.connectionErrors)}, unanswered ${lost}${first ? ` (first: ${first})` : ''}`,
    });
  }
  // Round 1 runs plain, then each feature in turn: each step shows what loading that feature kept.
  const rssMiB = (c: ConfigFigures) => Math.round((c.lat[0]?.rssMax.waypoint ?? Number.NaN) / 1024);
  const highest = Math.max(
    ...[plain, ...all.map(([, c]) => c)].flatMap((c) => c.lat.map((r) => r.rssMax.waypoint ?? 0)),
  );
  out.push({
    name: 'waypoint RSS over the feature phase (highest sample)',
    value: round((highest * 1024) / 1e6, 1),
    unit: 'MB',
    note: `round 1, highest sample at ${rate} req/s: ${[plain, ...all.map(([, c]) => c)].map((c) => `${c.label} ${rssMiB(c)}`).join(' → ')} MiB (modules a feature loads stay loaded)`,
  });
  out.push({
    name: 'host 1-min load average, feature phase start / end',
    value: round(f.load.start, 2),
    unit: '',
    note: `${round(f.load.end, 2)} at its end; load beyond what the benchmark makes itself skews the figures`,
  });
  return out;
}
