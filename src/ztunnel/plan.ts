// Deciding before acting: pure functions from the state and a connection to a plan. Outbound: where
// a captured connection really goes (the *actual* next hop) and what it was for (the *intended*
// destination, carried as :authority), with the identities the other end may present. Inbound:
// whether an arriving connection is let through, and to where. No sockets here.

import { BlockList, isIP } from 'node:net';
import { GATEWAY_NAME_LABEL, type OutboundTrafficMode, PORTS } from '../config/index.ts';
import { evaluateL4, type L4Authorization, type L4Decision, mtlsModeForPort } from '../policy/index.ts';
import type { ServiceResource, WorkloadResource } from '../xds/index.ts';
import type { StateSnapshot } from './state.ts';

export const HBONE_PORT = PORTS.hbone;
/** The ztunnel's own ports: a captured connection to one of them on this node is a loop. */
export const ZTUNNEL_PORTS: ReadonlySet<number> = new Set([
  PORTS.outbound,
  PORTS.inboundPlaintext,
  PORTS.hbone,
  PORTS.socks5,
  PORTS.admin,
  PORTS.metrics,
  PORTS.readiness,
  PORTS.dns,
]);

/** An address and port. `actual` and `intended` are never swapped: the plan keeps them apart. */
export interface Addr {
  address: string;
  port: number;
}

export interface Destination {
  workload?: WorkloadResource;
  service?: ServiceResource;
}

export type OutboundPlan =
  | {
      kind: 'hbone';
      source: WorkloadResource;
      /** Where the TCP connection goes: a pod's or waypoint's address on 15008. */
      actual: Addr;
      /** What the client asked for, sent as :authority (pod ip:targetPort, or VIP:port via a waypoint). */
      intended: Addr;
      expectedIdentities: string[];
      via: 'direct' | 'waypoint';
      destination: Destination;
    }
  | { kind: 'passthrough'; source: WorkloadResource; actual: Addr; intended: Addr; destination: Destination }
  | {
      /**
       * A ServiceEntry endpoint found by DNS: the outbound path resolves `hostname` through the node's
       * resolver, then `planResolved` turns the answer into a passthrough (or a refusal).
       */
      kind: 'resolve';
      source: WorkloadResource;
      hostname: string;
      port: number;
      destination: Destination;
    }
  | { kind: 'refuse'; reason: string };

/** Whose traffic a proxy carries: a node's ztunnel its enrolled ambient workloads, a sidecar its own one. */
export interface ServedScope {
  node: string;
  /** A sidecar's workload uid (the proxy runs in that workload's pod and carries only its traffic). */
  workload?: string;
}

/** Whether the proxy of `scope` carries the traffic of `w` (a workload, or a service endpoint). */
export function serves(
  scope: ServedScope,
  w: { enrolled: boolean; sidecar?: boolean; node?: string | undefined } & (
    | { uid: string }
    | { workload: string }
  ),
): boolean {
  if (!w.enrolled || w.node !== scope.node) return false;
  if (scope.workload === undefined) return !w.sidecar;
  return ('uid' in w ? w.uid : w.workload) === scope.workload;
}

export interface PlanContext extends ServedScope {
  /** This node: only the workloads it serves (see `serves`) may send through it. */
  node: string;
  /** This node's own addresses (connections to its ports through capture are loops). */
  nodeAddresses: ReadonlySet<string>;
  /** Picks one of `n` endpoints (random in production, fixed in tests). */
  pick?: (n: number) => number;
  /** MeshConfig `outboundTrafficPolicy.mode`; REGISTRY_ONLY refuses destinations the registry does not know. */
  outboundTrafficMode?: OutboundTrafficMode;
}

const addr = (address: string, port: number): Addr => ({ address, port });

export function planOutbound(
  state: StateSnapshot,
  sourceAddress: string,
  target: Addr,
  ctx: PlanContext,
): OutboundPlan {
  const plan = planOutboundAny(state, sourceAddress, target, ctx);
  // Whatever the route (a pod address or a Service's endpoint), passthrough never dials the node itself:
  // a tenant's WorkloadEntry at the node's or a loopback address, selected by a Service, would otherwise
  // hand a pod whatever listens on the node (its metrics answer loopback). HBONE goes to a ztunnel,
  // which refuses a destination that is its node's own (`Ztunnel`'s inbound checks).
  if (plan.kind === 'passthrough' && isNodeLocal(plan.actual.address, ctx.nodeAddresses)) {
    return {
      kind: 'refuse',
      reason: `${plan.actual.address} (for ${target.address}:${target.port}) is local to the node; the ztunnel does not relay there`,
    };
  }
  return plan;
}

/**
 * A `resolve` plan once its hostname has an address: a passthrough there, unless the address is the
 * node's own or local-only (a name that resolves to loopback must not hand a pod the node's services).
 */
export function planResolved(
  plan: Extract<OutboundPlan, { kind: 'resolve' }>,
  address: string,
  ctx: Pick<PlanContext, 'nodeAddresses'>,
): OutboundPlan {
  if (isNodeLocal(address, ctx.nodeAddresses)) {
    return {
      kind: 'refuse',
      reason: `${plan.hostname} resolves to ${address}, which is local to the node; the ztunnel does not relay there`,
    };
  }
  const actual = addr(address, plan.port);
  return {
    kind: 'passthrough',
    source: plan.source,
    actual,
    intended: actual,
    destination: plan.destination,
  };
}

/** The node's own addresses, and those that mean "this host" or "this link" anywhere. */
export function isNodeLocal(address: string, nodeAddresses: ReadonlySet<string>): boolean {
  return nodeAddresses.has(address) || isLocalOnly(address);
}

function planOutboundAny(
  state: StateSnapshot,
  sourceAddress: string,
  target: Addr,
  ctx: PlanContext,
): OutboundPlan {
  const source = state.workloadByAddress.get(sourceAddress);
  if (!source) return { kind: 'refuse', reason: `no workload is known at source address ${sourceAddress}` };
  if (!serves(ctx, source)) {
    return {
      kind: 'refuse',
      reason: ctx.workload
        ? `${source.namespace}/${source.name} is not the workload this sidecar carries`
        : `${source.namespace}/${source.name} is not a workload in the mesh on this node`,
    };
  }
  if (ctx.nodeAddresses.has(target.address) && ZTUNNEL_PORTS.has(target.port)) {
    return {
      kind: 'refuse',
      reason: `${target.address}:${target.port} is the ztunnel itself; refusing a proxy loop`,
    };
  }

  const svc = state.serviceByVipPort.get(`${target.address}:${target.port}`);
  if (svc) return planService(state, source, target, svc.service, svc.port, ctx);
  if (state.vips.has(target.address)) {
    return { kind: 'refuse', reason: `the service at ${target.address} has no port ${target.port}` };
  }

  const workload = state.workloadByAddress.get(target.address);
  if (workload?.enrolled) {
    const waypoint = workloadWaypoint(state, source, workload, ctx);
    if (waypoint === null)
      return {
        kind: 'refuse',
        reason: `the waypoint of ${workload.namespace}/${workload.name} has no running instance`,
      };
    if (waypoint) return viaWaypoint(source, waypoint, target, { workload });
    return {
      kind: 'hbone',
      source,
      actual: addr(target.address, HBONE_PORT),
      intended: target,
      expectedIdentities: [workload.identity],
      via: 'direct',
      destination: { workload },
    };
  }
  // Passthrough dials from the node itself: never to the node's own or loopback/link-local addresses,
  // which would hand a pod whatever listens locally on the node.
  if (ctx.nodeAddresses.has(target.address) || isLocalOnly(target.address)) {
    return {
      kind: 'refuse',
      reason: `${target.address} is local to the node; the ztunnel does not relay there`,
    };
  }
  if (
    ctx.outboundTrafficMode === 'REGISTRY_ONLY' &&
    !workload &&
    !state.endpointTargets.has(`${target.address}:${target.port}`)
  ) {
    return {
      kind: 'refuse',
      reason: `${target.address}:${target.port} is not in the mesh's registry (no workload, Service or ServiceEntry has it) and outboundTrafficPolicy is REGISTRY_ONLY; add a ServiceEntry for it`,
    };
  }
  return {
    kind: 'passthrough',
    source,
    actual: target,
    intended: target,
    destination: workload ? { workload } : {},
  };
}

/**
 * Addresses that mean "this host" or "this link": 0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, and in IPv6
 * `::`, `::1`, fe80::/10 and the IPv4-mapped forms of the IPv4 ones.
 */
const LOCAL_ONLY = (() => {
  const list = new BlockList();
  for (const [net, prefix] of [
    ['0.0.0.0', 8],
    ['127.0.0.0', 8],
    ['169.254.0.0', 16],
  ] as const) {
    list.addSubnet(net, prefix, 'ipv4');
    list.addSubnet(`::ffff:${net}`, 96 + prefix, 'ipv6');
  }
  list.addAddress('::', 'ipv6');
  list.addAddress('::1', 'ipv6');
  list.addSubnet('fe80::', 10, 'ipv6');
  return list;
})();

// IPv4 by a regex: BlockList.check costs ~0.3 µs a call, on every passthrough plan.
const LOCAL_ONLY_V4 = /^(0|127)\.|^169\.254\./;

function isLocalOnly(address: string): boolean {
  if (!address.includes(':')) return LOCAL_ONLY_V4.test(address);
  return isIP(address) === 6 && LOCAL_ONLY.check(address, 'ipv6');
}

function planService(
  state: StateSnapshot,
  source: WorkloadResource,
  target: Addr,
  service: ServiceResource,
  port: ServiceResource['ports'][number],
  ctx: PlanContext,
): OutboundPlan {
  if (service.waypoint?.declared && !isWaypoint(source, service.waypoint)) {
    const waypoint = findWaypoint(state, service.waypoint, ctx);
    if (!waypoint)
      return {
        kind: 'refuse',
        reason: `the waypoint ${service.waypoint.namespace}/${service.waypoint.name} of service ${service.key} has no running instance`,
      };
    return viaWaypoint(source, waypoint, target, { service });
  }
  // A ServiceEntry with resolution NONE has no endpoints: the connection goes where it was sent, as
  // the ServiceEntry's (attributed to it in metrics and the access log).
  if (service.kind === 'ServiceEntry' && service.resolution === 'NONE')
    return { kind: 'passthrough', source, actual: target, intended: target, destination: { service } };
  const candidates = service.endpoints.filter((e) => e.ports[String(port.port)] !== undefined);
  const named = (service.dnsEndpoints ?? []).filter((e) => e.ports[String(port.port)] !== undefined);
  if (candidates.length + named.length === 0)
    return { kind: 'refuse', reason: `service ${service.key} has no endpoints for port ${port.port}` };
  const picked = (ctx.pick ?? randomPick)(candidates.length + named.length);
  if (picked >= candidates.length) {
    const dns = named[picked - candidates.length]!;
    const dnsPort = dns.ports[String(port.port)]!;
    return { kind: 'resolve', source, hostname: dns.hostname, port: dnsPort, destination: { service } };
  }
  const endpoint = candidates[picked]!;
  const targetPort = endpoint.ports[String(port.port)]!;
  const workload = state.workloads.get(endpoint.workload);
  const intended = addr(endpoint.address, targetPort);
  if (endpoint.enrolled && workload) {
    return {
      kind: 'hbone',
      source,
      actual: addr(endpoint.address, HBONE_PORT),
      intended,
      expectedIdentities: [workload.identity],
      via: 'direct',
      destination: { workload, service },
    };
  }
  return {
    kind: 'passthrough',
    source,
    actual: intended,
    intended,
    destination: { service, ...(workload ? { workload } : {}) },
  };
}

function viaWaypoint(
  source: WorkloadResource,
  waypoint: WorkloadResource,
  target: Addr,
  destination: Destination,
): OutboundPlan {
  return {
    kind: 'hbone',
    source,
    actual: addr(waypoint.addresses[0]!, HBONE_PORT),
    intended: target,
    expectedIdentities: [waypoint.identity],
    via: 'waypoint',
    destination,
  };
}

type WaypointRef = NonNullable<WorkloadResource['waypoint']>;

function isWaypoint(w: WorkloadResource, ref: WaypointRef): boolean {
  return w.isWaypoint && w.namespace === ref.namespace && w.labels[GATEWAY_NAME_LABEL] === ref.name;
}

/** The running replicas (those with an address) of the waypoint `ref` names. */
export function waypointReplicas(
  workloads: Iterable<WorkloadResource>,
  ref: WaypointRef,
): WorkloadResource[] {
  const replicas: WorkloadResource[] = [];
  for (const w of workloads) if (isWaypoint(w, ref) && w.addresses.length > 0) replicas.push(w);
  return replicas;
}

/**
 * One of the waypoint's replicas, picked per connection as endpoints are (Istio sends to the waypoint's
 * Service, balanced across its pods), so that every replica takes a share.
 */
function findWaypoint(
  state: StateSnapshot,
  ref: WaypointRef,
  ctx: PlanContext,
): WorkloadResource | undefined {
  const replicas = waypointReplicas(state.workloads.values(), ref);
  return replicas.length > 0 ? replicas[(ctx.pick ?? randomPick)(replicas.length)] : undefined;
}

/** The waypoint a pod-addressed connection must take: undefined for none, null when it has no instance. */
function workloadWaypoint(
  state: StateSnapshot,
  source: WorkloadResource,
  target: WorkloadResource,
  ctx: PlanContext,
): WorkloadResource | undefined | null {
  const ref = target.waypoint;
  if (!ref?.declared || !(ref.for === 'workload' || ref.for === 'all') || isWaypoint(source, ref))
    return undefined;
  return findWaypoint(state, ref, ctx) ?? null;
}

function randomPick(n: number): number {
  return Math.floor(Math.random() * n);
}

// --- inbound ---

export interface InboundRequest {
  /** The address the connection really reached (the original destination). */
  destination: Addr;
  /** HBONE: the CONNECT :authority. Plaintext: undefined (the destination is the target). */
  authority?: Addr;
  /** The peer's SPIFFE ID (HBONE), undefined for plaintext. */
  peerIdentity?: string;
  /** The client's address, for ipBlocks and `source.ip`. */
  sourceIp: string;
}

export type InboundPlan =
  | { status: 200; workload: WorkloadResource; upstream: Addr; decision: L4Decision }
  | { status: 400 | 401 | 503; reason: string; workload?: WorkloadResource; decision?: L4Decision };

/**
 * Whether an inbound connection is let through, and to where. With `authorize: false` only peer
 * authentication decides (a sidecar that serves the port as HTTP authorizes each request itself).
 */
export function planInbound(
  state: StateSnapshot,
  req: InboundRequest,
  opts: { authorize?: boolean } = {},
): InboundPlan {
  const workload = state.workloadByAddress.get(req.destination.address);
  if (!workload?.enrolled)
    return { status: 503, reason: `no workload in the mesh at ${req.destination.address}` };
  const target = req.authority ?? req.destination;
  if (req.authority && req.authority.address !== req.destination.address) {
    return {
      status: 400,
      reason: `the authority ${req.authority.address} is not where the connection was sent (${req.destination.address})`,
      workload,
    };
  }
  if (ZTUNNEL_PORTS.has(target.port))
    return { status: 400, reason: `port ${target.port} is the ztunnel's own`, workload };
  const decision = evaluateL4(opts.authorize === false ? [] : policiesFor(state, workload), {
    source: { ip: req.sourceIp, ...(req.peerIdentity ? { principal: req.peerIdentity } : {}) },
    destination: { ip: target.address, port: target.port },
    mtlsMode: mtlsModeForPort(workload.peerAuthentication, target.port),
  });
  if (!decision.allow) return { status: 401, reason: decision.reason, workload, decision };
  return { status: 200, workload, upstream: target, decision };
}

/** The L4 policies the ztunnel (or a sidecar) enforces for a workload (mesh-wide, namespace and selector-bound). */
export function policiesFor(state: StateSnapshot, workload: WorkloadResource): L4Authorization[] {
  const out: L4Authorization[] = [];
  for (const b of workload.authorizationPolicies) {
    if (b.enforcedBy === 'waypoint') continue;
    const p = state.authorizations.get(b.policy);
    if (p) out.push(p);
  }
  return out;
}
