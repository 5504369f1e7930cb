// The samples' error catalogue: stable codes for what the sample workloads refuse in their arguments
// and answer with in their JSON error bodies (`{ error: { code, message } }`).

export const SAMPLE_ERRORS = {
  /** A sample flag or option that is out of range, not a URL, or missing (the field is in the detail). */
  BAD_ARG: 'AMBIT_ERR_SAMPLE_BAD_ARG',
  /** The echo sample's `?delay=`, `?status=`, `?size=` or `?fail=` is malformed or out of range (answered 400). */
  BAD_QUERY: 'AMBIT_ERR_SAMPLE_BAD_QUERY',
  /** The echo sample's `?fail=` coin came up: the 503 body of an injected failure. */
  INJECTED_FAILURE: 'AMBIT_ERR_SAMPLE_INJECTED_FAILURE',
  /** A sample's request handler threw: the 500 body (the error is in the sample's log). */
  INTERNAL: 'AMBIT_ERR_SAMPLE_INTERNAL',
  /** A storefront service was asked for a path or product that does not exist (answered 404). */
  NOT_FOUND: 'AMBIT_ERR_SAMPLE_NOT_FOUND',
  /** A storefront service was sent a method other than GET or HEAD (answered 405). */
  METHOD: 'AMBIT_ERR_SAMPLE_METHOD',
  /** A storefront call to another service failed: unreachable, timed out, an unexpected status or a body that is not the JSON expected (answered 502). */
  UPSTREAM: 'AMBIT_ERR_SAMPLE_UPSTREAM',
  /** A sample could not listen on its host and port (in use, no such address, or a privileged port). */
  LISTEN: 'AMBIT_ERR_SAMPLE_LISTEN',
} as const;
