// `redis-benchmark` SET and GET from a client pod, read from its CSV output into requests per second.
// It never gives up on a server it cannot reach (it retries for ever), hence the hard timeout.

import type { Lab } from '../../src/lab/index.ts';

export interface RedisBenchmarkOptions {
  /** Parallel connections (`-c`). */
  conns: number;
  /** Requests per test (`-n`). */
  requests: number;
  /** SET value size in bytes (`-d`). */
  size: number;
  timeoutMs: number;
}

/** One redis-benchmark run: requests per second of each test, as it reports them. */
export interface RedisRun {
  set: number;
  get: number;
}

/**
 * The `rps` column per test from `redis-benchmark --csv` (redis 7: a header line naming the columns,
 * then one quoted line per test).
 */
export function parseRedisCsv(text: string): Record<string, number> {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('"'));
  const cells = (line: string) => line.split(',').map((c) => c.replace(/^"|"$/g, ''));
  const header = cells(lines[0] ?? '');
  const rps = header.indexOf('rps');
  if (header[0] !== 'test' || rps < 0) throw new Error(`redis-benchmark printed no CSV header: ${text}`);
  const out: Record<string, number> = {};
  for (const line of lines.slice(1)) {
    const c = cells(line);
    out[c[0]!] = Number(c[rps]);
  }
  return out;
}

export async function redisBenchmark(
  lab: Lab,
  client: string,
  host: string,
  port: number,
  o: RedisBenchmarkOptions,
): Promise<RedisRun> {
  const argv = ['redis-benchmark', '-h', host, '-p', String(port), '-t', 'set,get'];
  argv.push('-c', String(o.conns), '-n', String(o.requests), '-d', String(o.size), '--csv');
  const r = await lab.exec(client, argv, { timeoutMs: o.timeoutMs });
  const where = `redis-benchmark from ${client} to ${host}:${port}`;
  if (r.code !== 0) throw new Error(`${where} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  const { SET: set = 0, GET: get = 0 } = parseRedisCsv(r.stdout);
  if (!(set > 0 && get > 0)) throw new Error(`${where} printed no SET and GET rates: ${r.stdout}`);
  return { set, get };
}
