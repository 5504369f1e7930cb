// The answers the waypoint gives itself, in Envoy's words: 404 with flag NR when no route matches,
// 500 with flag NC when the chosen backend is invalid (Envoy's `cluster_not_found_response_code:
// INTERNAL_SERVER_ERROR`, added for exactly this Gateway API rule), and redirects.
//
// A gRPC request routed by GRPCRoutes is answered the gRPC way: HTTP 200 with `grpc-status` in the
// headers (a trailers-only response). No route is UNIMPLEMENTED (12), as Envoy maps a local 404 for
// gRPC; an invalid backend is UNAVAILABLE (14), as GRPCRouteRule.backendRefs requires ("requests
// that would have otherwise been routed to an invalid backend ... MUST receive an UNAVAILABLE status").

import type { RouteDecision } from './types.ts';

export type Respond = Extract<RouteDecision, { kind: 'respond' }>;

const GRPC_UNIMPLEMENTED = '12';
const GRPC_UNAVAILABLE = '14';

function grpcStatus(code: string, message: string, route: string | undefined): Respond {
  return {
    kind: 'respond',
    status: 200,
    headers: { 'content-type': 'application/grpc', 'grpc-status': code, 'grpc-message': message },
    body: '',
    ...(route === undefined ? {} : { route }),
    flags: code === GRPC_UNIMPLEMENTED ? 'NR' : 'NC',
  };
}

/** No rule of the routes attached to the service port matches the request. */
export function noRoute(grpc: boolean): Respond {
  if (grpc) return grpcStatus(GRPC_UNIMPLEMENTED, 'route not found', undefined);
  return { kind: 'respond', status: 404, headers: {}, body: 'route not found', flags: 'NR' };
}

/** The matched rule has no backend to send to: none given, all weights 0, or the chosen one is invalid. */
export function invalidBackend(route: string, grpc: boolean): Respond {
  if (grpc) return grpcStatus(GRPC_UNAVAILABLE, 'no valid backend', route);
  return { kind: 'respond', status: 500, headers: {}, body: 'no valid backend', route, flags: 'NC' };
}

export function redirect(route: string, status: number, location: string): Respond {
  return { kind: 'respond', status, headers: { location }, body: '', route, flags: '-' };
}
