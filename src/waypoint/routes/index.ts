// The waypoint's route engine: HTTPRoutes and GRPCRoutes attached to Services (GAMMA) compiled into a
// RouteTable that decides, for one request, where it goes and how; and the status each route earns.

export { compileRoutes, type RouteInput } from './compile.ts';
export type { ServiceLookup } from './shapes.ts';
export {
  CONTROLLER_NAME,
  type RouteParentStatus,
  routeParentStatuses,
  type StatusContext,
} from './status.ts';
