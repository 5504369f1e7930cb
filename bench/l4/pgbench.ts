// `pgbench` select-only (-S) from a client pod against the pgbench row's server: each transaction is
// one primary-key SELECT from cached data, so the rate is set by round trips through the path, not by
// the disk. Read from its summary into transactions per second.

import { join } from 'node:path';
import type { Lab } from '../../src/lab/index.ts';

export interface PgbenchOptions {
  /** Client connections (`-c`) and pgbench's own threads (`-j`). */
  clients: number;
  threads: number;
  seconds: number;
}

/** One pgbench run as it reports it; tps excludes the time spent opening connections. */
export interface PgbenchRun {
  tps: number;
  transactions: number;
  failed: number;
}

/** The figures from pgbench's summary (PostgreSQL 15's wording). */
export function parsePgbench(text: string): PgbenchRun {
  const num = (re: RegExp) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : Number.NaN;
  };
  return {
    tps: num(/^tps = ([\d.]+) \(without initial connection time\)$/m),
    transactions: num(/^number of transactions actually processed: (\d+)/m),
    // Before PostgreSQL 15 pgbench did not count failures: none reported is none counted.
    failed: /^number of failed transactions:/m.test(text) ? num(/^number of failed transactions: (\d+)/m) : 0,
  };
}

export async function pgbench(
  lab: Lab,
  bin: string,
  client: string,
  host: string,
  port: number,
  o: PgbenchOptions,
): Promise<PgbenchRun> {
  const argv = [join(bin, 'pgbench'), '-h', host, '-p', String(port), '-U', 'postgres'];
  // -n: no vacuum before the run (the tables were vacuumed when made, and -S writes nothing).
  argv.push(
    '-c',
    String(o.clients),
    '-j',
    String(o.threads),
    '-T',
    String(o.seconds),
    '-S',
    '-n',
    'postgres',
  );
  const r = await lab.exec(client, argv, { timeoutMs: o.seconds * 1000 + 60_000 });
  const where = `pgbench from ${client} to ${host}:${port}`;
  if (r.code !== 0) throw new Error(`${where} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  const run = parsePgbench(r.stdout);
  if (!(run.tps > 0 && run.transactions > 0)) throw new Error(`${where} printed no rate: ${r.stdout}`);
  if (run.failed > 0) throw new Error(`${where}: ${run.failed} transactions failed`);
  return run;
}
