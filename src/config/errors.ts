// The config error catalogue: the stable code for a resource (or batch of resources) that does not
// validate. Each problem is a ConfigIssue in the error's `detail.errors`, not a code of its own.

export const CONFIG_ERRORS = {
  /** A resource or batch of resources fails validation (assertValid, invalidConfigError): every problem is listed. */
  INVALID: 'AMBIT_ERR_CONFIG_INVALID',
} as const;
