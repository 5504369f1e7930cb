// deriveRegistry: the whole derivation, pure. Snapshot of resources + lab pods + the previous VIP
// table in; workloads, services, the new VIP table, ztunnel authorizations and issues out.

import {
  type AuthorizationPolicyResource,
  cidrMatcher,
  type GatewayResource,
  isWaypointPolicy,
  type NamespaceResource,
  ofKind,
  type PeerAuthenticationResource,
  type ServiceResource,
} from '../../config/index.ts';
import { type L4Authorization, toL4Authorization } from '../../policy/index.ts';
import { ageOf, NO_AGE, settleWorkloadAddresses, workloadLabel } from './addresses.ts';
import { authorizationScope, bindAuthorizations, resolvePeerAuth, targetRefIssues } from './policies.ts';
import { nonTcpPortIssues } from './protocols.ts';
import { buildEntryService, entryVipClaims, entryVips, settleEntryHosts } from './service-entries.ts';
import { buildService, indexWorkloads } from './services.ts';
import type {
  Registry,
  RegistryInput,
  RegistryIssue,
  RegistryService,
  WaypointBinding,
  Workload,
} from './types.ts';
import { allocateVips } from './vips.ts';
import { firstSay, fromLabels, type WaypointLookup, waypointLookup } from './waypoints.ts';
import {
  type BaseWorkload,
  type Context,
  entryWorkload,
  GATEWAY_NAME_LABEL,
  podWorkload,
} from './workloads.ts';

export const DEFAULTS = {
  trustDomain: 'cluster.local',
  rootNamespace: 'istio-system',
  vipRange: '198.19.0.0/16',
  clusterId: 'Kubernetes',
} as const;

const byKey = <T>(a: { key: string } & T, b: { key: string } & T): number =>
  a.key < b.key ? -1 : a.key > b.key ? 1 : 0;

export function deriveRegistry(input: RegistryInput): Registry {
  const opts = { ...DEFAULTS, ...input.options };
  const resources = input.resources;
  const namespaces = new Map<string, NamespaceResource>(
    ofKind(resources, 'Namespace').map((n) => [n.metadata.name, n]),
  );
  const ctx: Context = {
    trustDomain: opts.trustDomain,
    rootNamespace: opts.rootNamespace,
    clusterId: opts.clusterId,
    namespaces,
  };
  const issues: RegistryIssue[] = [];

  const placed: BaseWorkload[] = [
    ...(input.pods ?? []).map((p) => podWorkload(p, ctx)),
    ...ofKind(resources, 'WorkloadEntry').map((we) => entryWorkload(we, ctx)),
  ].sort((a, b) => (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0));
  // A revoked node's workloads leave the mesh: no endpoints, no identities, until the node rejoins.
  const revoked = input.revokedNodes ?? (() => false);
  // A WorkloadEntry at an infrastructure address (stored before the apply-time check) is left out too.
  const reserved = cidrMatcher(opts.reservedCidrs ?? []);
  const base = placed.filter((w) => {
    if (w.node !== undefined && revoked(w.node)) {
      issues.push({
        object: workloadLabel(w),
        message: `is placed on node "${w.node}", whose credential was revoked; it is out of the mesh until the node rejoins`,
      });
      return false;
    }
    const claimed = w.kind === 'WorkloadEntry' ? w.addresses.find(reserved) : undefined;
    if (claimed === undefined) return true;
    issues.push({
      object: workloadLabel(w),
      message: `claims ${claimed}, which is reserved for the mesh's infrastructure; it is left out of the mesh`,
    });
    return false;
  });
  // The oldest object owns an address; a later claimant is left out (and reported), never shared.
  const entryAges = new Map(
    ofKind(resources, 'WorkloadEntry').map((we) => [
      `${we.metadata.namespace ?? 'default'}/${we.metadata.name}`,
      ageOf(we),
    ]),
  );
  const settled = settleWorkloadAddresses(
    base.map((w) => [w, (w.kind === 'WorkloadEntry' && entryAges.get(`${w.namespace}/${w.name}`)) || NO_AGE]),
  );
  issues.push(...settled.issues);
  const gateways: GatewayResource[] = ofKind(resources, 'Gateway');
  const lookup = waypointLookup(gateways);
  const owned = settled.workloads.map((w) => asWaypoint(w, lookup));
  const workloadAt = new Map([...settled.owners].map(([a, w]) => [a, workloadLabel(w)]));
  const nsWaypoint = (namespace: string) => () =>
    fromLabels(namespaces.get(namespace)?.metadata.labels, namespace, 'namespace', namespace, lookup);

  // Services, with their VIPs and their own waypoint (service label > namespace label).
  const serviceResources = new Map<string, ServiceResource>(
    ofKind(resources, 'Service').map((s) => [`${s.metadata.namespace ?? 'default'}/${s.metadata.name}`, s]),
  );
  const entries = settleEntryHosts(ofKind(resources, 'ServiceEntry'));
  issues.push(...entries.issues);
  const vips = allocateVips(
    serviceResources,
    input.previousVips ?? {},
    opts.vipRange,
    workloadAt,
    entryVipClaims(entries.hosts),
  );
  issues.push(...vips.issues);
  issues.push(...nonTcpPortIssues(serviceResources, namespaces));
  const candidates = indexWorkloads(owned);
  const services: RegistryService[] = [...serviceResources.entries()].map(([key, svc]) => {
    const namespace = svc.metadata.namespace ?? 'default';
    const waypoint = firstSay(
      () => fromLabels(svc.metadata.labels, namespace, 'service', key, lookup),
      nsWaypoint(namespace),
    );
    return buildService(key, svc, vips.byService.get(key)!, candidates, waypoint);
  });
  // A ServiceEntry's own address loses to a workload's and to a Service's or allocated VIP.
  const vipHolder = new Map<string, string>();
  for (const svc of services) for (const ip of svc.vips) vipHolder.set(ip, `Service ${svc.key}`);
  for (const h of entries.hosts) {
    const allocated = vips.byService.get(h.key);
    for (const ip of allocated?.vips ?? [])
      vipHolder.set(ip, `ServiceEntry ${h.namespace}/${h.entry.metadata.name}`);
  }
  for (const h of entries.hosts) {
    const own = entryVips(h, vips.byService.get(h.key), (ip) => workloadAt.get(ip) ?? vipHolder.get(ip));
    issues.push(...own.issues);
    const waypoint = firstSay(
      () => fromLabels(h.entry.metadata.labels, h.namespace, 'service', h.key, lookup),
      nsWaypoint(h.namespace),
    );
    services.push(buildEntryService(h, own.vips, candidates, waypoint));
  }
  services.sort(byKey);

  const servicesOf = new Map<string, RegistryService[]>();
  for (const svc of services) {
    for (const ep of svc.endpoints)
      servicesOf.set(ep.workload, [...(servicesOf.get(ep.workload) ?? []), svc]);
  }

  const authz: AuthorizationPolicyResource[] = ofKind(resources, 'AuthorizationPolicy');
  const peerAuth: PeerAuthenticationResource[] = ofKind(resources, 'PeerAuthentication');
  issues.push(...targetRefIssues(authz));

  const workloads: Workload[] = owned.map((w) => {
    const own = servicesOf.get(w.uid) ?? [];
    // A waypoint does not send its own traffic through a waypoint.
    const waypoint: WaypointBinding | undefined = w.isWaypoint
      ? undefined
      : firstSay(
          () => fromLabels(w.labels, w.namespace, 'workload', `${w.namespace}/${w.name}`, lookup),
          ...own.map((svc) => () => fromLabels(svc.labels, svc.namespace, 'service', svc.key, lookup)),
          nsWaypoint(w.namespace),
        );
    for (const bad of [waypoint].filter((b) => b && !b.declared)) {
      issues.push({
        object: workloadLabel(w),
        message: `uses waypoint ${bad!.namespace}/${bad!.name} (label on ${bad!.from} ${bad!.via}), but no Gateway of class ambit-waypoint has that name`,
      });
    }
    return {
      ...w,
      waypoint,
      services: own.map((s) => s.key),
      authorizationPolicies: bindAuthorizations(w, authz, opts.rootNamespace, own, waypoint),
      peerAuthentication: resolvePeerAuth(w, peerAuth, opts.rootNamespace),
    };
  });

  const authorizations: L4Authorization[] = authz
    .filter((p) => !isWaypointPolicy(p))
    .map((p) => toL4Authorization(p, authorizationScope(p, opts.rootNamespace)))
    .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));

  return { workloads, services, vips: vips.table, authorizations, issues };
}

/**
 * A pod labelled with a gateway name is that waypoint's replica only while a Gateway of the waypoint
 * class has that name in its namespace. A waypoint is a proxy, as in Istio (whose waypoint
 * pods carry istio.io/dataplane-mode=none): its own traffic is never captured, and it is given its
 * certificate because it is a waypoint placed on its node, not because its namespace is ambient.
 */
function asWaypoint(w: BaseWorkload, lookup: WaypointLookup): BaseWorkload {
  const name = w.labels[GATEWAY_NAME_LABEL];
  // Only a pod, which the operator's pod API holds (the deployer writes replicas there), is a replica:
  // a tenant's WorkloadEntry with the label would have a node run a waypoint it never was given.
  if (w.kind !== 'Pod' || name === undefined || !lookup(w.namespace, name))
    return { ...w, isWaypoint: false };
  return {
    ...w,
    isWaypoint: true,
    enrolled: false,
    sidecar: false,
    enrollment: `a replica of waypoint ${w.namespace}/${name}: a proxy, its own traffic is not captured`,
  };
}

/** The L4 policies a ztunnel (or a sidecar) evaluates for connections to `workload` (global, namespace, selector). */
export function authorizationsFor(registry: Registry, workload: Workload): L4Authorization[] {
  const bound = new Set(
    workload.authorizationPolicies.filter((b) => b.enforcedBy !== 'waypoint').map((b) => b.policy),
  );
  return registry.authorizations.filter((a) => bound.has(`${a.namespace}/${a.name}`));
}
