// The waypoint error catalogue: stable codes for what the L7 proxy (and its http/ and traffic-policy/
// parts) raises. (Tunnel failures carry HBONE_ERRORS codes, from src/hbone.)

export const WAYPOINT_ERRORS = {
  /** An upstream attempt got no response headers (connection failure, remote reset, connection termination, overflow): an UpstreamError with the reset reason. */
  UPSTREAM: 'AMBIT_ERR_WAYPOINT_UPSTREAM',
  /** The upstream connector was closed (the waypoint is shutting down): requests still in flight are aborted with it. */
  CLOSED: 'AMBIT_ERR_WAYPOINT_CLOSED',
  /** TLS the waypoint originates (DestinationRule tls) cannot be set up: a certificate file unreadable, a Secret named, MUTUAL without a client certificate. */
  ORIGINATION: 'AMBIT_ERR_WAYPOINT_ORIGINATION',
  /** The admin socket's directory belongs to another user. */
  ADMIN_DIR: 'AMBIT_ERR_WAYPOINT_ADMIN_DIR',
} as const;
