// The ztunnel's view of the mesh. One writer — `apply`, fed by the config stream — validates a
// whole delta before it changes anything (a bad resource NACKs the delta and the last good state
// stays); readers take the current immutable snapshot, which serialises as JSON for /config_dump.

import type { OutboundTrafficMode } from '../config/index.ts';
import { RevocationList } from '../identity/index.ts';
import {
  type AuthorizationResource,
  bundleOf,
  type Delta,
  indexMesh,
  type MeshIndex,
  mergeDelta,
  outboundTrafficMode,
  PARSE,
  type ServiceResource,
  StreamedState,
  TYPE,
  type TypeUrl,
  type WorkloadResource,
} from '../xds/index.ts';

type MeshConfig = ReturnType<(typeof PARSE)[typeof TYPE.meshConfig]>;

export interface StateSnapshot extends MeshIndex {
  readonly workloads: ReadonlyMap<string, WorkloadResource>;
  readonly services: ReadonlyMap<string, ServiceResource>;
  readonly authorizations: ReadonlyMap<string, AuthorizationResource>;
  /** The mesh's MeshConfigs: the ztunnel reads `outboundTrafficPolicy` from them. */
  readonly meshConfigs: ReadonlyMap<string, MeshConfig>;
  /** REGISTRY_ONLY refuses connections to destinations the registry does not know. */
  readonly outboundTrafficMode: OutboundTrafficMode;
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
    | 'meshConfigs'
    | 'trustBundlePem'
    | 'revoked']: StateSnapshot[K];
};

function index(held: Held, version: number): StateSnapshot {
  return {
    ...held,
    ...indexMesh(held.workloads, held.services),
    outboundTrafficMode: outboundTrafficMode(held.meshConfigs.values()),
    version,
  };
}

export const EMPTY_STATE: StateSnapshot = index(
  {
    workloads: new Map(),
    services: new Map(),
    authorizations: new Map(),
    meshConfigs: new Map(),
    trustBundlePem: undefined,
    revoked: RevocationList.EMPTY,
  },
  0,
);

/** How a delta of one of the ztunnel's types makes the next snapshot. */
function next(s: StateSnapshot, type: TypeUrl, delta: Delta): StateSnapshot {
  const { workloads, services, authorizations, meshConfigs, trustBundlePem, revoked } = s;
  const held: Held = { workloads, services, authorizations, meshConfigs, trustBundlePem, revoked };
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
    case TYPE.meshConfig:
      held.meshConfigs = mergeDelta(s.meshConfigs, delta, PARSE[TYPE.meshConfig]);
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
  return index(held, s.version + 1);
}

export class ZtunnelState extends StreamedState<StateSnapshot> {
  constructor() {
    super(EMPTY_STATE, next);
  }

  /** The whole state as plain JSON, for /config_dump. */
  dump(): Record<string, unknown> {
    const s = this.snapshot;
    return {
      version: s.version,
      workloads: [...s.workloads.values()],
      services: [...s.services.values()],
      authorizations: [...s.authorizations.values()],
      outboundTrafficMode: s.outboundTrafficMode,
      trustBundle: s.trustBundlePem,
      revokedCertificates: s.revoked.entries,
      // VIPs ignored because a workload has the address (the control plane reports the conflict).
      shadowedVips: Object.fromEntries(s.shadowedVips),
    };
  }
}
