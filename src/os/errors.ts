// The os error catalogue: stable codes for what the operating-system glue (the socket-options addon)
// can fail at. Their codes say CAPTURE: the addon served traffic capture first, and the codes are API.

export const OS_ERRORS = {
  /** The socket-options addon (build/Release/orig_dst.node) is not built or cannot be loaded. */
  ADDON: 'AMBIT_ERR_CAPTURE_ADDON',
  /** A socket has no file descriptor to ask the kernel about (it was already closed). */
  NO_FD: 'AMBIT_ERR_CAPTURE_NO_FD',
} as const;
