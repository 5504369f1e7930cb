// Workloads from lab pods and WorkloadEntries: uid, identity, node, addresses, labels, and whether
// they are enrolled (namespace label, workload label, or the per-workload opt-out `none`).

import {
  GATEWAY_NAME_LABEL,
  NAMESPACE_INJECTION,
  type NamespaceResource,
  SIDECAR_INJECT,
  type WorkloadEntryResource,
} from '../../config/index.ts';
import type { LabPod, SpiffeId, Workload, WorkloadUid } from './types.ts';

export const DATAPLANE_MODE = 'istio.io/dataplane-mode';

export { GATEWAY_NAME_LABEL };

export interface Context {
  trustDomain: string;
  rootNamespace: string;
  clusterId: string;
  namespaces: ReadonlyMap<string, NamespaceResource>;
}

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): SpiffeId {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}` as SpiffeId;
}

function enrollment(
  kind: Workload['kind'],
  labels: Record<string, string>,
  namespace: string,
  ctx: Context,
): { enrolled: boolean; sidecar?: true; why: string } {
  // A waypoint terminates and originates HBONE itself; capturing it would hand its ztunnel a relay.
  if (labels[GATEWAY_NAME_LABEL] !== undefined) {
    return { enrolled: false, why: 'it is a waypoint, which speaks HBONE itself and is never captured' };
  }
  // A sidecar wins over ambient, as in Istio (the ztunnel leaves a pod with a sidecar alone): by the
  // pod's own label, or its namespace's injection label unless the pod opts out.
  // As Istio's injector, which injects pods only: a WorkloadEntry (a VM) runs its own proxy if any.
  const inject = kind === 'Pod' ? labels[SIDECAR_INJECT] : 'false';
  if (inject === 'true')
    return { enrolled: true, sidecar: true, why: `sidecar mode by its label ${SIDECAR_INJECT}=true` };
  if (
    inject !== 'false' &&
    ctx.namespaces.get(namespace)?.metadata.labels?.[NAMESPACE_INJECTION] === 'enabled'
  )
    return {
      enrolled: true,
      sidecar: true,
      why: `sidecar mode by namespace ${namespace} label ${NAMESPACE_INJECTION}=enabled`,
    };
  const own = labels[DATAPLANE_MODE];
  if (own === 'none') return { enrolled: false, why: `opted out by its label ${DATAPLANE_MODE}=none` };
  if (own === 'ambient') return { enrolled: true, why: `enrolled by its label ${DATAPLANE_MODE}=ambient` };
  const ns = ctx.namespaces.get(namespace);
  if (ns?.metadata.labels?.[DATAPLANE_MODE] === 'ambient') {
    return { enrolled: true, why: `enrolled by namespace ${namespace} label ${DATAPLANE_MODE}=ambient` };
  }
  if (!ns)
    return {
      enrolled: false,
      why: `namespace ${namespace} is not declared, so it is not labelled ${DATAPLANE_MODE}=ambient`,
    };
  return { enrolled: false, why: `namespace ${namespace} is not labelled ${DATAPLANE_MODE}=ambient` };
}

/** A workload before services, waypoints and policies are attached. */
export type BaseWorkload = Omit<
  Workload,
  'waypoint' | 'services' | 'authorizationPolicies' | 'peerAuthentication'
>;

function base(
  kind: Workload['kind'],
  uid: string,
  name: string,
  namespace: string,
  serviceAccount: string,
  node: string | undefined,
  address: string | undefined,
  labels: Record<string, string>,
  ports: Record<string, number>,
  ctx: Context,
): BaseWorkload {
  const e = enrollment(kind, labels, namespace, ctx);
  return {
    uid: uid as WorkloadUid,
    kind,
    name,
    namespace,
    serviceAccount,
    trustDomain: ctx.trustDomain,
    identity: spiffeId(ctx.trustDomain, namespace, serviceAccount),
    node,
    addresses: address === undefined ? [] : [address],
    labels,
    ports,
    enrolled: e.enrolled,
    sidecar: e.sidecar === true,
    enrollment: e.why,
    isWaypoint: labels[GATEWAY_NAME_LABEL] !== undefined,
  };
}

export function podWorkload(pod: LabPod, ctx: Context): BaseWorkload {
  return base(
    'Pod',
    `${ctx.clusterId}//v1/Pod/${pod.namespace}/${pod.name}`,
    pod.name,
    pod.namespace,
    pod.serviceAccount || 'default',
    pod.node,
    pod.address,
    { ...pod.labels },
    { ...pod.ports },
    ctx,
  );
}

/** A WorkloadEntry's labels are its metadata labels overlaid with `spec.labels` (which Istio selects on). */
export function entryWorkload(we: WorkloadEntryResource, ctx: Context): BaseWorkload {
  const namespace = we.metadata.namespace ?? 'default';
  return base(
    'WorkloadEntry',
    `${ctx.clusterId}/networking.istio.io/WorkloadEntry/${namespace}/${we.metadata.name}`,
    we.metadata.name,
    namespace,
    we.spec.serviceAccount ?? 'default',
    we.spec.node,
    we.spec.address,
    { ...we.metadata.labels, ...we.spec.labels },
    { ...we.spec.ports },
    ctx,
  );
}

/** True when every selector label is on the object; an empty selector selects nothing here. */
export function selects(
  selector: Record<string, string> | undefined,
  labels: Record<string, string>,
): boolean {
  if (selector === undefined) return false;
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}
