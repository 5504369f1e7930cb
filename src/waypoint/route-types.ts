// The route decision the HTTP core carries out; defined with the route engine in `src/routing`.

export type {
  BackendRef,
  ExtensionRef,
  HeaderEdits,
  MirrorTarget,
  RetryPolicy,
  RouteDecision,
  RouteRequest,
  RouteTable,
} from '../routing/index.ts';
export { NO_HEADER_EDITS, requestTarget } from '../routing/index.ts';
