// The ztunnel's HTTP endpoints: metrics on 15020 (the node and --metrics-allow only), readiness on 15021,
// and the admin (config, certificates, connections, memory) on a private Unix socket and, when asked, loopback.

import type { Registry } from 'prom-client';
import {
  adminHandler,
  type HttpEndpoints,
  memoryReport,
  metricsHandler,
  readinessHandler,
} from '../proxy/index.ts';
import type { ZtunnelContext } from './context.ts';
import { ZTUNNEL_ERRORS } from './errors.ts';
import { listenPrivateSocket, mayScrape } from './local-access.ts';
import type { ConfigFeed } from './options.ts';
import type { WorkerThreads } from './threads.ts';

export async function serveEndpoints(
  ctx: ZtunnelContext,
  http: HttpEndpoints,
  opts: {
    bind: string;
    metrics: Pick<Registry, 'metrics' | 'contentType'>;
    /** With worker threads (once started): their connections are listed with the main thread's. */
    threads: () => WorkerThreads | undefined;
    metricsAllow: string[];
    ready: () => boolean;
    xds: ConfigFeed;
    adminListen: { host: string; port: number } | undefined;
    adminSocket: string | undefined;
  },
): Promise<void> {
  // The metrics are the node's traffic graph with identities: the node and the allow-list only.
  const metrics = metricsHandler({
    registry: opts.metrics,
    mayScrape: (source) => mayScrape(source, ctx.nodeAddresses, opts.metricsAllow),
    refusal: (source) =>
      `${ZTUNNEL_ERRORS.METRICS_FORBIDDEN}: ${source} may not scrape this node's metrics; only the node itself and --metrics-allow may\n`,
    log: ctx.log,
  });
  ctx.ports.metrics = await http.listen(opts.bind, ctx.ports.metrics, metrics);
  ctx.ports.readiness = await http.listen(opts.bind, ctx.ports.readiness, readinessHandler(opts.ready));
  const admin = adminHandler(
    {
      '/config_dump': () => ({
        node: ctx.node,
        ...ctx.state.dump(),
        xds: {
          connected: opts.xds.connected,
          controlPlane: opts.xds.peer,
          lastError: opts.xds.lastError,
          versions: opts.xds.versions(),
        },
        certificates: ctx.certs.status(),
        pool: ctx.pool.stats(),
        ...(ctx.l7 ? { l7: ctx.l7.view() } : {}),
      }),
      '/certs': () => ({ certificates: ctx.certs.status() }),
      '/connections': async () => ({
        connections: await connectionsOf(ctx, opts.threads()),
        pool: ctx.pool.stats(),
      }),
      '/memory': async () => ({
        ...memoryReport(),
        connections: await connectionCount(ctx, opts.threads()),
      }),
    },
    'try /config_dump, /certs, /connections or /memory\n',
  );
  // The admin has no authentication: a private Unix socket, and loopback TCP only when asked.
  if (opts.adminListen) {
    ctx.ports.admin = opts.adminListen.port;
    ctx.ports.admin = await http.listen(opts.adminListen.host, ctx.ports.admin, admin);
  }
  const socket = opts.adminSocket;
  if (socket) await http.listenWith(admin, (server) => listenPrivateSocket(server, socket, ctx.log));
}

/** The open connections; with worker threads, every thread's, each marked with its thread (the main thread is 0). */
async function connectionsOf(ctx: ZtunnelContext, threads: WorkerThreads | undefined) {
  const own = ctx.connections.view();
  if (!threads) return own;
  return [...own.map((c) => ({ ...c, thread: 0 })), ...(await threads.connections())];
}

/** How many are open, every thread's (counted where they are, not listed). */
async function connectionCount(ctx: ZtunnelContext, threads: WorkerThreads | undefined): Promise<number> {
  const counts = (await threads?.ask('connectionCount')) as number[] | undefined;
  return (counts ?? []).reduce((sum, n) => sum + n, ctx.connections.size);
}
