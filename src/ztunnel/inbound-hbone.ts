// The inbound HBONE path: an mTLS connection on 15008 for a workload on this node. The socket waits for
// the destination's certificate and a handshake slot; each CONNECT stream asks the inbound plan (policy)
// and, if allowed, is spliced to the workload by the HBONE server.

import { constants as http2constants } from 'node:http2';
import type * as net from 'node:net';
import { describeError } from '../errors/index.ts';
import {
  type ConnectContext,
  type ConnectDecision,
  forwardedAddress,
  type HboneServer,
  materialOf,
  resetStream,
  type StreamRecord,
  type TlsMaterial,
} from '../hbone/index.ts';
import type { SpiffeId } from '../identity/index.ts';
import { sourceIpOf } from '../xds/index.ts';
import {
  connectUpstream,
  cutWhenIdle,
  isNodeItself,
  servedAsHttp,
  trackUntilClose,
  type ZtunnelContext,
} from './context.ts';
import { baggageOf, canonical, destinationLabels, hboneLabels, workloadFields } from './labels.ts';
import { OVERFLOW_FLAG } from './limits.ts';
import { stillInMesh, stillLocal } from './membership.ts';
import { overLimit } from './overload.ts';
import { planInbound, serves } from './plan.ts';
import type { StateSnapshot } from './state.ts';

/** A socket on an HBONE listener; `destination` says which local address it was for. */
export function onHboneSocket(
  ctx: ZtunnelContext,
  hbone: HboneServer,
  socket: net.Socket,
  destination: () => string,
): void {
  let address: string;
  try {
    address = destination();
  } catch (err) {
    ctx.log.warn({ err: describeError(err) }, 'HBONE connection without a destination; closing');
    socket.destroy();
    return;
  }
  // The server certificate is the destination workload's: make sure it is here before TLS starts.
  const w = ctx.state.snapshot.workloadByAddress.get(address);
  if (!w || !serves(ctx, w) || isNodeItself(ctx, address)) {
    ctx.log.warn(
      { destination: address },
      'HBONE connection for a workload not in the mesh on this node; closing',
    );
    socket.destroy();
    return;
  }
  // Until its handshake is done a connection has proved nothing: a source address gets a share of the
  // handshakes in progress, and the node a whole, so a flood of silent connections cannot take them all.
  const peer = canonical(socket.remoteAddress);
  const slots = ctx.overload.handshakeSlots;
  if (!slots.tryAcquire(peer)) {
    socket.destroy();
    ctx.overload.refuse(
      {
        reporter: 'destination',
        ...destinationLabels(w),
        connection_security_policy: 'mutual_tls',
      },
      {
        direction: 'inbound',
        src: { addr: `${peer}:${socket.remotePort}` },
        dst: { addr: `${address}:${ctx.ports.hbone}`, ...workloadFields(w) },
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
  const handshakeDone = slots.releaser(peer);
  socket.once('close', handshakeDone);
  if (ctx.certs.current(w.identity as SpiffeId)) {
    hbone.accept(socket, address, handshakeDone);
    return;
  }
  // Bytes that arrive meanwhile stay buffered on the socket; the TLS layer takes them over.
  ctx.certs.get(w.identity as SpiffeId).then(
    () => hbone.accept(socket, address, handshakeDone),
    (err) => {
      ctx.log.warn(
        { identity: w.identity, err: describeError(err) },
        'no certificate for an inbound HBONE connection; closing',
      );
      socket.destroy();
    },
  );
}

/** The server certificate for a connection to `address`: its local workload's, once it is here. */
export function materialForDestination(ctx: ZtunnelContext, address: string): TlsMaterial | undefined {
  const w = ctx.state.snapshot.workloadByAddress.get(address);
  const bundle = ctx.state.snapshot.trustBundlePem;
  if (!w || !serves(ctx, w) || !bundle) return undefined;
  const cert = ctx.certs.current(w.identity as SpiffeId);
  return cert && materialOf(cert, bundle);
}

/** One CONNECT stream: policy decides; an allowed one gets its upstream, tracked until it closes. */
export async function onHboneConnect(ctx: ZtunnelContext, c: ConnectContext): Promise<ConnectDecision> {
  const { workloadIp: sourceWorkloadIp } = sourceIpOf(
    ctx.state.snapshot,
    c.peerIdentity,
    forwardedAddress(c.headers.forwarded),
    undefined,
  );
  const sourceIp = sourceWorkloadIp ?? c.peerAddress?.address ?? '';
  // The source workload, when this node can tell which it is: its connections end when it leaves.
  const sourceWorkload =
    sourceWorkloadIp === undefined ? undefined : ctx.state.snapshot.workloadByAddress.get(sourceWorkloadIp);
  // A sidecar that serves this port as HTTP authorizes each request itself: here only peer authentication.
  const http = servedAsHttp(ctx, c.destinationAddress, c.authority.port);
  const request = {
    destination: { address: c.destinationAddress, port: ctx.ports.hbone },
    authority: c.authority,
    peerIdentity: c.peerIdentity,
    sourceIp,
  };
  const plan = planInbound(ctx.state.snapshot, request, { authorize: !http });
  if (plan.status !== 200) return { status: plan.status, reason: plan.reason };
  const slots = ctx.overload.connectionSlots;
  if (!slots.tryAcquire(sourceIp)) {
    ctx.overload.warn('connections', sourceIp);
    return { status: 503 as const, reason: overLimit('connections', sourceIp), flags: OVERFLOW_FLAG };
  }
  const release = slots.releaser(sourceIp);
  const workload = plan.workload;
  const seen = {
    direction: 'inbound' as const,
    src: sourceIp,
    dst: `${plan.upstream.address}:${plan.upstream.port}`,
    workload: workload.name,
    peerIdentity: c.peerIdentity,
    startedAt: new Date().toISOString(),
  };
  const workloadsStay = (st: StateSnapshot) =>
    stillLocal(st, ctx, workload, c.destinationAddress) && stillInMesh(st, sourceWorkload, sourceIp);
  if (http && ctx.l7) {
    // The stream holds its slot and its place in the table until it closes, also when the client gives up
    // before the answer. Between requests the HTTP server's keep-alive timeout (1 h, as Envoy's) closes
    // it: the HTTP/1.1 server sets the stream's own timer.
    trackUntilClose(ctx, c.stream, release, {
      ...seen,
      meta: { workloadsStay },
      abort: () => c.stream.close(http2constants.NGHTTP2_CANCEL),
    });
    return ctx.l7.inbound(c, workload, plan.upstream);
  }
  let upstream: net.Socket;
  try {
    upstream = await connectUpstream(ctx, plan.upstream);
  } catch (err) {
    release();
    return {
      status: 503 as const,
      reason: `cannot reach ${plan.upstream.address}:${plan.upstream.port}: ${describeError(err)}`,
    };
  }
  const abort = () => {
    resetStream(upstream);
    c.stream.close(http2constants.NGHTTP2_CANCEL);
  };
  const authority = `${c.authority.address}:${c.authority.port}`;
  trackUntilClose(
    ctx,
    upstream,
    release,
    {
      ...seen,
      meta: { recheck: (st) => planInbound(st, request).status === 200, workloadsStay },
      abort,
    },
    hboneLabels(ctx.state.snapshot, c.peerIdentity, authority, '-', sourceWorkloadIp),
  );
  cutWhenIdle(ctx, upstream, abort);
  return { status: 200 as const, upstream, baggage: baggageOf(workload) };
}

/** A stream ended (or was refused): counted closed (and opened, if refused) and its access-log line. */
export function onHboneComplete(ctx: ZtunnelContext, r: StreamRecord): void {
  const state = ctx.state.snapshot;
  const dst = r.authority ? state.workloadByAddress.get(r.authority.split(':')[0] ?? '') : undefined;
  const flags = r.flags ?? (r.status === 401 ? 'DENY' : r.status === 200 ? '-' : 'CONNECT');
  const { workloadIp } = sourceIpOf(state, r.peerIdentity, forwardedAddress(r.headers.forwarded), undefined);
  const labels = hboneLabels(state, r.peerIdentity, r.authority, flags, workloadIp);
  const bytes = { fromClient: r.received, toClient: r.sent };
  const record = {
    direction: 'inbound' as const,
    src: {
      addr: r.peerAddress ? `${r.peerAddress.address}:${r.peerAddress.port}` : '',
      identity: r.peerIdentity,
    },
    dst: {
      addr: r.authority ?? '',
      hbone_addr: `${r.destinationAddress}:${ctx.ports.hbone}`,
      ...workloadFields(dst),
    },
    bytes_sent: r.sent,
    bytes_recv: r.received,
    duration_ms: Math.round(r.durationMs),
    flags,
    ...(r.reason ? { error: r.reason } : r.error ? { error: r.error.message } : {}),
  };
  // An accepted connection was counted as opened when it was accepted; a refused one opens and closes here.
  if (r.status !== 200) ctx.connections.refused(labels, record, bytes);
  else ctx.connections.closed(labels, bytes, record);
}
