// The ztunnel: the per-node L4 proxy. Listeners take captured (or SOCKS5) connections; a pure plan
// decides; then one of three thin actions touches sockets: HBONE through the pool, passthrough TCP,
// or a refusal. Inbound, the HBONE server and the plaintext listener ask the inbound plan (policy)
// and splice to the workload. Everything it holds is visible on the admin port.

import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import * as net from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { type OrigDst, originalDst } from '../capture/index.ts';
import { AmbitError, describeError, hasCode } from '../errors/index.ts';
import {
  canonicalIp,
  forwardedFor,
  HBONE_ERRORS,
  HbonePool,
  HboneServer,
  type HboneTunnel,
  resetStream,
  type StreamRecord,
  splice,
  type TlsMaterial,
} from '../hbone/index.ts';
import { CertificateManager, type CertificateSource, type SpiffeId, TrustBundle } from '../identity/index.ts';
import { type Logger, logger } from '../log/index.ts';
import { type ConnectionRecord, logConnection, type TcpLabels, TcpMetrics } from '../telemetry/index.ts';
import { TYPE, type WorkloadResource, XdsClient } from '../xds/index.ts';
import {
  Admission,
  type ConnectionLimits,
  fileDescriptorLimit,
  OVERFLOW_FLAG,
  resolveLimits,
} from './limits.ts';
import { listenPrivateSocket, mayScrape, parseAdminListen, parseMetricsAllow } from './local-access.ts';
import { type Addr, isNodeLocal, type OutboundPlan, planInbound, planOutbound } from './plan.ts';
import { acceptSocks5, SOCKS_REPLY } from './socks5.ts';
import { type StateSnapshot, ZtunnelState } from './state.ts';

export const ZTUNNEL_DEFAULT_PORTS = {
  outbound: 15001,
  inboundPlaintext: 15006,
  hbone: 15008,
  socks5: 15080,
  metrics: 15020,
  readiness: 15021,
  admin: 15000,
} as const;

export type ZtunnelPorts = { -readonly [K in keyof typeof ZTUNNEL_DEFAULT_PORTS]: number };

export interface ZtunnelOptions {
  node: string;
  /**
   * `redirect`: the node's nftables rules send traffic here; one listener per port on `bindAddress`,
   * destinations from SO_ORIGINAL_DST. `none`: no kernel capture (tests, hosts without it): clients
   * come through SOCKS5, and the HBONE listener binds each local workload's own address.
   */
  capture: 'redirect' | 'none';
  /** Where the node-wide listeners bind (default 0.0.0.0). */
  bindAddress?: string;
  /**
   * SOCKS5 (explicit capture) is opt-in: the address to listen on. Default: on `bindAddress` when
   * capture is `none` (it is then the way in), off with kernel capture.
   */
  socks5?: string;
  ports?: Partial<ZtunnelPorts>;
  /** This node's own addresses at start (keep them current with `setNodeAddresses`). */
  nodeAddresses: string[];
  /**
   * The admin (config, certificates, connections) on this Unix socket: 0600 in a 0700 directory, peers
   * other than root and this process's user cut off (the CLI reads it from the host namespace).
   */
  adminSocket?: string;
  /** The admin on loopback TCP too (`127.0.0.1` or `127.0.0.1:15000`); off by default. */
  adminListen?: string;
  /**
   * Who may scrape 15020 besides the node itself (loopback and the node's own addresses): CIDRs, for
   * Prometheus. Pods never may (readiness on 15021 stays open to all).
   */
  metricsAllow?: string[];
  control: {
    target: string;
    credentials: () => grpc.ChannelCredentials;
    channelOptions?: grpc.ChannelOptions;
  };
  certificates: CertificateSource;
  /** Bounded: the most connections each listener accepts at once. */
  maxConnections?: number;
  /** Caps on connections and handshakes (defaults derived from the descriptor limit: `limits.ts`). */
  limits?: Partial<ConnectionLimits>;
  connectTimeoutMs?: number;
  /**
   * A proxied connection with no byte either way for this long is cut (default 1 h, the TCP idle timeout
   * of Envoy and so of Istio's sidecars and waypoints; 0 turns it off). TCP keepalive (180 s, as Istio's
   * ztunnel) finds dead peers; this ends live ones that stopped talking.
   */
  idleTimeoutMs?: number;
  /** On stop: how long open connections may finish before they are cut. */
  drainMs?: number;
}

export const DEFAULT_IDLE_TIMEOUT_MS = 3_600_000;
/** TCP keepalive idle time on captured and upstream sockets: Istio's ztunnel uses 180 s. */
const TCP_KEEPALIVE_MS = 180_000;

interface Tracked {
  id: number;
  direction: 'inbound' | 'outbound';
  src: string;
  dst: string;
  workload?: string;
  peerIdentity?: string;
  startedAt: string;
  /** Inbound connections are re-checked when policy changes; this cuts one that is now denied. */
  recheck?: (state: StateSnapshot) => boolean;
  /** False once a workload at either end that this node knows has left the node or the mesh. */
  workloadsStay: (state: StateSnapshot) => boolean;
  abort: (why: Error) => void;
}

export class Ztunnel {
  readonly state = new ZtunnelState();
  readonly metrics = new Registry();
  readonly certs: CertificateManager;
  /** Peers' certificates are refused once revoked, in every handshake: the list comes with the bundle. */
  readonly pool = new HbonePool({ revoked: () => this.state.snapshot.revoked });
  private readonly opts: ZtunnelOptions;
  private readonly log: Logger;
  private readonly accessLog: Logger;
  private readonly tcp: TcpMetrics;
  private readonly hbone: HboneServer;
  private readonly xds: XdsClient;
  private readonly ports: ZtunnelPorts;
  private readonly listeners: net.Server[] = [];
  private readonly http: Server[] = [];
  /** capture=none: HBONE listeners per local workload address. */
  private readonly workloadListeners = new Map<string, net.Server>();
  private readonly connections = new Map<number, Tracked>();
  private nextId = 0;
  private ready = false;
  private stopping = false;
  private readonly nodeAddresses: Set<string>;
  private readonly idleTimeoutMs: number;
  private revokedSeen: StateSnapshot['revoked'] | undefined;
  /** The caps in force and the descriptor limit they were derived from. */
  readonly limits: ConnectionLimits;
  readonly fdLimit: number;
  /** Proxied connections, per source workload (outbound) or source address (inbound). */
  private readonly connectionSlots: Admission;
  /** TLS handshakes in progress on 15008, per source address. */
  private readonly handshakeSlots: Admission;
  private refusedSinceWarning = 0;
  private lastRefusalWarning = 0;
  private readonly metricsAllow: string[];
  private readonly adminListen: { host: string; port: number } | undefined;

  constructor(opts: ZtunnelOptions) {
    this.opts = opts;
    this.ports = { ...ZTUNNEL_DEFAULT_PORTS, ...opts.ports };
    // Bad flags refuse the start before anything listens.
    this.metricsAllow = parseMetricsAllow(opts.metricsAllow ?? []);
    this.adminListen = opts.adminListen ? parseAdminListen(opts.adminListen, this.ports.admin) : undefined;
    this.fdLimit = fileDescriptorLimit();
    this.limits = resolveLimits(opts.limits, this.fdLimit);
    this.connectionSlots = new Admission(this.limits.maxConnections, this.limits.maxConnectionsPerSource);
    this.handshakeSlots = new Admission(this.limits.maxHandshakes, this.limits.maxHandshakesPerSource);
    this.log = logger('ztunnel').child({ node: opts.node });
    this.accessLog = logger('access');
    this.nodeAddresses = new Set(opts.nodeAddresses);
    this.idleTimeoutMs = idleTimeoutOption(opts.idleTimeoutMs);
    collectDefaultMetrics({ register: this.metrics });
    new Gauge({
      name: 'istio_build',
      help: 'Build information',
      labelNames: ['component', 'tag'],
      registers: [this.metrics],
    }).set({ component: 'ztunnel', tag: 'ambit' }, 1);
    this.tcp = new TcpMetrics(this.metrics);
    this.certs = new CertificateManager({
      source: opts.certificates,
      trustBundle: () => new TrustBundle(this.state.snapshot.trustBundlePem ?? ''),
    });
    this.hbone = new HboneServer({
      certFor: (address) => this.materialForDestination(address),
      onConnect: (ctx) => this.onHboneConnect(ctx),
      onComplete: (record) => this.onHboneComplete(record),
      revoked: () => this.state.snapshot.revoked,
    });
    this.xds = new XdsClient({
      target: opts.control.target,
      credentials: opts.control.credentials,
      channelOptions: opts.control.channelOptions,
      node: { kind: 'ztunnel', name: opts.node, build: 'ambit' },
      types: [TYPE.trustBundle, TYPE.workload, TYPE.service, TYPE.authorization],
      apply: (type, delta) => this.state.apply(type, delta),
    });
    this.state.onListenerError = (err) => this.log.error({ err }, 'a state listener failed');
    this.state.onChange((s) => this.onStateChange(s));
  }

  get xdsClient(): XdsClient {
    return this.xds;
  }

  /** The node's addresses as they are now (a new pod link brings the pods' gateway address). */
  setNodeAddresses(addresses: Iterable<string>): void {
    // Synchronous: no connection is ever planned against a half-filled set.
    this.nodeAddresses.clear();
    for (const a of addresses) this.nodeAddresses.add(a);
  }

  /**
   * With kernel capture, whether `address` is the node itself (its addresses as they are now, loopback):
   * never a workload to deliver to, even when a tenant's WorkloadEntry claims it, or a pod would reach
   * whatever listens on the node. (With `--capture none` workloads live on loopback addresses.)
   */
  private isNodeItself(address: string): boolean {
    return this.opts.capture === 'redirect' && isNodeLocal(address, this.nodeAddresses);
  }

  /** Starts listening and connects to the control plane; resolves once the first config arrived. */
  async start(opts: { waitForConfig?: boolean } = {}): Promise<void> {
    const bind = this.opts.bindAddress ?? '0.0.0.0';
    if (this.opts.capture === 'redirect') {
      await this.listen(bind, 'outbound', (s) => this.onCapturedOutbound(s));
      await this.listen(bind, 'inboundPlaintext', (s) => this.onPlaintextInbound(s));
      await this.listen(bind, 'hbone', (s) => this.onHboneSocket(s, () => originalDst(s).address));
    }
    const socks = this.opts.socks5 ?? (this.opts.capture === 'none' ? bind : undefined);
    if (socks) await this.listen(socks, 'socks5', (s) => this.onSocks(s));
    await this.serveHttp(bind, 'metrics', (req, res) => this.serveMetrics(req, res));
    await this.serveHttp(bind, 'readiness', (req, res) => this.serveReadiness(req, res));
    // The admin has no authentication: a private Unix socket, and loopback TCP only when asked.
    if (this.adminListen) {
      this.ports.admin = this.adminListen.port;
      await this.serveHttp(this.adminListen.host, 'admin', (req, res) => this.serveAdmin(req, res));
    }
    if (this.opts.adminSocket)
      await this.serveHttp({ path: this.opts.adminSocket }, undefined, (req, res) =>
        this.serveAdmin(req, res),
      );
    this.xds.start();
    if (opts.waitForConfig !== false) await this.xds.whenSynced();
    this.ready = true;
    this.log.info(
      { ports: this.ports, capture: this.opts.capture, fdLimit: this.fdLimit, limits: this.limits },
      'ztunnel ready',
    );
  }

  /** The port a listener really bound (tests pass 0). */
  boundPort(name: keyof ZtunnelPorts): number {
    return this.ports[name];
  }

  /** Stop accepting, let open connections finish up to the drain deadline, then cut what is left. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.ready = false;
    const drainMs = this.opts.drainMs ?? 5_000;
    this.log.info({ open: this.connections.size, drainMs }, 'draining');
    for (const l of [...this.listeners, ...this.workloadListeners.values()]) l.close();
    const hboneClosed = this.hbone.close(drainMs);
    const deadline = Date.now() + drainMs;
    while (this.connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const c of this.connections.values()) c.abort(new Error('the ztunnel is shutting down'));
    await hboneClosed;
    this.xds.stop();
    this.certs.close();
    await this.pool.close();
    for (const h of this.http) {
      h.closeAllConnections();
      h.close();
    }
  }

  connectionsView(): Array<Omit<Tracked, 'abort' | 'recheck' | 'workloadsStay'>> {
    return [...this.connections.values()].map(
      ({ abort: _a, recheck: _r, workloadsStay: _w, ...rest }) => rest,
    );
  }

  /**
   * True while `w` is still, in `state`, an enrolled workload on this node at `address`: a connection of a
   * local workload that was removed, moved or un-enrolled is cut.
   */
  private stillLocal(state: StateSnapshot, w: WorkloadResource, address: string): boolean {
    const now = state.workloadByAddress.get(address);
    return now?.uid === w.uid && now.enrolled && now.node === this.opts.node;
  }

  /**
   * True while `w` (the remote end as known at connect time, if it was a workload) is still that workload
   * at `address`, and still enrolled if it was: one removed from the registry or un-enrolled is gone.
   */
  private static stillInMesh(
    state: StateSnapshot,
    w: WorkloadResource | undefined,
    address: string,
  ): boolean {
    if (w === undefined) return true;
    const now = state.workloadByAddress.get(address);
    return now?.uid === w.uid && (now.enrolled || !w.enrolled);
  }

  /**
   * Cuts a proxied connection after the idle timeout with no byte either way. `socket` is the one side that
   * carries both directions (its reads and its writes both restart Node's socket timer).
   */
  private watchIdle(socket: net.Socket, abort: (why: Error) => void): void {
    if (this.idleTimeoutMs === 0) return;
    socket.setTimeout(this.idleTimeoutMs);
    socket.once('timeout', () =>
      abort(
        new AmbitError(
          'AMBIT_ERR_ZTUNNEL_IDLE_TIMEOUT',
          `no byte either way for ${this.idleTimeoutMs} ms: closed (ambit ztunnel --idle-timeout)`,
        ),
      ),
    );
  }

  // --- listeners ---

  private async listen(
    host: string,
    name: keyof ZtunnelPorts,
    onSocket: (s: net.Socket) => void,
  ): Promise<net.Server> {
    const port = this.ports[name];
    // Keepalive on every accepted socket: a pod that vanishes without a FIN (its namespace deleted, its
    // node gone) is found in 180 s + 10 probes 1 s apart (Node's fixed interval and count).
    const server = net.createServer(CAPTURED_SOCKET, (s) => {
      s.on('error', () => {}); // each path attaches its own handling; never crash on a peer's reset
      try {
        onSocket(s);
      } catch (err) {
        this.log.error({ err }, 'connection handler failed');
        s.destroy();
      }
    });
    server.maxConnections = this.opts.maxConnections ?? 65_536;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.ports[name] = (server.address() as net.AddressInfo).port;
    this.listeners.push(server);
    return server;
  }

  /** An HTTP endpoint on `host` and the named port, or on a private Unix socket (`{ path }`). */
  private async serveHttp(
    host: string | { path: string },
    name: keyof ZtunnelPorts | undefined,
    handler: (req: IncomingMessage, res: ServerResponse) => void,
  ): Promise<void> {
    const port = name ? this.ports[name] : 0;
    const server = createHttpServer((req, res) => {
      try {
        handler(req, res);
      } catch (err) {
        res.writeHead(500).end(describeError(err));
      }
    });
    if (typeof host === 'object') await listenPrivateSocket(server, host.path, this.log);
    else {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
    }
    if (name) this.ports[name] = (server.address() as net.AddressInfo).port;
    this.http.push(server);
  }

  // --- outbound ---

  private onCapturedOutbound(client: net.Socket): void {
    let target: OrigDst;
    try {
      target = originalDst(client);
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'outbound connection without an original destination');
      client.destroy();
      return;
    }
    void this.outbound(client, { address: target.address, port: target.port });
  }

  private onSocks(client: net.Socket): void {
    acceptSocks5(client).then(
      (req) => this.outbound(client, req.target, req.reply),
      (err) => this.log.debug({ err: describeError(err) }, 'SOCKS5 handshake failed'),
    );
  }

  private async outbound(
    client: net.Socket,
    target: Addr,
    socksReply?: (code: number) => void,
  ): Promise<void> {
    const sourceAddress = canonical(client.remoteAddress);
    const started = Date.now();
    const plan = planOutbound(this.state.snapshot, sourceAddress, target, {
      node: this.opts.node,
      nodeAddresses: this.nodeAddresses,
    });
    const record: ConnectionRecord = {
      direction: 'outbound',
      src: { addr: `${sourceAddress}:${client.remotePort}` },
      dst: { addr: `${target.address}:${target.port}` },
      bytes_sent: 0,
      bytes_recv: 0,
      duration_ms: 0,
      flags: '-',
    };
    if (plan.kind === 'refuse') {
      socksReply?.(SOCKS_REPLY.notAllowed);
      client.destroy();
      logConnection(this.accessLog, { ...record, flags: 'NR', error: plan.reason });
      return;
    }
    Object.assign(record.src, workloadFields(plan.source));
    const labels = outboundLabels(plan);
    // A source workload over its share (or the node over its whole) is refused before anything is dialled.
    const slot = plan.source.uid;
    if (!this.connectionSlots.tryAcquire(slot)) {
      socksReply?.(SOCKS_REPLY.generalFailure);
      resetStream(client);
      this.refuseOverLimit(labels, { ...record, flags: OVERFLOW_FLAG }, 'connections', plan.source.name);
      return;
    }
    const release = this.connectionSlots.releaser(slot);
    let upstream: net.Socket | HboneTunnel['stream'];
    try {
      if (plan.kind === 'hbone') {
        const tunnel = await this.openTunnel(plan, client);
        upstream = tunnel.stream;
        record.dst.hbone_addr = `${plan.actual.address}:${plan.actual.port}`;
        record.dst.identity = tunnel.peerIdentity;
      } else {
        upstream = await connectTcp(plan.actual, this.opts.connectTimeoutMs ?? 10_000);
      }
    } catch (err) {
      release();
      const denied = hasCode(err, HBONE_ERRORS.DENIED);
      socksReply?.(denied ? SOCKS_REPLY.notAllowed : SOCKS_REPLY.connectionRefused);
      // A SOCKS client has its answer (not allowed) and then a close; a captured client is reset, as
      // Istio's ztunnel resets a denied connection (curl exit 56), and so is an unreachable destination.
      if (denied && socksReply) client.end();
      else resetStream(client);
      const flags = denied ? 'DENY' : 'CONNECT';
      if (plan.kind === 'hbone') {
        this.tcp.open({ ...labels, response_flags: flags });
        this.tcp.close({ ...labels, response_flags: flags }, { fromClient: 0, toClient: 0 });
      }
      logConnection(this.accessLog, {
        ...record,
        flags,
        duration_ms: Date.now() - started,
        error: describeError(err),
      });
      return;
    }
    socksReply?.(SOCKS_REPLY.succeeded);
    client.resume(); // the SOCKS handshake paused it; the splice takes over from here
    if (plan.kind === 'hbone') this.tcp.open(labels);
    const id = ++this.nextId;
    const s = splice(client, upstream, (result) => {
      release();
      this.connections.delete(id);
      if (plan.kind === 'hbone')
        this.tcp.close(labels, { fromClient: result.received, toClient: result.sent });
      logConnection(this.accessLog, {
        ...record,
        bytes_sent: result.received,
        bytes_recv: result.sent,
        duration_ms: Date.now() - started,
        ...(result.error ? { error: result.error.message } : {}),
      });
    });
    this.connections.set(id, {
      id,
      direction: 'outbound',
      src: record.src.addr,
      dst: record.dst.addr,
      workload: plan.source.name,
      startedAt: new Date(started).toISOString(),
      workloadsStay: (st) => this.stillLocal(st, plan.source, sourceAddress),
      abort: (why) => s.abort(why),
    });
    this.watchIdle(client, (why) => s.abort(why));
  }

  private async openTunnel(
    plan: Extract<OutboundPlan, { kind: 'hbone' }>,
    client: net.Socket,
  ): Promise<HboneTunnel> {
    const cert = await this.certs.get(plan.source.identity as SpiffeId);
    const trustBundlePem = this.state.snapshot.trustBundlePem;
    if (!trustBundlePem)
      throw new AmbitError('AMBIT_ERR_ZTUNNEL_NO_BUNDLE', 'no trust bundle yet from the control plane');
    const material: TlsMaterial = {
      identity: cert.id,
      certChainPem: cert.chain.join(''),
      keyPem: cert.privateKeyPem,
      trustBundlePem,
    };
    return this.pool.connect({
      source: () => material,
      destination: plan.actual,
      accepted: plan.expectedIdentities as SpiffeId[],
      authority: `${plan.intended.address}:${plan.intended.port}`,
      headers: {
        forwarded: forwardedFor({ address: canonical(client.remoteAddress), port: client.remotePort ?? 0 }),
        baggage: baggageOf(plan.source),
      },
    });
  }

  /**
   * Counts a connection refused over a cap (opened and closed with flag UO, one access-log line) and warns
   * at most every 10 s, so that a flood costs a counter and a log line per connection, not a warning each.
   */
  private refuseOverLimit(
    labels: TcpLabels,
    record: ConnectionRecord,
    what: 'connections' | 'handshakes',
    source: string,
  ): void {
    const flagged = { ...labels, response_flags: OVERFLOW_FLAG };
    this.tcp.open(flagged);
    this.tcp.close(flagged, { fromClient: 0, toClient: 0 });
    logConnection(this.accessLog, { ...record, flags: OVERFLOW_FLAG, error: overLimit(what, source) });
    this.warnOverLimit(what, source);
  }

  private warnOverLimit(what: 'connections' | 'handshakes', source: string): void {
    this.refusedSinceWarning += 1;
    const now = Date.now();
    if (now - this.lastRefusalWarning >= 10_000) {
      this.log.warn(
        {
          refused: this.refusedSinceWarning,
          last: { what, source },
          connections: { inUse: this.connectionSlots.inUse, top: this.connectionSlots.top(3) },
          handshakes: { inUse: this.handshakeSlots.inUse, top: this.handshakeSlots.top(3) },
          limits: this.limits,
        },
        'refusing connections over the limits (response_flags UO)',
      );
      this.lastRefusalWarning = now;
      this.refusedSinceWarning = 0;
    }
  }

  // --- inbound ---

  private onHboneSocket(socket: net.Socket, destination: () => string): void {
    let address: string;
    try {
      address = destination();
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'HBONE connection without a destination; closing');
      socket.destroy();
      return;
    }
    // The server certificate is the destination workload's: make sure it is here before TLS starts.
    const w = this.state.snapshot.workloadByAddress.get(address);
    if (!w?.enrolled || w.node !== this.opts.node || this.isNodeItself(address)) {
      this.log.warn(
        { destination: address },
        'HBONE connection for a workload not in the mesh on this node; closing',
      );
      socket.destroy();
      return;
    }
    // Until its handshake is done a connection has proved nothing: a source address gets a share of the
    // handshakes in progress, and the node a whole, so a flood of silent connections cannot take them all.
    const peer = canonical(socket.remoteAddress);
    if (!this.handshakeSlots.tryAcquire(peer)) {
      socket.destroy();
      this.refuseOverLimit(
        {
          reporter: 'destination',
          ...destinationLabels(w),
          connection_security_policy: 'mutual_tls',
        },
        {
          direction: 'inbound',
          src: { addr: `${peer}:${socket.remotePort}` },
          dst: { addr: `${address}:${this.ports.hbone}`, ...workloadFields(w) },
          bytes_sent: 0,
          bytes_recv: 0,
          duration_ms: 0,
          flags: OVERFLOW_FLAG,
        },
        'handshakes',
        peer,
      );
      return;
    }
    const handshakeDone = this.handshakeSlots.releaser(peer);
    socket.once('close', handshakeDone);
    if (this.certs.current(w.identity as SpiffeId)) {
      this.hbone.accept(socket, address, handshakeDone);
      return;
    }
    // Bytes that arrive meanwhile stay buffered on the socket; the TLS layer takes them over.
    this.certs.get(w.identity as SpiffeId).then(
      () => this.hbone.accept(socket, address, handshakeDone),
      (err) => {
        this.log.warn(
          { identity: w.identity, err: describeError(err) },
          'no certificate for an inbound HBONE connection; closing',
        );
        socket.destroy();
      },
    );
  }

  private materialForDestination(address: string): TlsMaterial | undefined {
    const w = this.state.snapshot.workloadByAddress.get(address);
    const bundle = this.state.snapshot.trustBundlePem;
    if (!w?.enrolled || w.node !== this.opts.node || !bundle) return undefined;
    const cert = this.certs.current(w.identity as SpiffeId);
    if (!cert) return undefined;
    return {
      identity: cert.id,
      certChainPem: cert.chain.join(''),
      keyPem: cert.privateKeyPem,
      trustBundlePem: bundle,
    };
  }

  private async onHboneConnect(
    ctx: Parameters<ConstructorParameters<typeof HboneServer>[0]['onConnect']>[0],
  ) {
    const forwarded = /for="?\[?([0-9a-fA-F.:]+?)\]?(?::\d+)?"?(?:;|$)/.exec(
      String(ctx.headers.forwarded ?? ''),
    )?.[1];
    const peerAddr = ctx.peerAddress?.address ?? '';
    const sourceWorkloadIp = this.sourceIpFor(ctx.peerIdentity, forwarded);
    const sourceIp = sourceWorkloadIp ?? peerAddr;
    // The source workload, when this node can tell which it is: its connections end when it leaves.
    const sourceWorkload =
      sourceWorkloadIp === undefined
        ? undefined
        : this.state.snapshot.workloadByAddress.get(sourceWorkloadIp);
    const plan = planInbound(this.state.snapshot, {
      destination: { address: ctx.destinationAddress, port: this.ports.hbone },
      authority: ctx.authority,
      peerIdentity: ctx.peerIdentity,
      sourceIp,
    });
    if (plan.status !== 200) return { status: plan.status, reason: plan.reason };
    if (!this.connectionSlots.tryAcquire(sourceIp)) {
      this.warnOverLimit('connections', sourceIp);
      return { status: 503 as const, reason: overLimit('connections', sourceIp), flags: OVERFLOW_FLAG };
    }
    const release = this.connectionSlots.releaser(sourceIp);
    let upstream: net.Socket;
    try {
      upstream = await connectTcp(plan.upstream, this.opts.connectTimeoutMs ?? 10_000);
    } catch (err) {
      release();
      return {
        status: 503 as const,
        reason: `cannot reach ${plan.upstream.address}:${plan.upstream.port}: ${describeError(err)}`,
      };
    }
    const id = ++this.nextId;
    const workload = plan.workload;
    const abort = () => {
      resetStream(upstream);
      ctx.stream.close(0x8); // CANCEL
    };
    this.connections.set(id, {
      id,
      direction: 'inbound',
      src: sourceIp,
      dst: `${plan.upstream.address}:${plan.upstream.port}`,
      workload: workload.name,
      peerIdentity: ctx.peerIdentity,
      startedAt: new Date().toISOString(),
      recheck: (state) =>
        planInbound(state, {
          destination: { address: ctx.destinationAddress, port: this.ports.hbone },
          authority: ctx.authority,
          peerIdentity: ctx.peerIdentity,
          sourceIp,
        }).status === 200,
      workloadsStay: (st) =>
        this.stillLocal(st, workload, ctx.destinationAddress) &&
        Ztunnel.stillInMesh(st, sourceWorkload, sourceIp),
      abort,
    });
    upstream.once('close', () => {
      release();
      this.connections.delete(id);
    });
    this.watchIdle(upstream, abort);
    this.tcp.open(this.hboneLabels(ctx.peerIdentity, `${ctx.authority.address}:${ctx.authority.port}`, '-'));
    return { status: 200 as const, upstream, baggage: baggageOf(workload) };
  }

  /** The destination-side labels of an HBONE connection (the same at open and at close). */
  private hboneLabels(peerIdentity: string, authority: string | undefined, flags: string): TcpLabels {
    const state = this.state.snapshot;
    const dst = authority ? state.workloadByAddress.get(authority.split(':')[0] ?? '') : undefined;
    return {
      reporter: 'destination',
      ...sourceLabels(state, peerIdentity),
      ...destinationLabels(dst),
      response_flags: flags,
      connection_security_policy: 'mutual_tls',
    };
  }

  private onHboneComplete(r: StreamRecord): void {
    const dst = r.authority
      ? this.state.snapshot.workloadByAddress.get(r.authority.split(':')[0] ?? '')
      : undefined;
    const flags = r.flags ?? (r.status === 401 ? 'DENY' : r.status === 200 ? '-' : 'CONNECT');
    const labels = this.hboneLabels(r.peerIdentity, r.authority, flags);
    // An accepted connection was counted as opened when it was accepted; a refused one opens and closes here.
    if (r.status !== 200) this.tcp.open(labels);
    this.tcp.close(labels, { fromClient: r.received, toClient: r.sent });
    logConnection(this.accessLog, {
      direction: 'inbound',
      src: {
        addr: r.peerAddress ? `${r.peerAddress.address}:${r.peerAddress.port}` : '',
        identity: r.peerIdentity,
      },
      dst: {
        addr: r.authority ?? '',
        hbone_addr: `${r.destinationAddress}:${this.ports.hbone}`,
        ...workloadFields(dst),
      },
      bytes_sent: r.sent,
      bytes_recv: r.received,
      duration_ms: Math.round(r.durationMs),
      flags,
      ...(r.reason ? { error: r.reason } : r.error ? { error: r.error.message } : {}),
    });
  }

  /** The client's IP for policy: the `forwarded` address when it belongs to the authenticated peer. */
  private sourceIpFor(peerIdentity: string, forwarded: string | undefined): string | undefined {
    if (!forwarded) return undefined;
    const w = this.state.snapshot.workloadByAddress.get(forwarded);
    return w?.identity === peerIdentity ? forwarded : undefined;
  }

  private onPlaintextInbound(client: net.Socket): void {
    let dst: OrigDst;
    try {
      dst = originalDst(client);
    } catch {
      client.destroy();
      return;
    }
    if (this.isNodeItself(dst.address)) {
      // Not a pod: a connection straight to this port, or a workload registered at the node's address.
      resetStream(client);
      return;
    }
    const started = Date.now();
    const sourceIp = canonical(client.remoteAddress);
    const plan = planInbound(this.state.snapshot, {
      destination: { address: dst.address, port: dst.port },
      sourceIp,
    });
    const state = this.state.snapshot;
    const sourceWorkload = state.workloadByAddress.get(sourceIp);
    const labels: TcpLabels = {
      reporter: 'destination',
      ...sourceLabels(state, undefined, sourceIp),
      ...destinationLabels(plan.workload),
      connection_security_policy: 'none',
    };
    const record: ConnectionRecord = {
      direction: 'inbound',
      src: { addr: `${sourceIp}:${client.remotePort}` },
      dst: { addr: `${dst.address}:${dst.port}`, ...workloadFields(plan.workload) },
      bytes_sent: 0,
      bytes_recv: 0,
      duration_ms: 0,
      flags: '-',
    };
    if (plan.status !== 200) {
      const flags = plan.status === 401 ? 'DENY' : 'CONNECT';
      this.tcp.open({ ...labels, response_flags: flags });
      this.tcp.close({ ...labels, response_flags: flags }, { fromClient: 0, toClient: 0 });
      logConnection(this.accessLog, { ...record, flags, error: plan.reason });
      resetStream(client); // a denied connection is reset, as Istio's ztunnel does
      return;
    }
    if (!this.connectionSlots.tryAcquire(sourceIp)) {
      resetStream(client);
      this.refuseOverLimit(labels, record, 'connections', sourceIp);
      return;
    }
    const release = this.connectionSlots.releaser(sourceIp);
    connectTcp(plan.upstream, this.opts.connectTimeoutMs ?? 10_000).then(
      (upstream) => {
        this.tcp.open(labels);
        const id = ++this.nextId;
        const s = splice(client, upstream, (result) => {
          release();
          this.connections.delete(id);
          this.tcp.close(labels, { fromClient: result.received, toClient: result.sent });
          logConnection(this.accessLog, {
            ...record,
            bytes_sent: result.sent,
            bytes_recv: result.received,
            duration_ms: Date.now() - started,
            ...(result.error ? { error: result.error.message } : {}),
          });
        });
        this.connections.set(id, {
          id,
          direction: 'inbound',
          src: record.src.addr,
          dst: record.dst.addr,
          workload: plan.workload.name,
          startedAt: new Date(started).toISOString(),
          recheck: (st) =>
            planInbound(st, { destination: { address: dst.address, port: dst.port }, sourceIp }).status ===
            200,
          workloadsStay: (st) =>
            this.stillLocal(st, plan.workload, dst.address) &&
            Ztunnel.stillInMesh(st, sourceWorkload, sourceIp),
          abort: (why) => s.abort(why),
        });
        this.watchIdle(client, (why) => s.abort(why));
      },
      (err) => {
        release();
        resetStream(client);
        logConnection(this.accessLog, { ...record, flags: 'CONNECT', error: describeError(err) });
      },
    );
  }

  // --- state ---

  private onStateChange(state: StateSnapshot): void {
    if (state.revoked !== this.revokedSeen) {
      // Connections made before the list arrived were verified without it: cut those it now refuses.
      this.revokedSeen = state.revoked;
      const inbound = this.hbone.closeRevoked();
      const outbound = this.pool.closeRevoked();
      if (inbound + outbound > 0)
        this.log.info({ inbound, outbound }, 'closed HBONE connections made with revoked certificates');
    }
    const local = [...state.workloads.values()].filter((w) => w.node === this.opts.node && w.enrolled);
    this.certs.want(local.map((w) => w.identity as SpiffeId));
    if (this.opts.capture === 'none') this.syncWorkloadListeners(local);
    // A workload that left this node or the mesh takes its connections with it, at both ends (a pod that
    // vanished sends no FIN; nothing else would ever close them).
    let gone = 0;
    for (const c of this.connections.values()) {
      if (c.workloadsStay(state)) continue;
      c.abort(
        new AmbitError('AMBIT_ERR_ZTUNNEL_WORKLOAD_GONE', 'a workload of this connection left the mesh'),
      );
      this.connections.delete(c.id);
      gone++;
    }
    if (gone > 0) this.log.info({ closed: gone }, 'closed the connections of workloads that left');
    // A policy change re-checks open connections and closes those it now denies.
    for (const c of this.connections.values()) {
      if (c.recheck && !c.recheck(state)) {
        this.log.info(
          { connection: c.id, src: c.src, dst: c.dst },
          'closing a connection that policy now denies',
        );
        c.abort(new AmbitError('AMBIT_ERR_ZTUNNEL_DENIED', 'policy now denies this connection'));
        this.connections.delete(c.id);
      }
    }
  }

  /** capture=none: one HBONE listener per local workload address, as the in-pod model has. */
  private syncWorkloadListeners(local: WorkloadResource[]): void {
    const wanted = new Set(local.flatMap((w) => w.addresses));
    for (const [address, server] of this.workloadListeners) {
      if (!wanted.has(address)) {
        server.close();
        this.workloadListeners.delete(address);
      }
    }
    for (const address of wanted) {
      if (this.workloadListeners.has(address) || this.stopping) continue;
      const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
        s.on('error', () => {});
        this.onHboneSocket(s, () => canonical(s.localAddress));
      });
      server.maxConnections = this.opts.maxConnections ?? 65_536;
      server.on('error', (err) => {
        this.log.error(
          { err: describeError(err), address },
          'cannot listen for HBONE on a workload address; will retry',
        );
        // Forget it, so the next state change tries again.
        if (this.workloadListeners.get(address) === server) this.workloadListeners.delete(address);
      });
      server.listen(this.ports.hbone === 0 ? ZTUNNEL_DEFAULT_PORTS.hbone : this.ports.hbone, address);
      this.workloadListeners.set(address, server);
    }
  }

  // --- HTTP endpoints ---

  private serveMetrics(req: IncomingMessage, res: ServerResponse): void {
    // The metrics are the node's traffic graph with identities: the node and the allow-list only.
    const source = canonical(req.socket.remoteAddress);
    if (!mayScrape(source, this.nodeAddresses, this.metricsAllow)) {
      this.log.debug({ source }, 'metrics scrape refused');
      res
        .writeHead(403, { 'content-type': 'text/plain', connection: 'close' })
        .end(
          `AMBIT_ERR_ZTUNNEL_METRICS_FORBIDDEN: ${source} may not scrape this node's metrics; only the node itself and --metrics-allow may\n`,
        );
      return;
    }
    if (req.url !== '/metrics' && req.url !== '/stats/prometheus') {
      res.writeHead(404).end();
      return;
    }
    this.metrics.metrics().then(
      (text) => res.writeHead(200, { 'content-type': this.metrics.contentType }).end(text),
      (err) => res.writeHead(500).end(String(err)),
    );
  }

  private serveReadiness(req: IncomingMessage, res: ServerResponse): void {
    if (req.url !== '/healthz/ready') {
      res.writeHead(404).end();
      return;
    }
    res
      .writeHead(this.ready ? 200 : 503, { 'content-type': 'text/plain' })
      .end(this.ready ? 'ready\n' : 'not ready\n');
  }

  private serveAdmin(req: IncomingMessage, res: ServerResponse): void {
    const json = (body: unknown) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(body, null, 2)}\n`);
    const views: Record<string, () => unknown> = {
      '/config_dump': () => ({
        node: this.opts.node,
        ...this.state.dump(),
        xds: { connected: this.xds.connected, lastError: this.xds.lastError, versions: this.xds.versions() },
        certificates: this.certs.status(),
        pool: this.pool.stats(),
      }),
      '/certs': () => ({ certificates: this.certs.status() }),
      '/connections': () => ({ connections: this.connectionsView(), pool: this.pool.stats() }),
    };
    const view = views[req.url?.split('?')[0] ?? ''];
    if (view) json(view());
    else
      res.writeHead(404, { 'content-type': 'text/plain' }).end('try /config_dump, /certs or /connections\n');
  }
}

function overLimit(what: 'connections' | 'handshakes', source: string): string {
  return `over the ${what} limit (${source} or the node is at its cap)`;
}

/** One spelling per address (an IPv4-mapped IPv6 peer is its IPv4 address), as the state indexes them. */
function canonical(address: string | undefined): string {
  return (address && canonicalIp(address)) || '';
}

/** Captured and upstream sockets: half-close is real TCP here, and dead peers are found by keepalive. */
const CAPTURED_SOCKET = {
  allowHalfOpen: true,
  noDelay: true,
  keepAlive: true,
  keepAliveInitialDelay: TCP_KEEPALIVE_MS,
} as const;

/** The idle timeout option: whole milliseconds, 0 for none; anything else refuses the start. */
function idleTimeoutOption(value: number | undefined): number {
  const ms = value ?? DEFAULT_IDLE_TIMEOUT_MS;
  if (!Number.isInteger(ms) || ms < 0 || ms > 2 ** 31 - 1) {
    throw new AmbitError(
      'AMBIT_ERR_ZTUNNEL_BAD_IDLE_TIMEOUT',
      `the idle timeout must be a whole number of milliseconds from 0 (off) to ${2 ** 31 - 1}, got ${JSON.stringify(value)}`,
    );
  }
  return ms;
}

function connectTcp(to: Addr, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: to.address, port: to.port, ...CAPTURED_SOCKET });
    const timer = setTimeout(() => {
      s.destroy();
      reject(
        new AmbitError(
          'AMBIT_ERR_ZTUNNEL_CONNECT_TIMEOUT',
          `connecting to ${to.address}:${to.port} timed out after ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function workloadFields(w: WorkloadResource | undefined): {
  workload?: string;
  namespace?: string;
  identity?: string;
} {
  return w ? { workload: w.name, namespace: w.namespace, identity: w.identity } : {};
}

/** W3C baggage with the workload's metadata, as Istio's ztunnel sends it. */
function baggageOf(w: WorkloadResource): string {
  const parts = [`k8s.namespace.name=${w.namespace}`, `k8s.pod.name=${w.name}`];
  const app = w.labels.app ?? w.labels['app.kubernetes.io/name'];
  const version = w.labels.version ?? w.labels['app.kubernetes.io/version'];
  if (app) parts.push(`service.name=${app}`);
  if (version) parts.push(`service.version=${version}`);
  return parts.join(',');
}

function sourceLabels(state: StateSnapshot, identity: string | undefined, ip?: string): Partial<TcpLabels> {
  const w = ip
    ? state.workloadByAddress.get(ip)
    : identity
      ? state.workloadByIdentity.get(identity)
      : undefined;
  return {
    source_workload: w?.name,
    source_workload_namespace: w?.namespace,
    source_principal: identity,
    source_app: w?.labels.app,
    source_version: w?.labels.version,
  };
}

function destinationLabels(w: WorkloadResource | undefined): Partial<TcpLabels> {
  return {
    destination_workload: w?.name,
    destination_workload_namespace: w?.namespace,
    destination_principal: w?.identity,
    destination_app: w?.labels.app,
    destination_version: w?.labels.version,
  };
}

function outboundLabels(plan: Extract<OutboundPlan, { kind: 'hbone' | 'passthrough' }>): TcpLabels {
  const svc = plan.destination.service;
  return {
    reporter: 'source',
    source_workload: plan.source.name,
    source_workload_namespace: plan.source.namespace,
    source_principal: plan.source.identity,
    source_app: plan.source.labels.app,
    source_version: plan.source.labels.version,
    ...destinationLabels(plan.destination.workload),
    ...(svc
      ? {
          destination_service: svc.hostname,
          destination_service_name: svc.name,
          destination_service_namespace: svc.namespace,
        }
      : {}),
    connection_security_policy: plan.kind === 'hbone' ? 'mutual_tls' : 'unknown',
  };
}
