// The ztunnel's view of the mesh. One writer — `apply`, fed by the config stream — validates a
// whole delta before it changes anything (a bad resource NACKs the delta and the last good state
// stays); readers take the current immutable snapshot, which serialises as JSON for /config_dump.

import { RevocationList } from '../identity/index.ts';
import {
  type AuthorizationResource,
  bundleOf,
  type Delta,
  indexMesh,
  type MeshIndex,
  mergeDelta,
  PARSE,
  type ServiceResource,
  TYPE,
  type TypeUrl,
  type WorkloadResource,
} from '../xds/index.ts';

export interface StateSnapshot extends MeshIndex {
  readonly workloads: ReadonlyMap<string, WorkloadResource>;
  readonly services: ReadonlyMap<string, ServiceResource>;
  readonly authorizations: ReadonlyMap<string, AuthorizationResource>;
  readonly trustBundlePem: string | undefined;
  /** Certificates that chain to the bundle but are refused (their node was revoked); comes with it. */
  readonly revoked: RevocationList;
  readonly version: number;
}

/** What the stream delivers; the rest of a snapshot is derived from it. */
type Held = {
  -readonly [K in
    | 'workloads'
    | 'services'
    | 'authorizations'
    | 'trustBundlePem'
    | 'revoked']: StateSnapshot[K];
};

function index(held: Held, version: number): StateSnapshot {
  return { ...held, ...indexMesh(held.workloads, held.services), version };
}

export const EMPTY_STATE: StateSnapshot = index(
  {
    workloads: new Map(),
    services: new Map(),
    authorizations: new Map(),
    trustBundlePem: undefined,
    revoked: RevocationList.EMPTY,
  },
  0,
);

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
    const { workloads, services, authorizations, trustBundlePem, revoked } = s;
    const held: Held = { workloads, services, authorizations, trustBundlePem, revoked };
    switch (type) {
      case TYPE.workload:
        held.workloads = mergeDelta(s.workloads, delta, PARSE[TYPE.workload]);
        break;
      case TYPE.service:
        held.services = mergeDelta(s.services, delta, PARSE[TYPE.service]);
        break;
      case TYPE.authorization:
        held.authorizations = mergeDelta(s.authorizations, delta, PARSE[TYPE.authorization]);
        break;
      case TYPE.trustBundle: {
        const bundle = bundleOf(delta);
        if (bundle) {
          held.trustBundlePem = bundle.pem;
          held.revoked = bundle.revoked;
        }
        break;
      }
      default:
        throw new Error(`unknown resource type ${type}`);
    }
    this.current = index(held, s.version + 1);
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
