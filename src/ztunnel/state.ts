// The ztunnel's view of the mesh. One writer — `apply`, fed by the config stream — validates a
// whole delta before it changes anything (a bad resource NACKs the delta and the last good state
// stays); readers take the current immutable snapshot, which serialises as JSON for /config_dump.

import { RevocationList } from '../identity/index.ts';
import {
  type AuthorizationResource,
  authorizationResource,
  type Delta,
  mergeDelta,
  parseResource,
  type ServiceResource,
  serviceResource,
  TYPE,
  type TypeUrl,
  trustBundleResource,
  type WorkloadResource,
  workloadResource,
} from '../xds/index.ts';

export interface StateSnapshot {
  readonly workloads: ReadonlyMap<string, WorkloadResource>;
  readonly services: ReadonlyMap<string, ServiceResource>;
  readonly authorizations: ReadonlyMap<string, AuthorizationResource>;
  readonly trustBundlePem: string | undefined;
  /** Certificates that chain to the bundle but are refused (their node was revoked); comes with it. */
  readonly revoked: RevocationList;
  /** Address → workload (the first listed wins; the registry reports duplicates). */
  readonly workloadByAddress: ReadonlyMap<string, WorkloadResource>;
  /** SPIFFE ID → a workload running as it (the labels of connections from that identity). */
  readonly workloadByIdentity: ReadonlyMap<string, WorkloadResource>;
  /** `vip:port` → service and the port entry. */
  readonly serviceByVipPort: ReadonlyMap<
    string,
    { service: ServiceResource; port: ServiceResource['ports'][number] }
  >;
  /** VIPs, to tell "a service port that does not exist" from "not a service". */
  readonly vips: ReadonlySet<string>;
  /**
   * VIPs that are also a workload's address, by VIP → service key. The workload wins: these VIPs are
   * left out of `vips` and `serviceByVipPort`, so a Service can never capture traffic to a workload.
   */
  readonly shadowedVips: ReadonlyMap<string, string>;
  readonly version: number;
}

export const EMPTY_STATE: StateSnapshot = index(
  new Map(),
  new Map(),
  new Map(),
  undefined,
  RevocationList.EMPTY,
  0,
);

function index(
  workloads: Map<string, WorkloadResource>,
  services: Map<string, ServiceResource>,
  authorizations: Map<string, AuthorizationResource>,
  trustBundlePem: string | undefined,
  revoked: RevocationList,
  version: number,
): StateSnapshot {
  const workloadByAddress = new Map<string, WorkloadResource>();
  const workloadByIdentity = new Map<string, WorkloadResource>();
  for (const w of workloads.values()) {
    for (const a of w.addresses) if (!workloadByAddress.has(a)) workloadByAddress.set(a, w);
    if (!workloadByIdentity.has(w.identity)) workloadByIdentity.set(w.identity, w);
  }
  const serviceByVipPort = new Map<
    string,
    { service: ServiceResource; port: ServiceResource['ports'][number] }
  >();
  const vips = new Set<string>();
  const shadowedVips = new Map<string, string>();
  for (const s of services.values()) {
    for (const vip of s.vips) {
      if (workloadByAddress.has(vip)) {
        shadowedVips.set(vip, s.key);
        continue;
      }
      vips.add(vip);
      for (const p of s.ports) serviceByVipPort.set(`${vip}:${p.port}`, { service: s, port: p });
    }
  }
  return {
    workloads,
    services,
    authorizations,
    trustBundlePem,
    revoked,
    workloadByAddress,
    workloadByIdentity,
    serviceByVipPort,
    vips,
    shadowedVips,
    version,
  };
}

export class ZtunnelState {
  private current: StateSnapshot = EMPTY_STATE;
  private readonly received = new Set<TypeUrl>();
  /** Where a failing listener is reported (the ztunnel logs it). */
  onListenerError: ((err: unknown) => void) | undefined;
  private readonly listeners = new Set<(s: StateSnapshot) => void>();

  get snapshot(): StateSnapshot {
    return this.current;
  }

  onChange(fn: (s: StateSnapshot) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** True once a delta of `type` has been applied: until then an empty map means "not known yet". */
  hasReceived(type: TypeUrl): boolean {
    return this.received.has(type);
  }

  /** The one mutator. Validates every upsert first; throws (NACK) without changing anything. */
  apply(type: TypeUrl, delta: Delta): void {
    const s = this.current;
    let workloads = s.workloads as Map<string, WorkloadResource>;
    let services = s.services as Map<string, ServiceResource>;
    let authorizations = s.authorizations as Map<string, AuthorizationResource>;
    let trustBundlePem = s.trustBundlePem;
    let revoked = s.revoked;
    switch (type) {
      case TYPE.workload:
        workloads = mergeDelta(workloads, delta, (name, v) =>
          parseResource(workloadResource, 'workload', name, v),
        );
        break;
      case TYPE.service:
        services = mergeDelta(services, delta, (name, v) =>
          parseResource(serviceResource, 'service', name, v),
        );
        break;
      case TYPE.authorization:
        authorizations = mergeDelta(authorizations, delta, (name, v) =>
          parseResource(authorizationResource, 'authorization', name, v),
        );
        break;
      case TYPE.trustBundle: {
        const bundle = delta.upserts.find((u) => u.name === 'bundle');
        if (bundle) {
          const parsed = parseResource(trustBundleResource, 'trust bundle', 'bundle', bundle.value);
          trustBundlePem = parsed.pem;
          revoked = new RevocationList(parsed.revoked);
        }
        break;
      }
      default:
        throw new Error(`unknown resource type ${type}`);
    }
    this.current = index(workloads, services, authorizations, trustBundlePem, revoked, s.version + 1);
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

  /** The whole state as plain JSON, for /config_dump. */
  dump(): Record<string, unknown> {
    const s = this.current;
    return {
      version: s.version,
      workloads: [...s.workloads.values()],
      services: [...s.services.values()],
      authorizations: [...s.authorizations.values()],
      trustBundle: s.trustBundlePem,
      revokedCertificates: s.revoked.entries,
      // VIPs ignored because a workload has the address (the control plane reports the conflict).
      shadowedVips: Object.fromEntries(s.shadowedVips),
    };
  }
}
