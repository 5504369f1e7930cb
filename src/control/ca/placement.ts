// The impersonation check's question — "is a workload with this identity placed on this node?" — as an
// interface the control plane's registry implements, plus the in-memory implementation it builds on.

import type { SpiffeId } from '../../identity/index.ts';

export interface WorkloadPlacement {
  /** True when at least one workload running as `identity` is placed on `node`. */
  hasWorkload(node: string, identity: SpiffeId): boolean;
  /** Every identity with a workload on `node` (what that node's ztunnel needs certificates for). */
  identitiesOnNode(node: string): SpiffeId[];
}

interface Placed {
  node: string;
  identity: SpiffeId;
}

/** Workloads by uid, with a node -> identity -> count index kept in step. One writer; reads are cheap. */
export class InMemoryPlacement implements WorkloadPlacement {
  private readonly workloads = new Map<string, Placed>();
  private readonly byNode = new Map<string, Map<SpiffeId, number>>();

  /** Places (or moves) workload `uid` on `node` running as `identity`. */
  place(uid: string, node: string, identity: SpiffeId): void {
    this.remove(uid);
    this.workloads.set(uid, { node, identity });
    let ids = this.byNode.get(node);
    if (ids === undefined) {
      ids = new Map();
      this.byNode.set(node, ids);
    }
    ids.set(identity, (ids.get(identity) ?? 0) + 1);
  }

  /** Removes workload `uid`; unknown uids are ignored. */
  remove(uid: string): void {
    const placed = this.workloads.get(uid);
    if (placed === undefined) return;
    this.workloads.delete(uid);
    const ids = this.byNode.get(placed.node)!;
    const left = (ids.get(placed.identity) ?? 1) - 1;
    if (left > 0) ids.set(placed.identity, left);
    else ids.delete(placed.identity);
    if (ids.size === 0) this.byNode.delete(placed.node);
  }

  hasWorkload(node: string, identity: SpiffeId): boolean {
    return (this.byNode.get(node)?.get(identity) ?? 0) > 0;
  }

  identitiesOnNode(node: string): SpiffeId[] {
    return [...(this.byNode.get(node)?.keys() ?? [])].sort();
  }
}
