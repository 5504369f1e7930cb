// The overhead benchmark's charts, drawn from the report's JSON with Vega-Lite and rendered to SVG by
// Vega in this process (no browser: a headless View, `renderer: 'none'`, then `toSVG()`).

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { MODE_LABEL, MODES } from './lab.ts';
import type { FigureName, Report } from './report.ts';

const COLORS = ['#7f7f7f', '#1f77b4', '#2ca02c', '#d62728'];
const color = {
  field: 'mode',
  type: 'nominal',
  title: 'mode',
  scale: { domain: MODES.map((m) => MODE_LABEL[m]), range: COLORS },
  sort: MODES.map((m) => MODE_LABEL[m]),
  legend: { labelLimit: 400 },
};

/** A Vega-Lite spec as plain data; Vega-Lite validates it when compiling. */
type Spec = Record<string, unknown>;

async function render(spec: Spec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec as unknown as TopLevelSpec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** One point per mode and N: the median and the rounds' min and max. */
function points(r: Report, name: FigureName, modes: readonly string[] = MODES) {
  return r.scenarios
    .filter((s) => modes.includes(s.mode))
    .map((s) => ({
      mode: s.label,
      n: s.n,
      median: s.figures[name].median,
      min: s.figures[name].min,
      max: s.figures[name].max,
    }));
}

/** A figure against N, one line per mode, with the rounds' spread as error bars. */
function againstN(r: Report, name: FigureName, title: string, yTitle: string): Spec {
  const x = {
    field: 'n',
    type: 'quantitative',
    title: 'N (server pods on the node)',
    axis: { values: r.settings.ns },
    scale: { domain: [0, Math.max(...r.settings.ns)] },
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 520,
    height: 320,
    data: { values: points(r, name, ['ambient', 'waypoint', 'sidecar']) },
    layer: [
      {
        mark: { type: 'line', point: true },
        encoding: { x, y: { field: 'median', type: 'quantitative', title: yTitle }, color },
      },
      {
        mark: { type: 'errorbar', ticks: true },
        encoding: {
          x,
          y: { field: 'min', type: 'quantitative', title: yTitle },
          y2: { field: 'max' },
          color,
        },
      },
    ],
  };
}

/** Bars per mode, one panel per N; with `rule`, a horizontal line at that value. */
function barsByN(
  r: Report,
  data: Array<Record<string, unknown>>,
  title: string,
  yTitle: string,
  opts: { row?: string; rule?: number; logY?: boolean } = {},
): Spec {
  const x = {
    field: 'mode',
    type: 'nominal',
    title: null,
    sort: MODES.map((m) => MODE_LABEL[m]),
    axis: { labelAngle: -30 },
  };
  const y = {
    field: 'median',
    type: 'quantitative',
    title: opts.logY ? `${yTitle} (log scale)` : yTitle,
    ...(opts.logY ? { scale: { type: 'log' }, stack: null } : {}),
  };
  const bar = {
    mark: { type: 'bar' },
    encoding: { x, y, color },
  };
  const spread = {
    mark: { type: 'errorbar', ticks: true },
    encoding: { x, y: { ...y, field: 'min' }, y2: { field: 'max' } },
  };
  const rule =
    opts.rule === undefined
      ? []
      : [{ mark: { type: 'rule', strokeDash: [4, 4] }, encoding: { y: { datum: opts.rule } } }];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values: data },
    facet: {
      column: { field: 'N', type: 'ordinal', sort: r.settings.ns, title: 'N (server pods)' },
      ...(opts.row ? { row: { field: opts.row, type: 'nominal', title: null } } : {}),
    },
    spec: { width: 190, height: opts.row ? 200 : 260, layer: [bar, spread, ...rule] },
    // With rows (p50, p99), each row its own scale: a p99 would flatten the p50s.
    resolve: { scale: { y: opts.row ? 'independent' : 'shared' } },
  };
}

/** Each chart's file name and spec. */
export function chartSpecs(r: Report): Record<string, Spec> {
  const withN = (name: FigureName, modes: readonly string[] = MODES) =>
    points(r, name, modes).map((p) => ({ ...p, N: p.n }));
  const latency = r.scenarios.flatMap((s) =>
    (['p50Ms', 'p99Ms'] as const).map((q) => ({
      mode: s.label,
      N: s.n,
      percentile: q.slice(0, 3),
      median: s.figures[q].median,
      min: s.figures[q].min,
      max: s.figures[q].max,
    })),
  );
  const ladder = r.scenarios.flatMap((s) =>
    s.ladder.map((l) => ({ mode: s.label, N: s.n, percentile: l.percentile, ms: l.ms })),
  );
  return {
    'overhead-rss.svg': againstN(r, 'rssMiB', 'Total proxy memory against N (RSS under load)', 'MiB'),
    'overhead-cpu.svg': againstN(
      r,
      'cpuPer1k',
      'Proxy CPU per 1,000 req/s against N',
      'vCPU per 1,000 req/s',
    ),
    'overhead-latency.svg': barsByN(
      r,
      latency,
      `Latency at ${r.settings.rate} req/s (open loop): p50 and p99`,
      'ms',
      { row: 'percentile' },
    ),
    'overhead-latency-distribution.svg': {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: 'Latency distribution (all rounds pooled): latency at each percentile',
      data: { values: ladder },
      facet: { column: { field: 'N', type: 'ordinal', sort: r.settings.ns, title: 'N (server pods)' } },
      spec: {
        width: 220,
        height: 260,
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'percentile', type: 'ordinal', title: 'percentile', sort: null },
          y: { field: 'ms', type: 'quantitative', title: 'ms (log scale)', scale: { type: 'log' } },
          color,
        },
      },
    },
    'overhead-throughput.svg': barsByN(
      r,
      withN('achievedRps'),
      `Achieved rate (offered: ${r.settings.rate} req/s)`,
      'req/s',
      { rule: r.settings.rate },
    ),
    'overhead-enroll.svg': barsByN(
      r,
      withN('enrollS', ['ambient', 'waypoint', 'sidecar']),
      'Time to enroll the N pods (ambient: a label; waypoint: a Gateway and a label; sidecars: a restart)',
      'seconds',
      { logY: true },
    ),
  };
}

/** Renders every chart into `dir`; returns the file names written. */
export async function writeCharts(r: Report, dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const [file, spec] of Object.entries(chartSpecs(r))) {
    await writeFile(join(dir, file), await render(spec));
    out.push(file);
  }
  return out;
}
