// The waypoint: the L7 proxy of ambient mode, a mesh workload with its own identity, deployed from a
// Gateway of the waypoint class. It terminates HBONE, routes HTTP and gRPC by Gateway API routes, and
// opens HBONE to the chosen endpoint under its own identity; request policy (JWT, authorization, rate
// limits) and tracing apply on the way. A sidecar (src/sidecar) serves its pod's HTTP with the same parts.

export { WAYPOINT_ERRORS } from './errors.ts';
export {
  type ConnectionMeta,
  type ConnectOptions,
  type Endpoint,
  HttpProxy,
  type SourceMeta,
  workloadTarget,
  workloadTargetAddress,
} from './http/index.ts';
export { startWaypoint, type WaypointProcessOptions, waypointAdminSocket } from './main.ts';
export { CertificateFiles, connectOutside } from './outside.ts';
export { PolicyGate } from './policy/index.ts';
export type { BackendRef, RouteDecision, RouteRequest, RouteTable } from './route-types.ts';
export { type WaypointSnapshot, WaypointState } from './state.ts';
export { trafficPolicyLookup } from './traffic-policy/index.ts';
export {
  connectMesh,
  endpointOf,
  endpointsOf,
  labelsOf,
  protocolOf,
  routeInput,
  WAYPOINT_DEFAULT_PORTS,
  Waypoint,
  type WaypointOptions,
  type WaypointPorts,
} from './waypoint.ts';
