// The ztunnel error catalogue: stable codes for what the node proxy refuses in its options and what
// ends or refuses a connection it carries. (Tunnel failures carry HBONE_ERRORS codes, from src/hbone.)

export const ZTUNNEL_ERRORS = {
  /** A connection limit that is not a positive integer, a per-source limit above its whole, or limits needing more descriptors than the process may open. */
  BAD_LIMIT: 'AMBIT_ERR_ZTUNNEL_BAD_LIMIT',
  /** An idle timeout (--idle-timeout) that is not a whole number of milliseconds in range. */
  BAD_IDLE_TIMEOUT: 'AMBIT_ERR_ZTUNNEL_BAD_IDLE_TIMEOUT',
  /** A --worker-threads that is not a whole number in range, or worker threads asked of a sidecar. */
  BAD_WORKER_THREADS: 'AMBIT_ERR_ZTUNNEL_BAD_WORKER_THREADS',
  /** A worker thread ended before it was ready, so the ztunnel did not start. */
  THREAD_FAILED: 'AMBIT_ERR_ZTUNNEL_THREAD_FAILED',
  /** A --metrics-allow entry that is not an address or CIDR. */
  BAD_METRICS_ALLOW: 'AMBIT_ERR_ZTUNNEL_BAD_METRICS_ALLOW',
  /** An --admin-listen that is not an address with an optional port, or not a loopback address. */
  BAD_ADMIN_LISTEN: 'AMBIT_ERR_ZTUNNEL_BAD_ADMIN_LISTEN',
  /** The admin socket's directory belongs to another user. */
  ADMIN_DIR: 'AMBIT_ERR_ZTUNNEL_ADMIN_DIR',
  /** Leads the 403 body when an address neither the node's own nor in --metrics-allow scrapes the metrics. */
  METRICS_FORBIDDEN: 'AMBIT_ERR_ZTUNNEL_METRICS_FORBIDDEN',
  /** Dialling the destination workload took longer than the connect timeout. */
  CONNECT_TIMEOUT: 'AMBIT_ERR_ZTUNNEL_CONNECT_TIMEOUT',
  /** A proxied connection carried no byte either way for the idle timeout, and was closed. */
  IDLE_TIMEOUT: 'AMBIT_ERR_ZTUNNEL_IDLE_TIMEOUT',
  /** An open connection was closed because one of its workloads left the mesh. */
  WORKLOAD_GONE: 'AMBIT_ERR_ZTUNNEL_WORKLOAD_GONE',
  /** An open connection was closed because a policy change now denies it. */
  DENIED: 'AMBIT_ERR_ZTUNNEL_DENIED',
  /** An outbound connection before the control plane sent the trust bundle. */
  NO_BUNDLE: 'AMBIT_ERR_ZTUNNEL_NO_BUNDLE',
  /** The node agent was asked for its node credential before it had one. */
  NODE_NO_CREDENTIAL: 'AMBIT_ERR_NODE_NO_CREDENTIAL',
  /** A SOCKS5 client broke the handshake: closed or timed out during it, not SOCKS5, no "no authentication" method, or a request the ztunnel refuses. */
  SOCKS_PROTOCOL: 'AMBIT_ERR_SOCKS_PROTOCOL',
} as const;
