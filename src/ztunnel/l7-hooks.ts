// What a sidecar adds to the ztunnel's data path: L7 for the ports it serves as HTTP. The ztunnel plans
// (source, destination, peer authentication), holds the connection limits and the idle timeout, and hands
// over the connections the hooks take; the sidecar (src/sidecar) serves them with the waypoint's HTTP
// core. A node's ztunnel has no hooks: it stays L4.

import type * as net from 'node:net';
import type { Registry } from 'prom-client';
import type { ConnectContext, ConnectDecision, HbonePool } from '../hbone/index.ts';
import type { CertificateManager } from '../identity/index.ts';
import type { Logger } from '../log/index.ts';
import type { Delta, ServiceResource, TypeUrl, WorkloadResource } from '../xds/index.ts';
import type { Addr } from './plan.ts';

/** What the ztunnel gives its hooks to build on: its metrics, identity, HBONE pool, log and settings. */
export interface L7Parts {
  metrics: Registry;
  certs: CertificateManager;
  pool: HbonePool;
  log: Logger;
  /** How long a connection to an upstream may take to open (`--connect-timeout`). */
  connectTimeoutMs: number;
}

export interface L7Hooks {
  /** Config-stream types the hooks need; every delta of these (shared ones included) is given to `apply`. */
  readonly types: readonly TypeUrl[];
  /** Validates and applies a delta; throws (the delta is NACKed) on a bad resource. */
  apply(type: TypeUrl, delta: Delta): void;
  /**
   * A captured outbound connection from the served workload to a Service port that no waypoint takes
   * (`target` is its `VIP:port`): true when the hooks took it (served as HTTP), false to proxy it at L4.
   */
  outbound(client: net.Socket, source: WorkloadResource, service: ServiceResource, target: Addr): boolean;
  /** Whether an inbound HBONE stream for the served workload's `address:port` is served as HTTP. */
  servesInbound(workload: WorkloadResource, port: number): boolean;
  /**
   * An inbound stream `servesInbound` said it serves, let through by peer authentication: the hooks
   * decide each request (authorization) and send it to the workload at `upstream`.
   */
  inbound(c: ConnectContext, workload: WorkloadResource, upstream: Addr): ConnectDecision;
  /**
   * A plaintext connection (no HBONE: a client outside the mesh, under PERMISSIVE) to such a port, let
   * through by peer authentication: served the same way, without a peer identity.
   */
  inboundPlain(client: net.Socket, workload: WorkloadResource, upstream: Addr, sourceIp: string): void;
  /** What the admin's config dump shows of the L7 (`l7`): the routes and policies it holds. */
  view(): Record<string, unknown>;
  /** Open HTTP connections (what a drain waits for). */
  readonly active: number;
  /** Ends every connection and stops what the hooks run. */
  close(): Promise<void>;
}
