// The answers the waypoint gives itself when the backend cannot, with Envoy's status, body text and
// response flag, so operators read the same access logs and dashboards as with an Istio waypoint.

/** Envoy's response flags that this proxy sets (`-`: none). */
export const FLAGS = {
  none: '-',
  /** No route matched (set by the route table's own 404). */
  noRoute: 'NR',
  /** The backend has no endpoint that may take traffic. */
  noHealthyUpstream: 'UH',
  /** The upstream connection could not be opened. */
  connectFailure: 'UF',
  /** The request timed out (the whole exchange, or the last attempt). */
  timeout: 'UT',
  /** The backend reset the stream (HTTP/2 RST_STREAM). */
  remoteReset: 'UR',
  /** The backend's connection ended before the response did. */
  connectionTermination: 'UC',
  /** Retries were exhausted; the last (retriable) answer was passed on. */
  retryLimit: 'URX',
  /** A connection pool limit (DestinationRule connectionPool, Envoy's circuit breakers) refused it. */
  upstreamOverflow: 'UO',
  /** The client went away before the response was complete. */
  downstreamTermination: 'DC',
} as const;

export interface LocalReply {
  status: number;
  body: string;
  flags: string;
}

/** A request target or method routes and policies could not read as the backend would (Envoy's 400). */
export const BAD_REQUEST: LocalReply = { status: 400, body: 'Bad Request', flags: '-' };

export const NO_HEALTHY_UPSTREAM: LocalReply = {
  status: 503,
  body: 'no healthy upstream',
  flags: FLAGS.noHealthyUpstream,
};

export const UPSTREAM_TIMEOUT: LocalReply = {
  status: 504,
  body: 'upstream request timeout',
  flags: FLAGS.timeout,
};

/** Why an attempt failed before the backend's response headers. */
export type ResetReason = 'connection failure' | 'remote reset' | 'connection termination' | 'overflow';

/** Envoy's 503 for an attempt that got no response headers, with the reason it gives. */
export function resetBeforeHeaders(reason: ResetReason): LocalReply {
  const flags =
    reason === 'overflow'
      ? FLAGS.upstreamOverflow
      : reason === 'connection failure'
        ? FLAGS.connectFailure
        : reason === 'remote reset'
          ? FLAGS.remoteReset
          : FLAGS.connectionTermination;
  return {
    status: 503,
    body: `upstream connect error or disconnect/reset before headers. reset reason: ${reason}`,
    flags,
  };
}

/** Envoy's answer when a circuit breaker drops a request: 503 `UO`, with `x-envoy-overloaded: true`. */
export const UPSTREAM_OVERFLOW: LocalReply = resetBeforeHeaders('overflow');
export const OVERLOADED_HEADERS = { 'x-envoy-overloaded': 'true' } as const;
