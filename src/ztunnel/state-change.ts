// What a new state does to what the ztunnel holds: revoked certificates cut their HBONE connections,
// local identities get their certificates ahead of need (and identities gone, their TLS contexts), capture=none listeners follow the workloads,
// and open connections whose workload left or whose policy now denies them are cut.

import { AmbitError } from '../errors/index.ts';
import type { HboneServer } from '../hbone/index.ts';
import type { SpiffeId } from '../identity/index.ts';
import type { ZtunnelContext } from './context.ts';
import { ZTUNNEL_ERRORS } from './errors.ts';
import type { WorkloadListeners } from './listeners.ts';
import { serves } from './plan.ts';
import type { StateSnapshot } from './state.ts';

export class StateReactions {
  private readonly ctx: ZtunnelContext;
  private readonly hbone: HboneServer;
  private readonly workloadListeners: WorkloadListeners | undefined;
  private revokedSeen: StateSnapshot['revoked'] | undefined;

  constructor(ctx: ZtunnelContext, hbone: HboneServer, workloadListeners: WorkloadListeners | undefined) {
    this.ctx = ctx;
    this.hbone = hbone;
    this.workloadListeners = workloadListeners;
  }

  apply(state: StateSnapshot): void {
    const { ctx } = this;
    if (state.revoked !== this.revokedSeen) {
      // Connections made before the list arrived were verified without it: cut those it now refuses.
      this.revokedSeen = state.revoked;
      const inbound = this.hbone.closeRevoked();
      const outbound = ctx.pool.closeRevoked();
      if (inbound + outbound > 0)
        ctx.log.info({ inbound, outbound }, 'closed HBONE connections made with revoked certificates');
    }
    const local = [...state.workloads.values()].filter((w) => serves(ctx, w));
    const identities = new Set(local.map((w) => w.identity as SpiffeId));
    ctx.certs.want([...identities]);
    // TLS contexts of identities that left the node go with them (they would be rebuilt if one returns).
    ctx.pool.retainIdentities((id) => identities.has(id));
    this.hbone.retainIdentities((id) => identities.has(id));
    this.workloadListeners?.sync(local);
    // A workload that left this node or the mesh takes its connections with it, at both ends (a pod that
    // vanished sends no FIN; nothing else would ever close them).
    const gone = ctx.connections.cutWhere(
      (c) => !c.meta.workloadsStay(state),
      () => new AmbitError(ZTUNNEL_ERRORS.WORKLOAD_GONE, 'a workload of this connection left the mesh'),
    );
    if (gone.length > 0)
      ctx.log.info({ closed: gone.length }, 'closed the connections of workloads that left');
    // A policy change re-checks open connections and closes those it now denies.
    const denied = ctx.connections.cutWhere(
      (c) => c.meta.recheck !== undefined && !c.meta.recheck(state),
      () => new AmbitError(ZTUNNEL_ERRORS.DENIED, 'policy now denies this connection'),
    );
    for (const c of denied)
      ctx.log.info(
        { connection: c.id, src: c.src, dst: c.dst },
        'closing a connection that policy now denies',
      );
  }
}
