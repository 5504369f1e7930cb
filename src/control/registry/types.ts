// What the registry derives: workloads with identity, node, enrollment, waypoint and the policies
// that bind them; services with VIPs, ports and endpoints. Plain JSON, ready to serialise.
// Workloads, services and authorizations are what the config stream carries: each extends its wire
// type (the proxies' schema, `xds`), so an object the registry builds must satisfy that schema, and
// what it keeps beyond it (for operators) is named in REGISTRY_ONLY_FIELDS.

import type {
  Resource,
  ServiceEntryLocation,
  ServiceEntryResolution,
  WaypointFor,
} from '../../config/index.ts';
import type { L4Authorization, PeerAuthSettings } from '../../policy/index.ts';
import type {
  PolicyRef,
  ServiceEndpoint,
  ServicePort,
  ServiceResource,
  WaypointRef,
  WorkloadResource,
} from '../../xds/index.ts';

/** A pod in the lab (or a host-mode network namespace), as the lab reports it. */
export interface LabPod {
  name: string;
  namespace: string;
  node: string;
  address: string;
  serviceAccount: string;
  labels: Record<string, string>;
  /** Named container ports, for Services whose `targetPort` is a name. */
  ports?: Record<string, number>;
}

export interface RegistryOptions {
  /** Default `cluster.local`. */
  trustDomain?: string;
  /** Where a policy without a selector applies mesh-wide. Default `istio-system`. */
  rootNamespace?: string;
  /** IPv4 CIDR that service VIPs are allocated from. Default `198.19.0.0/16`. */
  vipRange?: string;
  /**
   * Addresses of the mesh's own infrastructure (nodes, pod gateways, the control plane) that no
   * WorkloadEntry may claim: a workload there would be captured in place of the real host.
   */
  reservedCidrs?: readonly string[];
  /** The cluster part of workload uids. Default `Kubernetes`. */
  clusterId?: string;
}

/**
 * Allocated VIPs by service key (`namespace/name`, or `ServiceEntry/namespace/host` for a ServiceEntry
 * host with no `addresses`) → address. Feed it back in so restarts keep VIPs.
 */
export type VipTable = Record<string, string>;

export interface RegistryInput {
  resources: readonly Resource[];
  pods?: readonly LabPod[];
  /** Nodes whose credential was revoked: workloads placed on them are left out of the mesh. */
  revokedNodes?: (node: string) => boolean;
  /** The table returned by the previous derivation (persisted by the caller). */
  previousVips?: VipTable;
  options?: RegistryOptions;
}

/** A SPIFFE ID: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`. */
export type SpiffeId = string & { readonly __brand: 'SpiffeId' };
/** `<cluster>//v1/Pod/<ns>/<name>` or `<cluster>/networking.istio.io/WorkloadEntry/<ns>/<name>`. */
export type WorkloadUid = string & { readonly __brand: 'WorkloadUid' };

/**
 * The fields the registry keeps beyond the wire resources, for `ambit describe` and the admin API's
 * derived views. They travel on the config stream, and proxies, which do not read them, drop them.
 * Paths step through arrays and objects alike. Every other field of a streamed object is in its wire
 * schema, which a unit test checks on a representative registry.
 */
export const REGISTRY_ONLY_FIELDS = {
  workload: [
    'enrollment',
    'waypoint.from',
    'waypoint.via',
    'authorizationPolicies.why',
    'peerAuthentication.source',
  ],
  service: ['vipSource', 'selector', 'labels', 'waypoint.from', 'waypoint.via'],
  authorization: [],
} as const satisfies Record<'workload' | 'service' | 'authorization', readonly string[]>;

export interface WaypointBinding extends WaypointRef {
  /** Which label chose it: on the workload, on a Service selecting it, or on the namespace. */
  from: 'workload' | 'service' | 'namespace';
  /** The `namespace/name` of the object carrying the label. */
  via: string;
  /** The Gateway's `istio.io/waypoint-for` (default `service`); what traffic it takes. */
  for: WaypointFor;
}

export interface PolicyBinding extends PolicyRef {
  scope: 'global' | 'namespace' | 'workload' | 'targetRef';
  enforcedBy: 'ztunnel' | 'sidecar' | 'waypoint';
  /** Why it binds, for `ambit describe`. */
  why: string;
}

export interface WorkloadPeerAuth extends PeerAuthSettings {
  /** `PeerAuthentication namespace/name` that set the mode, or `default` (PERMISSIVE). */
  source: string;
}

/** A workload as the config stream carries it (`WorkloadResource`), typed more narrowly. */
export interface Workload extends WorkloadResource {
  uid: WorkloadUid;
  kind: 'Pod' | 'WorkloadEntry';
  identity: SpiffeId;
  node: string | undefined;
  /** Why it is (or is not) in the mesh. Registry only. */
  enrollment: string;
  waypoint: WaypointBinding | undefined;
  authorizationPolicies: PolicyBinding[];
  peerAuthentication: WorkloadPeerAuth;
}

export interface RegistryServicePort extends ServicePort {
  name: string | undefined;
  /** As written: a number or the name of a workload port. */
  targetPort: number | string;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  /** Registry only. */
  appProtocol: string | undefined;
}

export interface Endpoint extends ServiceEndpoint {
  workload: WorkloadUid;
  node: string | undefined;
}

/**
 * A service as the config stream carries it (`ServiceResource`), typed more narrowly: a Service
 * (key `namespace/name`) or one host of a ServiceEntry (key `ServiceEntry/namespace/host`, which no
 * Service key can be: those have one "/" and a lower-case namespace).
 */
export interface RegistryService extends ServiceResource {
  kind?: 'ServiceEntry';
  location?: ServiceEntryLocation;
  resolution?: ServiceEntryResolution;
  /** How its VIP was chosen (a ServiceEntry's `spec.addresses` count as `spec`). Registry only. */
  vipSource: 'spec' | 'allocated' | 'none';
  ports: RegistryServicePort[];
  /** Registry only. */
  selector: Record<string, string> | undefined;
  endpoints: Endpoint[];
  waypoint: WaypointBinding | undefined;
  /** Registry only. */
  labels: Record<string, string>;
}

export interface RegistryIssue {
  /** `Kind namespace/name` of the object with the problem. */
  object: string;
  message: string;
}

export interface Registry {
  workloads: Workload[];
  services: RegistryService[];
  /** The VIP allocation table to persist and pass back as `previousVips`. */
  vips: VipTable;
  /** Every AuthorizationPolicy ztunnels enforce, in L4 form with its scope. */
  authorizations: L4Authorization[];
  issues: RegistryIssue[];
}
