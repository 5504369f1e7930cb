// Whether the workloads at the ends of a connection are still where they were when it opened: a
// connection ends with the workload that carried it (removed, moved, un-enrolled). Pure.

import type { WorkloadResource } from '../xds/index.ts';
import type { StateSnapshot } from './state.ts';

/**
 * True while `w` is still, in `state`, an enrolled workload on `node` at `address`: a connection of a
 * local workload that was removed, moved or un-enrolled is cut.
 */
export function stillLocal(
  state: StateSnapshot,
  node: string,
  w: WorkloadResource,
  address: string,
): boolean {
  const now = state.workloadByAddress.get(address);
  return now?.uid === w.uid && now.enrolled && now.node === node;
}

/**
 * True while `w` (the remote end as known at connect time, if it was a workload) is still that workload
 * at `address`, and still enrolled if it was: one removed from the registry or un-enrolled is gone.
 */
export function stillInMesh(state: StateSnapshot, w: WorkloadResource | undefined, address: string): boolean {
  if (w === undefined) return true;
  const now = state.workloadByAddress.get(address);
  return now?.uid === w.uid && (now.enrolled || !w.enrolled);
}
