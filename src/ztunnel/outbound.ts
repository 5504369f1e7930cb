// The outbound path: a captured (or SOCKS5) connection from a local workload. The plan decides; then
// one of three thin actions: HBONE through the pool, passthrough TCP, or a refusal.

import type * as net from 'node:net';
import { originalDst } from '../capture/index.ts';
import { resolveOne } from '../dns/index.ts';
import { AmbitError, describeError, hasCode } from '../errors/index.ts';
import {
  forwardedFor,
  HBONE_ERRORS,
  type HboneTunnel,
  materialOf,
  resetStream,
  splice,
} from '../hbone/index.ts';
import type { SpiffeId } from '../identity/index.ts';
import type { ConnectionRecord } from '../telemetry/index.ts';
import { connectUpstream, cutWhenIdle, handedToL7, type ZtunnelContext } from './context.ts';
import { ZTUNNEL_ERRORS } from './errors.ts';
import { baggageOf, canonical, outboundLabels, workloadFields } from './labels.ts';
import { OVERFLOW_FLAG } from './limits.ts';
import { stillLocal } from './membership.ts';
import { type Addr, type OutboundPlan, planOutbound, planResolved } from './plan.ts';
import { acceptSocks5, SOCKS_REPLY } from './socks5.ts';
import type { StateSnapshot } from './state.ts';

/** 15001: the destination is where the kernel says the connection was going. */
export function onCapturedOutbound(ctx: ZtunnelContext, client: net.Socket): void {
  let target: Addr;
  try {
    const dst = originalDst(client);
    target = { address: dst.address, port: dst.port };
  } catch (err) {
    ctx.log.warn({ err: describeError(err) }, 'outbound connection without an original destination');
    client.destroy();
    return;
  }
  void outbound(ctx, client, target);
}

/** SOCKS5: the client names the destination. */
export function onSocks(ctx: ZtunnelContext, client: net.Socket): void {
  acceptSocks5(client).then(
    (req) => outbound(ctx, client, req.target, req.reply),
    (err) => ctx.log.debug({ err: describeError(err) }, 'SOCKS5 handshake failed'),
  );
}

async function outbound(
  ctx: ZtunnelContext,
  client: net.Socket,
  target: Addr,
  socksReply?: (code: number) => void,
): Promise<void> {
  const sourceAddress = canonical(client.remoteAddress);
  const started = Date.now();
  const planned = planOutbound(ctx.state.snapshot, sourceAddress, target, {
    node: ctx.node,
    workload: ctx.workload,
    nodeAddresses: ctx.nodeAddresses,
    outboundTrafficMode: ctx.state.snapshot.outboundTrafficMode,
  });
  const { plan, flags: refusedFlags } =
    planned.kind === 'resolve' ? await resolveEndpoint(ctx, planned) : { plan: planned, flags: 'NR' };
  const record: ConnectionRecord = {
    direction: 'outbound',
    src: { addr: `${sourceAddress}:${client.remotePort}` },
    dst: { addr: `${target.address}:${target.port}` },
    bytes_sent: 0,
    bytes_recv: 0,
    duration_ms: 0,
    flags: '-',
  };
  if (plan.kind === 'refuse' || plan.kind === 'resolve') {
    const reason = plan.kind === 'refuse' ? plan.reason : `${plan.hostname} was not resolved`;
    // A SOCKS client hears "not allowed"; a captured one is reset, as Istio's ztunnel resets it.
    if (socksReply) {
      socksReply(SOCKS_REPLY.notAllowed);
      client.destroy();
    } else resetStream(client);
    // A ServiceEntry's name that did not resolve (or resolved to the node) is counted against it.
    const entry = planned.kind === 'resolve' ? resolveLabels(planned) : undefined;
    if (entry?.destination_service) record.dst.service = entry.destination_service;
    ctx.connections.refused(entry, { ...record, flags: refusedFlags, error: reason });
    return;
  }
  Object.assign(record.src, workloadFields(plan.source));
  const service = plan.destination.service;
  if (service) record.dst.service = service.hostname;
  const labels = outboundLabels(plan);
  // Passthrough is not a mesh connection (Istio's TCP metrics count HBONE), except to a ServiceEntry:
  // the registry names that destination, so its traffic is counted against it.
  const metered = plan.kind === 'hbone' || service?.kind === 'ServiceEntry' ? labels : undefined;
  // A source workload over its share (or the node over its whole) is refused before anything is dialled.
  const slot = plan.source.uid;
  const slots = ctx.overload.connectionSlots;
  if (!slots.tryAcquire(slot)) {
    socksReply?.(SOCKS_REPLY.generalFailure);
    resetStream(client);
    ctx.overload.refuse(labels, { ...record, flags: OVERFLOW_FLAG }, 'connections', plan.source.name);
    return;
  }
  const release = slots.releaser(slot);
  const seen = {
    direction: 'outbound' as const,
    src: record.src.addr,
    dst: record.dst.addr,
    workload: plan.source.name,
    startedAt: new Date(started).toISOString(),
    meta: { workloadsStay: (st: StateSnapshot) => stillLocal(st, ctx, plan.source, sourceAddress) },
  };
  // A sidecar serves its workload's HTTP to a Service at L7 (routes, request metrics), unless a waypoint
  // takes that traffic: then the waypoint does L7 and this connection goes to it as bytes.
  const toWaypoint = plan.kind === 'hbone' && plan.via === 'waypoint';
  if (
    ctx.l7 &&
    service &&
    !toWaypoint &&
    !socksReply &&
    ctx.l7.outbound(client, plan.source, service, target)
  ) {
    handedToL7(ctx, client, release, seen);
    return;
  }
  let upstream: net.Socket | HboneTunnel['stream'];
  try {
    if (plan.kind === 'hbone') {
      const tunnel = await openTunnel(ctx, plan, client);
      upstream = tunnel.stream;
      record.dst.hbone_addr = `${plan.actual.address}:${plan.actual.port}`;
      record.dst.identity = tunnel.peerIdentity;
    } else {
      upstream = await connectUpstream(ctx, plan.actual);
    }
  } catch (err) {
    release();
    const denied = hasCode(err, HBONE_ERRORS.DENIED);
    socksReply?.(denied ? SOCKS_REPLY.notAllowed : SOCKS_REPLY.connectionRefused);
    // A SOCKS client has its answer (not allowed) and then a close; a captured client is reset, as
    // Istio's ztunnel resets a denied connection (curl exit 56), and so is an unreachable destination.
    if (denied && socksReply) client.end();
    else resetStream(client);
    ctx.connections.refused(metered, {
      ...record,
      flags: denied ? 'DENY' : 'CONNECT',
      duration_ms: Date.now() - started,
      error: describeError(err),
    });
    return;
  }
  socksReply?.(SOCKS_REPLY.succeeded);
  client.resume(); // the SOCKS handshake paused it; the splice takes over from here
  const id = ctx.connections.opened(metered);
  const s = splice(client, upstream, (result) => {
    release();
    ctx.connections.finish(
      id,
      metered,
      { fromClient: result.received, toClient: result.sent },
      {
        ...record,
        bytes_sent: result.received,
        bytes_recv: result.sent,
        duration_ms: Date.now() - started,
        ...(result.error ? { error: result.error.message } : {}),
      },
    );
  });
  ctx.connections.track(id, { ...seen, abort: (why) => s.abort(why) });
  cutWhenIdle(ctx, client, (why) => s.abort(why));
}

/** The labels of a connection to a ServiceEntry's DNS endpoint, before it has an address. */
function resolveLabels(plan: Extract<OutboundPlan, { kind: 'resolve' }>) {
  const unresolved = { address: plan.hostname, port: plan.port };
  return outboundLabels({ ...plan, kind: 'passthrough', actual: unresolved, intended: unresolved });
}

/**
 * A ServiceEntry's DNS endpoint resolved through the node's resolver (getaddrinfo: /etc/hosts, then
 * the configured servers), bounded by the connect timeout; one of its addresses, then the plan for it.
 * A name that does not resolve is refused with Envoy's flag DF (DNS resolution failure).
 */
async function resolveEndpoint(
  ctx: ZtunnelContext,
  plan: Extract<OutboundPlan, { kind: 'resolve' }>,
): Promise<{ plan: OutboundPlan; flags: string }> {
  const service = plan.destination.service?.key ?? '?';
  try {
    const address = await resolveOne(plan.hostname, ctx.connectTimeoutMs);
    return { plan: planResolved(plan, canonical(address), ctx), flags: 'NR' };
  } catch (err) {
    const reason = `${plan.hostname} (an endpoint of ${service}) did not resolve: ${describeError(err)}; check the name and the node's resolver (/etc/resolv.conf)`;
    return { plan: { kind: 'refuse', reason }, flags: 'DF' };
  }
}

async function openTunnel(
  ctx: ZtunnelContext,
  plan: Extract<OutboundPlan, { kind: 'hbone' }>,
  client: net.Socket,
): Promise<HboneTunnel> {
  const cert = await ctx.certs.get(plan.source.identity as SpiffeId);
  const trustBundlePem = ctx.state.snapshot.trustBundlePem;
  if (!trustBundlePem)
    throw new AmbitError(ZTUNNEL_ERRORS.NO_BUNDLE, 'no trust bundle yet from the control plane');
  const material = materialOf(cert, trustBundlePem);
  return ctx.pool.connect({
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
