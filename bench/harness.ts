// What every benchmark module returns, and how `npm run bench` prints it: one table per module, each
// row an absolute figure, and where a baseline was measured in the same run, the ratio beside it.

import { availableParallelism } from 'node:os';

export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  /** The same quantity for the baseline measured alongside (same process tree, same time). */
  baseline?: number;
  note?: string;
}

/** What `npm run bench -- NAME… --FLAG…` passes on to every module it runs (modules may ignore it). */
export interface BenchOptions {
  /** `--quick`: a shorter run (fewer sizes, fewer rounds) that still covers every scenario. */
  quick: boolean;
  /** Every `--…` argument as given, for flags a module reads itself. */
  flags: string[];
}

export type Bench = (options?: BenchOptions) => Promise<BenchResult[]>;

/** `n` to `digits` decimals, as a number. */
export const round = (n: number, digits = 3): number => Number(n.toFixed(digits));

/** The host's 1-minute load average at the start and end of a run, with how many CPUs it has. */
export function loadAverageRows(load: { start: number; end: number }): BenchResult[] {
  const cpus = availableParallelism();
  return (['start', 'end'] as const).map((when) => ({
    name: `host 1-min load average at ${when}`,
    value: round(load[when], 2),
    unit: '',
    note: `${cpus} CPUs; load beyond what the benchmark makes itself skews the figures`,
  }));
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs >= 1000) return Math.round(n).toLocaleString('en-US');
  if (abs >= 10) return n.toFixed(1);
  return n.toPrecision(3);
}

export function formatTable(title: string, rows: BenchResult[]): string {
  const cells = rows.map((r) => [
    r.name,
    `${fmt(r.value)} ${r.unit}`,
    r.baseline === undefined ? '' : `${fmt(r.baseline)} ${r.unit}`,
    r.baseline === undefined || r.baseline === 0 ? '' : `${(r.value / r.baseline).toFixed(2)}×`,
    r.note ?? '',
  ]);
  const headers = ['measurement', 'value', 'baseline', 'ratio', 'note'];
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(widths[i]!)).join(' | ')} |`;
  return [`## ${title}`, '', line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join(
    '\n',
  );
}
