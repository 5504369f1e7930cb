// Cluster DNS, as a cluster's CoreDNS gives it: `<svc>.<ns>.svc.cluster.local` for every Service
// (its VIPs; a headless Service's endpoints), NXDOMAIN at once for any other name under cluster.local,
// and other names to the configured upstreams, or REFUSED when there are none. Pods find `<svc>.<ns>`
// and `<svc>` through the search path of their resolv.conf. ServiceEntry hosts are not here: the
// ztunnel's DNS proxy answers those for enrolled pods, as in Istio.

import type { Registry as Metrics } from 'prom-client';
import { DnsMetrics, DnsServer, NameTable, serviceRecords } from '../dns/index.ts';
import { logger } from '../log/index.ts';
import type { MeshState } from './mesh.ts';
import type { Registry } from './registry/index.ts';

/** The zone the registry names Services in (`svc.cluster.local` under it). */
export const CLUSTER_DOMAIN = 'cluster.local';

const log = logger('cluster-dns');

/** A bad name (it cannot come from a valid registry) is left out and logged: every other name is served. */
export function clusterNameTable(registry: Registry): NameTable {
  return new NameTable(
    serviceRecords(registry.services, (s) => s.kind !== 'ServiceEntry'),
    {
      authoritativeZones: [CLUSTER_DOMAIN],
      skipInvalid: (err) => log.warn({ err }, 'a name left out of the cluster DNS'),
    },
  );
}

export interface ClusterDnsOptions {
  listen: { host: string; port: number };
  upstreams: ReadonlyArray<{ host: string; port: number }>;
  mesh: MeshState;
  metrics: Metrics;
}

/** Starts the cluster DNS; the table follows every derivation of the registry until it is closed. */
export async function startClusterDns(
  opts: ClusterDnsOptions,
): Promise<{ port: number; close: () => Promise<void> }> {
  let table = clusterNameTable(opts.mesh.registry);
  const follow = (registry: Registry) => {
    table = clusterNameTable(registry);
  };
  opts.mesh.on('derived', follow);
  const server = new DnsServer({
    host: opts.listen.host,
    port: opts.listen.port,
    upstreams: opts.upstreams,
    table: () => table,
    metrics: new DnsMetrics(opts.metrics),
    log,
  });
  try {
    await server.start();
  } catch (err) {
    opts.mesh.off('derived', follow);
    throw err;
  }
  return {
    port: server.port,
    close: async () => {
      opts.mesh.off('derived', follow);
      await server.close();
    },
  };
}
