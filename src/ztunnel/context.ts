// What the ztunnel's paths share: its state, identity, pool, connection table, limits and ports. The
// assembly (`ztunnel.ts`) builds one; the outbound and inbound paths read it and act.

import type * as net from 'node:net';
import { AmbitError } from '../errors/index.ts';
import type { HbonePool } from '../hbone/index.ts';
import type { CertificateManager } from '../identity/index.ts';
import type { Logger } from '../log/index.ts';
import { type ConnectionTable, connectTcp, type TrackedConnection, watchIdle } from '../proxy/index.ts';
import type { TcpLabels } from '../telemetry/index.ts';
import { ZTUNNEL_ERRORS } from './errors.ts';
import type { L7Hooks } from './l7-hooks.ts';
import type { ZtunnelPorts } from './options.ts';
import type { Overload } from './overload.ts';
import { type Addr, isNodeLocal } from './plan.ts';
import type { StateSnapshot, ZtunnelState } from './state.ts';

/** What the ztunnel asks of an open connection whenever its state changes. */
export interface ConnectionChecks {
  /** Inbound connections are re-checked when policy changes; false cuts one that is now denied. */
  recheck?: (state: StateSnapshot) => boolean;
  /** False once a workload at either end that this node knows has left the node or the mesh. */
  workloadsStay: (state: StateSnapshot) => boolean;
}

export interface ZtunnelContext {
  node: string;
  /** As a sidecar: the one workload (uid) whose traffic it carries; undefined for a node's ztunnel. */
  workload?: string;
  capture: 'redirect' | 'none';
  state: ZtunnelState;
  certs: CertificateManager;
  pool: HbonePool;
  connections: ConnectionTable<ConnectionChecks>;
  overload: Overload;
  /** Bound ports (a listener given 0 writes the port it got). */
  ports: ZtunnelPorts;
  nodeAddresses: Set<string>;
  log: Logger;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** A sidecar's L7: the connections it serves as HTTP; undefined for a node's ztunnel. */
  l7?: L7Hooks;
}

/**
 * With kernel capture, whether `address` is the node itself (its addresses as they are now, loopback):
 * never a workload to deliver to, even when a tenant's WorkloadEntry claims it, or a pod would reach
 * whatever listens on the node. (With `--capture none` workloads live on loopback addresses.)
 */
export function isNodeItself(ctx: ZtunnelContext, address: string): boolean {
  return ctx.capture === 'redirect' && isNodeLocal(address, ctx.nodeAddresses);
}

export function connectUpstream(ctx: ZtunnelContext, to: Addr): Promise<net.Socket> {
  return connectTcp(to, ctx.connectTimeoutMs, ZTUNNEL_ERRORS.CONNECT_TIMEOUT);
}

/** Cuts a proxied connection after the idle timeout with no byte either way (`socket` carries both). */
export function cutWhenIdle(ctx: ZtunnelContext, socket: net.Socket, abort: (why: Error) => void): void {
  watchIdle(socket, ctx.idleTimeoutMs, () =>
    abort(
      new AmbitError(
        ZTUNNEL_ERRORS.IDLE_TIMEOUT,
        `no byte either way for ${ctx.idleTimeoutMs} ms: closed (ambit ztunnel --idle-timeout)`,
      ),
    ),
  );
}

/** Whether a sidecar's L7 serves the local workload at `address` on `port` as HTTP (never at a node). */
export function servedAsHttp(ctx: ZtunnelContext, address: string, port: number): boolean {
  if (!ctx.l7) return false;
  const w = ctx.state.snapshot.workloadByAddress.get(address);
  return w !== undefined && ctx.l7.servesInbound(w, port);
}

/**
 * A proxied connection in the table until `closes` emits 'close': counted opened under `labels` (when
 * metered; one handed to the L7 is not, its requests are counted), holding its connection slot, and on
 * close released and forgotten (whoever sees its bytes counts it closed).
 */
/**
 * A client connection handed to the sidecar's L7: in the table (not metered: its requests are) until it
 * closes, holding its slot, and cut after the idle timeout like any other.
 */
export function handedToL7(
  ctx: ZtunnelContext,
  client: net.Socket,
  release: () => void,
  connection: Omit<TrackedConnection<ConnectionChecks>, 'id' | 'abort'>,
): void {
  trackUntilClose(ctx, client, release, { ...connection, abort: () => client.destroy() });
  cutWhenIdle(ctx, client, () => client.destroy());
}

export function trackUntilClose(
  ctx: ZtunnelContext,
  closes: { once(event: 'close', listener: () => void): unknown },
  release: () => void,
  connection: Omit<TrackedConnection<ConnectionChecks>, 'id'>,
  labels?: TcpLabels,
): void {
  const id = ctx.connections.opened(labels);
  ctx.connections.track(id, connection);
  closes.once('close', () => {
    release();
    ctx.connections.untrack(id);
  });
}
