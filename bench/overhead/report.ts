// The overhead benchmark's figures: per mode and N, each figure over the rounds (values, median, min,
// max) with its ratio to direct, to ambient L4 and to the sidecars at the same N; the issue's targets
// with MET / NOT MET; and the Markdown report (bench/results/latest.md) written from the same JSON.

import { type BenchResult, round } from '../harness.ts';
import { percentiles } from '../l7/load.ts';
import { type Enrollment, MODE_LABEL, MODES, type Mode } from './lab.ts';
import type { Run } from './measure.ts';

export interface Figure {
  /** One value per round, in the order measured. */
  values: number[];
  median: number;
  min: number;
  max: number;
  /** median ÷ the same figure's median for direct / ambient L4 / sidecars at the same N (null: not meaningful). */
  vsDirect: number | null;
  vsAmbient: number | null;
  vsSidecar: number | null;
}

export const FIGURES = {
  rssMiB: 'total proxy RSS, highest sample during the load (MiB)',
  idleRssMiB: 'total proxy RSS just before the load (MiB)',
  cpuPer1k: 'proxy CPU per 1,000 req/s (vCPU)',
  idleCores: 'proxy CPU with no load, just before the run (cores)',
  p50Ms: 'latency p50 (ms)',
  p99Ms: 'latency p99 (ms)',
  addedP50Ms: 'p50 added vs direct at the same N (ms)',
  addedP99Ms: 'p99 added vs direct at the same N (ms)',
  achievedRps: 'achieved rate (req/s)',
  errors: 'failed, unanswered and connection errors',
  enrollS: 'time to enroll the N pods (s)',
  hostBusy: 'host CPU busy during the run, everything on it (share of all cores)',
} as const;
export type FigureName = keyof typeof FIGURES;

/** A run as kept in the JSON: its figures, without the raw samples. */
export type RunRecord = Omit<Run, 'latencies'> & {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
};

export interface Scenario {
  mode: Mode;
  label: string;
  n: number;
  /** The proxy processes counted, by kind (e.g. {ztunnel: 2, waypoint: 1}). */
  proxies: Record<string, number>;
  enrollments: Enrollment[];
  runs: RunRecord[];
  /** All rounds' samples pooled. */
  pooled: { p50: number; p90: number; p99: number; p999: number; max: number; recorded: number };
  /** The pooled latency at these percentiles, for the distribution chart. */
  ladder: Array<{ percentile: number; ms: number }>;
  /** Connections the servers' side reported as mutual TLS for the namespace, after the runs (0 for direct). */
  mtlsConnections: number;
  figures: Record<FigureName, Figure>;
}

export interface Target {
  name: string;
  /** The issue's words. */
  target: string;
  measured: string;
  met: boolean;
}

export interface Report {
  benchmark: 'overhead';
  generatedAt: string;
  quick: boolean;
  durationS: number;
  host: { cpus: number; memoryGiB: number; node: string; loadAverage: { start: number; end: number } };
  /** Whether the daemons ran from the esbuild bundles (dist/daemons) rather than the TypeScript sources. */
  daemonsFromBuild: boolean;
  settings: {
    ns: number[];
    rounds: number;
    rate: number;
    warmupMs: number;
    runMs: number;
    connsPerTarget: Record<string, number>;
    server: string;
  };
  modes: Array<{ mode: Mode; label: string; counts: string }>;
  figureNames: typeof FIGURES;
  scenarios: Scenario[];
  targets: Target[];
}

const LADDER = [1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function at(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function figure(values: number[]): Figure {
  return {
    values: values.map((v) => round(v, 4)),
    median: round(median(values), 4),
    min: round(Math.min(...values), 4),
    max: round(Math.max(...values), 4),
    vsDirect: null,
    vsAmbient: null,
    vsSidecar: null,
  };
}

/** A scenario from its runs (with their samples) and enrollments; ratios and added latency come later. */
export function scenario(
  mode: Mode,
  n: number,
  runs: Run[],
  enrollments: Enrollment[],
  mtlsConnections: number,
): Scenario {
  const records: RunRecord[] = runs.map(({ latencies, ...r }) => {
    const p = percentiles([...latencies]);
    return { ...r, p50Ms: p.p50, p90Ms: p.p90, p99Ms: p.p99, maxMs: p.max };
  });
  const pooled = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const perRun = (f: (r: RunRecord) => number) => figure(records.map(f));
  const mib = (kib: number) => kib / 1024;
  const proxies: Record<string, number> = {};
  for (const [kind, k] of Object.entries(records[0]?.byKind ?? {})) proxies[kind] = k.processes;
  return {
    mode,
    label: MODE_LABEL[mode],
    n,
    proxies,
    enrollments,
    runs: records,
    pooled: {
      p50: at(pooled, 50),
      p90: at(pooled, 90),
      p99: at(pooled, 99),
      p999: at(pooled, 99.9),
      max: pooled.at(-1) ?? Number.NaN,
      recorded: pooled.length,
    },
    ladder: LADDER.map((percentile) => ({ percentile, ms: at(pooled, percentile) })),
    mtlsConnections,
    figures: {
      rssMiB: perRun((r) => mib(r.rssKiB)),
      idleRssMiB: perRun((r) => mib(r.idleRssKiB)),
      cpuPer1k: perRun((r) => r.cpuSeconds / r.seconds / (r.achievedRps / 1000)),
      idleCores: perRun((r) => r.idleCores),
      p50Ms: perRun((r) => r.p50Ms),
      p99Ms: perRun((r) => r.p99Ms),
      // Filled in by `relate`, against direct's medians.
      addedP50Ms: perRun(() => 0),
      addedP99Ms: perRun(() => 0),
      achievedRps: perRun((r) => r.achievedRps),
      errors: perRun((r) => r.failed + r.connectionErrors + (r.requests - r.completed)),
      enrollS: figure(enrollments.length > 0 ? enrollments.map((e) => e.seconds) : [0]),
      hostBusy: perRun((r) => r.hostBusy),
    },
  };
}

/** Added latency against direct at the same N, and every figure's ratios to direct, ambient and sidecars. */
export function relate(scenarios: Scenario[]): void {
  const find = (mode: Mode, n: number) => scenarios.find((s) => s.mode === mode && s.n === n);
  for (const s of scenarios) {
    const direct = find('direct', s.n);
    if (direct) {
      s.figures.addedP50Ms = figure(s.figures.p50Ms.values.map((v) => v - direct.figures.p50Ms.median));
      s.figures.addedP99Ms = figure(s.figures.p99Ms.values.map((v) => v - direct.figures.p99Ms.median));
    }
  }
  const ratio = (a: number, b: number | undefined) =>
    // Only against a positive figure: an added latency at or below zero (noise) has no meaningful ratio.
    b === undefined || !(b > 0) || !Number.isFinite(b) || !Number.isFinite(a) ? null : round(a / b, 4);
  for (const s of scenarios) {
    for (const name of Object.keys(s.figures) as FigureName[]) {
      const f = s.figures[name];
      f.vsDirect = ratio(f.median, find('direct', s.n)?.figures[name].median);
      f.vsAmbient = ratio(f.median, find('ambient', s.n)?.figures[name].median);
      f.vsSidecar = ratio(f.median, find('sidecar', s.n)?.figures[name].median);
    }
  }
}

/** The issue's targets at the largest N measured (50 in a full run). */
export function targets(scenarios: Scenario[]): Target[] {
  const n = Math.max(...scenarios.map((s) => s.n));
  const get = (mode: Mode) => scenarios.find((s) => s.mode === mode && s.n === n);
  const w = get('waypoint');
  const a = get('ambient');
  const sc = get('sidecar');
  if (!w || !a || !sc) return [];
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const memShare = w.figures.rssMiB.median / sc.figures.rssMiB.median;
  const cpuShare = w.figures.cpuPer1k.median / sc.figures.cpuPer1k.median;
  const out: Target[] = [
    {
      name: `memory at N = ${n}`,
      target: 'ambient (ztunnel + one waypoint) total memory ≤ 10 % of the sidecars’ total',
      measured: `${w.figures.rssMiB.median.toFixed(0)} MiB vs ${sc.figures.rssMiB.median.toFixed(0)} MiB = ${pct(memShare)} (ambient L4 alone: ${pct(a.figures.rssMiB.median / sc.figures.rssMiB.median)})`,
      met: memShare <= 0.1,
    },
    {
      name: `CPU per 1,000 req/s at N = ${n}`,
      target: 'ambient (ztunnel + one waypoint) CPU per 1,000 requests/s ≤ 50 % of the sidecars’',
      measured: `${w.figures.cpuPer1k.median.toFixed(3)} vs ${sc.figures.cpuPer1k.median.toFixed(3)} vCPU = ${pct(cpuShare)} (ambient L4 alone: ${pct(a.figures.cpuPer1k.median / sc.figures.cpuPer1k.median)})`,
      met: cpuShare <= 0.5,
    },
  ];
  for (const q of ['P50', 'P99'] as const) {
    const key = `added${q}Ms` as const;
    const amb = a.figures[key].median;
    const side = sc.figures[key].median;
    out.push({
      name: `latency ${q.toLowerCase()} at N = ${n}`,
      target: 'ambient L4 adds less latency than a sidecar pair',
      measured: `ambient L4 +${amb.toFixed(3)} ms vs sidecars +${side.toFixed(3)} ms (${q.toLowerCase()} over direct, median of rounds)`,
      met: amb < side,
    });
  }
  return out;
}

const fmt = (x: number, digits: number) =>
  Number.isFinite(x)
    ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '–';
const times = (r: number | null) => (r === null ? '' : `${r < 0.1 ? r.toFixed(3) : r.toFixed(2)}×`);

/** `median (min–max)`, one value when there was one round. */
function cell(f: Figure, digits: number, signed = false): string {
  const one = (x: number) => `${signed && x >= 0 ? '+' : ''}${fmt(x, digits)}`;
  return f.values.length > 1 ? `${one(f.median)} (${one(f.min)}–${one(f.max)})` : one(f.median);
}

function table(
  r: Report,
  name: FigureName,
  digits: number,
  opts: { ratio?: 'vsDirect' | 'vsAmbient' | 'vsSidecar'; modes?: readonly Mode[]; signed?: boolean } = {},
): string {
  const ns = r.settings.ns;
  const modes = opts.modes ?? MODES;
  const head = `| mode | ${ns.map((n) => `N = ${n}`).join(' | ')} |\n| --- | ${ns.map(() => '---').join(' | ')} |`;
  const rows = modes.map((mode) => {
    const cells = ns.map((n) => {
      const s = r.scenarios.find((x) => x.mode === mode && x.n === n);
      if (!s) return '–';
      const f = s.figures[name];
      if (mode === 'direct' && (name === 'rssMiB' || name === 'cpuPer1k' || name === 'idleCores'))
        return '0 (no proxy)';
      const rat = opts.ratio ? times(f[opts.ratio]) : '';
      return `${cell(f, digits, opts.signed)}${rat ? `; ${rat}` : ''}`;
    });
    return `| ${MODE_LABEL[mode]} | ${cells.join(' | ')} |`;
  });
  return [head, ...rows].join('\n');
}

/** Whether the proxies ran from the build (dist/daemons), as their logs said. */
function fromBuild(r: Report): string {
  const worst = Math.max(0, ...r.scenarios.flatMap((s) => s.runs.map((x) => x.fromSources ?? 0)));
  if (worst > 0)
    return `up to ${worst} measured proxy process(es) in a run ran from the TypeScript sources (a source changed after the build), not from dist/daemons`;
  return r.daemonsFromBuild
    ? 'every proxy ran from the build (dist/daemons)'
    : 'the build was stale at the start';
}

/** bench/results/latest.md: the tables, the targets, the charts, and how the figures were taken. */
export function markdown(r: Report, charts: string[]): string {
  const ns = r.settings.ns;
  const big = Math.max(...ns);
  const lines: string[] = [];
  lines.push(
    `# Ambient versus sidecars: the overhead benchmark${r.quick ? ' (quick run)' : ''}`,
    '',
    `\`npm run bench -- overhead${r.quick ? ' --quick' : ''}\`, ${r.generatedAt}, ${r.durationS.toFixed(0)} s; ${r.host.cpus} CPUs, ${r.host.memoryGiB} GiB, Node ${r.host.node}; load average ${r.host.loadAverage.start.toFixed(2)} at the start, ${r.host.loadAverage.end.toFixed(2)} at the end; ${fromBuild(r)}.`,
    '',
    `N = ${ns.join(', ')} server pods on node-2, one client pod on node-1; ${r.settings.rate} req/s in all (open loop, split evenly over the N servers; ${Object.entries(
      r.settings.connsPerTarget,
    )
      .map(([n, c]) => `${c} keep-alive connection${c === 1 ? '' : 's'} per server at N = ${n}`)
      .join(
        ', ',
      )}); ${r.settings.rounds} round${r.settings.rounds === 1 ? '' : 's'} of ${r.settings.warmupMs / 1000} s warm-up + ${r.settings.runMs / 1000} s recorded per mode and N. Server: ${r.settings.server}. Cells: median of the rounds (min–max)${r.settings.rounds === 1 ? ' — one round, so one value' : ''}; ratios as noted. docs/benchmarks.md explains the method.`,
    '',
    `## Targets (N = ${big})`,
    '',
    '| target | measured | verdict |',
    '| --- | --- | --- |',
    ...r.targets.map((t) => `| ${t.target} | ${t.measured} | **${t.met ? 'MET' : 'NOT MET'}** |`),
    '',
    '## Total proxy memory (RSS, MiB): the sidecar tax',
    '',
    'Every proxy process serving the traffic: both ztunnels (ambient), plus the waypoint replica (waypoint), or every sidecar (N servers + the client). The highest total sampled during the load; ratio to the sidecars at the same N.',
    '',
    table(r, 'rssMiB', 0, { ratio: 'vsSidecar' }),
    '',
    '## Proxy CPU per 1,000 req/s (vCPU)',
    '',
    'CPU seconds of the same processes over the run ÷ seconds ÷ (achieved req/s ÷ 1,000); ratio to the sidecars at the same N.',
    '',
    table(r, 'cpuPer1k', 3, { ratio: 'vsSidecar' }),
    '',
    '## Proxy CPU with no load (cores)',
    '',
    'The same processes over a quiet window just before each run (no requests): what the proxies cost doing nothing; ratio to the sidecars at the same N.',
    '',
    table(r, 'idleCores', 3, { ratio: 'vsSidecar' }),
    '',
    `## Latency at ${r.settings.rate} req/s (open loop)`,
    '',
    'p50 and p99 of each round; ratio to direct at the same N.',
    '',
    '**p50 (ms)**',
    '',
    table(r, 'p50Ms', 3, { ratio: 'vsDirect' }),
    '',
    '**p99 (ms)**',
    '',
    table(r, 'p99Ms', 3, { ratio: 'vsDirect' }),
    '',
    '**p50 added vs direct (ms)**; ratio to ambient L4',
    '',
    table(r, 'addedP50Ms', 3, {
      modes: ['ambient', 'waypoint', 'sidecar'],
      signed: true,
      ratio: 'vsAmbient',
    }),
    '',
    '**p99 added vs direct (ms)**; ratio to ambient L4',
    '',
    table(r, 'addedP99Ms', 3, {
      modes: ['ambient', 'waypoint', 'sidecar'],
      signed: true,
      ratio: 'vsAmbient',
    }),
    '',
    '## Time to enroll the N pods (s)',
    '',
    'Ambient: from the namespace label to every pod address in its node’s capture set. Waypoint: from applying the Gateway to every Service answering through it (replica started, Programmed, namespace labelled). Sidecars: a restart — every pod removed, then created again with the injection label (the lab makes pods one at a time) — until every sidecar runs, is SYNCED and carries a request. Ratio to ambient L4.',
    '',
    table(r, 'enrollS', 2, { modes: ['ambient', 'waypoint', 'sidecar'], ratio: 'vsAmbient' }),
    '',
    '## Achieved rate (req/s) and errors',
    '',
    table(r, 'achievedRps', 1, { ratio: 'vsDirect' }),
    '',
    table(r, 'errors', 0),
    '',
    '## Host CPU busy during the runs (share of both cores, everything on the host)',
    '',
    'The load generator, the servers, the proxies, the control plane and whatever else ran on the host: a round much busier than its neighbours was disturbed from outside.',
    '',
    table(r, 'hostBusy', 2),
    '',
    '## Beside the counted proxies',
    '',
    '| mode | N | proxies counted | mTLS seen by the servers’ side: connections opened, as node-2’s ztunnel reports them (sidecars: requests, as the first server’s sidecar reports them) | control plane RSS (MiB) | node agents (ztunnels) in sidecar mode: RSS (MiB), vCPU per 1,000 req/s |',
    '| --- | --- | --- | --- | --- | --- |',
    ...r.scenarios.map((s) => {
      const last = s.runs.at(-1);
      const cp = last?.beside['control plane'];
      const z = s.mode === 'sidecar' ? last?.beside.ztunnels : undefined;
      const per1k = (cpu: number) => (last ? cpu / last.seconds / (last.achievedRps / 1000) : Number.NaN);
      return `| ${s.label} | ${s.n} | ${
        Object.entries(s.proxies)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ') || 'none'
      } | ${s.mode === 'direct' ? '–' : s.mtlsConnections} | ${cp ? fmt(cp.rssKiB / 1024, 0) : '–'} | ${z ? `${fmt(z.rssKiB / 1024, 0)}, ${fmt(per1k(z.cpuSeconds), 3)}` : '–'} |`;
    }),
    '',
    '## Charts',
    '',
    ...charts.map((c) => `![${c}](${c})`),
    '',
  );
  return `${lines.join('\n')}\n`;
}

/** The harness's table: the headline figures per mode and N, and the targets. */
export function benchRows(r: Report): BenchResult[] {
  const out: BenchResult[] = [];
  const spread = (f: Figure, d: number) =>
    f.values.length > 1 ? `min ${fmt(f.min, d)}, max ${fmt(f.max, d)}; ` : '';
  for (const n of r.settings.ns) {
    const sc = r.scenarios.find((s) => s.mode === 'sidecar' && s.n === n);
    const direct = r.scenarios.find((s) => s.mode === 'direct' && s.n === n);
    for (const s of r.scenarios.filter((x) => x.n === n)) {
      const f = s.figures;
      if (s.mode !== 'direct') {
        out.push({
          name: `N=${n} ${s.label}: total proxy RSS`,
          value: round(f.rssMiB.median, 1),
          unit: 'MiB',
          ...(sc && s.mode !== 'sidecar' ? { baseline: round(sc.figures.rssMiB.median, 1) } : {}),
          note: `${spread(f.rssMiB, 0)}${Object.entries(s.proxies)
            .map(([k, v]) => `${v} ${k}`)
            .join(', ')}; baseline: sidecars`,
        });
        out.push({
          name: `N=${n} ${s.label}: proxy CPU per 1,000 req/s`,
          value: round(f.cpuPer1k.median, 4),
          unit: 'vCPU',
          ...(sc && s.mode !== 'sidecar' ? { baseline: round(sc.figures.cpuPer1k.median, 4) } : {}),
          note: `${spread(f.cpuPer1k, 3)}baseline: sidecars`,
        });
      }
      out.push({
        name: `N=${n} ${s.label}: p50 / p99`,
        value: round(f.p50Ms.median, 3),
        unit: 'ms',
        ...(direct && s.mode !== 'direct' ? { baseline: round(direct.figures.p50Ms.median, 3) } : {}),
        note: `p99 ${fmt(f.p99Ms.median, 3)} ms${s.mode === 'direct' ? '' : ` (added p50 ${fmt(f.addedP50Ms.median, 3)}, p99 ${fmt(f.addedP99Ms.median, 3)} ms)`}; ${fmt(f.achievedRps.median, 1)} req/s achieved, ${f.errors.median} errors; baseline: direct`,
      });
      if (s.mode !== 'direct') {
        out.push({
          name: `N=${n} ${s.label}: time to enroll`,
          value: round(f.enrollS.median, 2),
          unit: 's',
          note: `${spread(f.enrollS, 2)}${s.mode === 'sidecar' ? 'a restart of every pod' : s.mode === 'waypoint' ? 'Gateway to every Service through it' : 'label to capture'}`,
        });
      }
    }
  }
  for (const t of r.targets) {
    out.push({
      name: `target: ${t.name}`,
      value: t.met ? 1 : 0,
      unit: '',
      note: `${t.met ? 'MET' : 'NOT MET'}: ${t.measured}`,
    });
  }
  return out;
}
