// A sidecar's L7: the waypoint's HTTP core, fed by the sidecar's own data path. Going out, a connection
// from the pod to a Service port declared HTTP, HTTP/2 or gRPC is served here: routes (HTTPRoute,
// GRPCRoute: producer and consumer), DestinationRule traffic policy, and an HBONE tunnel to the chosen
// endpoint under the pod's identity (`reporter="source"`). Coming in, an HBONE stream for such a port is
// served here (so is plaintext under PERMISSIVE): each request is authorized with the
// AuthorizationPolicies that bind the pod (mesh-wide, namespace, selector; with their HTTP attributes, as
// Istio's sidecar enforces them) and sent to the application (`reporter="destination"`). Every other port
// stays L4, in the ztunnel's paths.

import type * as http2 from 'node:http2';
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import {
  buffersOnly,
  type ConnectContext,
  type ConnectDecision,
  forwardedAddress,
  forwardedFor,
  materialOf,
} from '../hbone/index.ts';
import type { SpiffeId } from '../identity/index.ts';
import { connectTcp } from '../proxy/index.ts';
import { compileRoutes } from '../routing/index.ts';
import { RequestMetrics } from '../telemetry/index.ts';
import {
  CertificateFiles,
  type ConnectionMeta,
  type ConnectOptions,
  connectMesh,
  connectOutside,
  type Endpoint,
  endpointsOf,
  HttpProxy,
  labelsOf,
  PolicyGate,
  protocolOf,
  type RouteTable,
  routeInput,
  type SourceMeta,
  trafficPolicyLookup,
  type WaypointSnapshot,
  WaypointState,
  workloadTarget,
  workloadTargetAddress,
} from '../waypoint/index.ts';
import {
  type Delta,
  type ServiceResource,
  sourceOf,
  TYPE,
  type TypeUrl,
  type WorkloadResource,
} from '../xds/index.ts';
import {
  type Addr,
  baggageOf,
  canonical,
  isNodeLocal,
  type L7Hooks,
  type L7Parts,
  waypointReplicas,
  ZTUNNEL_ERRORS,
} from '../ztunnel/index.ts';

/** What the sidecar's L7 holds besides the ztunnel's types: routes, traffic policy, the policies as applied. */
export const SIDECAR_L7_TYPES: readonly TypeUrl[] = [
  TYPE.trustBundle,
  TYPE.workload,
  TYPE.service,
  TYPE.httpRoute,
  TYPE.grpcRoute,
  TYPE.destinationRule,
  TYPE.httpFault,
  TYPE.sidecarAuthorization,
  TYPE.meshConfig,
  TYPE.meshSettings,
];

/** How long a ServiceEntry's DNS endpoint may take to resolve. */
const RESOLVE_TIMEOUT_MS = 5_000;
/** Answers kept worked out per cache (a client walking Services or ports cannot grow one past it). */
const MAX_CACHED = 4096;
/** A pod's proxy has no node addresses of its own: only loopback and link-local are local. */
const NO_NODE_ADDRESSES: ReadonlySet<string> = new Set();

/**
 * A backend Service that uses a waypoint is reached through the waypoint, as Istio's sidecars send to
 * one: an HBONE tunnel to a running replica, for the Service's `VIP:port` (each replica an endpoint of its
 * own, named by its own labels). None running: no endpoint (503).
 */
function viaWaypoint(s: WaypointSnapshot, svc: ServiceResource, vip: string, port: number): Endpoint[] {
  if (!svc.waypoint) return [];
  return waypointReplicas(s.workloads.values(), svc.waypoint).map((w) => ({
    address: w.addresses[0]!,
    port,
    identity: w.identity,
    authority: `${vip}:${port}`,
    labels: labelsOf(w),
  }));
}

/** `compute()` kept in `cache` until the configuration changes; a full cache starts over (bounded). */
function remembered<T>(cache: Map<string, T>, key: string, compute: () => T): T {
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  if (cache.size >= MAX_CACHED) cache.clear();
  const value = compute();
  cache.set(key, value);
  return value;
}

/** The Service port an inbound `port` of a workload is the target of. */
interface InboundService {
  service: ServiceResource;
  port: ServiceResource['ports'][number];
}

export interface SidecarL7Options {
  /** The served workload's uid. */
  workload: string;
  parts: L7Parts;
  /** The port endpoints take HBONE on (15008; in-process tests give another). */
  hbonePort?: number;
  /** Dial backends outside the mesh on loopback too (in-process tests, whose backends listen there). */
  allowLoopback?: boolean;
}

export class SidecarL7 implements L7Hooks {
  readonly state = new WaypointState();
  readonly types = SIDECAR_L7_TYPES;
  private readonly o: SidecarL7Options;
  private readonly gate: PolicyGate;
  private readonly outbound_: HttpProxy;
  private readonly inbound_: HttpProxy;
  private readonly files = new CertificateFiles();
  private readonly trafficPolicy: ReturnType<typeof trafficPolicyLookup>;
  /** What one configuration compiles to; replaced on every change. */
  private routes: RouteTable;
  private bound: ReadonlySet<string> = new Set();
  /** Per configuration: each backend's endpoints going out, and coming in (the workload itself). */
  private endpointCache = new Map<string, Endpoint[]>();
  private localCache = new Map<string, Endpoint[]>();
  /** By `uid:port`: the Service port a workload's port is the target of (null: none). */
  private inboundCache = new Map<string, InboundService | null>();

  constructor(o: SidecarL7Options) {
    this.o = o;
    const { log } = o.parts;
    const metrics = new RequestMetrics(o.parts.metrics);
    this.gate = new PolicyGate({
      log,
      gateway: () => undefined,
      // Authorization binds the workload, as the registry lists it (not targetRefs: those bind waypoints).
      binds: (p) => this.bound.has(`${p.metadata.namespace ?? 'default'}/${p.metadata.name}`),
      // The sidecar does not call external authorizers: a CUSTOM policy denies what it matches.
      custom: 'deny',
      resolve: () => undefined,
    });
    const state = this.state;
    this.trafficPolicy = trafficPolicyLookup(
      () => state.snapshot.destinationRules,
      (key) => {
        const svc = state.snapshot.services.get(key);
        return svc && { hostname: svc.hostname, namespace: svc.namespace };
      },
      {
        get proxyNamespace() {
          return state.snapshot.workloads.get(o.workload)?.namespace ?? 'default';
        },
        get rootNamespace() {
          return state.snapshot.meshSettings.rootNamespace;
        },
      },
    );
    this.routes = compileRoutes(routeInput(state.snapshot));
    const noRoutes = compileRoutes({ httpRoutes: [], grpcRoutes: [], services: () => undefined });
    this.outbound_ = new HttpProxy({
      routes: () => this.routes,
      faults: (namespace, name) => state.snapshot.httpFaults.get(`${namespace}/${name}`),
      endpoints: (backend) => this.endpoints(backend),
      connect: (endpoint, signal, how) => this.connectOut(endpoint, signal, how),
      metrics,
      reporter: 'source',
      log,
      trafficPolicy: this.trafficPolicy,
      connectTimeoutMs: o.parts.connectTimeoutMs,
    });
    this.inbound_ = new HttpProxy({
      gate: this.gate,
      // Inbound, nothing is routed: every request goes to the workload itself.
      routes: () => noRoutes,
      endpoints: (backend) => this.local(backend),
      connect: (endpoint) =>
        connectTcp(endpoint, o.parts.connectTimeoutMs, ZTUNNEL_ERRORS.CONNECT_TIMEOUT) as Promise<Duplex>,
      metrics,
      reporter: 'destination',
      log,
      connectTimeoutMs: o.parts.connectTimeoutMs,
    });
    state.onListenerError = (err) => log.error({ err }, 'a state listener failed');
    state.onChange((s) => this.derive(s));
  }

  apply(type: TypeUrl, delta: Delta): void {
    this.state.apply(type, delta);
  }

  outbound(client: net.Socket, source: WorkloadResource, service: ServiceResource, target: Addr): boolean {
    if (service.kind === 'ServiceEntry') return false;
    const port = service.ports.find((p) => p.port === target.port);
    const protocol = port && protocolOf(port);
    if (!port || !protocol || protocol === 'auto') return false;
    const ip = canonical(client.remoteAddress);
    const meta: ConnectionMeta = {
      service: service.key,
      port: port.port,
      protocol,
      address: target.address,
      source: { principal: source.identity, ...(ip ? { ip } : {}), ...labelsOf(source) },
      destination: { hostname: service.hostname },
      peerAddress: ip,
    };
    this.outbound_.serve(client, meta);
    return true;
  }

  servesInbound(workload: WorkloadResource, port: number): boolean {
    const found = this.inboundService(workload, port);
    return found !== undefined && protocolOf(found.port) !== 'auto';
  }

  inbound(c: ConnectContext, workload: WorkloadResource, upstream: Addr): ConnectDecision {
    const s = this.state.snapshot;
    const { ip, workload: source } = sourceOf(
      s,
      c.peerIdentity,
      forwardedAddress(c.headers.forwarded),
      c.peerAddress?.address,
    );
    const meta = this.inboundMeta(workload, upstream, {
      principal: c.peerIdentity,
      ...(ip ? { ip } : {}),
      ...(source ? labelsOf(source) : {}),
    });
    meta.peerAddress = c.peerAddress?.address;
    return {
      status: 200,
      baggage: baggageOf(workload),
      take: (stream: http2.ServerHttp2Stream) => this.inbound_.serve(buffersOnly(stream), meta),
    };
  }

  inboundPlain(client: net.Socket, workload: WorkloadResource, upstream: Addr, sourceIp: string): void {
    const source = this.state.snapshot.workloadByAddress.get(sourceIp);
    // No peer identity: `principals` match nothing, as for Envoy on a plaintext connection.
    const meta = this.inboundMeta(workload, upstream, {
      principal: '',
      ip: sourceIp,
      ...(source ? labelsOf(source) : {}),
    });
    meta.security = 'none';
    meta.peerAddress = sourceIp;
    this.inbound_.serve(client, meta);
  }

  /** Who an inbound connection is for: the Service port that targets `upstream` (its labels), and its client. */
  private inboundMeta(workload: WorkloadResource, upstream: Addr, source: SourceMeta): ConnectionMeta {
    const found = this.inboundService(workload, upstream.port);
    return {
      service: found ? found.service.key : workloadTarget(upstream.address),
      port: found ? found.port.port : upstream.port,
      protocol: found ? protocolOf(found.port) : 'auto',
      address: upstream.address,
      // Policy sees the port the application listens on, as Istio's sidecar does.
      policyPort: upstream.port,
      source,
      destination: {
        ...(found ? { hostname: found.service.hostname } : {}),
        workload: labelsOf(workload),
        principal: workload.identity,
      },
    };
  }

  get active(): number {
    return this.outbound_.active + this.inbound_.active;
  }

  async close(): Promise<void> {
    this.outbound_.close();
    this.inbound_.close();
    await this.gate.close();
  }

  view(): Record<string, unknown> {
    const s = this.state.snapshot;
    const names = (m: ReadonlyMap<string, unknown>) => [...m.keys()].sort();
    return {
      httpRoutes: names(s.httpRoutes),
      grpcRoutes: names(s.grpcRoutes),
      destinationRules: names(s.destinationRules),
      // The policies that bind this workload (each request coming in is checked against them).
      authorizationPolicies: [...this.bound].sort(),
      upstream: this.outbound_.upstreamStats(),
    };
  }

  private derive(s: WaypointSnapshot): void {
    this.routes = compileRoutes(routeInput(s));
    this.endpointCache = new Map();
    this.localCache = new Map();
    this.inboundCache = new Map();
    const self = s.workloads.get(this.o.workload);
    // The ztunnel-enforced bindings are this workload's own (mesh-wide, namespace, selector).
    this.bound = new Set(
      (self?.authorizationPolicies ?? []).filter((b) => b.enforcedBy !== 'waypoint').map((b) => b.policy),
    );
    this.gate.update({ authorizationPolicies: s.authorizationPolicies.values(), meshConfig: s.meshConfig });
  }

  /** A backend's endpoints going out: enrolled ones over HBONE, the rest directly. */
  private endpoints(backend: { service: string; port: number }): Endpoint[] {
    return remembered(this.endpointCache, `${backend.service}:${backend.port}`, () => {
      const s = this.state.snapshot;
      const svc = s.services.get(backend.service);
      // A Service with no VIP (headless) has no authority to ask a waypoint for: its pods directly.
      const vip = svc?.vips[0];
      if (svc?.waypoint?.declared && vip !== undefined) return viaWaypoint(s, svc, vip, backend.port);
      return endpointsOf(s, backend, this.trafficPolicy(backend)?.tls, true).filter(
        (e) => e.identity !== undefined || e.resolve || this.mayDial(e.address),
      );
    });
  }

  /** Inbound, the one endpoint: the workload itself, on the port the Service port targets. */
  private local(backend: { service: string; port: number }): Endpoint[] {
    return remembered(this.localCache, `${backend.service}:${backend.port}`, () => {
      const s = this.state.snapshot;
      const self = s.workloads.get(this.o.workload);
      if (!self) return [];
      const toWorkload = workloadTargetAddress(backend.service);
      const ep = s.services.get(backend.service)?.endpoints.find((e) => e.workload === self.uid);
      const address = toWorkload ?? ep?.address;
      // A Service that went away meanwhile has no port to go to: no endpoint (503), never a guess.
      const port = toWorkload !== undefined ? backend.port : ep?.ports[String(backend.port)];
      if (address === undefined || port === undefined) return [];
      return [{ address, port, identity: self.identity, labels: labelsOf(self) }];
    });
  }

  private inboundService(workload: WorkloadResource, port: number): InboundService | undefined {
    const found = remembered(this.inboundCache, `${workload.uid}:${port}`, () => {
      for (const service of this.state.snapshot.services.values()) {
        if (service.kind === 'ServiceEntry') continue;
        const ep = service.endpoints.find((e) => e.workload === workload.uid);
        const p = ep && service.ports.find((sp) => ep.ports[String(sp.port)] === port);
        if (p) return { service, port: p };
      }
      return null;
    });
    return found ?? undefined;
  }

  /** Whether an address outside the mesh may be dialled: never the pod's own loopback or link-local. */
  private mayDial(address: string): boolean {
    return this.o.allowLoopback === true || !isNodeLocal(address, NO_NODE_ADDRESSES);
  }

  /** Going out: HBONE under the pod's identity to a mesh endpoint; directly to one outside the mesh. */
  private async connectOut(endpoint: Endpoint, signal: AbortSignal, how?: ConnectOptions): Promise<Duplex> {
    if (endpoint.identity === undefined)
      return connectOutside(endpoint, signal, how, this.files, RESOLVE_TIMEOUT_MS, (address) =>
        this.mayDial(address)
          ? undefined
          : `${address} is local to the pod (loopback or link-local); the sidecar does not relay there`,
      );
    const s = this.state.snapshot;
    const self = s.workloads.get(this.o.workload);
    if (!self || !s.trustBundlePem) throw new Error('the sidecar has no configuration for its workload yet');
    const cert = await this.o.parts.certs.get(self.identity as SpiffeId);
    return connectMesh(endpoint, {
      pool: this.o.parts.pool,
      material: materialOf(cert, s.trustBundlePem),
      hbonePort: this.o.hbonePort,
      // The pod's own address, which the other end trusts only with this identity: it names the client
      // by it (pods that share a service account share an identity).
      headers: {
        baggage: baggageOf(self),
        ...(self.addresses[0] ? { forwarded: forwardedFor({ address: self.addresses[0], port: 0 }) } : {}),
      },
    });
  }
}
