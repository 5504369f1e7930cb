// The proxy error catalogue: stable codes for what the runtime shared by every proxy can fail at.
// (Timeouts dialling upstream carry the caller's code: connectTcp takes it as an argument.)

export const PROXY_ERRORS = {
  /** A node with no saved credential was started without a join token (--token) to obtain one. */
  NODE_NO_TOKEN: 'AMBIT_ERR_NODE_NO_TOKEN',
} as const;
