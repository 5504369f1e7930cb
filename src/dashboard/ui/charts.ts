// Golden-signal charts (uPlot) for a detail page: requests/s, success rate, latency percentiles and, for
// TCP, bytes/s. Each chart is a <figure> with a caption and the latest value in words, since a canvas says
// nothing to a screen reader; an empty series says "no data in this window" instead of drawing axes.

import uPlot from 'uplot';
import type { Points, Signals } from '../model.ts';
import { h } from './dom.ts';
import { formatBytesPerSecond, formatMs, formatNumber } from './format.ts';
import { onSchemeChange, readTheme, type Theme } from './theme.ts';

export type ChartId = 'rps' | 'success' | 'latency' | 'tcp';

interface Series {
  label: string;
  points: Points;
  /** A dash pattern, so that lines differ by more than colour. */
  dash?: number[];
}

interface ChartSpec {
  title: string;
  series: Series[];
  /** A value as the summary and the legend write it. */
  format(value: number): string;
  /** An axis tick. */
  tick(value: number): string;
  range?: uPlot.Scale.Range;
}

const HEIGHT = 180;

function specs(signals: Signals): Record<ChartId, ChartSpec> {
  const percent = (points: Points): Points => points.map(([t, v]) => [t, v * 100]);
  return {
    rps: {
      title: 'Requests per second',
      series: [{ label: 'requests/s', points: signals.requestsPerSecond }],
      format: (v) => `${formatNumber(v)} req/s`,
      tick: formatNumber,
    },
    success: {
      title: 'Success rate (not 5xx, gRPC OK)',
      series: [{ label: 'success %', points: percent(signals.successRate) }],
      format: (v) => `${formatNumber(v)}% success`,
      tick: (v) => `${formatNumber(v)}%`,
      // Up to 100%, and down far enough that a small dip is visible.
      range: (_u, min) => [Math.max(0, Math.min(Number.isFinite(min) ? min : 100, 95) - 1), 100],
    },
    latency: {
      title: 'Latency (ms): p50, p90, p99',
      series: [
        { label: 'p50', points: signals.p50Ms },
        { label: 'p90', points: signals.p90Ms, dash: [8, 4] },
        { label: 'p99', points: signals.p99Ms, dash: [2, 3] },
      ],
      format: formatMs,
      tick: formatNumber,
    },
    tcp: {
      title: 'TCP bytes per second (both directions)',
      series: [{ label: 'bytes/s', points: signals.tcpBytesPerSecond }],
      format: formatBytesPerSecond,
      tick: formatBytesPerSecond,
    },
  };
}

/** Which charts a page shows: the HTTP ones unless only TCP was seen, and TCP's when there is any. */
function shown(signals: Signals): ChartId[] {
  const http = [signals.requestsPerSecond, signals.successRate, signals.p50Ms, signals.p90Ms, signals.p99Ms];
  const hasHttp = http.some((p) => p.length > 0);
  const hasTcp = signals.tcpBytesPerSecond.length > 0;
  return [
    ...(hasHttp || !hasTcp ? (['rps', 'success', 'latency'] as const) : []),
    ...(hasTcp ? (['tcp'] as const) : []),
  ];
}

/** The series on one time axis (uPlot's form): the union of their times, null where one has no point. */
export function align(series: Points[]): uPlot.AlignedData {
  const times = [...new Set(series.flatMap((points) => points.map(([t]) => t)))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns = series.map((points) => {
    const column: Array<number | null> = times.map(() => null);
    for (const [t, v] of points) column[index.get(t) ?? 0] = Number.isFinite(v) ? v : null;
    return column;
  });
  return [times, ...columns];
}

class Chart {
  readonly element: HTMLElement;
  readonly #plotHost: HTMLElement;
  readonly #summary: HTMLElement;
  readonly #resize: ResizeObserver;
  #plot: uPlot | undefined;
  #spec: ChartSpec | undefined;

  constructor(id: ChartId) {
    this.#plotHost = h('div', { class: 'chart-plot', 'aria-hidden': 'true' });
    this.#summary = h('p', { class: 'chart-summary' });
    this.element = h(
      'figure',
      { class: 'chart', 'data-testid': `chart-${id}` },
      h('figcaption'),
      this.#plotHost,
      this.#summary,
    );
    this.#resize = new ResizeObserver(() => {
      const width = this.#width();
      if (this.#plot && width !== this.#plot.width) this.#plot.setSize({ width, height: HEIGHT });
    });
    this.#resize.observe(this.#plotHost);
  }

  update(spec: ChartSpec): void {
    this.#spec = spec;
    const caption = this.element.querySelector('figcaption');
    if (caption) caption.textContent = spec.title;
    this.#summary.textContent = summary(spec);
    if (spec.series.every((s) => s.points.length === 0)) {
      this.#destroyPlot();
      this.#plotHost.replaceChildren(h('p', { class: 'no-data' }, 'no data in this window'));
      return;
    }
    const data = align(spec.series.map((s) => s.points));
    if (this.#plot) this.#plot.setData(data);
    else this.#create(data);
  }

  /** Draws again in the current colours. */
  repaint(): void {
    if (!this.#plot || !this.#spec) return;
    const data = this.#plot.data;
    this.#destroyPlot();
    this.#create(data);
  }

  destroy(): void {
    this.#resize.disconnect();
    this.#destroyPlot();
  }

  #create(data: uPlot.AlignedData): void {
    if (!this.#spec) return;
    this.#plotHost.replaceChildren();
    this.#plot = new uPlot(options(this.#spec, readTheme(), this.#width()), data, this.#plotHost);
  }

  #destroyPlot(): void {
    this.#plot?.destroy();
    this.#plot = undefined;
  }

  #width(): number {
    return Math.max(240, Math.floor(this.#plotHost.clientWidth || 480));
  }
}

function options(spec: ChartSpec, theme: Theme, width: number): uPlot.Options {
  const axis = (values?: uPlot.Axis['values']): uPlot.Axis => ({
    stroke: theme.muted,
    grid: { stroke: theme.grid, width: 1 },
    ticks: { stroke: theme.grid, width: 1 },
    values,
  });
  return {
    width,
    height: HEIGHT,
    scales: { x: { time: true }, y: spec.range ? { range: spec.range } : {} },
    series: [
      {},
      ...spec.series.map(
        (s, i): uPlot.Series => ({
          label: s.label,
          stroke: theme.chart[i % theme.chart.length],
          width: 2,
          dash: s.dash,
          value: (_u, v) => (v === null || v === undefined ? '–' : spec.format(v)),
        }),
      ),
    ],
    axes: [
      { ...axis(timeTicks), space: 70 },
      { ...axis((_u, splits) => splits.map((v) => spec.tick(v))), size: axisWidth },
    ],
  };
}

/** Times on the x axis: hours and minutes, with seconds when the ticks are less than a minute apart. */
function timeTicks(_u: uPlot, splits: number[], _axis: number, _space: number, increment: number): string[] {
  const options: Intl.DateTimeFormatOptions =
    increment < 60
      ? { hour: '2-digit', minute: '2-digit', second: '2-digit' }
      : { hour: '2-digit', minute: '2-digit' };
  return splits.map((t) => new Date(t * 1000).toLocaleTimeString([], options));
}

/** Room for the y axis's longest tick label. */
function axisWidth(_u: uPlot, values: string[] | null): number {
  const longest = Math.max(0, ...(values ?? []).map((v) => v.length));
  return Math.max(40, longest * 7 + 18);
}

/** "latest: 12.3 req/s", "latest: p50 12 ms, p90 30 ms, p99 45 ms", or "no data in this window". */
function summary(spec: ChartSpec): string {
  const latest = spec.series
    .map((s) => ({ label: s.label, point: s.points.at(-1) }))
    .filter((s): s is { label: string; point: [number, number] } => s.point !== undefined);
  if (latest.length === 0) return 'no data in this window';
  const values = latest.map((s) => (spec.series.length > 1 ? `${s.label} ` : '') + spec.format(s.point[1]));
  const at = new Date(Math.max(...latest.map((s) => s.point[0])) * 1000).toLocaleTimeString();
  return `latest: ${values.join(', ')} (at ${at})`;
}

/** The charts of one detail page, updated in place on every refresh. */
export class SignalCharts {
  readonly element = h('div', { class: 'charts' });
  readonly #charts = new Map<ChartId, Chart>();
  readonly #stopSchemeWatch = onSchemeChange(() => {
    for (const chart of this.#charts.values()) chart.repaint();
  });

  update(signals: Signals): void {
    const all = specs(signals);
    const ids = shown(signals);
    for (const [id, chart] of this.#charts) {
      if (!ids.includes(id)) {
        chart.destroy();
        chart.element.remove();
        this.#charts.delete(id);
      }
    }
    for (const id of ids) {
      let chart = this.#charts.get(id);
      if (!chart) {
        chart = new Chart(id);
        this.#charts.set(id, chart);
      }
      // In order, whether new or not.
      this.element.append(chart.element);
      chart.update(all[id]);
    }
  }

  destroy(): void {
    this.#stopSchemeWatch();
    for (const chart of this.#charts.values()) chart.destroy();
    this.#charts.clear();
  }
}
