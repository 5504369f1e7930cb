// The L4 benchmark's real-client rows: `redis-benchmark` SET/GET and `pgbench` select-only from a
// client pod on node-1 to servers in pods on node-2, through direct, the two ztunnels and the HAProxy
// pair, in interleaved rounds (as every L4 measurement) so that other load on the host falls on each
// path alike. Each path's rate is pooled over its rounds and compared with direct and with HAProxy.

import { join } from 'node:path';
import { type Lab, waitUntil } from '../../src/lab/index.ts';
import { type BenchResult, round } from '../harness.ts';
import { redisAnswers, startRedis } from '../redis.ts';
import { PATH_LABEL, PATHS, type PathName } from './paths.ts';
import { type PgbenchRun, pgbench } from './pgbench.ts';
import { type PostgresServer, postgresBin, startPostgres, stopPostgres } from './postgres.ts';
import { type RedisRun, redisBenchmark } from './redis-benchmark.ts';
import { stopProcess } from './stop.ts';

export const REDIS = { conns: 32, requests: 50_000, size: 1024 };
export const PGBENCH = { clients: 8, threads: 2, seconds: 8 };

/** Where one path's client runs and what it dials (the server's own port or a haproxy's). */
export interface RealEndpoint {
  client: string;
  host: string;
  port: number;
}

/** A pod that serves: the plain one behind direct and HAProxy, the ambient one behind the ztunnels. */
export interface ServerPod {
  pod: string;
  address: string;
}

export interface RedisFigures {
  options: typeof REDIS;
  runs: Record<PathName, RedisRun[]>;
}

export interface PgbenchFigures {
  options: typeof PGBENCH;
  runs: Record<PathName, PgbenchRun[]>;
}

const byPath = <T>(): Record<PathName, T[]> => ({ direct: [], ztunnel: [], haproxy: [] });

/** Rate over pooled runs: all the work over all the time it took (so a slow round weighs its time). */
export function pooledRate(runs: Array<{ count: number; rate: number }>): number {
  const count = runs.reduce((n, r) => n + r.count, 0);
  const seconds = runs.reduce((n, r) => n + r.count / r.rate, 0);
  return count / seconds;
}

/** redis-server in each server pod; `rounds` runs of redis-benchmark per path; the servers stopped after. */
export async function redisPhase(
  lab: Lab,
  servers: ServerPod[],
  endpoints: Record<PathName, RealEndpoint>,
  rounds: number,
  dir: string,
): Promise<RedisFigures> {
  const pids: number[] = [];
  try {
    for (const s of servers) pids.push(await startRedis(lab, s.pod, s.address, dir));
    for (const path of PATHS) {
      const e = endpoints[path];
      await waitUntil(`redis through ${path}`, 30_000, async () =>
        (await redisAnswers(lab, e.client, e.host, e.port)) ? true : undefined,
      );
    }
    const runs = byPath<RedisRun>();
    const timeoutMs = 120_000;
    for (let i = 0; i < rounds; i++) {
      for (const path of PATHS) {
        const e = endpoints[path];
        runs[path].push(await redisBenchmark(lab, e.client, e.host, e.port, { ...REDIS, timeoutMs }));
      }
    }
    return { options: REDIS, runs };
  } finally {
    for (const pid of pids) await stopProcess(pid, 'SIGTERM');
  }
}

/** PostgreSQL in each server pod; `rounds` pgbench runs per path; the servers stopped and removed after. */
export async function pgbenchPhase(
  lab: Lab,
  servers: ServerPod[],
  endpoints: Record<PathName, RealEndpoint>,
  rounds: number,
): Promise<PgbenchFigures> {
  const bin = await postgresBin();
  const started: PostgresServer[] = [];
  try {
    for (const s of servers) started.push(await startPostgres(lab, s.pod, s.address, bin));
    for (const path of PATHS) {
      const e = endpoints[path];
      const ready = [join(bin, 'pg_isready'), '-q', '-h', e.host, '-p', String(e.port)];
      await waitUntil(`postgres through ${path}`, 30_000, async () =>
        (await lab.exec(e.client, ready, { timeoutMs: 10_000 })).code === 0 ? true : undefined,
      );
    }
    const runs = byPath<PgbenchRun>();
    for (let i = 0; i < rounds; i++) {
      for (const path of PATHS) {
        const e = endpoints[path];
        runs[path].push(await pgbench(lab, bin, e.client, e.host, e.port, PGBENCH));
      }
    }
    return { options: PGBENCH, runs };
  } finally {
    for (const s of started) await stopPostgres(s);
  }
}

/** One rate per path as four rows: direct, each proxy against direct, the ztunnels against HAProxy. */
function rateRows(name: string, rate: Record<PathName, number>, unit: string, how: string): BenchResult[] {
  const r = (p: PathName) => round(rate[p], 0);
  return [
    { name: `${name}, ${PATH_LABEL.direct}`, value: r('direct'), unit, note: how },
    { name: `${name}, ${PATH_LABEL.ztunnel}`, value: r('ztunnel'), unit, baseline: r('direct') },
    { name: `${name}, ${PATH_LABEL.haproxy}`, value: r('haproxy'), unit, baseline: r('direct') },
    {
      name: `${name}, ztunnels vs HAProxy`,
      value: r('ztunnel'),
      unit,
      baseline: r('haproxy'),
      note: 'baseline: the HAProxy pair',
    },
  ];
}

const rates = <T>(runs: Record<PathName, T[]>, f: (run: T) => { count: number; rate: number }) =>
  Object.fromEntries(PATHS.map((p) => [p, pooledRate(runs[p].map(f))])) as Record<PathName, number>;

export function redisRows(f: RedisFigures): BenchResult[] {
  const o = f.options;
  const rounds = f.runs.direct.length;
  const how = `redis-benchmark -c ${o.conns} -n ${o.requests} -d ${o.size}; ${rounds} rounds pooled`;
  return [
    ...rateRows(
      'cross-node redis SET',
      rates(f.runs, (r) => ({ count: o.requests, rate: r.set })),
      'req/s',
      how,
    ),
    ...rateRows(
      'cross-node redis GET',
      rates(f.runs, (r) => ({ count: o.requests, rate: r.get })),
      'req/s',
      how,
    ),
  ];
}

export function pgbenchRows(f: PgbenchFigures): BenchResult[] {
  const o = f.options;
  const rounds = f.runs.direct.length;
  const how = `pgbench -S -c ${o.clients} -j ${o.threads} -T ${o.seconds}; ${rounds} rounds pooled`;
  const tps = rates(f.runs, (r) => ({ count: r.transactions, rate: r.tps }));
  return rateRows('cross-node pgbench select-only', tps, 'TPS', how);
}
