// The dashboard's error catalogue: what `ambit dashboard` and `ambit stat` report of their sources (a
// Prometheus server, the lab's own Prometheus) and of the requests their server refuses.

export const DASHBOARD_ERRORS = {
  /** Prometheus did not answer (refused, reset, timed out) or answered with an error or a body that is not its API's. */
  PROMETHEUS_UNAVAILABLE: 'AMBIT_ERR_DASHBOARD_PROMETHEUS_UNAVAILABLE',
  /** Prometheus refused a query (its `errorType` and `error` are in the message). */
  PROMETHEUS_QUERY: 'AMBIT_ERR_DASHBOARD_PROMETHEUS_QUERY',
  /** The control plane did not answer a page that cannot be shown without it (and nothing was remembered). */
  CONTROL_UNAVAILABLE: 'AMBIT_ERR_DASHBOARD_CONTROL_UNAVAILABLE',
  /** A --prometheus that is not an http(s) URL, or a --listen that is not host:port. */
  BAD_FLAG: 'AMBIT_ERR_DASHBOARD_BAD_FLAG',
  /** No --prometheus was given and there is no lab to start one in (or it could not be started). */
  NO_PROMETHEUS: 'AMBIT_ERR_DASHBOARD_NO_PROMETHEUS',
  /** A request to the dashboard's server it refuses: cross-site, for a host name, or with a bad parameter. */
  BAD_REQUEST: 'AMBIT_ERR_DASHBOARD_BAD_REQUEST',
  /** A request to the dashboard's server that is not GET or HEAD: it never writes. */
  METHOD_NOT_ALLOWED: 'AMBIT_ERR_DASHBOARD_METHOD_NOT_ALLOWED',
  /** A dashboard page or API path that does not exist, or a service or workload the mesh does not have. */
  NOT_FOUND: 'AMBIT_ERR_DASHBOARD_NOT_FOUND',
  /** The dashboard's page was not built (`npm run build` writes dist/dashboard/). */
  NOT_BUILT: 'AMBIT_ERR_DASHBOARD_NOT_BUILT',
} as const;
