// The registry: a pure derivation from configuration (and lab pods) to what proxies need — workloads
// with identity, node, enrollment and waypoint; services with VIPs and endpoints; bound policies.

export {
  AddressBook,
  canonicalAddress,
  issueNamespace,
  settleWorkloadAddresses,
  type WorkloadAddresses,
} from './addresses.ts';
export { authorizationsFor, DEFAULTS as REGISTRY_DEFAULTS, deriveRegistry } from './derive.ts';
export type {
  Endpoint,
  LabPod,
  PolicyBinding,
  Registry,
  RegistryInput,
  RegistryIssue,
  RegistryOptions,
  RegistryService,
  RegistryServicePort,
  SpiffeId,
  VipTable,
  WaypointBinding,
  Workload,
  WorkloadPeerAuth,
  WorkloadUid,
} from './types.ts';
export { REGISTRY_ONLY_FIELDS } from './types.ts';
export { parseVipRange } from './vips.ts';
export { USE_WAYPOINT, USE_WAYPOINT_NAMESPACE } from './waypoints.ts';
export { DATAPLANE_MODE, GATEWAY_NAME_LABEL, spiffeId } from './workloads.ts';
