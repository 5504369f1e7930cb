// What the registry derives: workloads with identity, node, enrollment, waypoint and the policies
// that bind them; services with VIPs, ports and endpoints. Plain JSON, ready to serialise.

import type { Resource, WaypointFor } from '../../config/index.ts';
import type { L4Authorization, PeerAuthSettings } from '../../policy/index.ts';

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

/** Allocated VIPs by service (`namespace/name` → address). Feed it back in so restarts keep VIPs. */
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

export interface WaypointBinding {
  name: string;
  namespace: string;
  /** Which label chose it: on the workload, on a Service selecting it, or on the namespace. */
  from: 'workload' | 'service' | 'namespace';
  /** The `namespace/name` of the object carrying the label. */
  via: string;
  /** True when a Gateway of a waypoint class with this name exists. */
  declared: boolean;
  /** The Gateway's `istio.io/waypoint-for` (default `service`); what traffic it takes. */
  for: WaypointFor;
}

export interface PolicyBinding {
  /** `namespace/name` of the AuthorizationPolicy. */
  policy: string;
  scope: 'global' | 'namespace' | 'workload' | 'targetRef';
  enforcedBy: 'ztunnel' | 'waypoint';
  /** Why it binds, for `ambit describe`. */
  why: string;
}

export interface WorkloadPeerAuth extends PeerAuthSettings {
  /** `PeerAuthentication namespace/name` that set the mode, or `default` (PERMISSIVE). */
  source: string;
}

export interface Workload {
  uid: WorkloadUid;
  kind: 'Pod' | 'WorkloadEntry';
  name: string;
  namespace: string;
  serviceAccount: string;
  trustDomain: string;
  identity: SpiffeId;
  node: string | undefined;
  addresses: string[];
  labels: Record<string, string>;
  ports: Record<string, number>;
  enrolled: boolean;
  /** Why it is (or is not) in the mesh. */
  enrollment: string;
  /** True when this workload is itself a waypoint (label `gateway.networking.k8s.io/gateway-name`). */
  isWaypoint: boolean;
  waypoint: WaypointBinding | undefined;
  /** Keys (`namespace/name`) of the Services that select it. */
  services: string[];
  authorizationPolicies: PolicyBinding[];
  peerAuthentication: WorkloadPeerAuth;
}

export interface RegistryServicePort {
  name: string | undefined;
  port: number;
  /** As written: a number or the name of a workload port. */
  targetPort: number | string;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  appProtocol: string | undefined;
}

export interface Endpoint {
  workload: WorkloadUid;
  name: string;
  address: string;
  node: string | undefined;
  enrolled: boolean;
  /** Service port → the workload port it reaches (named targetPorts resolved). */
  ports: Record<string, number>;
}

export interface RegistryService {
  /** `namespace/name`. */
  key: string;
  name: string;
  namespace: string;
  hostname: string;
  vips: string[];
  vipSource: 'spec' | 'allocated' | 'none';
  ports: RegistryServicePort[];
  selector: Record<string, string> | undefined;
  endpoints: Endpoint[];
  waypoint: WaypointBinding | undefined;
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
