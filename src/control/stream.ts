// The config stream's server side on 15010: authenticates each proxy by its certificate, runs one
// StreamSession per stream, fans every new snapshot out to all of them, and records their state for
// `ambit proxy-status`. Also the node agents' workload registration.

import type * as grpc from '@grpc/grpc-js';
import { AmbitError } from '../errors/index.ts';
import { nodeId, parseSpiffeId, type SpiffeId, SYSTEM_NAMESPACE } from '../identity/index.ts';
import { logger } from '../log/index.ts';
import {
  configStreamDefinition,
  type DeltaRequest,
  type DeltaResponse,
  nodeRegistrationDefinition,
  type RegisteredWorkload,
  type RegisterResponse,
  type Snapshot,
  StreamSession,
  TYPE,
  toServiceError,
} from '../xds/index.ts';
import type { ResourceApi } from './api/resources.ts';
import { callerIdentity } from './grpc/index.ts';

const log = logger('config-stream');

/** Label on WorkloadEntries a node agent registered; the agent owns them and replaces them wholesale. */
export const REGISTERED_BY = 'ambit.dev/registered-by';

const KNOWN_TYPES = new Set<string>(Object.values(TYPE));

export interface ProxyStatus {
  id: string;
  kind: string;
  name: string;
  identity: string;
  connectedAt: string;
  state: string;
  types: ReturnType<StreamSession['status']>['types'];
}

export class ConfigStreamServer {
  private readonly sessions = new Map<
    string,
    { session: StreamSession; identity: SpiffeId; end: () => void }
  >();
  private snapshot: Snapshot;
  private readonly trustDomain: string;
  private readonly api: ResourceApi;
  private readonly rootNamespace: string;
  private next = 0;

  private readonly isWaypointIdentity: (identity: string) => boolean;
  private readonly isNodeRevoked: (node: string) => boolean;

  constructor(opts: {
    snapshot: Snapshot;
    trustDomain: string;
    api: ResourceApi;
    rootNamespace?: string;
    /** Whether a workload with this identity is a waypoint (from the registry). */
    isWaypointIdentity?: (identity: string) => boolean;
    /** Whether a node's credential was revoked (from the CA). */
    isNodeRevoked?: (node: string) => boolean;
  }) {
    this.isNodeRevoked = opts.isNodeRevoked ?? (() => false);
    this.isWaypointIdentity = opts.isWaypointIdentity ?? (() => false);
    this.snapshot = opts.snapshot;
    this.trustDomain = opts.trustDomain;
    this.api = opts.api;
    this.rootNamespace = opts.rootNamespace ?? 'istio-system';
  }

  /** A new snapshot for every proxy; each session sends only its own difference. */
  publish(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    for (const { session } of this.sessions.values()) session.onSnapshot(snapshot);
  }

  status(): ProxyStatus[] {
    return [...this.sessions.values()].map(({ session, identity }) => {
      const s = session.status();
      return {
        id: session.id,
        kind: s.node?.kind ?? '',
        name: s.node?.name ?? '',
        identity,
        connectedAt: session.connectedAt,
        state: s.state,
        types: s.types,
      };
    });
  }

  /** Ends a node's streams at once (its credential was revoked); its reconnects are refused. */
  disconnectNode(node: string): number {
    let ended = 0;
    for (const [id, { session, end }] of this.sessions) {
      if (session.node?.kind === 'ztunnel' && session.node.name === node) {
        end();
        this.sessions.delete(id);
        ended++;
      }
    }
    return ended;
  }

  /** Ends every stream (shutdown); proxies keep their state and reconnect to the next control plane. */
  closeAll(): void {
    for (const { end } of this.sessions.values()) end();
    this.sessions.clear();
  }

  services(): Array<{
    name: string;
    definition: grpc.ServiceDefinition;
    implementation: grpc.UntypedServiceImplementation;
  }> {
    return [
      {
        name: 'ambit.xds.v1.ConfigStream',
        definition: configStreamDefinition,
        implementation: {
          Delta: (call: grpc.ServerDuplexStream<DeltaRequest, DeltaResponse>) => this.delta(call),
        },
      },
      {
        name: 'ambit.xds.v1.NodeRegistration',
        definition: nodeRegistrationDefinition,
        implementation: {
          Register: (
            call: grpc.ServerUnaryCall<{ workloads: RegisteredWorkload[] }, RegisterResponse>,
            done: grpc.sendUnaryData<RegisterResponse>,
          ) => {
            this.register(callerIdentity(call), call.request.workloads ?? []).then(
              (res) => done(null, res),
              (err) => {
                log.warn(
                  { err: String(err?.message ?? err), code: err?.code },
                  'refused workload registration',
                );
                done(toServiceError(err));
              },
            );
          },
        },
      },
    ];
  }

  private delta(call: grpc.ServerDuplexStream<DeltaRequest, DeltaResponse>): void {
    const identity = callerIdentity(call);
    if (!identity) {
      call.destroy(
        toServiceError(unauthenticated('the config stream needs a node or workload certificate')) as Error,
      );
      return;
    }
    const id = `${++this.next}`;
    const session = new StreamSession(id, this.snapshot, (res) => call.write(res));
    const end = () => call.end();
    let checked = false;
    call.on('data', (req: DeltaRequest) => {
      try {
        if (!checked) {
          this.checkPeer(identity, req);
          checked = true;
          this.sessions.set(id, { session, identity, end });
          log.info({ proxy: req.node, identity }, 'proxy connected');
        }
        if (!KNOWN_TYPES.has(req.typeUrl)) {
          throw new AmbitError(
            'AMBIT_ERR_XDS_UNKNOWN_TYPE',
            `unknown resource type "${req.typeUrl}"; known: ${[...KNOWN_TYPES].join(', ')}`,
          );
        }
        if (req.errorDetail)
          log.warn(
            { proxy: session.node, type: req.typeUrl, error: req.errorDetail },
            'proxy rejected config (NACK)',
          );
        session.onRequest(req);
      } catch (err) {
        this.sessions.delete(id);
        call.emit('error', toServiceError(err));
      }
    });
    const drop = () => {
      if (this.sessions.delete(id)) log.info({ proxy: session.node }, 'proxy disconnected');
    };
    call.on('end', () => {
      drop();
      call.end();
    });
    call.on('cancelled', drop);
    call.on('error', drop);
    call.on('close', drop);
  }

  /** A ztunnel must present its own node's certificate; a waypoint a workload certificate. */
  private checkPeer(identity: SpiffeId, req: DeltaRequest): void {
    const node = req.node;
    if (!node?.kind || !node.name)
      throw invalid('the first request must name the proxy: node { kind, name }');
    if (node.kind === 'ztunnel') {
      if (this.isNodeRevoked(node.name)) throw revoked(node.name);
      if (identity !== nodeId(this.trustDomain, node.name)) {
        throw unauthenticated(
          `a ztunnel for node "${node.name}" must present that node's certificate, not ${identity}`,
        );
      }
      return;
    }
    if (node.kind === 'waypoint') {
      // Only a declared waypoint's identity may read the whole mesh's configuration as a waypoint.
      const parsed = parseSpiffeId(identity);
      if (parsed.namespace === SYSTEM_NAMESPACE || !this.isWaypointIdentity(identity)) {
        throw unauthenticated(`${identity} is not the identity of a waypoint in the mesh`);
      }
      return;
    }
    throw invalid(`unknown proxy kind "${node.kind}"; expected ztunnel or waypoint`);
  }

  /**
   * Replaces the caller node's registered workloads with `workloads`, in one transaction. A node may
   * register only into ordinary namespaces, and never over an entry it does not own (an operator's,
   * or another node's): otherwise it could claim any identity and the CA would sign it.
   */
  private async register(
    identity: SpiffeId | undefined,
    workloads: RegisteredWorkload[],
  ): Promise<RegisterResponse> {
    const prefix = `spiffe://${this.trustDomain}/ns/${SYSTEM_NAMESPACE}/sa/node/`;
    if (!identity?.startsWith(prefix))
      throw unauthenticated('only a node agent with its node certificate may register workloads');
    const node = identity.slice(prefix.length);
    if (this.isNodeRevoked(node)) throw revoked(node);
    for (const w of workloads) {
      if (w.namespace === SYSTEM_NAMESPACE || w.namespace === this.rootNamespace) {
        throw new AmbitError(
          'AMBIT_ERR_CA_IMPERSONATION',
          `node "${node}" may not register workloads in namespace ${w.namespace}`,
        );
      }
    }
    const owned = (o: { metadata: { labels?: Record<string, string> } }) =>
      o.metadata.labels?.[REGISTERED_BY] === node;
    const objects = workloads.map((w) => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: { name: w.name, namespace: w.namespace, labels: { ...w.labels, [REGISTERED_BY]: node } },
      spec: { address: w.address, serviceAccount: w.serviceAccount, labels: w.labels, node },
    }));
    const results = await this.api.apply(objects, {
      guard: (incoming, existing) => {
        if (existing && !owned(existing)) {
          throw new AmbitError(
            'AMBIT_ERR_CA_IMPERSONATION',
            `node "${node}" may not replace WorkloadEntry ${'namespace' in incoming.metadata ? incoming.metadata.namespace : ''}/${incoming.metadata.name}, which it did not register`,
          );
        }
      },
      prune: (existing) => existing.kind === 'WorkloadEntry' && owned(existing),
    });
    const count = (a: string) => results.filter((r) => r.action === a).length;
    return { created: count('created'), configured: count('configured'), deleted: count('pruned') };
  }
}

function unauthenticated(message: string): AmbitError {
  return new AmbitError('AMBIT_ERR_CA_UNAUTHENTICATED', message);
}

function revoked(node: string): AmbitError {
  return new AmbitError(
    'AMBIT_ERR_CA_NODE_REVOKED',
    `the credential of node "${node}" was revoked: rejoin with a new token`,
  );
}

function invalid(message: string): AmbitError {
  return new AmbitError('AMBIT_ERR_XDS_BAD_REQUEST', message);
}
