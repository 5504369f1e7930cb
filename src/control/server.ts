// `ambit control`: one process holding the store, the registry, the CA, the admin API (a Unix socket
// in the data directory for the local CLI, and only if asked a TCP listener with bearer tokens) and
// the gRPC port (15010: CSR service and the config stream).

import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { z } from 'zod';
import {
  type AuthorizationPolicyResource,
  type GatewayResource,
  type GRPCRouteResource,
  type HTTPRouteResource,
  type MeshConfigResource,
  type Resource,
  type TelemetryResource,
  WAYPOINT_CLASSES,
  waypointReplicas,
} from '../config/index.ts';
import { AmbitError, describeError } from '../errors/index.ts';
import { DEFAULT_TRUST_DOMAIN, type SpiffeId } from '../identity/index.ts';
import { Lab } from '../lab/index.ts';
import { logger } from '../log/index.ts';
import { preparePrivateDir, requireAddon } from '../os/index.ts';
import { EVENT_LOOP_SAMPLE_MS } from '../proxy/index.ts';
import { entryHostsOf, routeParentStatuses } from '../routing/index.ts';
import { CERTIFICATE_SERVICE_NAME, TYPE } from '../xds/index.ts';
import { AdminServer, type Scope, type View } from './api/admin.ts';
import { AdminTokens } from './api/admin-tokens.ts';
import { exportMesh, importMesh } from './api/export.ts';
import { validateBody } from './api/json-body.ts';
import { ResourceApi } from './api/resources.ts';
import {
  CaService,
  CertificateAuthority,
  IssuedCertificates,
  issueServingCertificate,
  JoinTokens,
  loadOrCreateCa,
  type WorkloadPlacement,
} from './ca/index.ts';
import { startClusterDns } from './cluster-dns.ts';
import { CONTROL_ERRORS } from './errors.ts';
import { ControlGrpcServer, certificateServiceImplementation, DEFAULT_GRPC_PORT } from './grpc/index.ts';
import { MeshState } from './mesh.ts';
import { LabPodSource } from './pods.ts';
import { waypointPolicyStatus } from './policy-status.ts';
import { PrometheusTargetFiles } from './prometheus-sd.ts';
import { GATEWAY_NAME_LABEL, issueNamespace, type RegistryOptions } from './registry/index.ts';
import {
  EmbeddedStore,
  openEtcdStore,
  type Replicas,
  type ReportedProxy,
  type Store,
  type StoreChoice,
  type StoredObject,
} from './store/index.ts';
import { ConfigStreamServer } from './stream.ts';
import { WaypointDeployer } from './waypoint-deployer.ts';
import { gatewayStatus, routeSummary } from './waypoint-status.ts';

const log = logger('control');

export interface ControlOptions {
  dataDir: string;
  /**
   * `host:port` for a TCP admin listener, where every request but `GET /healthz/ready` needs a bearer
   * token. Default: none (the Unix socket only). A non-loopback address needs `adminListenAllowRemote`.
   */
  adminListen?: string;
  /** The explicit acknowledgement that `adminListen` may be reachable from other machines. */
  adminListenAllowRemote?: boolean;
  /** The admin API's Unix socket (0600; root and this process's uid only); default `<dataDir>/admin.sock`. Empty string: none. */
  adminSocket?: string;
  /** Open watches at most on the admin API (default 100); more are answered 429. */
  adminMaxWatches?: number;
  /** `host:port` for the gRPC port (CA and config stream, TLS, authenticated); default 0.0.0.0:15010. */
  grpcListen?: string;
  /** Limits on the gRPC port against callers that hold it open (defaults in src/control/grpc). */
  grpc?: { handshakeTimeoutMs?: number; maxConcurrentStreams?: number; firstRequestTimeoutMs?: number };
  /** Trust domain; default cluster.local. */
  trustDomain?: string;
  /** Lifetime of node credentials (default 24 h); nodes renew at half life. */
  nodeCertTtlSeconds?: number;
  /** Lifetimes the CA allows (seconds); tests use short ones. */
  caLifetimes?: { minTtlSeconds?: number; maxTtlSeconds?: number; defaultTtlSeconds?: number };
  registry?: RegistryOptions;
  /**
   * Cluster DNS (`<svc>.<ns>.svc.cluster.local`) on this `host:port`, UDP and TCP; off when undefined.
   * Names outside cluster.local go to `dnsUpstreams` (none: REFUSED).
   */
  dnsListen?: string;
  dnsUpstreams?: ReadonlyArray<{ host: string; port: number }>;
  /** Where resources are kept: the embedded store in the data directory (default), or etcd. */
  store?: StoreChoice;
  /**
   * The lab's state file, read as the cluster's pod API: its pods are the workloads (and so the
   * identities) placed on each node. Nodes report nothing themselves.
   */
  labState?: string;
  /** This replica's name among the control plane's replicas (default: its gRPC address). */
  replicaName?: string;
}

/** A proxy connected to one of the control plane's replicas, and which. */
export type ReplicaProxy = ReportedProxy & { controlPlane: string };

/** `host:port` of the gRPC listener, with the host's name in place of a wildcard address. */
export function defaultReplicaName(address: string): string {
  const at = /^\[?(.*?)\]?:(\d+)$/.exec(address);
  if (!at) return address;
  const wildcard = at[1] === '0.0.0.0' || at[1] === '::';
  return wildcard ? `${hostname()}:${at[2]}` : address;
}

export interface ControlPlane {
  dataDir: string;
  store: Store;
  api: ResourceApi;
  mesh: MeshState;
  ca: CertificateAuthority;
  tokens: JoinTokens;
  /** The CA's decisions: joins, certificate requests, node revocation. */
  caService: CaService;
  stream: ConfigStreamServer;
  /** This replica and its peers on the store. */
  replicas: Replicas;
  /** Where the TCP admin listener listens, as `host:port`; undefined when there is none (the default). */
  adminAddress: string | undefined;
  adminSocket: string | undefined;
  /** The admin API's bearer tokens (digests in the store). */
  adminTokens: AdminTokens;
  /** Where the gRPC port listens, as `host:port`. */
  grpcAddress: string;
  /** Where the cluster DNS listens, as `host:port`; undefined when off. */
  dnsAddress: string | undefined;
  close(): Promise<void>;
}

export async function startControlPlane(opts: ControlOptions): Promise<ControlPlane> {
  const trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const adminAt =
    opts.adminListen === undefined
      ? undefined
      : adminListenAddress(opts.adminListen, opts.adminListenAllowRemote);
  const grpcAt = parseListen(opts.grpcListen ?? `0.0.0.0:${DEFAULT_GRPC_PORT}`, '--grpc-listen');
  const dnsAt = opts.dnsListen === undefined ? undefined : parseListen(opts.dnsListen, '--dns-listen');
  const cleanup: Array<() => Promise<void> | void> = [];
  const close = async () => {
    for (const fn of cleanup.reverse()) await fn();
  };
  try {
    // It holds the CA key, the token digests and the admin socket.
    await preparePrivateDir(opts.dataDir, {
      code: CONTROL_ERRORS.DATA_DIR,
      what: 'the data directory',
      log,
    });
    const store =
      opts.store?.kind === 'etcd'
        ? await openEtcdStore(opts.store.etcd)
        : await EmbeddedStore.open(join(opts.dataDir, 'store'));
    cleanup.push(() => store.close());
    // Applies check clusterIPs and workload addresses against what the registry allocated and knows.
    const api = new ResourceApi(store, {
      addresses: {
        vipRange: opts.registry?.vipRange,
        allocatedVips: () => mesh.registry.vips,
        workloads: () => mesh.registry.workloads,
        reserved: opts.registry?.reservedCidrs,
      },
      liveStatus: (object) => liveStatus(object, mesh, allProxies, store),
    });

    // The CA: the operator's plug-in CA files in <data-dir>/ca, or a root generated on first start.
    const { material, created } = await loadOrCreateCa(join(opts.dataDir, 'ca'), trustDomain);
    const ca = await CertificateAuthority.create({
      material,
      policy: { ...definedOnly(opts.caLifetimes ?? {}), trustDomain },
    });
    if (created) log.info({ dir: join(opts.dataDir, 'ca') }, 'generated a new root CA');
    // What each node was issued: revoking a node revokes those certificates, and the list of them travels
    // with the trust bundle so every proxy refuses them until they expire.
    const issued = new IssuedCertificates({ dir: join(opts.dataDir, 'issued-certificates') });
    const bundle = () =>
      new Map([
        [
          TYPE.trustBundle,
          [
            [
              'bundle',
              { pem: ca.bundle.toPem(), revoked: caService?.revokedCertificateList() ?? issued.revoked() },
            ],
          ] as Array<[string, unknown]>,
        ],
      ]);

    let caService: CaService | undefined;
    let pods: LabPodSource | undefined;
    const mesh = new MeshState(store, {
      vipFile: join(opts.dataDir, 'vips.json'),
      registry: { ...definedOnly(opts.registry ?? {}), trustDomain },
      extraTypes: bundle,
      pods: () => pods?.pods() ?? [],
      isNodeRevoked: (node) => caService?.isRevoked(node) ?? false,
    });
    if (opts.labState) {
      const source = new LabPodSource({ file: opts.labState, onChange: () => mesh.schedule() });
      cleanup.push(() => source.close());
      await source.refresh();
      pods = source;
    }
    await mesh.start();
    cleanup.push(() => mesh.stop());

    const tokens = new JoinTokens({ store });
    caService = new CaService({
      store,
      // On every replica, whichever revoked the node: the registry re-derives, the node's streams end.
      onRevokedChange: (revoked) => {
        mesh.schedule();
        for (const node of revoked) stream.disconnectNode(node);
      },
      issued,
      ca,
      tokens,
      placement: registryPlacement(mesh),
      nodeCertTtlSeconds: opts.nodeCertTtlSeconds,
    });
    const stream = new ConfigStreamServer({
      snapshot: mesh.snapshot,
      trustDomain,
      isWaypointIdentity: (id) => mesh.registry.workloads.some((w) => w.isWaypoint && w.identity === id),
      isNodeRevoked: (node) => caService.isRevoked(node),
      firstRequestTimeoutMs: opts.grpc?.firstRequestTimeoutMs,
    });
    mesh.on('derived', (_registry, snapshot) => stream.publish(snapshot));
    cleanup.push(() => caService.close());
    // Another replica's revoked certificates join the list this one publishes.
    cleanup.push(caService.onRevokedCertificatesChange(() => mesh.schedule()));
    // What an older control plane kept in its data directory moves into the store, once.
    await tokens.takeOver(join(opts.dataDir, 'join-tokens.json'));
    await caService.takeOver(join(opts.dataDir, 'revoked-nodes.json'));
    mesh.schedule(); // the first derivation ran before revoked nodes could be read
    const serving = await issueServingCertificate(ca, SERVING_TTL_SECONDS);
    const grpc = new ControlGrpcServer({
      host: grpcAt.host,
      port: grpcAt.port,
      // Drop streams of proxies that vanished without a FIN, so proxy-status does not list ghosts.
      serverOptions: { 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000 },
      handshakeTimeoutMs: opts.grpc?.handshakeTimeoutMs,
      maxConcurrentStreams: opts.grpc?.maxConcurrentStreams,
      tls: { trustBundlePem: ca.bundle.toPem(), certChainPem: serving.certChainPem, keyPem: serving.keyPem },
    });
    const cs = certificateServiceImplementation(caService);
    grpc.addService(CERTIFICATE_SERVICE_NAME, cs.definition, cs.implementation);
    for (const svc of stream.services()) grpc.addService(svc.name, svc.definition, svc.implementation);
    await grpc.start();
    cleanup.push(async () => {
      stream.closeAll();
      await grpc.stop(2_000);
    });
    // The replicas on this store: who holds the duties that must run once, and every replica's proxies.
    const replicas = store.replicas({
      name: opts.replicaName ?? defaultReplicaName(grpc.address),
      grpc: grpc.address,
      proxies: () => stream.status(),
    });
    const allProxies = (): ReplicaProxy[] =>
      replicas.all().flatMap((r) => r.proxies.map((p) => ({ ...p, controlPlane: r.replica })));
    // The deployment controller: waypoint replicas become pods in the lab's pod API (a pod list that is
    // not a lab's, e.g. one an operator writes, has no API to add pods through: nothing is placed).
    // One replica at a time places them: the one elected for the duty.
    const lab = opts.labState ? labAt(opts.labState) : undefined;
    if (opts.labState && lab) {
      const deployer = new WaypointDeployer({
        pods: {
          pods: () => pods?.pods() ?? [],
          add: async (p) => {
            await lab.addPod(p);
            await pods?.refresh();
          },
          remove: async (name) => {
            await lab.removePod(name);
            await pods?.refresh();
          },
        },
        gateways: () => waypointGateways(store),
        readyNodes: () => readyNodes(allProxies(), caService),
        // Checked before each pod it adds or removes: a replica that lost the duty mid-pass stops there.
        allowed: () => replicas.holds(DEPLOYER_DUTY),
      });
      let every: NodeJS.Timeout | undefined;
      mesh.on('derived', () => {
        if (replicas.holds(DEPLOYER_DUTY)) void deployer.reconcile();
      });
      replicas.lead(DEPLOYER_DUTY, {
        start: () => {
          // Node readiness changes outside the store (a ztunnel connects): look again every few seconds.
          every ??= setInterval(() => void deployer.reconcile(), DEPLOYER_INTERVAL_MS);
          every.unref();
          void deployer.reconcile();
        },
        stop: () => {
          clearInterval(every);
          every = undefined;
        },
      });
      // Runs after the replicas close (below), which stops the duty: a pass under way ends before the
      // pod API goes.
      cleanup.push(() => deployer.idle());
    }
    // First of what stops: duties end before the streams do (a replica's own proxies would vanish from
    // its view, and its deployer would take their nodes for gone).
    cleanup.push(() => replicas.close());

    const renew = setInterval(
      () => {
        issueServingCertificate(ca, SERVING_TTL_SECONDS).then(
          (s) => grpc.updateTls({ certChainPem: s.certChainPem, keyPem: s.keyPem }),
          (err) => log.error({ err }, 'could not renew the control plane serving certificate'),
        );
      },
      (SERVING_TTL_SECONDS * 1000) / 2,
    );
    renew.unref();
    cleanup.push(() => clearInterval(renew));
    // Expired certificates leave the revocation list (expiry refuses them anyway): a smaller bundle.
    const prune = setInterval(() => {
      try {
        if (issued.prune()) mesh.schedule();
      } catch (err) {
        log.error({ err }, 'could not prune the issued-certificate records');
      }
    }, PRUNE_INTERVAL_MS);
    prune.unref();
    cleanup.push(() => clearInterval(prune));

    const metrics = new Registry();
    collectDefaultMetrics({ register: metrics, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    const adminTokens = new AdminTokens({ store });
    await adminTokens.takeOver(join(opts.dataDir, 'admin-tokens.json'));
    const admin = new AdminServer({
      api,
      views: {
        ...registryViews(mesh),
        // Every replica's proxies, each with the replica it is connected to.
        proxies: { read: () => ({ version: mesh.snapshot.version, items: allProxies() }) },
        replicas: {
          read: () => ({
            self: replicas.self,
            items: replicas.all().map(({ proxies, ...r }) => ({ ...r, proxies: proxies.length })),
          }),
        },
        // The CA's certificate is public: any role may fetch it to verify the mesh.
        'trust-bundle': { access: 'public', read: () => ({ pem: ca.bundle.toPem() }) },
        // A mesh moved to another store: cluster-admin only (it holds every resource and token digest).
        export: { read: () => exportMesh(store) },
      },
      actions: {
        import: (body) => importMesh(store, body),
        'revoke-node': async (body) => {
          const { node } = validateBody(revokeNodeRequest, body);
          const open = stream.nodeStreams(node);
          await caService.revokeNode(node);
          // This replica's watch ended them already, unless it lags behind the store.
          stream.disconnectNode(node);
          return { node, revoked: true, streamsEnded: open };
        },
        tokens: async (body) => {
          const { node, ttlSeconds } = validateBody(joinTokenRequest, body);
          const issued = await tokens.issue(node, ttlSeconds);
          return { token: issued.token, node: issued.node, expiresAt: issued.expiresAt.toISOString() };
        },
      },
      tokens: adminTokens,
      maxWatches: opts.adminMaxWatches,
      metrics,
    });
    cleanup.push(() => admin.close());
    const adminSocket =
      opts.adminSocket === '' ? undefined : (opts.adminSocket ?? join(opts.dataDir, 'admin.sock'));
    // The socket checks its peer's uid with the addon: without it, refuse to start rather than serve unchecked.
    if (adminSocket) {
      requireAddon();
      await admin.listen({ path: adminSocket });
    }
    const adminAddress = adminAt ? await admin.listen(adminAt) : undefined;
    let dnsAddress: string | undefined;
    if (dnsAt) {
      const dns = await startClusterDns({ listen: dnsAt, upstreams: opts.dnsUpstreams ?? [], mesh, metrics });
      cleanup.push(() => dns.close());
      dnsAddress = `${dnsAt.host.includes(':') ? `[${dnsAt.host}]` : dnsAt.host}:${dns.port}`;
    }
    if (lab) {
      const sd = new PrometheusTargetFiles({
        dir: join(opts.dataDir, 'prometheus'),
        lab,
        controlAddress: adminAddress,
      });
      await sd.start();
      cleanup.push(() => sd.stop());
    }
    log.info(
      { adminAddress, adminSocket, grpcAddress: grpc.address, dnsAddress, revision: store.revision },
      'control plane ready',
    );
    return {
      dataDir: opts.dataDir,
      store,
      api,
      mesh,
      ca,
      tokens,
      caService,
      stream,
      replicas,
      adminAddress,
      adminSocket,
      adminTokens,
      grpcAddress: grpc.address,
      dnsAddress,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The lab whose state file `file` is, or undefined (logged) when it is not a lab's. */
function labAt(file: string): Lab | undefined {
  try {
    return Lab.atStateFile(file);
  } catch (err) {
    log.warn(
      { file, err: describeError(err) },
      'the pod list is not a lab state file: waypoint replicas cannot be placed through it',
    );
    return undefined;
  }
}

/** The duty of placing waypoint replicas: one control-plane replica at a time. */
const DEPLOYER_DUTY = 'waypoint-deployer';

/** How often the waypoint deployer looks at node readiness besides every derivation. */
const DEPLOYER_INTERVAL_MS = 2_000;

/** Stored Gateways of the waypoint classes. */
function waypointGateways(store: Store): GatewayResource[] {
  return store
    .list()
    .map((r) => r.object as Resource)
    .filter(
      (o): o is GatewayResource => o.kind === 'Gateway' && WAYPOINT_CLASSES.includes(o.spec.gatewayClassName),
    );
}

/** Nodes whose ztunnel is connected now and whose credential stands: where replicas may be placed. */
function readyNodes(proxies: readonly ReplicaProxy[], caService: CaService): string[] {
  const names = proxies
    .filter((p) => p.kind === 'ztunnel' && !caService.isRevoked(p.name))
    .map((p) => p.name);
  return [...new Set(names)].sort();
}

/**
 * The status that follows the running mesh: a waypoint Gateway's `Programmed` and addresses; a route's
 * parents (Gateway API RouteParentStatus: Accepted once a running waypoint serves the parent Service,
 * ResolvedRefs), with `conditions` summing them up for `ambit get`.
 */
function liveStatus(
  object: StoredObject,
  mesh: MeshState,
  proxies: () => readonly ReplicaProxy[],
  store: Store,
): StoredObject['status'] | undefined {
  if (WAYPOINT_POLICY_KINDS.has(object.kind)) return policyStatus(object, mesh, store);
  const isRoute = object.kind === 'HTTPRoute' || object.kind === 'GRPCRoute';
  if (object.kind !== 'Gateway' && !isRoute) return undefined;
  const connected = new Set(
    proxies()
      .filter((p) => p.kind === 'waypoint')
      .map((p) => p.name),
  );
  const replicasOf = (namespace: string, name: string) =>
    mesh.registry.workloads
      .filter((w) => w.isWaypoint && w.namespace === namespace && w.labels[GATEWAY_NAME_LABEL] === name)
      .map((w) => ({ name: w.name, node: w.node, addresses: w.addresses, running: connected.has(w.name) }));
  if (!isRoute) {
    const gw = object as unknown as GatewayResource & StoredObject;
    if (!WAYPOINT_CLASSES.includes(gw.spec.gatewayClassName)) return undefined;
    const replicas = replicasOf(gw.metadata.namespace ?? 'default', gw.metadata.name);
    return gatewayStatus(object, replicas, waypointReplicas(gw));
  }
  const services = new Map(mesh.registry.services.map((s) => [s.key, s]));
  const parents = routeParentStatuses(object as unknown as HTTPRouteResource | GRPCRouteResource, {
    services: (key) => services.get(key),
    entryHosts: entryHostsOf(mesh.registry.services),
    waypointFor: (key) => {
      const wp = services.get(key)?.waypoint;
      if (!wp?.declared) return undefined;
      const running = replicasOf(wp.namespace, wp.name).some((r) => r.running);
      return { name: `${wp.namespace}/${wp.name}`, running };
    },
  });
  return { conditions: routeSummary(parents, object.metadata.generation), parents };
}

/** Kinds whose targetRefs bind them to waypoints, which report where they are bound. */
const WAYPOINT_POLICY_KINDS: ReadonlySet<string> = new Set([
  'AuthorizationPolicy',
  'RequestAuthentication',
  'RateLimitPolicy',
  'Telemetry',
]);

function policyStatus(
  object: StoredObject,
  mesh: MeshState,
  store: Store,
): StoredObject['status'] | undefined {
  const services = new Map(mesh.registry.services.map((s) => [s.key, s]));
  const gateways = new Set(
    waypointGateways(store).map((g) => `${g.metadata.namespace ?? 'default'}/${g.metadata.name}`),
  );
  return waypointPolicyStatus(object, {
    serviceWaypoint: (key) => {
      const svc = services.get(key);
      if (!svc) return undefined;
      return svc.waypoint ? `${svc.waypoint.namespace}/${svc.waypoint.name}` : null;
    },
    entryWaypoint: (key) => {
      const hosts = mesh.registry.services.filter(
        (s) => s.kind === 'ServiceEntry' && `${s.namespace}/${s.name}` === key,
      );
      if (hosts.length === 0) return undefined;
      const wp = hosts.find((h) => h.waypoint)?.waypoint;
      return wp ? `${wp.namespace}/${wp.name}` : null;
    },
    isWaypoint: (key) => gateways.has(key),
    problems: (o) => customProviderProblems(o, store),
  });
}

/**
 * Providers a policy names that the MeshConfig does not define as the right type: a CUSTOM
 * AuthorizationPolicy's (it then denies what it matches), a Telemetry's tracing (it then does not trace).
 */
function customProviderProblems(object: StoredObject, store: Store): string[] {
  const meshConfig = store
    .list()
    .map((r) => r.object as Resource)
    .find((o): o is MeshConfigResource => o.kind === 'MeshConfig');
  const providers = meshConfig?.spec.extensionProviders ?? [];
  if (object.kind === 'Telemetry') {
    const names = ((object as unknown as TelemetryResource).spec.tracing ?? []).flatMap((t) =>
      (t.providers ?? []).map((p) => p.name),
    );
    return names
      .filter((n) => !providers.some((p) => p.name === n && p.opentelemetry))
      .map(
        (n) =>
          `tracing provider "${n}" is not an opentelemetry extension provider in MeshConfig default: no tracing from this Telemetry`,
      );
  }
  const spec = (object as unknown as AuthorizationPolicyResource).spec;
  if (object.kind !== 'AuthorizationPolicy' || spec.action !== 'CUSTOM' || !spec.provider) return [];
  const provider = providers.find((p) => p.name === spec.provider?.name);
  if (provider?.envoyExtAuthzHttp) return [];
  return [
    `provider "${spec.provider.name}" is not an envoyExtAuthzHttp extension provider in MeshConfig default: the requests its rules match are denied (403)`,
  ];
}

/** How often expired entries leave the issued-certificate records and the revocation list. */
const PRUNE_INTERVAL_MS = 10 * 60_000;

/** The control plane's serving certificate lives a day and is renewed at half life. */
const SERVING_TTL_SECONDS = 24 * 3600;

/** The CA's impersonation check asks the registry: is a workload with this identity on this node? */
function registryPlacement(mesh: MeshState): WorkloadPlacement {
  // Only enrolled workloads and waypoints need (or may get) certificates: both questions ask the same list.
  const onNode = (node: string) =>
    mesh.registry.workloads.filter((w) => w.node === node && (w.enrolled || w.isWaypoint));
  return {
    hasWorkload: (node, identity) => onNode(node).some((w) => w.identity === identity),
    identitiesOnNode: (node) => [...new Set(onNode(node).map((w) => w.identity as unknown as SpiffeId))],
  };
}

const DNS_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** `host:port` (IPv6 as `[::1]:15014`) into its parts; a clear error names the flag. */
export function parseListen(text: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  // Brackets hold an IPv6 address only; otherwise an IPv4 address or a DNS name.
  const hostOk = m && (m[1] !== undefined ? isIP(m[1]) === 6 : isIP(m[2]!) === 4 || DNS_NAME.test(m[2]!));
  if (!m || !hostOk || port > 65535) {
    throw new AmbitError(
      CONTROL_ERRORS.BAD_LISTEN,
      `${flag} "${text}" is not host:port (for example 127.0.0.1:15014)`,
    );
  }
  return { host: m[1] ?? m[2]!, port };
}

/** A join token's request: the node, and a lifetime of at most 30 days. */
const joinTokenRequest = z
  .object({
    node: z.string().min(1),
    ttlSeconds: z
      .number()
      .int()
      .min(1)
      .max(30 * 24 * 3600)
      .optional(),
  })
  .strict();
const revokeNodeRequest = z.object({ node: z.string().min(1) }).strict();

/**
 * The TCP admin listener's address. Loopback only, unless the operator acknowledged a remote one:
 * tokens cross the network in clear there.
 */
export function adminListenAddress(text: string, allowRemote = false): { host: string; port: number } {
  const at = parseListen(text, '--admin-listen');
  const loopback =
    at.host === 'localhost' || (isIP(at.host) === 4 && at.host.startsWith('127.')) || at.host === '::1';
  if (!loopback && !allowRemote) {
    throw new AmbitError(
      CONTROL_ERRORS.REMOTE_ADMIN,
      `--admin-listen ${text} is not a loopback address: anyone who can reach it can try tokens, and they travel in clear; add --admin-listen-allow-remote (adminListenAllowRemote: true) to mean it`,
    );
  }
  return at;
}

/** The derived views the CLI reads: `/ambit/v1/workloads`, `/services`, `/describe`, `/issues`. */
function registryViews(mesh: MeshState): Record<string, View> {
  const inNamespace = (q: URLSearchParams, scope: Scope) => (o: { namespace: string }) =>
    scope.visible(o.namespace) && (!q.get('namespace') || o.namespace === q.get('namespace'));
  return {
    workloads: {
      access: 'namespaced',
      read: (q, scope) => ({ items: mesh.registry.workloads.filter(inNamespace(q, scope)) }),
    },
    services: {
      access: 'namespaced',
      read: (q, scope) => ({ items: mesh.registry.services.filter(inNamespace(q, scope)) }),
    },
    issues: {
      access: 'namespaced',
      // Issues about cluster-scoped objects are for those who see the whole cluster.
      read: (_q, scope) => ({
        items: mesh.registry.issues.filter((i) => {
          const ns = issueNamespace(i.object);
          return ns === undefined ? scope.all : scope.visible(ns);
        }),
      }),
    },
    describe: { access: 'namespaced', read: (q, scope) => describe(mesh, q, scope) },
  };
}

/** One workload (with the policies bound to it that the reader may see) or one service. */
function describe(mesh: MeshState, q: URLSearchParams, scope: Scope): unknown {
  const kind = q.get('kind');
  const name = q.get('name') ?? '';
  const namespace = q.get('namespace') ?? 'default';
  if (!scope.visible(namespace)) {
    throw new AmbitError(
      CONTROL_ERRORS.API_FORBIDDEN,
      `describe in namespace "${namespace}" is forbidden: the token's role does not reach that namespace`,
    );
  }
  const items = kind === 'service' ? mesh.registry.services : mesh.registry.workloads;
  const found = items.find((o) => o.name === name && o.namespace === namespace);
  if (!found) {
    throw new AmbitError(
      CONTROL_ERRORS.API_NOT_FOUND,
      `${kind ?? 'workload'} "${name}" not found in namespace ${namespace}`,
    );
  }
  if (kind === 'service') return { service: found };
  const policies = mesh.registry.authorizations.filter(
    (a) =>
      scope.visible(a.namespace) &&
      (found as (typeof mesh.registry.workloads)[number]).authorizationPolicies.some(
        (b) => b.policy === `${a.namespace}/${a.name}`,
      ),
  );
  return { workload: found, authorizations: policies };
}

/** Drops keys whose value is undefined, so they do not override defaults when spread. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
