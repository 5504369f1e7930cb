// What a connection is called in metrics, the access log and the headers it carries: Istio's TCP
// labels, the access log's workload fields, and W3C baggage. Pure functions of the state and plan.

import { canonicalIp } from '../hbone/index.ts';
import type { TcpLabels } from '../telemetry/index.ts';
import type { WorkloadResource } from '../xds/index.ts';
import type { OutboundPlan } from './plan.ts';
import type { StateSnapshot } from './state.ts';

/** One spelling per address (an IPv4-mapped IPv6 peer is its IPv4 address), as the state indexes them. */
export function canonical(address: string | undefined): string {
  return (address && canonicalIp(address)) || '';
}

export function workloadFields(w: WorkloadResource | undefined): {
  workload?: string;
  namespace?: string;
  identity?: string;
} {
  return w ? { workload: w.name, namespace: w.namespace, identity: w.identity } : {};
}

/** W3C baggage with the workload's metadata, as Istio's ztunnel sends it. */
export function baggageOf(w: WorkloadResource): string {
  const parts = [`k8s.namespace.name=${w.namespace}`, `k8s.pod.name=${w.name}`];
  const app = w.labels.app ?? w.labels['app.kubernetes.io/name'];
  const version = w.labels.version ?? w.labels['app.kubernetes.io/version'];
  if (app) parts.push(`service.name=${app}`);
  if (version) parts.push(`service.version=${version}`);
  return parts.join(',');
}

/**
 * The client's labels: its workload by `ip` (a plaintext client's address, or the address an HBONE tunnel
 * proved), else by its identity (pods that share a service account share it: the address tells them apart).
 */
export function sourceLabels(
  state: StateSnapshot,
  identity: string | undefined,
  ip?: string,
): Partial<TcpLabels> {
  const byAddress = ip === undefined ? undefined : state.workloadByAddress.get(ip);
  const w = byAddress ?? (identity === undefined ? undefined : state.workloadByIdentity.get(identity));
  return {
    source_workload: w?.name,
    source_workload_namespace: w?.namespace,
    source_principal: identity,
    source_app: w?.labels.app,
    source_version: w?.labels.version,
  };
}

export function destinationLabels(w: WorkloadResource | undefined): Partial<TcpLabels> {
  return {
    destination_workload: w?.name,
    destination_workload_namespace: w?.namespace,
    destination_principal: w?.identity,
    destination_app: w?.labels.app,
    destination_version: w?.labels.version,
  };
}

export function outboundLabels(plan: Extract<OutboundPlan, { kind: 'hbone' | 'passthrough' }>): TcpLabels {
  const svc = plan.destination.service;
  return {
    reporter: 'source',
    source_workload: plan.source.name,
    source_workload_namespace: plan.source.namespace,
    source_principal: plan.source.identity,
    source_app: plan.source.labels.app,
    source_version: plan.source.labels.version,
    ...destinationLabels(plan.destination.workload),
    ...(svc
      ? {
          destination_service: svc.hostname,
          destination_service_name: svc.name,
          destination_service_namespace: svc.namespace,
        }
      : {}),
    connection_security_policy: plan.kind === 'hbone' ? 'mutual_tls' : 'unknown',
  };
}

/** The destination-side labels of an HBONE connection (the same at open and at close). */
export function hboneLabels(
  state: StateSnapshot,
  peerIdentity: string,
  authority: string | undefined,
  flags: string,
  /** The client's address as the tunnel proved it (its `forwarded` header, checked against its identity). */
  sourceWorkloadIp?: string,
): TcpLabels {
  const dst = authority ? state.workloadByAddress.get(authority.split(':')[0] ?? '') : undefined;
  return {
    reporter: 'destination',
    ...sourceLabels(state, peerIdentity, sourceWorkloadIp),
    ...destinationLabels(dst),
    response_flags: flags,
    connection_security_policy: 'mutual_tls',
  };
}
