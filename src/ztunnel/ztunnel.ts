// The ztunnel: the per-node L4 proxy, assembled. Listeners take captured (or SOCKS5) connections; the
// outbound path (`outbound.ts`) plans and acts; inbound, the HBONE server (`inbound-hbone.ts`) and the
// plaintext listener (`inbound-plaintext.ts`) ask the inbound plan (policy) and splice to the workload.
// The connection table, draining and the HTTP endpoints are the proxy runtime's (`src/proxy`).

import { Registry } from 'prom-client';
import { AmbitError } from '../errors/index.ts';
import type { HbonePool, HboneServer } from '../hbone/index.ts';
import { type CertificateManager, TrustBundle } from '../identity/index.ts';
import { accessLogger, type Logger, logger } from '../log/index.ts';
import {
  ConnectionTable,
  type ConnectionView,
  drain,
  HttpEndpoints,
  memoryFreed,
  proxyRegistry,
} from '../proxy/index.ts';
import { TcpMetrics } from '../telemetry/index.ts';
import { type Delta, TYPE, type TypeUrl } from '../xds/index.ts';
import type { ConnectionChecks, ZtunnelContext } from './context.ts';
import { DnsProxy } from './dns-proxy.ts';
import { serveEndpoints } from './endpoints.ts';
import { ZTUNNEL_ERRORS } from './errors.ts';
import { materialForDestination, onHboneComplete, onHboneConnect } from './inbound-hbone.ts';
import { type ConnectionLimits, fileDescriptorLimit, resolveLimits } from './limits.ts';
import { NodeListeners, WorkloadListeners } from './listeners.ts';
import { parseAdminListen, parseMetricsAllow } from './local-access.ts';
import {
  type ConfigFeed,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_DRAIN_MS,
  DEFAULT_INPUTS,
  DEFAULT_MAX_CONNECTIONS_PER_LISTENER,
  idleTimeoutOption,
  workerThreadsOption,
  ZTUNNEL_DEFAULT_PORTS,
  type ZtunnelOptions,
  type ZtunnelPorts,
} from './options.ts';
import { Overload } from './overload.ts';
import { ZtunnelState } from './state.ts';
import { StateReactions } from './state-change.ts';
import { mergedMetrics, shareOf, type ThreadOptions, WorkerThreads } from './threads.ts';

/** The config-stream types the ztunnel holds. */
const ZTUNNEL_TYPES: readonly TypeUrl[] = [
  TYPE.trustBundle,
  TYPE.workload,
  TYPE.service,
  TYPE.authorization,
  TYPE.meshConfig,
];

export class Ztunnel {
  readonly state = new ZtunnelState();
  /** The process's metrics on the main thread; a worker thread's own (the main thread merges them). */
  readonly metrics: Registry;
  readonly certs: CertificateManager;
  /** Peers' certificates are refused once revoked, in every handshake: the list comes with the bundle. */
  readonly pool: HbonePool;
  /** The caps in force and the descriptor limit they were derived from. */
  readonly limits: ConnectionLimits;
  readonly fdLimit: number;
  private readonly opts: ZtunnelOptions;
  private readonly log: Logger;
  private readonly ctx: ZtunnelContext;
  private readonly hbone: HboneServer;
  private readonly xds: ConfigFeed;
  /** Threads that carry traffic in all, the main thread's included. */
  private readonly threadCount: number;
  /** A worker thread's number (1, 2, …); 0 on the main thread. */
  private readonly thread: number;
  private threads: WorkerThreads | undefined;
  private readonly listeners: NodeListeners;
  private readonly workloadListeners: WorkloadListeners | undefined;
  private dnsProxy: DnsProxy | undefined;
  private readonly http = new HttpEndpoints();
  private readonly metricsAllow: string[];
  private readonly adminListen: { host: string; port: number } | undefined;
  private ready = false;
  private stopping = false;

  constructor(opts: ZtunnelOptions) {
    this.opts = opts;
    const ports: ZtunnelPorts = { ...ZTUNNEL_DEFAULT_PORTS, ...opts.ports };
    // Bad flags refuse the start before anything listens.
    this.metricsAllow = parseMetricsAllow(opts.metricsAllow ?? []);
    this.adminListen = opts.adminListen ? parseAdminListen(opts.adminListen, ports.admin) : undefined;
    this.fdLimit = fileDescriptorLimit();
    this.limits = resolveLimits(opts.limits, this.fdLimit);
    this.thread = 'thread' in opts.control ? opts.control.thread : 0;
    this.threadCount = this.thread === 0 ? workerThreadsOption(opts.workerThreads) : 1;
    if (this.threadCount > 1 && opts.l7) {
      throw new AmbitError(ZTUNNEL_ERRORS.BAD_WORKER_THREADS, 'a sidecar runs on one thread');
    }
    this.metrics = this.thread === 0 ? proxyRegistry('ztunnel') : new Registry();
    this.log = logger('ztunnel').child(
      this.thread === 0 ? { node: opts.node } : { node: opts.node, thread: this.thread },
    );
    const idleTimeoutMs = idleTimeoutOption(opts.idleTimeoutMs);
    const inputs = { ...DEFAULT_INPUTS, ...opts.inputs };
    const connections = new ConnectionTable<ConnectionChecks>(new TcpMetrics(this.metrics), accessLogger());
    this.certs = inputs.certs({
      source: opts.certificates,
      trustBundle: () => new TrustBundle(this.state.snapshot.trustBundlePem ?? ''),
    });
    // A burst's pooled connections close a while after it: the process then gives their memory back.
    this.pool = inputs.pool({ revoked: () => this.state.snapshot.revoked, onIdleClose: memoryFreed });
    const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const l7 = opts.l7?.({
      metrics: this.metrics,
      certs: this.certs,
      pool: this.pool,
      log: this.log,
      connectTimeoutMs,
    });
    const ctx: ZtunnelContext = {
      node: opts.node,
      workload: opts.workload,
      capture: opts.capture,
      state: this.state,
      certs: this.certs,
      pool: this.pool,
      connections,
      // Each thread holds its share of each cap (a worker thread is given its share).
      overload: new Overload(shareOf(this.limits, this.threadCount), connections, this.log),
      ports,
      nodeAddresses: new Set(opts.nodeAddresses),
      log: this.log,
      connectTimeoutMs,
      idleTimeoutMs,
      ...(l7 ? { l7 } : {}),
    };
    this.ctx = ctx;
    this.hbone = inputs.hbone({
      certFor: (address) => materialForDestination(ctx, address),
      onConnect: (c) => onHboneConnect(ctx, c),
      onComplete: (record) => onHboneComplete(ctx, record),
      revoked: () => this.state.snapshot.revoked,
    });
    const wiring = {
      types: [...new Set([...ZTUNNEL_TYPES, ...(l7?.types ?? [])])],
      apply: (type: TypeUrl, delta: Delta) => {
        // The L7 first: a delta it refuses is NACKed before the ztunnel's state changed.
        if (l7?.types.includes(type)) l7.apply(type, delta);
        if (ZTUNNEL_TYPES.includes(type)) this.state.apply(type, delta);
        // What applied here, every worker thread applies too.
        this.threads?.forward(type, delta);
      },
    };
    const control = opts.control;
    this.xds =
      'thread' in control
        ? control.feed(wiring)
        : inputs.xds({
            ...wiring,
            target: control.target,
            credentials: control.credentials,
            channelOptions: control.channelOptions,
            // A sidecar names itself as Istio's proxy-status shows one: <pod>.<namespace>.
            node: opts.sidecarName
              ? { kind: 'sidecar', name: opts.sidecarName, build: 'ambit' }
              : { kind: 'ztunnel', name: opts.node, build: 'ambit' },
          });
    const maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS_PER_LISTENER;
    // Threads beside one another share each port.
    const reusePort = this.threadCount > 1 || this.thread > 0;
    this.listeners = new NodeListeners(ctx, maxConnections, reusePort);
    this.workloadListeners =
      opts.capture === 'none' ? new WorkloadListeners(ctx, this.hbone, maxConnections, reusePort) : undefined;
    const reactions = new StateReactions(ctx, this.hbone, this.workloadListeners);
    this.state.onListenerError = (err) => this.log.error({ err }, 'a state listener failed');
    this.state.onChange((s) => reactions.apply(s));
  }

  get xdsClient(): ConfigFeed {
    return this.xds;
  }

  /** The node's addresses as they are now (a new pod link brings the pods' gateway address). */
  setNodeAddresses(addresses: Iterable<string>): void {
    // Synchronous: no connection is ever planned against a half-filled set.
    this.ctx.nodeAddresses.clear();
    for (const a of addresses) this.ctx.nodeAddresses.add(a);
    this.threads?.setAddresses([...this.ctx.nodeAddresses]);
  }

  /** Starts listening and connects to the control plane; resolves once the first config arrived. */
  async start(opts: { waitForConfig?: boolean } = {}): Promise<void> {
    const bind = this.opts.bindAddress ?? '0.0.0.0';
    const socks = this.opts.socks5 ?? (this.opts.capture === 'none' ? bind : undefined);
    if (this.thread > 0) {
      // A worker thread takes connections only once it holds the configuration.
      this.xds.start();
      await this.xds.whenSynced();
      await this.listeners.start(bind, socks, this.hbone);
      this.ready = true;
      return;
    }
    try {
      await this.startParts(bind, socks, opts.waitForConfig !== false);
    } catch (err) {
      await this.threads?.stop(0); // no worker thread outlives a start that failed
      throw err;
    }
    this.ready = true;
    this.log.info(
      {
        ports: this.ctx.ports,
        capture: this.opts.capture,
        fdLimit: this.fdLimit,
        limits: this.limits,
        workerThreads: this.threadCount,
      },
      'ztunnel ready',
    );
  }

  private async startParts(bind: string, socks: string | undefined, waitForConfig: boolean): Promise<void> {
    // The endpoints first: with worker threads the data ports are shared (SO_REUSEPORT), so a second
    // ztunnel on the node fails here, on 15020/15021, before it could take a share of them.
    await serveEndpoints(this.ctx, this.http, {
      bind,
      metrics: this.threadCount > 1 ? this.mergedRegistry() : this.metrics,
      threads: () => this.threads,
      metricsAllow: this.metricsAllow,
      ready: () => this.ready,
      xds: this.xds,
      adminListen: this.adminListen,
      adminSocket: this.opts.adminSocket,
    });
    await this.listeners.start(bind, socks, this.hbone);
    let threadsReady: Promise<void> | undefined;
    if (this.threadCount > 1 && !this.stopping) {
      const threads = new WorkerThreads({
        count: this.threadCount,
        options: () => this.threadOptions(),
        certificates: this.opts.certificates,
        log: this.log,
      });
      this.threads = threads;
      threadsReady = threads.start();
      threadsReady.catch(() => {}); // handled where it is awaited below, never unhandled meanwhile
      void this.xds.whenSynced().then(() => threads.markSynced());
    }
    if (this.opts.dns) {
      this.dnsProxy = new DnsProxy({
        host: this.opts.dns.host ?? bind,
        port: this.ctx.ports.dns,
        upstreams: this.opts.dns.upstreams,
        state: this.state,
        metrics: this.metrics,
        log: this.log,
      });
      await this.dnsProxy.start();
      this.ctx.ports.dns = this.dnsProxy.port;
    }
    this.xds.start();
    if (waitForConfig) {
      await this.xds.whenSynced();
      await threadsReady;
    } else {
      threadsReady?.catch((err) => this.log.error({ err }, 'the worker threads did not start'));
    }
  }

  /** What a worker thread's ztunnel is built from: this one's options, its bound ports, its share of the caps. */
  private threadOptions(): Omit<ThreadOptions, 'thread'> {
    const o = this.opts;
    return {
      node: o.node,
      capture: o.capture,
      ...(o.bindAddress === undefined ? {} : { bindAddress: o.bindAddress }),
      ...(o.socks5 === undefined ? {} : { socks5: o.socks5 }),
      ...(o.maxConnections === undefined ? {} : { maxConnections: o.maxConnections }),
      connectTimeoutMs: this.ctx.connectTimeoutMs,
      idleTimeoutMs: this.ctx.idleTimeoutMs,
      ...(o.drainMs === undefined ? {} : { drainMs: o.drainMs }),
      nodeAddresses: [...this.ctx.nodeAddresses],
      ports: { ...this.ctx.ports },
      limits: shareOf(this.limits, this.threadCount),
    };
  }

  /** The main thread's registry with the worker threads' metrics merged in, at each scrape. */
  private mergedRegistry(): Pick<Registry, 'metrics' | 'contentType'> {
    return {
      contentType: this.metrics.contentType,
      metrics: async () =>
        (await mergedMetrics(this.metrics, (await this.threads?.ask('metrics')) ?? [])).metrics(),
    };
  }

  /** The port a listener really bound (tests pass 0). */
  boundPort(name: keyof ZtunnelPorts): number {
    return this.ctx.ports[name];
  }

  /** Stop accepting, let open connections finish up to the drain deadline, then cut what is left. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.ready = false;
    const { connections } = this.ctx;
    const drainMs = this.opts.drainMs ?? DEFAULT_DRAIN_MS;
    this.log.info({ open: connections.size, drainMs }, 'draining');
    this.listeners.close();
    this.workloadListeners?.close();
    await this.dnsProxy?.close();
    const hboneClosed = this.hbone.close(drainMs);
    const threadsStopped = this.threads?.stop(drainMs);
    await drain(
      () => connections.size + (this.ctx.l7?.active ?? 0),
      drainMs,
      () => connections.cutAll(() => new Error('the ztunnel is shutting down')),
    );
    await this.ctx.l7?.close();
    await hboneClosed;
    await threadsStopped;
    this.xds.stop();
    this.certs.close();
    await this.pool.close();
    this.http.close();
  }

  /** Proxied connections open on this thread. */
  get connectionCount(): number {
    return this.ctx.connections.size;
  }

  connectionsView(): ConnectionView[] {
    return this.ctx.connections.view();
  }
}
