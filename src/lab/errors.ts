// The lab error catalogue: stable codes for what bringing a lab up or down, adding pods and running
// commands in its namespaces can fail at.

export const LAB_ERRORS = {
  /** A lab name that is not 1-16 lower-case letters and digits, or a namespace or service account that is not a DNS label. */
  INVALID_NAME: 'AMBIT_ERR_LAB_INVALID_NAME',
  /** A pod name that is malformed, or that names a node or the control plane. */
  INVALID_POD_NAME: 'AMBIT_ERR_LAB_INVALID_POD_NAME',
  /** A node count (--nodes) that is not a whole number in range. */
  INVALID_NODES: 'AMBIT_ERR_LAB_INVALID_NODES',
  /** Labels (`k=v,...`) that are malformed, invalid by Kubernetes' rules, or give a key twice. */
  INVALID_LABEL: 'AMBIT_ERR_LAB_INVALID_LABEL',
  /** A node has no free pod address left in its /24. */
  NODE_FULL: 'AMBIT_ERR_LAB_NODE_FULL',
  /** `lab up` on a lab already up with another node count. */
  ALREADY_UP: 'AMBIT_ERR_LAB_ALREADY_UP',
  /** A command that needs the lab when it is not up. */
  NOT_UP: 'AMBIT_ERR_LAB_NOT_UP',
  /** A pod added on a node the lab does not have. */
  UNKNOWN_NODE: 'AMBIT_ERR_LAB_UNKNOWN_NODE',
  /** A pod or node target that the lab does not have. */
  UNKNOWN_POD: 'AMBIT_ERR_LAB_UNKNOWN_POD',
  /** A pod added with the name of one that already exists. */
  DUPLICATE_POD: 'AMBIT_ERR_LAB_DUPLICATE_POD',
  /** `lab exec` or `lab run` without a command after `--`. */
  NO_COMMAND: 'AMBIT_ERR_LAB_NO_COMMAND',
  /** A system command the lab ran failed, or a process could not be started in a namespace. */
  COMMAND: 'AMBIT_ERR_LAB_COMMAND',
  /** The lab was run by a user other than root. */
  NOT_ROOT: 'AMBIT_ERR_LAB_NOT_ROOT',
  /** A command the lab needs (ip, nft, ...) is not installed. */
  MISSING_TOOL: 'AMBIT_ERR_LAB_MISSING_TOOL',
  /** Waiting for something in the lab (a process, an address) took longer than allowed. */
  TIMEOUT: 'AMBIT_ERR_LAB_TIMEOUT',
  /** Another ambit command holds the lab's lock. */
  LOCKED: 'AMBIT_ERR_LAB_LOCKED',
  /** The lab's state file cannot be read or parsed. */
  STATE_CORRUPT: 'AMBIT_ERR_LAB_STATE_CORRUPT',
  /** `ambit lab forward` to an address that is not loopback, or a port out of range. */
  BAD_FORWARD: 'AMBIT_ERR_LAB_BAD_FORWARD',
} as const;
