// What a waypoint knows about one HTTP request when it decides on it: the request itself, the peer
// that sent it (the client's own identity, carried through HBONE from the client's ztunnel), where
// it was going, and — once a RequestAuthentication accepted a JWT — who the token says the caller is.
// Authorization (`when` keys, `from`/`to` fields), JWT authentication and rate limits all read this.

/** Header values as Node gives them (lower-case names). */
export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The identity a validated JWT gives a request (Istio's `request.auth.*`). */
export interface RequestAuth {
  /** `iss/sub`, Istio's request principal. */
  principal: string;
  /** The token's `aud` claim, as a list. */
  audiences: readonly string[];
  /** The token's `azp` claim, when present. */
  presenter?: string;
  /** The token's whole payload (nested claims are read through it). */
  claims: Readonly<Record<string, unknown>>;
}

export interface RequestAttributes {
  method: string;
  /** The request target as sent: path and query. */
  path: string;
  /** `:authority` / `Host`, as sent (may carry a port). */
  host: string;
  headers: RequestHeaders;
  source: {
    /** The peer's SPIFFE id (`spiffe://cluster.local/ns/a/sa/b`); empty when unknown. */
    principal: string;
    /** The peer's address as the tunnel reported it (`source.ip`). */
    ip?: string;
    /** The peer's namespace, from its principal. */
    namespace?: string;
  };
  /**
   * The original client's address (`remote.ip`). Without trusted proxies in front (Istio's
   * `numTrustedProxies`, which a waypoint never has), it is the peer's own address.
   */
  remoteIp?: string;
  destination: { ip?: string; port: number };
  /** Set once RequestAuthentication accepted a token; absent: no (or no valid) token. */
  auth?: RequestAuth;
  /**
   * A connection a waypoint passes through as TCP: no HTTP attribute is known, and every test of one
   * fails closed (never lets an ALLOW rule match; makes a DENY or CUSTOM rule match).
   */
  tcp?: boolean;
}
