// The inbound plaintext path (15006): a captured connection to a local workload that did not come over
// HBONE. The inbound plan (policy, without a peer identity) decides; an allowed one is spliced to the
// workload (or, at a sidecar serving the port as HTTP, handed to its L7), a denied one is reset.

import type * as net from 'node:net';
import { type OrigDst, originalDst } from '../capture/index.ts';
import { describeError } from '../errors/index.ts';
import { resetStream, splice } from '../hbone/index.ts';
import type { ConnectionRecord, TcpLabels } from '../telemetry/index.ts';
import {
  connectUpstream,
  cutWhenIdle,
  handedToL7,
  isNodeItself,
  servedAsHttp,
  type ZtunnelContext,
} from './context.ts';
import { canonical, destinationLabels, sourceLabels, workloadFields } from './labels.ts';
import { stillInMesh, stillLocal } from './membership.ts';
import { planInbound, serves } from './plan.ts';
import type { StateSnapshot } from './state.ts';

export function onPlaintextInbound(ctx: ZtunnelContext, client: net.Socket): void {
  let dst: OrigDst;
  try {
    dst = originalDst(client);
  } catch {
    client.destroy();
    return;
  }
  if (isNodeItself(ctx, dst.address)) {
    // Not a pod: a connection straight to this port, or a workload registered at the node's address.
    resetStream(client);
    return;
  }
  // A pod outside the mesh that reached a VIP whose chosen endpoint is in the mesh on this node: the
  // node's Service rules sent it here still addressed to the VIP. It goes to a local endpoint of that
  // Service, under that workload's policy, as it would arrive from another node.
  const local = localEndpointOfVip(ctx, dst);
  if (local === null) {
    resetStream(client);
    return;
  }
  const to = local ?? { address: dst.address, port: dst.port };
  const started = Date.now();
  const sourceIp = canonical(client.remoteAddress);
  // A sidecar that serves this port as HTTP authorizes each request itself: here only peer authentication.
  const http = servedAsHttp(ctx, to.address, to.port);
  const authorize = { authorize: !http };
  const request = { destination: { address: to.address, port: to.port }, sourceIp };
  const plan = planInbound(ctx.state.snapshot, request, authorize);
  const state = ctx.state.snapshot;
  const sourceWorkload = state.workloadByAddress.get(sourceIp);
  const labels: TcpLabels = {
    reporter: 'destination',
    ...sourceLabels(state, undefined, sourceIp),
    ...destinationLabels(plan.workload),
    connection_security_policy: 'none',
  };
  const record: ConnectionRecord = {
    direction: 'inbound',
    src: { addr: `${sourceIp}:${client.remotePort}` },
    dst: { addr: `${to.address}:${to.port}`, ...workloadFields(plan.workload) },
    bytes_sent: 0,
    bytes_recv: 0,
    duration_ms: 0,
    flags: '-',
  };
  if (plan.status !== 200) {
    const flags = plan.status === 401 ? 'DENY' : 'CONNECT';
    ctx.connections.refused(labels, { ...record, flags, error: plan.reason });
    resetStream(client); // a denied connection is reset, as Istio's ztunnel does
    return;
  }
  const slots = ctx.overload.connectionSlots;
  if (!slots.tryAcquire(sourceIp)) {
    resetStream(client);
    ctx.overload.refuse(labels, record, 'connections', sourceIp);
    return;
  }
  const release = slots.releaser(sourceIp);
  // Cut when the plan (peer authentication, and policy at L4) would now refuse it, or an end leaves.
  const seen = {
    direction: 'inbound' as const,
    src: record.src.addr,
    dst: record.dst.addr,
    workload: plan.workload.name,
    startedAt: new Date(started).toISOString(),
    meta: {
      recheck: (st: StateSnapshot) => planInbound(st, request, authorize).status === 200,
      workloadsStay: (st: StateSnapshot) =>
        stillLocal(st, ctx, plan.workload, to.address) && stillInMesh(st, sourceWorkload, sourceIp),
    },
  };
  if (http && ctx.l7) {
    handedToL7(ctx, client, release, seen);
    ctx.l7.inboundPlain(client, plan.workload, plan.upstream, sourceIp);
    return;
  }
  connectUpstream(ctx, plan.upstream).then(
    (upstream) => {
      const id = ctx.connections.opened(labels);
      const s = splice(client, upstream, (result) => {
        release();
        ctx.connections.finish(
          id,
          labels,
          { fromClient: result.received, toClient: result.sent },
          {
            ...record,
            bytes_sent: result.sent,
            bytes_recv: result.received,
            duration_ms: Date.now() - started,
            ...(result.error ? { error: result.error.message } : {}),
          },
        );
      });
      ctx.connections.track(id, { ...seen, abort: (why) => s.abort(why) });
      cutWhenIdle(ctx, client, (why) => s.abort(why));
    },
    (err) => {
      release();
      resetStream(client);
      ctx.connections.refused(undefined, { ...record, flags: 'CONNECT', error: describeError(err) });
    },
  );
}

type Target = { address: string; port: number };

/**
 * For an original destination that is a Service's VIP and port: one of the Service's endpoints in the
 * mesh on this node (its target port); null when it has none; undefined when it is no VIP.
 */
function localEndpointOfVip(ctx: ZtunnelContext, dst: OrigDst): Target | null | undefined {
  const entry = ctx.state.snapshot.serviceByVipPort.get(`${dst.address}:${dst.port}`);
  if (!entry) return undefined;
  const candidates: Target[] = [];
  for (const e of entry.service.endpoints) {
    const port = e.ports[String(dst.port)];
    if (serves(ctx, e) && port !== undefined) candidates.push({ address: e.address, port });
  }
  if (candidates.length === 0) return null;
  return candidates[Math.floor(Math.random() * candidates.length)]!;
}
