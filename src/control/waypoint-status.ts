// A waypoint Gateway's status as the Gateway API writes it, from what runs now: `Accepted`, then
// `Programmed` once at least one replica's waypoint is connected to the control plane (it holds its
// configuration and serves), and `addresses` of those replicas.

import type { Condition } from '../config/index.ts';
import type { StoredObject } from './store/index.ts';

export interface ReplicaState {
  /** The replica's pod. */
  name: string;
  node?: string;
  addresses: readonly string[];
  /** Its waypoint process is connected to the control plane. */
  running: boolean;
}

export function gatewayStatus(
  gw: StoredObject,
  replicas: readonly ReplicaState[],
  wanted: number,
): NonNullable<StoredObject['status']> {
  const generation = gw.metadata.generation;
  const at = (c: Omit<Condition, 'observedGeneration'>): Condition => ({
    ...c,
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  });
  const running = replicas.filter((r) => r.running);
  const accepted = at({
    type: 'Accepted',
    status: 'True',
    reason: 'Accepted',
    message: `a waypoint (class ${String((gw.spec as { gatewayClassName?: string }).gatewayClassName)}); the control plane deploys it`,
  });
  let programmed: Condition;
  if (running.length > 0) {
    programmed = at({
      type: 'Programmed',
      status: 'True',
      reason: 'Programmed',
      message: `${running.length} of ${wanted} replica(s) running: ${running.map((r) => `${r.name} on ${r.node ?? '?'}`).join(', ')}`,
    });
  } else if (replicas.length === 0) {
    programmed = at({
      type: 'Programmed',
      status: 'False',
      reason: 'NoResources',
      message:
        'no replica is placed yet: the control plane places replicas on ready nodes through the pod API (ambit control --lab-state), at most 10 per namespace and 50 in the mesh, older Gateways first; traffic sent to this waypoint is refused until one runs',
    });
  } else {
    programmed = at({
      type: 'Programmed',
      status: 'False',
      reason: 'Pending',
      message: `${replicas.length} replica(s) placed (${replicas.map((r) => `${r.name} on ${r.node ?? '?'}`).join(', ')}), none running yet: the node agent starts them`,
    });
  }
  return {
    conditions: [accepted, programmed],
    addresses: running.flatMap((r) => r.addresses.map((value) => ({ type: 'IPAddress', value }))),
  };
}

/**
 * One `Accepted` condition summing up a route's parents (Gateway API keeps conditions per parent; this
 * is for `ambit get`): True when every parent accepted it, else the first refusal's reason and message.
 */
export function routeSummary(
  parents: ReadonlyArray<{ parentRef: { name: string }; conditions: Condition[] }>,
  generation: number | undefined,
): Condition[] {
  const refused = parents
    .map((p) => ({ p, c: p.conditions.find((c) => c.type === 'Accepted') }))
    .find(({ c }) => c?.status !== 'True');
  const base =
    parents.length === 0
      ? {
          status: 'False' as const,
          reason: 'NoMatchingParent',
          message: 'no parentRef names a Service: no waypoint routes it',
        }
      : refused
        ? {
            status: 'False' as const,
            reason: refused.c?.reason ?? 'NoMatchingParent',
            message: `parent ${refused.p.parentRef.name}: ${refused.c?.message ?? 'not accepted'}`,
          }
        : {
            status: 'True' as const,
            reason: 'Accepted',
            message: 'every parent Service is served by a running waypoint',
          };
  return [
    { type: 'Accepted', ...base, ...(generation === undefined ? {} : { observedGeneration: generation }) },
  ];
}
