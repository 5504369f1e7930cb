// What the waypoint's route table answers for one request, shared by the route engine (which compiles
// HTTPRoutes and GRPCRoutes into a table) and the HTTP proxy (which carries the answer out).

/** A request as routing sees it. Header names are lower-case; `path` is the request target as received (path and query). */
export interface RouteRequest {
  method: string;
  path: string;
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The value of :authority / Host. */
  authority: string;
  /** The client's namespace (from its identity): consumer routes apply only to their own namespace's requests. */
  sourceNamespace?: string;
}

/** A Service port that traffic is sent to: `namespace/name` and the service port. */
export interface BackendRef {
  service: string;
  port: number;
}

/** Header edits in Gateway API order: set, then add, then remove (names lower-case). */
export interface HeaderEdits {
  set: ReadonlyArray<readonly [name: string, value: string]>;
  add: ReadonlyArray<readonly [name: string, value: string]>;
  remove: readonly string[];
}

export interface RetryPolicy {
  /** Attempts in all, the first one included (Gateway API `retry.attempts` counts retries: this is that + 1). */
  attempts: number;
  /** Response codes that are retried (Gateway API `retry.codes`). */
  codes: readonly number[];
  /** Wait before each retry. */
  backoffMs: number;
}

export interface MirrorTarget {
  backend: BackendRef;
  /** The share of requests mirrored, 0..1. */
  fraction: number;
}

/** An `ExtensionRef` filter the route carries (fault injection names an `ambit.dev` resource). */
export interface ExtensionRef {
  group: string;
  kind: string;
  name: string;
  namespace: string;
}

export type RouteDecision =
  /** Answered by the waypoint itself: 404 (no route matches), 500 (invalid backend), a redirect. */
  | {
      kind: 'respond';
      status: number;
      headers: Readonly<Record<string, string>>;
      body: string;
      /** `namespace/name` of the route that decided, when one did. */
      route?: string;
      /** Envoy's response flag for metrics and the access log (`NR` no route), or `-`. */
      flags: string;
    }
  | {
      kind: 'forward';
      /** `namespace/name` of the route, or undefined when no route is attached (the service itself). */
      route?: string;
      backend: BackendRef;
      /** The request target to send upstream (after any URLRewrite). */
      path: string;
      /** A rewritten :authority/Host, when URLRewrite set one. */
      authority?: string;
      requestHeaders: HeaderEdits;
      responseHeaders: HeaderEdits;
      mirrors: readonly MirrorTarget[];
      /** `timeouts.request`: the whole exchange, retries included; undefined: none. */
      timeoutMs?: number;
      /** `timeouts.backendRequest`: each attempt; undefined: none. */
      backendTimeoutMs?: number;
      retry?: RetryPolicy;
      extensionRefs: readonly ExtensionRef[];
    };

/** The routes for every service a waypoint serves, compiled once per configuration change. */
export interface RouteTable {
  /**
   * The decision for `req` sent to `service` (`namespace/name`) on `port`. With no route attached to
   * that service and port, the request goes to the service itself. `random` is in [0, 1) (weights, mirrors).
   */
  decide(service: string, port: number, req: RouteRequest, random?: () => number): RouteDecision;
}

export const NO_HEADER_EDITS: HeaderEdits = { set: [], add: [], remove: [] };
