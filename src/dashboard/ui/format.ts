// Numbers, rates, sizes, durations and times as the page writes them. Numbers are written the same way
// whatever the browser's language (the page's words are English); times in the browser's own format.

const numberFormats = new Map<number, Intl.NumberFormat>();

/** A number with as many decimals as matter at its size: 1234, 123.4, 12.34, 0.012. */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const size = Math.abs(n);
  if (size === 0) return '0';
  if (size < 0.01) return n > 0 ? '<0.01' : '>-0.01';
  const digits = size >= 100 ? 0 : size >= 10 ? 1 : 2;
  let format = numberFormats.get(digits);
  if (!format) {
    format = new Intl.NumberFormat('en-US', { maximumFractionDigits: digits, useGrouping: false });
    numberFormats.set(digits, format);
  }
  return format.format(n);
}

export function formatRps(rps: number): string {
  return `${formatNumber(rps)} rps`;
}

/** A ratio 0..1 as a percentage: 0%, <0.1%, 1.2%, 100%. */
export function formatPercent(ratio: number): string {
  const pct = ratio * 100;
  if (pct === 0) return '0%';
  if (pct > 0 && pct < 0.1) return '<0.1%';
  if (pct < 100 && pct > 99.9) return '>99.9%';
  return `${formatNumber(pct)}%`;
}

export function formatMs(ms: number): string {
  return `${formatNumber(ms)} ms`;
}

/** Bytes per second with a decimal unit (1 KB = 1000 bytes). */
export function formatBytesPerSecond(bps: number): string {
  const units = ['B/s', 'KB/s', 'MB/s', 'GB/s'];
  let value = bps;
  let unit = 0;
  while (Math.abs(value) >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  // Below 1 KB/s still in KB/s, as a fraction: a TCP edge's rate reads the same way on every edge.
  if (unit === 0 && value !== 0) return `${formatNumber(value / 1000)} KB/s`;
  return `${formatNumber(value)} ${units[unit]}`;
}

/** A span of time in the two largest units that matter: "45 s", "3 min 20 s", "3 h 20 min", "2 d 4 h". */
export function formatDuration(seconds: number): string {
  const s = Math.round(Math.abs(seconds));
  const parts: Array<[number, string]> = [
    [Math.floor(s / 86400), 'd'],
    [Math.floor((s % 86400) / 3600), 'h'],
    [Math.floor((s % 3600) / 60), 'min'],
    [s % 60, 's'],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  if (first < 0) return '0 s';
  return parts
    .slice(first, first + 2)
    .filter(([n]) => n > 0)
    .map(([n, unit]) => `${n} ${unit}`)
    .join(' ');
}

/** "expires in 3 h 20 min" or "expired 2 h ago". */
export function formatExpiry(expiresInSeconds: number): string {
  return expiresInSeconds >= 0
    ? `expires in ${formatDuration(expiresInSeconds)}`
    : `expired ${formatDuration(expiresInSeconds)} ago`;
}

/** An ISO time in the browser's format: the time alone if it is today, with the date otherwise. */
export function formatTime(iso: string | Date): string {
  const date = typeof iso === 'string' ? new Date(iso) : iso;
  if (Number.isNaN(date.getTime())) return String(iso);
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleString();
}

export function yesNo(value: boolean): string {
  return value ? 'yes' : 'no';
}
