// Gateway API routing for the mesh (GAMMA), shared by the control plane and the waypoint: HTTPRoutes and
// GRPCRoutes attached to Services (and, as in Istio's ambient mode, to ServiceEntries) compiled into a
// RouteTable that decides, for one request, where it goes and how (the waypoint), and the status each
// route earns (the control plane).

export { compileRoutes, type RouteInput } from './compile.ts';
export { type EntryHostService, entryHostsOf } from './entries.ts';
export { type RequestTarget, requestTarget } from './path.ts';
export type { EntryHostsLookup, ServiceLookup } from './shapes.ts';
export {
  CONTROLLER_NAME,
  type RouteParentStatus,
  routeParentStatuses,
  type StatusContext,
} from './status.ts';
export {
  type BackendRef,
  type ExtensionRef,
  type HeaderEdits,
  type MirrorTarget,
  NO_HEADER_EDITS,
  type RetryPolicy,
  type RouteDecision,
  type RouteRequest,
  type RouteTable,
} from './types.ts';
