// The waypoint, assembled: a mesh workload with its own identity that terminates HBONE on 15008, serves
// HTTP on each tunnel (routes, filters, retries, timeouts, request metrics: `http/`), and opens HBONE to
// the chosen endpoint under its own identity, so the destination's ztunnel sees the waypoint as in Istio.
// Its configuration comes from the config stream; without the control plane it keeps its last routes.

import type * as http2 from 'node:http2';
import type * as net from 'node:net';
import { dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import type * as grpc from '@grpc/grpc-js';
import { GATEWAY_NAME_LABEL, isWildcardHost, PORTS } from '../config/index.ts';
import {
  buffersOnly,
  type ConnectContext,
  type ConnectDecision,
  forwardedAddress,
  HbonePool,
  HboneServer,
  materialOf,
  type TlsMaterial,
} from '../hbone/index.ts';
import { CertificateManager, type CertificateSource, type SpiffeId, TrustBundle } from '../identity/index.ts';
import { type Logger, logger } from '../log/index.ts';
import { listenPrivateSocket, preparePrivateDir } from '../os/index.ts';
import {
  adminHandler,
  drain,
  HttpEndpoints,
  listenTcp,
  memoryReport,
  metricsHandler,
  proxyRegistry,
  readinessHandler,
} from '../proxy/index.ts';
import { compileRoutes, entryHostsOf } from '../routing/index.ts';
import { RequestMetrics } from '../telemetry/index.ts';
import { sourceOf, type WorkloadResource, XdsClient } from '../xds/index.ts';
import { WAYPOINT_ERRORS } from './errors.ts';
import { HttpProxy, workloadTarget, workloadTargetAddress } from './http/index.ts';
import type { ConnectionMeta, ConnectOptions, Endpoint, WorkloadLabels } from './http/types.ts';
import { CertificateFiles, connectOutside } from './outside.ts';
import { type AuthorizerAddress, PolicyGate } from './policy/index.ts';
import type { BackendRef, RouteTable } from './route-types.ts';
import { WAYPOINT_TYPES, type WaypointSnapshot, WaypointState } from './state.ts';
import { tracingSpansGauge, WaypointTelemetry } from './telemetry.ts';
import { type OriginationTls, trafficPolicyLookup } from './traffic-policy/index.ts';

export const WAYPOINT_DEFAULT_PORTS = {
  hbone: PORTS.hbone,
  metrics: PORTS.metrics,
  readiness: PORTS.readiness,
} as const;
export type WaypointPorts = { -readonly [K in keyof typeof WAYPOINT_DEFAULT_PORTS]: number };

export interface WaypointOptions {
  /** This replica's name (its pod): how the control plane knows it is running. */
  name: string;
  /** The waypoint's namespace (where DestinationRules apply from first, as for Istio's proxies). */
  namespace: string;
  /** The waypoint's identity (`spiffe://<td>/ns/<ns>/sa/<service account>`). */
  identity: SpiffeId;
  /** The roots to trust before the config stream brings the bundle. */
  trustBundlePem: string;
  /** Where the listeners bind (default 0.0.0.0). */
  bindAddress?: string;
  ports?: Partial<WaypointPorts>;
  control: {
    target: string;
    /** Built on every (re)connect with the waypoint's current certificate. */
    credentials: (cert: { certChainPem: string; keyPem: string }) => grpc.ChannelCredentials;
    channelOptions?: grpc.ChannelOptions;
  };
  /** Where the waypoint's own certificate comes from (the CA, through its node's credential). */
  certificates: CertificateSource;
  /** On stop: how long open requests may finish. */
  drainMs?: number;
  /**
   * Its admin (config, routes, clusters, endpoints) on this Unix socket: 0600 in a 0700 directory, peers
   * other than root and this process's user cut off (`ambit waypoint config` reads it).
   */
  adminSocket?: string;
  /** The port endpoints' ztunnels take HBONE on (15008; in-process tests give another). */
  peerHbonePort?: number;
}

/** Tunnels from ztunnels held at once (each carries many requests). */
const MAX_CONNECTIONS = 16_384;
/** How long a ServiceEntry's DNS endpoint may take to resolve (the connect timeout covers the rest). */
const RESOLVE_TIMEOUT_MS = 5_000;
/** Backends whose endpoints are kept worked out (a client walking a workload's ports cannot grow it). */
const MAX_CACHED_BACKENDS = 4096;

/** What one configuration compiles to. */
interface Derived {
  routes: RouteTable;
  /** This replica's Gateway; undefined until its own pod is in the configuration. */
  gateway: { name: string; namespace: string } | undefined;
  /** The same, as policies' targetRefs name it: `namespace/name`. */
  gatewayKey: string | undefined;
  /** Endpoints by `service:port`, filled as requests ask. */
  endpoints: Map<string, Endpoint[]>;
}

export class Waypoint {
  readonly state = new WaypointState();
  readonly metrics = proxyRegistry('waypoint');
  private readonly opts: WaypointOptions;
  private readonly log: Logger;
  private readonly ports: WaypointPorts;
  private readonly certs: CertificateManager;
  private readonly pool: HbonePool;
  private readonly hbone: HboneServer;
  private readonly xds: XdsClient;
  private readonly proxy: HttpProxy;
  private readonly http = new HttpEndpoints();
  private derived: Derived;
  private readonly gate: PolicyGate;
  private readonly telemetry: WaypointTelemetry;
  private listener: net.Server | undefined;
  private ready = false;
  /** The DestinationRule traffic policy of a backend, memoised per rule set. */
  private readonly trafficPolicy: ReturnType<typeof trafficPolicyLookup>;
  private readonly certificateFiles = new CertificateFiles();

  constructor(opts: WaypointOptions) {
    this.opts = opts;
    this.ports = { ...WAYPOINT_DEFAULT_PORTS, ...opts.ports };
    this.log = logger('waypoint').child({ waypoint: opts.name });
    this.certs = new CertificateManager({
      source: opts.certificates,
      trustBundle: () => new TrustBundle(this.state.snapshot.trustBundlePem ?? opts.trustBundlePem),
    });
    this.pool = new HbonePool({ revoked: () => this.state.snapshot.revoked });
    this.gate = new PolicyGate({
      log: this.log,
      gateway: () => this.derived.gatewayKey,
      resolve: (service, port) => providerAddress(this.state.snapshot, service, port),
      serviceEntryOf: (service) => {
        const svc = this.state.snapshot.services.get(service);
        return svc?.kind === 'ServiceEntry' ? `${svc.namespace}/${svc.name}` : undefined;
      },
    });
    this.telemetry = new WaypointTelemetry({
      log: this.log,
      namespace: opts.namespace,
      replica: opts.name,
      resolve: (service, port) => directAddress(this.state.snapshot, service, port),
    });
    tracingSpansGauge(this.metrics, () => this.telemetry.stats());
    this.derived = this.derive(this.state.snapshot);
    this.state.onListenerError = (err) => this.log.error({ err }, 'a state listener failed');
    // A new configuration is compiled once; requests and tunnels read what is current when they arrive.
    this.state.onChange((s) => {
      this.derived = this.derive(s);
    });
    const served = (meta: ConnectionMeta) =>
      workloadTargetAddress(meta.service) === undefined ? meta.service : undefined;
    const state = this.state;
    this.trafficPolicy = trafficPolicyLookup(
      () => this.state.snapshot.destinationRules,
      (key) => {
        const svc = this.state.snapshot.services.get(key);
        return svc && { hostname: svc.hostname, namespace: svc.namespace };
      },
      {
        proxyNamespace: opts.namespace,
        // Read when a backend's policy is worked out: the control plane says it on the stream.
        get rootNamespace() {
          return state.snapshot.meshSettings.rootNamespace;
        },
      },
    );
    this.proxy = new HttpProxy({
      gate: this.gate,
      tracing: (meta) => this.telemetry.tracing(served(meta)),
      accessLogging: (meta) => this.telemetry.accessLogging(served(meta)),
      routes: () => this.derived.routes,
      faults: (namespace, name) => this.state.snapshot.httpFaults.get(`${namespace}/${name}`),
      endpoints: (backend) => this.endpoints(backend),
      connect: (endpoint, signal, how) => this.connect(endpoint, signal, how),
      metrics: new RequestMetrics(this.metrics),
      log: this.log,
      trafficPolicy: this.trafficPolicy,
    });
    this.hbone = new HboneServer({
      certFor: () => this.material(),
      onConnect: (c) => this.onConnect(c),
      revoked: () => this.state.snapshot.revoked,
    });
    this.xds = new XdsClient({
      target: opts.control.target,
      credentials: () => {
        const cert = this.certs.current(opts.identity);
        if (!cert) throw new Error('the waypoint has no certificate yet');
        return opts.control.credentials({ certChainPem: cert.chain.join(''), keyPem: cert.privateKeyPem });
      },
      channelOptions: opts.control.channelOptions,
      node: { kind: 'waypoint', name: opts.name, build: 'ambit' },
      types: [...WAYPOINT_TYPES],
      apply: (type, delta) => this.state.apply(type, delta),
    });
  }

  /** Fetches its certificate, listens, and resolves once the first configuration arrived. */
  async start(opts: { waitForConfig?: boolean } = {}): Promise<void> {
    this.certs.want([this.opts.identity]);
    await this.certs.get(this.opts.identity);
    const bind = this.opts.bindAddress ?? '0.0.0.0';
    this.listener = await listenTcp({
      host: bind,
      port: this.ports.hbone,
      maxConnections: MAX_CONNECTIONS,
      log: this.log,
      onSocket: (socket) => this.hbone.accept(socket, socket.localAddress ?? bind),
    });
    this.ports.hbone = (this.listener.address() as net.AddressInfo).port;
    // As Istio's waypoint pods, the metrics port is open to whoever can reach the pod (Prometheus).
    this.ports.metrics = await this.http.listen(
      bind,
      this.ports.metrics,
      metricsHandler({ registry: this.metrics, mayScrape: () => true, refusal: () => '', log: this.log }),
    );
    this.ports.readiness = await this.http.listen(
      bind,
      this.ports.readiness,
      readinessHandler(() => this.ready),
    );
    const socket = this.opts.adminSocket;
    if (socket) {
      await preparePrivateDir(dirname(socket), {
        code: WAYPOINT_ERRORS.ADMIN_DIR,
        what: "the admin socket's directory",
        log: this.log,
      });
      const admin = adminHandler(
        this.adminViews(),
        'try /config_dump, /routes, /clusters, /endpoints, /policies or /memory\n',
      );
      await this.http.listenWith(admin, (server) => listenPrivateSocket(server, socket, { log: this.log }));
    }
    this.xds.start();
    if (opts.waitForConfig !== false) await this.xds.whenSynced();
    this.ready = true;
    this.log.info({ ports: this.ports, identity: this.opts.identity }, 'waypoint ready');
  }

  boundPort(name: keyof WaypointPorts): number {
    return this.ports[name];
  }

  async stop(): Promise<void> {
    this.ready = false;
    this.listener?.close();
    await this.hbone.close(this.opts.drainMs ?? 5_000);
    await drain(
      () => this.proxy.active,
      this.opts.drainMs ?? 5_000,
      () => this.proxy.closeAll(),
    );
    this.xds.stop();
    await this.gate.close();
    await this.telemetry.close();
    this.certs.close();
    await this.pool.close();
    this.http.close();
  }

  get configDump(): Record<string, unknown> {
    return this.state.dump();
  }

  /** What `ambit waypoint config` shows: the routes, the backend services (clusters) and their endpoints. */
  private adminViews(): Record<string, () => unknown> {
    const snapshot = () => this.state.snapshot;
    const clusters = () =>
      [...snapshot().services.values()].flatMap((s) =>
        s.ports.map((p) => ({
          name: `${s.hostname}:${p.port}`,
          service: s.key,
          port: p.port,
          protocol: protocolOf(p),
          endpoints: endpointsOf(snapshot(), { service: s.key, port: p.port }),
        })),
      );
    return {
      '/config_dump': () => ({
        name: this.opts.name,
        identity: this.opts.identity,
        ...this.state.dump(),
        xds: {
          connected: this.xds.connected,
          controlPlane: this.xds.peer,
          lastError: this.xds.lastError,
          versions: this.xds.versions(),
        },
        certificates: this.certs.status(),
        upstream: this.proxy.upstreamStats(),
        tracing: this.telemetry.stats(),
      }),
      '/routes': () => ({
        httpRoutes: [...snapshot().httpRoutes.values()],
        grpcRoutes: [...snapshot().grpcRoutes.values()],
      }),
      '/clusters': () => ({
        clusters: clusters().map(({ endpoints, ...c }) => ({ ...c, endpoints: endpoints.length })),
      }),
      '/endpoints': () => ({
        endpoints: clusters().map((c) => ({ cluster: c.name, endpoints: c.endpoints })),
      }),
      '/policies': () => this.policiesView(),
      '/memory': () => memoryReport(),
    };
  }

  /**
   * The request policies as this replica holds them: for its Gateway and each Service it serves, the
   * AuthorizationPolicies (in evaluation order), RequestAuthentications and RateLimitPolicies that bind
   * it; the JWKS it fetched and the rate limiter's Redis.
   */
  private policiesView(): Record<string, unknown> {
    const s = this.state.snapshot;
    const me = this.derived.gateway;
    const gateway = this.derived.gatewayKey;
    const served = [...s.services.values()]
      .filter((svc) => me && svc.waypoint?.name === me.name && svc.waypoint.namespace === me.namespace)
      .map((svc) => svc.key)
      .sort();
    const targets = [undefined, ...served].map((service) => {
      const bound = this.gate.boundTo({ gateway, service });
      const order = { CUSTOM: 0, DENY: 1, ALLOW: 2, AUDIT: 3 } as const;
      return {
        target: service ? `Service ${service}` : `Gateway ${gateway ?? '(none yet)'}`,
        authorizationPolicies: [...bound.authorization]
          .sort((a, b) => order[a.action] - order[b.action])
          .map((p) => ({
            name: p.id,
            action: p.action,
            ...(p.dryRun ? { dryRun: true } : {}),
            ...(p.provider ? { provider: p.provider } : {}),
          })),
        requestAuthentications: bound.authentication.map(
          (p) => `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`,
        ),
        rateLimitPolicies: bound.rateLimits.map(
          (p) => `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`,
        ),
      };
    });
    return {
      gateway,
      targets,
      routeRateLimitPolicies: [...s.rateLimitPolicies.values()]
        .filter((p) => p.spec.targetRefs.some((r) => r.kind === 'HTTPRoute' || r.kind === 'GRPCRoute'))
        .map((p) => `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`),
      jwks: this.gate.jwt.jwksStatus(),
      rateLimiter: this.gate.limiter.status(),
      extensionProviders: (s.meshConfig?.spec.extensionProviders ?? []).map((p) => p.name),
    };
  }

  /** Its own certificate and the roots, for both ends of HBONE; undefined until it has one. */
  private material(): TlsMaterial | undefined {
    const cert = this.certs.current(this.opts.identity);
    return cert && materialOf(cert, this.state.snapshot.trustBundlePem ?? this.opts.trustBundlePem);
  }

  /**
   * A tunnel for a service's `VIP:port` is served as HTTP (or TCP) by the proxy, by that port's protocol
   * and routes; one for a workload's own `address:port` (a waypoint for `workload` or `all`) goes to that
   * workload, its protocol sniffed; anything else is refused.
   */
  private onConnect(c: ConnectContext): ConnectDecision {
    const s = this.state.snapshot;
    const key = `${c.authority.address}:${c.authority.port}`;
    const found = s.serviceByVipPort.get(key);
    const workload = found ? undefined : s.workloadByAddress.get(c.authority.address);
    if (!found && !workload?.enrolled)
      return { status: 503, reason: `${key} is neither a service port nor a workload this waypoint knows` };
    // Only what uses this waypoint: it never lends its identity to traffic for someone else's.
    const bound = found ? found.service.waypoint : workload?.waypoint;
    const me = this.derived.gateway;
    if (!me || bound?.name !== me.name || bound.namespace !== me.namespace)
      return { status: 400, reason: `${key} does not use this waypoint` };
    const { ip, workload: source } = sourceOf(
      s,
      c.peerIdentity,
      forwardedAddress(c.headers.forwarded),
      c.peerAddress?.address,
    );
    const meta: ConnectionMeta = {
      service: found ? found.service.key : workloadTarget(c.authority.address),
      port: found ? found.port.port : c.authority.port,
      protocol: found ? protocolOf(found.port) : 'auto',
      address: c.authority.address,
      source: {
        principal: c.peerIdentity,
        ...(ip ? { ip } : {}),
        workload: source?.name,
        namespace: source?.namespace,
        app: source?.labels.app,
        version: source?.labels.version,
      },
      ...(found ? { destination: { hostname: found.service.hostname } } : {}),
      peerAddress: c.peerAddress?.address,
    };
    return {
      status: 200,
      take: (stream: http2.ServerHttp2Stream) => this.proxy.serve(buffersOnly(stream), meta),
    };
  }

  private derive(s: WaypointSnapshot): Derived {
    const gateway = this.gatewayIn(s);
    this.telemetry.update({
      telemetries: s.telemetries.values(),
      meshConfig: s.meshConfig,
      gateway,
      rootNamespace: s.meshSettings.rootNamespace,
    });
    this.gate.update({
      authorizationPolicies: s.authorizationPolicies.values(),
      requestAuthentications: s.requestAuthentications.values(),
      rateLimitPolicies: s.rateLimitPolicies.values(),
      meshConfig: s.meshConfig,
    });
    return {
      routes: compileRoutes(routeInput(s)),
      gateway,
      gatewayKey: gateway && `${gateway.namespace}/${gateway.name}`,
      endpoints: new Map(),
    };
  }

  /** The Gateway this replica serves: its own pod's label, as the control plane placed it. */
  private gatewayIn(s: WaypointSnapshot): { name: string; namespace: string } | undefined {
    for (const w of s.workloads.values()) {
      if (w.isWaypoint && w.name === this.opts.name && w.namespace === this.opts.namespace) {
        const name = w.labels[GATEWAY_NAME_LABEL];
        return name === undefined ? undefined : { name, namespace: w.namespace };
      }
    }
    return undefined;
  }

  /** A backend's endpoints, worked out once per configuration (requests ask on every request). */
  private endpoints(backend: BackendRef): Endpoint[] {
    const { endpoints } = this.derived;
    const key = `${backend.service}:${backend.port}`;
    let found = endpoints.get(key);
    if (!found) {
      if (endpoints.size >= MAX_CACHED_BACKENDS) endpoints.clear();
      found = endpointsOf(this.state.snapshot, backend, this.trafficPolicy(backend)?.tls);
      endpoints.set(key, found);
    }
    return found;
  }

  /**
   * An HBONE tunnel to a mesh endpoint under the waypoint's own identity; to an endpoint outside the
   * mesh, TCP from the waypoint's address, with the TLS a DestinationRule originates.
   */
  private async connect(endpoint: Endpoint, signal: AbortSignal, how?: ConnectOptions) {
    if (endpoint.identity === undefined)
      return connectOutside(endpoint, signal, how, this.certificateFiles, RESOLVE_TIMEOUT_MS);
    return connectMesh(endpoint, {
      pool: this.pool,
      material: materialOf(
        await this.certs.get(this.opts.identity),
        this.state.snapshot.trustBundlePem ?? this.opts.trustBundlePem,
      ),
      hbonePort: this.opts.peerHbonePort,
    });
  }
}

/** An HBONE tunnel to a mesh endpoint (it must present `endpoint.identity`) under the identity of `material`. */
export async function connectMesh(
  endpoint: Endpoint,
  o: { pool: HbonePool; material: TlsMaterial; hbonePort?: number; headers?: Record<string, string> },
): Promise<Duplex> {
  const tunnel = await o.pool.connect({
    source: () => o.material,
    destination: { address: endpoint.address, port: o.hbonePort ?? PORTS.hbone },
    accepted: [endpoint.identity as SpiffeId],
    authority: endpoint.authority ?? `${endpoint.address}:${endpoint.port}`,
    headers: o.headers ?? {},
  });
  return buffersOnly(tunnel.stream);
}

/** Kubernetes' appProtocol first, then Istio's port-name prefixes; otherwise sniffed. */
export function protocolOf(port: { name?: string; appProtocol?: string }): ConnectionMeta['protocol'] {
  const p = (port.appProtocol ?? port.name?.split('-')[0] ?? '').toLowerCase();
  if (p === 'http' || p === 'http1') return 'http';
  if (p === 'http2' || p === 'kubernetes.io/h2c' || p === 'h2c') return 'http2';
  if (p === 'grpc' || p === 'grpc-web') return 'grpc';
  return 'auto';
}

/** What the route table is compiled from: the routes and services a snapshot holds. */
export function routeInput(s: WaypointSnapshot) {
  return {
    httpRoutes: [...s.httpRoutes.values()],
    grpcRoutes: [...s.grpcRoutes.values()],
    services: (key: string) => s.services.get(key),
    entryHosts: entryHostsOf(s.services.values()),
  };
}

/**
 * Where an extension provider's `service` is: a mesh Service (by hostname, or Istio's `namespace/hostname`)
 * is reached at its endpoints through the mesh; an IP address or another name directly.
 */
function providerAddress(s: WaypointSnapshot, service: string, port: number): AuthorizerAddress | undefined {
  const host = service.includes('/') ? service.slice(service.indexOf('/') + 1) : service;
  for (const svc of s.services.values()) {
    if (svc.hostname !== host && `${svc.name}.${svc.namespace}` !== host) continue;
    return { mesh: endpointsOf(s, { service: svc.key, port }) };
  }
  return { host, port };
}

/**
 * Where a process of the waypoint's own (a trace exporter) connects for a provider's `service:port`:
 * a mesh Service's first endpoint that may take traffic, directly (the waypoint's pod is not captured),
 * or the address or name itself.
 */
function directAddress(s: WaypointSnapshot, service: string, port: number): { host: string; port: number } {
  const found = providerAddress(s, service, port);
  if (found && 'mesh' in found) {
    const ep = found.mesh[0];
    return ep ? { host: ep.address, port: ep.port } : { host: service, port };
  }
  return found ?? { host: service, port };
}

/**
 * The endpoints of a service port, each reached on its target port; or the workload a connection was
 * addressed to. A Service's endpoints are its enrolled workloads (over HBONE), and with `plain` (a
 * sidecar) its workloads outside the mesh too, reached directly; a ServiceEntry's may be outside the
 * mesh too: its addresses and DNS names, reached directly with the TLS `tls` originates.
 */
export function endpointsOf(
  s: WaypointSnapshot,
  backend: BackendRef,
  tls?: OriginationTls,
  plain = false,
): Endpoint[] {
  const address = workloadTargetAddress(backend.service);
  if (address !== undefined) {
    const w = s.workloadByAddress.get(address);
    return w?.enrolled ? [endpointOf(w, address, backend.port)] : [];
  }
  const svc = s.services.get(backend.service);
  if (!svc) return [];
  const entry = svc.kind === 'ServiceEntry';
  const outside = (address: string, port: number, resolve?: boolean): Endpoint => ({
    address,
    port,
    ...(resolve ? { resolve } : {}),
    ...(tls ? { tls } : {}),
    ...(isWildcardHost(svc.hostname) ? {} : { host: svc.hostname }),
  });
  const out: Endpoint[] = [];
  for (const ep of svc.endpoints) {
    const port = ep.ports[String(backend.port)];
    const w = s.workloads.get(ep.workload);
    if (port === undefined) continue;
    if (w && ep.enrolled) out.push(endpointOf(w, ep.address, port));
    else if (entry) out.push(outside(ep.address, port));
    else if (plain) out.push({ ...outside(ep.address, port), ...(w ? { labels: labelsOf(w) } : {}) });
  }
  for (const named of svc.dnsEndpoints ?? []) {
    const port = named.ports[String(backend.port)];
    if (port !== undefined) out.push(outside(named.hostname, port, true));
  }
  return out;
}

/** A mesh workload as an endpoint at `address:port`: reached over HBONE, presenting its identity. */
export function endpointOf(w: WorkloadResource, address: string, port: number): Endpoint {
  return { address, port, identity: w.identity, labels: labelsOf(w) };
}

/** A workload's labels as request metrics name them. */
export function labelsOf(w: WorkloadResource): WorkloadLabels {
  return { workload: w.name, namespace: w.namespace, app: w.labels.app, version: w.labels.version };
}
