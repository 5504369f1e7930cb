// The CLI error catalogue: stable codes for what `ambit` refuses in its flags and arguments, and for
// what goes wrong talking to the control plane and proxies or bringing the mesh up. (An admin API
// refusal keeps the code the API gave it, e.g. CONTROL_ERRORS.API_NOT_FOUND, from src/control.)

export const CLI_ERRORS = {
  // Flags and arguments.

  /** Flags or arguments that are missing or do not fit together, or a malformed token --ttl or control-plane duration. */
  USAGE: 'AMBIT_ERR_CLI_USAGE',
  /** A duration flag (`ambit ca`'s --ttl, `ambit waypoint`'s --timeout) that is not written like 90s, 30m, 1h or 365d. */
  BAD_DURATION: 'AMBIT_ERR_CLI_BAD_DURATION',
  /** A -n/--namespace that is not a DNS-1123 label. */
  BAD_NAMESPACE: 'AMBIT_ERR_CLI_BAD_NAMESPACE',
  /** An -o/--output that is not table, json or yaml. */
  BAD_OUTPUT: 'AMBIT_ERR_CLI_BAD_OUTPUT',
  /** A --server (or $AMBIT_SERVER) that is not http://host:port or unix:/path. */
  BAD_SERVER: 'AMBIT_ERR_CLI_BAD_SERVER',
  /** A waypoint name that is `none` (reserved) or not a DNS-1123 name of at most 63 characters. */
  WAYPOINT_BAD_NAME: 'AMBIT_ERR_CLI_WAYPOINT_BAD_NAME',
  /** A waypoint --for that is not a traffic type. */
  WAYPOINT_BAD_FOR: 'AMBIT_ERR_CLI_WAYPOINT_BAD_FOR',
  /** A waypoint --replicas that is not a whole number in range. */
  WAYPOINT_BAD_REPLICAS: 'AMBIT_ERR_CLI_WAYPOINT_BAD_REPLICAS',

  // Files and manifests.

  /** A file named on the command line (-f, --ca-bundle) that cannot be read. */
  NO_FILE: 'AMBIT_ERR_CLI_NO_FILE',
  /** A manifest (a file, or stdin) above the 8 MiB limit, refused before it is read. */
  MANIFEST_TOO_LARGE: 'AMBIT_ERR_CLI_MANIFEST_TOO_LARGE',
  /** With -n, a manifest's resource names another namespace in its metadata (kubectl refuses it too). */
  NAMESPACE_MISMATCH: 'AMBIT_ERR_CLI_NAMESPACE_MISMATCH',
  /** The -f sources hold no resources. */
  NO_RESOURCES: 'AMBIT_ERR_CLI_NO_RESOURCES',
  /** The admin token file may be read by other users (its mode is not 0600). */
  TOKEN_FILE_OPEN: 'AMBIT_ERR_CLI_TOKEN_FILE_OPEN',

  // Talking to the control plane and the proxies.

  /** The control plane or a proxy's admin socket cannot be reached (not running, wrong --server). */
  UNREACHABLE: 'AMBIT_ERR_CLI_UNREACHABLE',
  /** The admin socket refused us (EACCES): it is for root and the control plane's user only. */
  NOT_ALLOWED: 'AMBIT_ERR_CLI_NOT_ALLOWED',
  /** An admin API or proxy admin answer that is an error without a code of its own, or is not JSON. */
  REQUEST: 'AMBIT_ERR_CLI_REQUEST',

  // Waypoints (`ambit waypoint`).

  /** A Gateway named as a waypoint is of another class. */
  NOT_A_WAYPOINT: 'AMBIT_ERR_CLI_NOT_A_WAYPOINT',
  /** --enroll-namespace names a Namespace that does not exist. */
  NO_NAMESPACE: 'AMBIT_ERR_CLI_NO_NAMESPACE',
  /** --enroll-namespace would take a namespace already enrolled in another waypoint (without --overwrite). */
  WAYPOINT_ENROLLED: 'AMBIT_ERR_CLI_WAYPOINT_ENROLLED',
  /** --wait gave up: the waypoint was not programmed within --timeout. */
  WAYPOINT_TIMEOUT: 'AMBIT_ERR_CLI_WAYPOINT_TIMEOUT',
  /** A waypoint has no replica placed on a node, so there is no admin socket to ask. */
  NO_REPLICA: 'AMBIT_ERR_CLI_NO_REPLICA',

  // Bringing the mesh up (`ambit up`, `ambit demo`).

  /** A part of the mesh `ambit up` started did not become ready in time (its log's tail is in the message). */
  UP_TIMEOUT: 'AMBIT_ERR_UP_TIMEOUT',
  /** Another `ambit up` holds the mesh lock in this home and did not finish in time. */
  UP_LOCKED: 'AMBIT_ERR_UP_LOCKED',
  /** `ambit demo`: a sample did not answer, or a service got no VIP, in time. */
  DEMO_TIMEOUT: 'AMBIT_ERR_DEMO_TIMEOUT',
} as const;
