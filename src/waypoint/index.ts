// The waypoint: the L7 proxy of ambient mode, a mesh workload with its own identity, deployed from a
// Gateway of the waypoint class. It terminates HBONE, routes HTTP and gRPC by Gateway API routes, and
// opens HBONE to the chosen endpoint under its own identity; request policy (JWT, authorization, rate
// limits) and tracing apply on the way.

export { WAYPOINT_ERRORS } from './errors.ts';
export { startWaypoint, type WaypointProcessOptions, waypointAdminSocket } from './main.ts';
export type { RouteDecision, RouteRequest, RouteTable } from './route-types.ts';
export { WaypointState } from './state.ts';
export {
  protocolOf,
  WAYPOINT_DEFAULT_PORTS,
  Waypoint,
  type WaypointOptions,
  type WaypointPorts,
} from './waypoint.ts';
