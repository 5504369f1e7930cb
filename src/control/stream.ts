// The config stream's server side on 15010: authenticates each proxy by its certificate, runs one
// StreamSession per stream, fans every new snapshot out to all of them, and records their state for
// `ambit proxy-status`. Nodes report nothing: which workloads a node runs is operator-owned configuration
// (WorkloadEntries with spec.node, or pods from a workload source), never the node's word.

import type * as grpc from '@grpc/grpc-js';
import { AmbitError } from '../errors/index.ts';
import { nodeId, parseSpiffeId, type SpiffeId, SYSTEM_NAMESPACE } from '../identity/index.ts';
import { logger } from '../log/index.ts';
import {
  configStreamDefinition,
  type DeltaRequest,
  type DeltaResponse,
  type Snapshot,
  StreamSession,
  TYPE,
  toServiceError,
} from '../xds/index.ts';
import { CONTROL_ERRORS } from './errors.ts';
import { callerIdentity } from './grpc/index.ts';
import type { ReportedProxy } from './store/index.ts';

const log = logger('config-stream');

const DEFAULT_FIRST_REQUEST_TIMEOUT_MS = 10_000;

const KNOWN_TYPES = new Set<string>(Object.values(TYPE));

/** One connected proxy as proxy-status shows it; the same shape travels in the replicas' reports. */
export type ProxyStatus = ReportedProxy;

export class ConfigStreamServer {
  private readonly sessions = new Map<
    string,
    { session: StreamSession; identity: SpiffeId; end: () => void }
  >();
  private snapshot: Snapshot;
  private readonly trustDomain: string;
  private next = 0;

  private readonly isWaypointIdentity: (identity: string) => boolean;
  private readonly isNodeRevoked: (node: string) => boolean;
  private readonly firstRequestTimeoutMs: number;

  constructor(opts: {
    snapshot: Snapshot;
    trustDomain: string;
    /** Whether a workload with this identity is a waypoint (from the registry). */
    isWaypointIdentity?: (identity: string) => boolean;
    /** Whether a node's credential was revoked (from the CA). */
    isNodeRevoked?: (node: string) => boolean;
    /** An authenticated stream must send its first request within this (default 10 s), or it is ended. */
    firstRequestTimeoutMs?: number;
  }) {
    this.firstRequestTimeoutMs = opts.firstRequestTimeoutMs ?? DEFAULT_FIRST_REQUEST_TIMEOUT_MS;
    this.isNodeRevoked = opts.isNodeRevoked ?? (() => false);
    this.isWaypointIdentity = opts.isWaypointIdentity ?? (() => false);
    this.snapshot = opts.snapshot;
    this.trustDomain = opts.trustDomain;
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

  /** Whether a session is a node's: its ztunnel's, or one of its sidecars' (both present its certificate). */
  private ofNode(node: string, s: { session: StreamSession; identity: SpiffeId }): boolean {
    const kind = s.session.node?.kind;
    return (kind === 'ztunnel' || kind === 'sidecar') && s.identity === nodeId(this.trustDomain, node);
  }

  /** How many streams a node has open (its ztunnel's and its sidecars'). */
  nodeStreams(node: string): number {
    return [...this.sessions.values()].filter((s) => this.ofNode(node, s)).length;
  }

  /** Ends a node's streams at once (its credential was revoked): its ztunnel's and its sidecars'. */
  disconnectNode(node: string): number {
    let ended = 0;
    for (const [id, s] of this.sessions) {
      const { end } = s;
      if (this.ofNode(node, s)) {
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
    ];
  }

  private delta(call: grpc.ServerDuplexStream<DeltaRequest, DeltaResponse>): void {
    // grpc-js: destroy(err) sends no status and leaves the HTTP/2 stream open (the caller waits forever);
    // emitting 'error' is what ends a server stream with that status.
    let refused = false;
    const refuse = (err: unknown) => {
      if (refused) return;
      refused = true;
      call.emit('error', toServiceError(err));
    };
    const identity = callerIdentity(call);
    if (!identity) {
      refuse(unauthenticated('the config stream needs a node or workload certificate'));
      return;
    }
    const id = `${++this.next}`;
    const session = new StreamSession(id, this.snapshot, (res) => call.write(res));
    const end = () => call.end();
    let checked = false;
    // Until the first request names the proxy, the stream holds memory for a caller nobody has checked.
    const firstRequest = setTimeout(() => {
      log.warn({ identity }, 'config stream sent no first request in time; ending it');
      refuse(
        new AmbitError(
          CONTROL_ERRORS.XDS_FIRST_REQUEST_TIMEOUT,
          `no first request within ${this.firstRequestTimeoutMs} ms: a proxy must name itself (node { kind, name }) as soon as the stream opens`,
        ),
      );
    }, this.firstRequestTimeoutMs);
    call.on('data', (req: DeltaRequest) => {
      clearTimeout(firstRequest);
      if (refused) return;
      try {
        if (!checked) {
          this.checkPeer(identity, req);
          checked = true;
          this.sessions.set(id, { session, identity, end });
          log.info({ proxy: req.node, identity }, 'proxy connected');
        }
        if (!KNOWN_TYPES.has(req.typeUrl)) {
          throw new AmbitError(
            CONTROL_ERRORS.XDS_UNKNOWN_TYPE,
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
        refuse(err);
      }
    });
    const drop = () => {
      clearTimeout(firstRequest);
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

  /**
   * A ztunnel must present its own node's certificate, a sidecar the certificate of the node its pod
   * runs on (it reads what that node's ztunnel reads), a waypoint a workload certificate.
   */
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
    if (node.kind === 'sidecar') {
      const from = parseSpiffeId(identity).node;
      if (from === undefined)
        throw unauthenticated(`a sidecar must present its node's certificate, not ${identity}`);
      if (this.isNodeRevoked(from)) throw revoked(from);
      return;
    }
    throw invalid(`unknown proxy kind "${node.kind}"; expected ztunnel, sidecar or waypoint`);
  }
}

function unauthenticated(message: string): AmbitError {
  return new AmbitError(CONTROL_ERRORS.CA_UNAUTHENTICATED, message);
}

function revoked(node: string): AmbitError {
  return new AmbitError(
    CONTROL_ERRORS.CA_NODE_REVOKED,
    `the credential of node "${node}" was revoked: rejoin with a new token`,
  );
}

function invalid(message: string): AmbitError {
  return new AmbitError(CONTROL_ERRORS.XDS_BAD_REQUEST, message);
}
