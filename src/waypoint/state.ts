// The waypoint's view of the mesh, fed by the config stream: workloads (the endpoints it sends to, and
// who its clients are), services (by VIP and port: what a tunnel was for), the trust bundle, and the
// routes. One writer (`apply`) validates a whole delta before changing anything; a bad resource NACKs
// it and the last good state keeps serving.

import type {
  AuthorizationPolicyResource,
  DestinationRuleResource,
  GRPCRouteResource,
  HTTPFaultResource,
  HTTPRouteResource,
  MeshConfigResource,
  RateLimitPolicyResource,
  RequestAuthenticationResource,
  TelemetryResource,
} from '../config/index.ts';
import { RevocationList } from '../identity/index.ts';
import {
  bundleOf,
  type Delta,
  indexMesh,
  type MeshIndex,
  type MeshSettingsResource,
  mergeDelta,
  PARSE,
  type ServiceResource,
  StreamedState,
  TYPE,
  type TypeUrl,
  type WorkloadResource,
} from '../xds/index.ts';

export interface WaypointSnapshot extends MeshIndex {
  readonly workloads: ReadonlyMap<string, WorkloadResource>;
  readonly services: ReadonlyMap<string, ServiceResource>;
  readonly httpRoutes: ReadonlyMap<string, HTTPRouteResource>;
  readonly grpcRoutes: ReadonlyMap<string, GRPCRouteResource>;
  /** DestinationRules by `namespace/name` (traffic policy for the backends). */
  readonly destinationRules: ReadonlyMap<string, DestinationRuleResource>;
  /** HTTPFaults by `namespace/name` (what routes' ExtensionRef filters inject). */
  readonly httpFaults: ReadonlyMap<string, HTTPFaultResource>;
  /**
   * AuthorizationPolicies by `namespace/name`: for a waypoint those with targetRefs (the gate binds those
   * naming its targets), for a sidecar those without (it binds those its workload's binding lists).
   */
  readonly authorizationPolicies: ReadonlyMap<string, AuthorizationPolicyResource>;
  /** RequestAuthentications with targetRefs by `namespace/name`. */
  readonly requestAuthentications: ReadonlyMap<string, RequestAuthenticationResource>;
  /** RateLimitPolicies by `namespace/name`. */
  readonly rateLimitPolicies: ReadonlyMap<string, RateLimitPolicyResource>;
  /** Telemetry resources by `namespace/name` (tracing and access logging). */
  readonly telemetries: ReadonlyMap<string, TelemetryResource>;
  /** The control plane's root namespace and trust domain (until it says: Istio's defaults). */
  readonly meshSettings: MeshSettingsResource;
  /** The mesh's MeshConfig (extension providers), when one is applied. */
  readonly meshConfig: MeshConfigResource | undefined;
  readonly trustBundlePem: string | undefined;
  readonly revoked: RevocationList;
  readonly version: number;
}

export const WAYPOINT_TYPES: readonly TypeUrl[] = [
  TYPE.trustBundle,
  TYPE.workload,
  TYPE.service,
  TYPE.httpRoute,
  TYPE.grpcRoute,
  TYPE.destinationRule,
  TYPE.httpFault,
  TYPE.waypointAuthorization,
  TYPE.meshConfig,
  TYPE.requestAuthentication,
  TYPE.rateLimitPolicy,
  TYPE.telemetry,
  TYPE.meshSettings,
];

/** What the stream delivers; the rest of a snapshot is derived from it. */
type Held = {
  -readonly [K in
    | 'workloads'
    | 'services'
    | 'httpRoutes'
    | 'grpcRoutes'
    | 'destinationRules'
    | 'httpFaults'
    | 'authorizationPolicies'
    | 'requestAuthentications'
    | 'rateLimitPolicies'
    | 'telemetries'
    | 'meshSettings'
    | 'meshConfig'
    | 'trustBundlePem'
    | 'revoked']: WaypointSnapshot[K];
};

function index(held: Held, version: number): WaypointSnapshot {
  return { ...held, ...indexMesh(held.workloads, held.services), version };
}

/** The streamed types the waypoint holds as a map by name, and the field of the snapshot each fills. */
const MAPS = {
  [TYPE.workload]: 'workloads',
  [TYPE.service]: 'services',
  [TYPE.httpRoute]: 'httpRoutes',
  [TYPE.grpcRoute]: 'grpcRoutes',
  [TYPE.destinationRule]: 'destinationRules',
  [TYPE.httpFault]: 'httpFaults',
  [TYPE.waypointAuthorization]: 'authorizationPolicies',
  // A sidecar subscribes to this one instead: the policies without targetRefs.
  [TYPE.sidecarAuthorization]: 'authorizationPolicies',
  [TYPE.requestAuthentication]: 'requestAuthentications',
  [TYPE.rateLimitPolicy]: 'rateLimitPolicies',
  [TYPE.telemetry]: 'telemetries',
} as const satisfies Partial<Record<TypeUrl, keyof Held>>;

/** How a delta of one of the waypoint's types makes the next snapshot. */
function next(s: WaypointSnapshot, type: TypeUrl, delta: Delta): WaypointSnapshot {
  const {
    version: _v,
    workloadByAddress: _a,
    workloadByIdentity: _i,
    serviceByVipPort: _s,
    vips: _p,
    shadowedVips: _h,
    ...kept
  } = s;
  const held: Held = kept;
  const field = MAPS[type as keyof typeof MAPS];
  if (field !== undefined) {
    const parse = PARSE[type as keyof typeof MAPS] as (name: string, v: unknown) => never;
    (held as Record<string, unknown>)[field] = mergeDelta(
      held[field] as ReadonlyMap<string, unknown>,
      delta,
      parse,
    );
  } else if (type === TYPE.meshConfig) {
    // One object, named `default`.
    held.meshConfig = mergeDelta(
      new Map(s.meshConfig ? [['default', s.meshConfig]] : []),
      delta,
      PARSE[TYPE.meshConfig],
    ).get('default');
  } else if (type === TYPE.meshSettings) {
    const settings = mergeDelta(new Map(), delta, PARSE[TYPE.meshSettings]).get('mesh');
    if (settings) held.meshSettings = settings;
  } else if (type === TYPE.trustBundle) {
    const bundle = bundleOf(delta);
    if (bundle) {
      held.trustBundlePem = bundle.pem;
      held.revoked = bundle.revoked;
    }
  } else {
    throw new Error(`unknown resource type ${type}`);
  }
  return index(held, s.version + 1);
}

const EMPTY: WaypointSnapshot = index(
  {
    workloads: new Map(),
    services: new Map(),
    httpRoutes: new Map(),
    grpcRoutes: new Map(),
    destinationRules: new Map(),
    httpFaults: new Map(),
    authorizationPolicies: new Map(),
    requestAuthentications: new Map(),
    rateLimitPolicies: new Map(),
    telemetries: new Map(),
    meshSettings: { rootNamespace: 'istio-system', trustDomain: 'cluster.local' },
    meshConfig: undefined,
    trustBundlePem: undefined,
    revoked: RevocationList.EMPTY,
  },
  0,
);

export class WaypointState extends StreamedState<WaypointSnapshot> {
  constructor() {
    super(EMPTY, next);
  }

  /** What the waypoint holds, as JSON (its admin's config dump). */
  dump(): Record<string, unknown> {
    const s = this.snapshot;
    return {
      version: s.version,
      workloads: [...s.workloads.values()],
      services: [...s.services.values()],
      httpRoutes: [...s.httpRoutes.values()],
      grpcRoutes: [...s.grpcRoutes.values()],
      destinationRules: [...s.destinationRules.values()],
      httpFaults: [...s.httpFaults.values()],
      authorizationPolicies: [...s.authorizationPolicies.values()],
      requestAuthentications: [...s.requestAuthentications.values()],
      rateLimitPolicies: [...s.rateLimitPolicies.values()],
      telemetries: [...s.telemetries.values()],
      ...(s.meshConfig ? { meshConfig: s.meshConfig } : {}),
    };
  }
}
