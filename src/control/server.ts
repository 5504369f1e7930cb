// `ambit control`: one process holding the store, the registry, the CA, the admin API (15014, plus a
// Unix socket in the data directory for the local CLI) and the gRPC port (15010: CSR service and the
// config stream).

import { join } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { AmbitError } from '../errors/index.ts';
import { DEFAULT_TRUST_DOMAIN, type SpiffeId } from '../identity/index.ts';
import { logger } from '../log/index.ts';
import { CERTIFICATE_SERVICE_NAME, TYPE } from '../xds/index.ts';
import { AdminServer, type View } from './api/admin.ts';
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
import { ControlGrpcServer, certificateServiceImplementation, DEFAULT_GRPC_PORT } from './grpc/index.ts';
import { MeshState } from './mesh.ts';
import { LabPodSource } from './pods.ts';
import type { RegistryOptions } from './registry/index.ts';
import { EmbeddedStore, type Store } from './store/index.ts';
import { ConfigStreamServer } from './stream.ts';

const log = logger('control');

export interface ControlOptions {
  dataDir: string;
  /** `host:port` for the admin API; default 127.0.0.1:15014 (it has no authentication: keep it local). */
  adminListen?: string;
  /** Also serve the admin API on this Unix socket; default `<dataDir>/admin.sock`. Empty string: none. */
  adminSocket?: string;
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
   * The lab's state file, read as the cluster's pod API: its pods are the workloads (and so the
   * identities) placed on each node. Nodes report nothing themselves.
   */
  labState?: string;
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
  /** Where the admin API listens, as `host:port`. */
  adminAddress: string;
  adminSocket: string | undefined;
  /** Where the gRPC port listens, as `host:port`. */
  grpcAddress: string;
  close(): Promise<void>;
}

export async function startControlPlane(opts: ControlOptions): Promise<ControlPlane> {
  const trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const adminAt = parseListen(opts.adminListen ?? '127.0.0.1:15014', '--admin-listen');
  const grpcAt = parseListen(opts.grpcListen ?? `0.0.0.0:${DEFAULT_GRPC_PORT}`, '--grpc-listen');
  const cleanup: Array<() => Promise<void> | void> = [];
  const close = async () => {
    for (const fn of cleanup.reverse()) await fn();
  };
  try {
    const store = await EmbeddedStore.open(join(opts.dataDir, 'store'));
    cleanup.push(() => store.close());
    // Applies check clusterIPs and workload addresses against what the registry allocated and knows.
    const api = new ResourceApi(store, {
      addresses: {
        vipRange: opts.registry?.vipRange,
        allocatedVips: () => mesh.registry.vips,
        workloads: () => mesh.registry.workloads,
      },
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
          [['bundle', { pem: ca.bundle.toPem(), revoked: issued.revoked() }]] as Array<[string, unknown]>,
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

    const tokens = new JoinTokens({ file: join(opts.dataDir, 'join-tokens.json') });
    caService = new CaService({
      revokedFile: join(opts.dataDir, 'revoked-nodes.json'),
      onRevokedChange: () => mesh.schedule(),
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
    collectDefaultMetrics({ register: metrics });
    const admin = new AdminServer({
      api,
      views: {
        ...registryViews(mesh),
        proxies: () => ({ version: mesh.snapshot.version, items: stream.status() }),
        'trust-bundle': () => ({ pem: ca.bundle.toPem() }),
      },
      actions: {
        'revoke-node': async (body) => {
          const { node } = (body ?? {}) as { node?: unknown };
          if (typeof node !== 'string')
            throw new AmbitError('AMBIT_ERR_API_BAD_REQUEST', 'the body needs "node": the node name');
          caService.revokeNode(node);
          return { node, revoked: true, streamsEnded: stream.disconnectNode(node) };
        },
        tokens: async (body) => {
          const { node, ttlSeconds } = (body ?? {}) as { node?: unknown; ttlSeconds?: unknown };
          if (typeof node !== 'string')
            throw new AmbitError('AMBIT_ERR_API_BAD_REQUEST', 'the body needs "node": the node name');
          const issued = tokens.issue(node, typeof ttlSeconds === 'number' ? ttlSeconds : undefined);
          return { token: issued.token, node: issued.node, expiresAt: issued.expiresAt.toISOString() };
        },
      },
      metrics,
    });
    cleanup.push(() => admin.close());
    const adminAddress = await admin.listen(adminAt);
    const adminSocket =
      opts.adminSocket === '' ? undefined : (opts.adminSocket ?? join(opts.dataDir, 'admin.sock'));
    if (adminSocket) await admin.listen({ path: adminSocket });
    log.info(
      { adminAddress, adminSocket, grpcAddress: grpc.address, revision: store.revision },
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
      adminAddress,
      adminSocket,
      grpcAddress: grpc.address,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** How often expired entries leave the issued-certificate records and the revocation list. */
const PRUNE_INTERVAL_MS = 10 * 60_000;

/** The control plane's serving certificate lives a day and is renewed at half life. */
const SERVING_TTL_SECONDS = 24 * 3600;

/** The CA's impersonation check asks the registry: is a workload with this identity on this node? */
function registryPlacement(mesh: MeshState): WorkloadPlacement {
  // Only enrolled workloads need (or may get) certificates: both questions ask the same list.
  const onNode = (node: string) => mesh.registry.workloads.filter((w) => w.node === node && w.enrolled);
  return {
    hasWorkload: (node, identity) => onNode(node).some((w) => w.identity === identity),
    identitiesOnNode: (node) => [...new Set(onNode(node).map((w) => w.identity as unknown as SpiffeId))],
  };
}

/** `host:port` (IPv6 as `[::1]:15014`) into its parts; a clear error names the flag. */
export function parseListen(text: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) {
    throw new AmbitError(
      'AMBIT_ERR_CONTROL_BAD_LISTEN',
      `${flag} "${text}" is not host:port (for example 127.0.0.1:15014)`,
    );
  }
  return { host: m[1] ?? m[2]!, port };
}

/** The derived views the CLI reads: `/ambit/v1/workloads`, `/services`, `/describe`. */
function registryViews(mesh: MeshState): Record<string, View> {
  const inNamespace = (q: URLSearchParams) => (o: { namespace: string }) =>
    !q.get('namespace') || o.namespace === q.get('namespace');
  return {
    workloads: (q) => ({ items: mesh.registry.workloads.filter(inNamespace(q)) }),
    services: (q) => ({ items: mesh.registry.services.filter(inNamespace(q)) }),
    issues: () => ({ items: mesh.registry.issues }),
    describe: (q) => {
      const kind = q.get('kind');
      const name = q.get('name') ?? '';
      const namespace = q.get('namespace') ?? 'default';
      const items = kind === 'service' ? mesh.registry.services : mesh.registry.workloads;
      const found = items.find((o) => o.name === name && o.namespace === namespace);
      if (!found) {
        throw new AmbitError(
          'AMBIT_ERR_API_NOT_FOUND',
          `${kind ?? 'workload'} "${name}" not found in namespace ${namespace}`,
        );
      }
      if (kind === 'service') return { service: found };
      const policies = mesh.registry.authorizations.filter((a) =>
        (found as (typeof mesh.registry.workloads)[number]).authorizationPolicies.some(
          (b) => b.policy === `${a.namespace}/${a.name}`,
        ),
      );
      return { workload: found, authorizations: policies };
    },
  };
}

/** Drops keys whose value is undefined, so they do not override defaults when spread. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
