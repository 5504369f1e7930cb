// The capture error catalogue: stable codes for what installing the nftables rules (capture, Service
// VIPs, a sidecar's pod) and reading a redirected connection's original destination can fail at. (The
// socket-options addon's own codes, AMBIT_ERR_CAPTURE_ADDON and AMBIT_ERR_CAPTURE_NO_FD, are raised by
// src/os: see OS_ERRORS.)

export const CAPTURE_ERRORS = {
  /** A pod address to enrol that is not IPv4 (the rules capture IPv4 only). */
  BAD_ADDRESS: 'AMBIT_ERR_CAPTURE_BAD_ADDRESS',
  /** A Service to give a VIP with a key, address or port the rules cannot carry (the message names the service). */
  BAD_SERVICE: 'AMBIT_ERR_CAPTURE_BAD_SERVICE',
  /** A sidecar capture port (listener or excluded inbound port) that is not an integer from 1 to 65535. */
  BAD_PORT: 'AMBIT_ERR_CAPTURE_BAD_PORT',
  /** The `nft` command is not installed. */
  NO_NFT: 'AMBIT_ERR_CAPTURE_NO_NFT',
  /** An `nft` command failed (its stderr is in the message). */
  NFT: 'AMBIT_ERR_CAPTURE_NFT',
  /** A connection reached the listener directly, not through the capture rules: it has no original destination. */
  NOT_REDIRECTED: 'AMBIT_ERR_CAPTURE_NOT_REDIRECTED',
} as const;
