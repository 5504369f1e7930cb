// Fault injection for chaos testing: what the HTTPFaults a route's `ExtensionRef` filters name do to
// one request, as Envoy's fault filter (which Istio's VirtualService `fault` configures) does it.
//
// - Delay and abort are independent: each is sampled on its own (`random() * 100 < percentage`,
//   percentage 100 when unset), a delay comes first and an abort is answered after it (Envoy's
//   `postDelayInjection`). A delayed request carries response flag DI, an aborted one FI.
// - An abort is a local reply with body `fault filter abort`. With `grpcStatus`, the HTTP status is
//   200; a gRPC request is answered the gRPC way (HTTP 200, `grpc-status` in the headers), with the
//   configured code or, for `httpStatus`, the code Envoy maps that status to (`httpToGrpcStatus`).
// - Gateway API, HTTPRouteFilter.type: "If a reference to a custom filter type cannot be resolved, the
//   filter MUST NOT be skipped. Instead, requests that would have been processed by that filter MUST
//   receive a HTTP error response." So a ref to any other extension, or to an HTTPFault that does not
//   exist, makes the result `invalid`, and the request gets a 500 (as for an invalid backend).
// - Several HTTPFault refs on one rule act as filters in a chain, in order: their delays add up and
//   the first abort ends the request (later HTTPFaults are not sampled).
// Pure: the caller passes the lookup and the random source, and carries out the result.

import { GRPC_STATUS_CODES, type HTTPFaultResource, parseDuration } from '../config/index.ts';
import type { ExtensionRef } from './route-types.ts';

export const HTTP_FAULT_GROUP = 'ambit.dev';
export const HTTP_FAULT_KIND = 'HTTPFault';
/** The body of an abort, as Envoy's fault filter writes it. */
export const FAULT_ABORT_BODY = 'fault filter abort';
/** Envoy's response flags: DI delay injected, FI fault (abort) injected. */
export const DELAY_INJECTED = 'DI';
export const FAULT_INJECTED = 'FI';

export interface FaultAbort {
  /** The HTTP status of the reply to a request that is not gRPC: `httpStatus`, or 200 for `grpcStatus`. */
  status: number;
  /** The `grpc-status` a gRPC request gets: `grpcStatus`, or `httpToGrpcStatus(httpStatus)`. */
  grpcStatus: number;
  body: string;
  /** The response flags of the aborted request: `FI`, or `DI,FI` when it was delayed first. */
  flags: string;
}

export interface FaultInjection {
  /** Hold the request this long before going on (or answering `abort`); undefined: no delay. */
  delayMs?: number;
  /** Answer the request with this instead of forwarding it; undefined: forward it. */
  abort?: FaultAbort;
  /** The response flags the faults add, in Envoy's order (`DI`, `FI`); [] when none fired. */
  flags: string[];
}

export type FaultResult = FaultInjection | { invalid: string };

export type HTTPFaultLookup = (namespace: string, name: string) => HTTPFaultResource | undefined;

/**
 * Envoy's `Grpc::Utility::httpToGrpcStatus` (gRPC's http-grpc-status-mapping.md): the code a gRPC
 * client sees for a local reply with this HTTP status.
 */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400:
      return GRPC_STATUS_CODES.INTERNAL!;
    case 401:
      return GRPC_STATUS_CODES.UNAUTHENTICATED!;
    case 403:
      return GRPC_STATUS_CODES.PERMISSION_DENIED!;
    case 404:
      return GRPC_STATUS_CODES.UNIMPLEMENTED!;
    case 429:
    case 502:
    case 503:
    case 504:
      return GRPC_STATUS_CODES.UNAVAILABLE!;
    default:
      return GRPC_STATUS_CODES.UNKNOWN!;
  }
}

/** `grpcStatus` as written (a name such as `UNAVAILABLE`, or a number) as a number; undefined if unknown. */
export function grpcStatusCode(value: string | number): number | undefined {
  if (typeof value === 'number')
    return Number.isInteger(value) && value >= 0 && value <= 16 ? value : undefined;
  return Object.hasOwn(GRPC_STATUS_CODES, value) ? GRPC_STATUS_CODES[value] : undefined;
}

/** True when `random()` falls within `percentage` (default 100): 0 never fires, 100 always does. */
function sampled(percentage: { value: number } | undefined, random: () => number): boolean {
  return random() * 100 < (percentage?.value ?? 100);
}

function describe(ref: ExtensionRef): string {
  return `${ref.group === '' ? 'core' : ref.group}/${ref.kind} ${ref.namespace}/${ref.name}`;
}

/**
 * What the route's ExtensionRef filters do to one request: a delay, an abort (or both), or `invalid`
 * when a filter cannot be resolved. Every ref is resolved before any is sampled, so an unresolvable
 * one is reported whatever `random` returns. Each HTTPFault present draws one `random()` for its
 * delay (when it has one) and then one for its abort (when it has one).
 */
export function faultFor(
  refs: readonly ExtensionRef[],
  lookup: HTTPFaultLookup,
  random: () => number,
): FaultResult {
  const faults: HTTPFaultResource[] = [];
  for (const ref of refs) {
    if (ref.group !== HTTP_FAULT_GROUP || ref.kind !== HTTP_FAULT_KIND) {
      return {
        invalid: `ExtensionRef ${describe(ref)}: Ambit resolves only ${HTTP_FAULT_GROUP}/${HTTP_FAULT_KIND} filters`,
      };
    }
    const fault = lookup(ref.namespace, ref.name);
    if (fault === undefined) return { invalid: `ExtensionRef ${describe(ref)}: no such HTTPFault` };
    const delay = fault.spec.delay;
    if (delay !== undefined && parseDuration(delay.fixedDelay) === undefined) {
      return { invalid: `ExtensionRef ${describe(ref)}: fixedDelay "${delay.fixedDelay}" is not a duration` };
    }
    faults.push(fault);
  }

  let delayMs: number | undefined;
  for (const { spec } of faults) {
    if (spec.delay !== undefined && sampled(spec.delay.percentage, random)) {
      delayMs = (delayMs ?? 0) + Math.round(parseDuration(spec.delay.fixedDelay)!);
    }
    if (spec.abort !== undefined && sampled(spec.abort.percentage, random)) {
      const { httpStatus, grpcStatus } = spec.abort;
      const flags = delayMs === undefined ? [FAULT_INJECTED] : [DELAY_INJECTED, FAULT_INJECTED];
      const abort: FaultAbort = {
        status: httpStatus ?? 200,
        grpcStatus:
          httpStatus !== undefined
            ? httpToGrpcStatus(httpStatus)
            : (grpcStatusCode(grpcStatus!) ?? GRPC_STATUS_CODES.UNKNOWN!),
        body: FAULT_ABORT_BODY,
        flags: flags.join(','),
      };
      return { ...(delayMs === undefined ? {} : { delayMs }), abort, flags };
    }
  }
  return delayMs === undefined ? { flags: [] } : { delayMs, flags: [DELAY_INJECTED] };
}

/** A reply the waypoint gives itself (spread it into a `respond` decision with the route). */
export interface FaultReply {
  status: number;
  headers: Readonly<Record<string, string>>;
  body: string;
  flags: string;
}

/**
 * The reply for an abort, as Envoy's `sendLocalReply` writes it: for a gRPC request HTTP 200 with
 * `grpc-status` and `grpc-message` in the headers (trailers-only) and no body; otherwise the status
 * with the body as text/plain.
 */
export function abortReply(abort: FaultAbort, grpc: boolean): FaultReply {
  if (grpc) {
    return {
      status: 200,
      headers: {
        'content-type': 'application/grpc',
        'grpc-status': String(abort.grpcStatus),
        'grpc-message': abort.body,
      },
      body: '',
      flags: abort.flags,
    };
  }
  return {
    status: abort.status,
    headers: { 'content-type': 'text/plain' },
    body: abort.body,
    flags: abort.flags,
  };
}

/**
 * The reply when a filter cannot be resolved (`faultFor` returned `invalid`): 500, or for a gRPC
 * request the code Envoy maps 500 to (UNKNOWN). `-`: Envoy has no response flag for this.
 */
export function invalidFilterReply(grpc: boolean): FaultReply {
  const body = 'route filter cannot be resolved';
  if (grpc) {
    return {
      status: 200,
      headers: {
        'content-type': 'application/grpc',
        'grpc-status': String(httpToGrpcStatus(500)),
        'grpc-message': body,
      },
      body: '',
      flags: '-',
    };
  }
  return { status: 500, headers: { 'content-type': 'text/plain' }, body, flags: '-' };
}
