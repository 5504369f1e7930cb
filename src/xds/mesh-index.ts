// What every proxy derives from the streamed workloads and services, and how each streamed type is
// parsed: one definition for the ztunnel and the waypoint, so the two read the mesh the same way.

import type { OutboundTrafficMode } from '../config/index.ts';
import { RevocationList } from '../identity/index.ts';
import type { Delta } from './client.ts';
import {
  type AuthorizationResource,
  authorizationResource,
  destinationRuleResource,
  grpcRouteResource,
  httpFaultResource,
  httpRouteResource,
  meshConfigResource,
  meshSettingsResource,
  parseResource,
  rateLimitPolicyResource,
  requestAuthenticationResource,
  type ServiceResource,
  serviceResource,
  telemetryResource,
  trustBundleResource,
  type WorkloadResource,
  waypointAuthorizationResource,
  workloadResource,
} from './resources.ts';
import { TYPE, type TypeUrl } from './snapshot.ts';

/** One streamed resource validated (throws naming it: the delta is NACKed), by type. */
export const PARSE = {
  [TYPE.workload]: (name: string, v: unknown): WorkloadResource =>
    parseResource(workloadResource, 'workload', name, v),
  [TYPE.service]: (name: string, v: unknown): ServiceResource =>
    parseResource(serviceResource, 'service', name, v),
  [TYPE.authorization]: (name: string, v: unknown): AuthorizationResource =>
    parseResource(authorizationResource, 'authorization', name, v),
  [TYPE.httpRoute]: (name: string, v: unknown) => parseResource(httpRouteResource, 'HTTPRoute', name, v),
  [TYPE.grpcRoute]: (name: string, v: unknown) => parseResource(grpcRouteResource, 'GRPCRoute', name, v),
  [TYPE.destinationRule]: (name: string, v: unknown) =>
    parseResource(destinationRuleResource, 'DestinationRule', name, v),
  [TYPE.httpFault]: (name: string, v: unknown) => parseResource(httpFaultResource, 'HTTPFault', name, v),
  [TYPE.waypointAuthorization]: (name: string, v: unknown) =>
    parseResource(waypointAuthorizationResource, 'AuthorizationPolicy', name, v),
  [TYPE.sidecarAuthorization]: (name: string, v: unknown) =>
    parseResource(waypointAuthorizationResource, 'AuthorizationPolicy', name, v),
  [TYPE.meshConfig]: (name: string, v: unknown) => parseResource(meshConfigResource, 'MeshConfig', name, v),
  [TYPE.requestAuthentication]: (name: string, v: unknown) =>
    parseResource(requestAuthenticationResource, 'RequestAuthentication', name, v),
  [TYPE.rateLimitPolicy]: (name: string, v: unknown) =>
    parseResource(rateLimitPolicyResource, 'RateLimitPolicy', name, v),
  [TYPE.telemetry]: (name: string, v: unknown) => parseResource(telemetryResource, 'Telemetry', name, v),
  [TYPE.meshSettings]: (name: string, v: unknown) =>
    parseResource(meshSettingsResource, 'mesh settings', name, v),
} as const;

/** The trust bundle a delta brings (its one resource, `bundle`), or undefined when it brings none. */
export function bundleOf(delta: {
  upserts: ReadonlyArray<{ name: string; value: unknown }>;
}): { pem: string; revoked: RevocationList } | undefined {
  const bundle = delta.upserts.find((u) => u.name === 'bundle');
  if (!bundle) return undefined;
  const parsed = parseResource(trustBundleResource, 'trust bundle', 'bundle', bundle.value);
  return { pem: parsed.pem, revoked: new RevocationList(parsed.revoked) };
}

export type ServicePortEntry = { service: ServiceResource; port: ServiceResource['ports'][number] };

export interface MeshIndex {
  /** Address → workload (the first listed wins; the registry reports duplicates). */
  readonly workloadByAddress: ReadonlyMap<string, WorkloadResource>;
  /** SPIFFE ID → a workload running as it. */
  readonly workloadByIdentity: ReadonlyMap<string, WorkloadResource>;
  /** `vip:port` → service and the port entry. */
  readonly serviceByVipPort: ReadonlyMap<string, ServicePortEntry>;
  /** VIPs, to tell "a service port that does not exist" from "not a service". */
  readonly vips: ReadonlySet<string>;
  /**
   * VIPs that are also a workload's address, by VIP → service key. The workload wins: these VIPs are
   * left out of `vips` and `serviceByVipPort`, so a Service can never capture traffic to a workload.
   */
  readonly shadowedVips: ReadonlyMap<string, string>;
  /**
   * `address:port` of every service endpoint on each port it serves (a ServiceEntry's inline IPs among
   * them): the known destinations REGISTRY_ONLY lets through, the port as well as the address.
   */
  readonly endpointTargets: ReadonlySet<string>;
}

export function indexMesh(
  workloads: ReadonlyMap<string, WorkloadResource>,
  services: ReadonlyMap<string, ServiceResource>,
): MeshIndex {
  const workloadByAddress = new Map<string, WorkloadResource>();
  const workloadByIdentity = new Map<string, WorkloadResource>();
  for (const w of workloads.values()) {
    for (const a of w.addresses) if (!workloadByAddress.has(a)) workloadByAddress.set(a, w);
    if (!workloadByIdentity.has(w.identity)) workloadByIdentity.set(w.identity, w);
  }
  const serviceByVipPort = new Map<string, ServicePortEntry>();
  const vips = new Set<string>();
  const shadowedVips = new Map<string, string>();
  const endpointTargets = new Set<string>();
  for (const s of services.values()) {
    for (const ep of s.endpoints)
      for (const port of Object.values(ep.ports)) endpointTargets.add(`${ep.address}:${port}`);
    for (const vip of s.vips) {
      if (workloadByAddress.has(vip)) {
        shadowedVips.set(vip, s.key);
        continue;
      }
      vips.add(vip);
      for (const p of s.ports) serviceByVipPort.set(`${vip}:${p.port}`, { service: s, port: p });
    }
  }
  return { workloadByAddress, workloadByIdentity, serviceByVipPort, vips, shadowedVips, endpointTargets };
}

/**
 * The mesh's outbound traffic policy from the streamed MeshConfigs (Istio's default ALLOW_ANY when
 * there is none or it says nothing).
 */
export function outboundTrafficMode(
  meshConfigs: Iterable<{ spec: { outboundTrafficPolicy?: { mode?: OutboundTrafficMode } } }>,
): OutboundTrafficMode {
  for (const mc of meshConfigs) {
    const mode = mc.spec.outboundTrafficPolicy?.mode;
    if (mode) return mode;
  }
  return 'ALLOW_ANY';
}

/**
 * The client's IP for policy: the address the tunnel's `forwarded` header names when it is a workload
 * running as the authenticated peer (a peer cannot claim another's address), else the peer's own.
 */
export function sourceIpOf(
  index: MeshIndex,
  peerIdentity: string,
  forwarded: string | undefined,
  peerAddress: string | undefined,
): { ip: string | undefined; workloadIp: string | undefined } {
  const w = forwarded === undefined ? undefined : index.workloadByAddress.get(forwarded);
  const workloadIp = w?.identity === peerIdentity ? forwarded : undefined;
  return { ip: workloadIp ?? peerAddress, workloadIp };
}

/**
 * A tunnel's client: its IP for policy (`sourceIpOf`) and its workload, by the address the tunnel proves
 * (pods that share a service account share an identity), else by its identity.
 */
export function sourceOf(
  index: MeshIndex,
  peerIdentity: string,
  forwarded: string | undefined,
  peerAddress: string | undefined,
): { ip: string | undefined; workload: WorkloadResource | undefined } {
  const { ip, workloadIp } = sourceIpOf(index, peerIdentity, forwarded, peerAddress);
  const workload =
    (workloadIp === undefined ? undefined : index.workloadByAddress.get(workloadIp)) ??
    index.workloadByIdentity.get(peerIdentity);
  return { ip, workload };
}

/**
 * A proxy's view of the mesh, fed by the config stream. One writer — `apply` — computes the next
 * snapshot from a whole delta before anything changes (a bad resource throws: the delta is NACKed and the
 * last good state stays); readers take the current immutable snapshot; listeners hear of each change.
 * Each proxy says how a delta of each of its types makes the next snapshot (`next`).
 */
export class StreamedState<S> {
  private current: S;
  private readonly next: (current: S, type: TypeUrl, delta: Delta) => S;
  private readonly received = new Set<TypeUrl>();
  private readonly listeners = new Set<(s: S) => void>();
  /** Where a failing listener is reported (the proxy logs it). */
  onListenerError: ((err: unknown) => void) | undefined;

  constructor(initial: S, next: (current: S, type: TypeUrl, delta: Delta) => S) {
    this.current = initial;
    this.next = next;
  }

  get snapshot(): S {
    return this.current;
  }

  onChange(fn: (s: S) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** True once a delta of `type` has been applied: until then an empty map means "not known yet". */
  hasReceived(type: TypeUrl): boolean {
    return this.received.has(type);
  }

  /** The one mutator: throws (NACK) without changing anything when a resource is invalid. */
  apply(type: TypeUrl, delta: Delta): void {
    this.current = this.next(this.current, type, delta);
    this.received.add(type);
    // The change is made; a listener's failure must neither undo it nor turn it into a NACK.
    for (const fn of this.listeners) {
      try {
        fn(this.current);
      } catch (err) {
        this.onListenerError?.(err);
      }
    }
  }
}
