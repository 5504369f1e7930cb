// Whether the workloads at the ends of a connection are still where they were when it opened: a
// connection ends with the workload that carried it (removed, moved, un-enrolled). Pure.

import type { WorkloadResource } from '../xds/index.ts';
import { type ServedScope, serves } from './plan.ts';
import type { StateSnapshot } from './state.ts';

/**
 * True while `w` is still, in `state`, a workload this proxy carries (see `serves`) at `address`: a
 * connection of a local workload that was removed, moved, un-enrolled or put in (or out of) sidecar mode
 * is cut.
 */
export function stillLocal(
  state: StateSnapshot,
  scope: ServedScope,
  w: WorkloadResource,
  address: string,
): boolean {
  const now = state.workloadByAddress.get(address);
  return now?.uid === w.uid && serves(scope, now);
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
