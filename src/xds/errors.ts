// The xds error catalogue: stable codes the proxies' link to the control plane raises itself. Refusals
// the control plane sends (AMBIT_ERR_CA_*, AMBIT_ERR_XDS_*) are raised there and listed in its catalogue;
// the client re-raises them with the server's code (fromServiceError in status.ts).

export const XDS_ERRORS = {
  /** A call to the control plane (the CA or the config stream) failed with no Ambit code: unreachable, deadline passed, connection lost. */
  CA_UNREACHABLE: 'AMBIT_ERR_CA_UNREACHABLE',
  /** `--control` is not host:port, or several replicas not given as addresses of one family. */
  BAD_TARGET: 'AMBIT_ERR_XDS_BAD_TARGET',
  /** Sent on the wire (ambit-error-code trailer) when a service failed with something other than an AmbitError. */
  INTERNAL: 'AMBIT_ERR_INTERNAL',
} as const;
