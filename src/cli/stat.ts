// `ambit stat`, like `linkerd viz stat`: success rate, requests per second, latency percentiles and open
// TCP connections per namespace, service or workload, from Prometheus.

import { Command, InvalidArgumentError, Option } from 'commander';
import {
  parseStatPeer,
  parseStatTarget,
  type StatInventory,
  type StatRow,
  statRows,
  WINDOWS,
  type Window,
} from '../dashboard/index.ts';
import { adminClient, serverOption, tokenOption } from './client.ts';
import { prometheusOption, resolvePrometheus } from './dashboard.ts';
import type { ServiceView, WorkloadView } from './mesh.ts';
import { table } from './output.ts';

/** How often --watch asks again. */
const WATCH_INTERVAL_MS = 2000;

const pct = (v: number | undefined) => (v === undefined ? '-' : `${(v * 100).toFixed(2)}%`);
const rps = (v: number | undefined) => (v === undefined ? '-' : `${v.toFixed(1)}rps`);
const ms = (v: number | undefined) => (v === undefined ? '-' : `${v < 10 ? v.toFixed(1) : Math.round(v)}ms`);

/** The table as `linkerd viz stat` prints it (NAMESPACE first when rows span namespaces). */
export function statTable(rows: StatRow[]): string {
  const withNs = rows.some((r) => r.namespace !== undefined);
  return table(
    [
      ...(withNs ? ['NAMESPACE'] : []),
      'NAME',
      'MESHED',
      'SUCCESS',
      'RPS',
      'LATENCY_P50',
      'LATENCY_P95',
      'LATENCY_P99',
      'TCP_CONN',
    ],
    rows.map((r) => [
      ...(withNs ? [r.namespace ?? '-'] : []),
      r.name,
      r.meshed,
      pct(r.successRate),
      rps(r.requestsPerSecond),
      ms(r.p50Ms),
      ms(r.p95Ms),
      ms(r.p99Ms),
      r.tcpConnections === undefined ? '-' : String(r.tcpConnections),
    ]),
  );
}

function windowArg(value: string): Window {
  if (!(WINDOWS as readonly string[]).includes(value))
    throw new InvalidArgumentError(`--window must be one of ${WINDOWS.join(', ')}`);
  return value as Window;
}

export function statCommand(): Command {
  const cmd = new Command('stat')
    .description(
      'success rate, requests/s and latency per namespace, service or workload: ns, ns/NAME (its workloads), svc[/NAME], workload[/NAME]',
    )
    .argument('<resource>', 'ns | ns/NAME | svc[/NAME] | workload[/NAME]')
    .option('-n, --namespace <ns>', 'namespace of svc and workload resources', 'default')
    .option('--to <resource>', 'only requests the rows sent to this svc/NAME, workload/NAME or ns/NAME')
    .option('--from <resource>', 'only requests the rows received from this workload/NAME or ns/NAME')
    .option('--window <window>', `the time window (${WINDOWS.join(', ')})`, windowArg, '1m' as Window)
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .option('-w, --watch', `ask again every ${WATCH_INTERVAL_MS / 1000} s until interrupted`)
    .addOption(serverOption())
    .addOption(tokenOption());
  prometheusOption(cmd);
  return cmd.action(
    async (
      resource: string,
      opts: {
        namespace: string;
        to?: string;
        from?: string;
        window: Window;
        output: 'table' | 'json';
        watch?: boolean;
        prometheus?: string;
        server?: string;
        token?: string;
      },
    ) => {
      const target = parseStatTarget(resource, opts.namespace);
      const peers = {
        ...(opts.to ? { to: parseStatPeer(opts.to, opts.namespace, '--to') } : {}),
        ...(opts.from ? { from: parseStatPeer(opts.from, opts.namespace, '--from') } : {}),
      };
      const prometheus = await resolvePrometheus(opts.prometheus);
      const admin = adminClient(opts);
      const once = async () => {
        const [workloads, services] = await Promise.all([
          admin.call<{ items: WorkloadView[] }>('GET', '/ambit/v1/workloads'),
          admin.call<{ items: ServiceView[] }>('GET', '/ambit/v1/services'),
        ]);
        const inventory: StatInventory = { workloads: workloads.items, services: services.items };
        const rows = await statRows(prometheus, inventory, target, opts.window, peers);
        return opts.output === 'json'
          ? JSON.stringify({ window: opts.window, items: rows }, null, 2)
          : rows.length === 0
            ? 'No resources found.'
            : statTable(rows);
      };
      if (!opts.watch) return void console.log(await once());
      for (;;) {
        const text = await once().catch((err: Error) => `error: ${err.message}`);
        process.stdout.write(`\x1b[H\x1b[2J${new Date().toISOString()}  window ${opts.window}\n\n${text}\n`);
        await new Promise((r) => setTimeout(r, WATCH_INTERVAL_MS));
      }
    },
  );
}
