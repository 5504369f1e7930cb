// The control-plane error catalogue: stable codes for every refusal and failure of the control plane
// (its admin API, CA, gRPC server, registry, store and config stream). Keys name the code without its
// AMBIT_ERR_ prefix (and without CONTROL_ for the control plane's own), so subareas cannot collide.
// The CA and config-stream refusals travel to the proxies: src/xds/status.ts maps them to gRPC statuses
// and, being a lower layer, names them as literal codes; change one here and there together.

export const CONTROL_ERRORS = {
  // The control plane itself (server.ts, config-file.ts, pods.ts).

  /** A --listen, --admin-listen or similar flag that is not host:port. */
  BAD_LISTEN: 'AMBIT_ERR_CONTROL_BAD_LISTEN',
  /** An --admin-listen on a non-loopback address without --admin-listen-allow-remote. */
  REMOTE_ADMIN: 'AMBIT_ERR_CONTROL_REMOTE_ADMIN',
  /** The data directory belongs to another user. */
  DATA_DIR: 'AMBIT_ERR_CONTROL_DATA_DIR',
  /** The config file cannot be read, is not YAML, or holds invalid settings. */
  CONFIG: 'AMBIT_ERR_CONTROL_CONFIG',
  /** The lab's pod state file could let another user place pods (owned by someone else, or group/world-writable). */
  LAB_STATE_UNTRUSTED: 'AMBIT_ERR_CONTROL_LAB_STATE_UNTRUSTED',

  // The gRPC server (grpc/).

  /** A service added after the gRPC server started listening. */
  GRPC_STARTED: 'AMBIT_ERR_CONTROL_GRPC_STARTED',
  /** The gRPC server could not listen on its address (in use: another control plane?). */
  GRPC_BIND: 'AMBIT_ERR_CONTROL_GRPC_BIND',
  /** The gRPC server's address asked for before it listens. */
  GRPC_NOT_STARTED: 'AMBIT_ERR_CONTROL_GRPC_NOT_STARTED',
  /** This grpc-js version hides the TLS server options, so the handshake timeout cannot be set. */
  GRPC_TLS_OPTIONS: 'AMBIT_ERR_CONTROL_GRPC_TLS_OPTIONS',
  /** A gRPC server option that is not a positive whole number. */
  GRPC_BAD_OPTION: 'AMBIT_ERR_CONTROL_GRPC_BAD_OPTION',

  // The admin API (api/), and the control plane's views behind it.

  /** No such path, resource, admin token or workload (404). */
  API_NOT_FOUND: 'AMBIT_ERR_API_NOT_FOUND',
  /** A resource kind the API does not know (404). */
  API_UNKNOWN_KIND: 'AMBIT_ERR_API_UNKNOWN_KIND',
  /** A create of a resource or admin token whose name is taken (409). */
  API_ALREADY_EXISTS: 'AMBIT_ERR_API_ALREADY_EXISTS',
  /** A label selector that cannot be parsed (400). */
  API_BAD_SELECTOR: 'AMBIT_ERR_API_BAD_SELECTOR',
  /** A malformed request, such as a body that is not JSON (400). */
  API_BAD_REQUEST: 'AMBIT_ERR_API_BAD_REQUEST',
  /** A request body that is JSON but invalid: too deep, a duplicate key, a bad field (422). */
  API_INVALID: 'AMBIT_ERR_API_INVALID',
  /** A method the path does not allow (405). */
  API_METHOD: 'AMBIT_ERR_API_METHOD',
  /** A request body above the size limit (413). */
  API_TOO_LARGE: 'AMBIT_ERR_API_TOO_LARGE',
  /** The caller's role does not allow the request, or the Host is not an address or localhost (403). */
  API_FORBIDDEN: 'AMBIT_ERR_API_FORBIDDEN',
  /** A write not sent as application/json (415). */
  API_UNSUPPORTED_MEDIA: 'AMBIT_ERR_API_UNSUPPORTED_MEDIA',
  /** No bearer token, or one unknown, revoked or expired; or a socket peer that was not checked (401). */
  API_UNAUTHORIZED: 'AMBIT_ERR_API_UNAUTHORIZED',
  /** More watches open than the limit (429). */
  API_TOO_MANY_WATCHES: 'AMBIT_ERR_API_TOO_MANY_WATCHES',
  /** In the Status body of a request that failed with something other than an AmbitError (500). */
  API_INTERNAL: 'AMBIT_ERR_API_INTERNAL',
  /** The admin token file cannot be read or is not a list of token records. */
  API_TOKENS_UNREADABLE: 'AMBIT_ERR_API_TOKENS_UNREADABLE',

  // The CA (ca/): its material and files.

  /** The CA certificate or key is not PEM, or the certificate is not a CA. */
  CA_BAD_MATERIAL: 'AMBIT_ERR_CA_BAD_MATERIAL',
  /** The CA key does not belong to the CA certificate. */
  CA_KEY_MISMATCH: 'AMBIT_ERR_CA_KEY_MISMATCH',
  /** The CA certificate is expired or not valid yet. */
  CA_EXPIRED: 'AMBIT_ERR_CA_EXPIRED',
  /** The CA chain is out of order or does not end at a self-signed root. */
  CA_BAD_CHAIN: 'AMBIT_ERR_CA_BAD_CHAIN',
  /** A signing policy whose minimum lifetime is not positive or is above its maximum. */
  CA_BAD_POLICY: 'AMBIT_ERR_CA_BAD_POLICY',
  /** Retiring the root that still signs. */
  CA_RETIRE_SIGNING_ROOT: 'AMBIT_ERR_CA_RETIRE_SIGNING_ROOT',
  /** A CA file cannot be read, or the directory holds no CA. */
  CA_FILE_UNREADABLE: 'AMBIT_ERR_CA_FILE_UNREADABLE',
  /** Writing a new CA into a directory that already holds CA files. */
  CA_FILES_EXIST: 'AMBIT_ERR_CA_FILES_EXIST',
  /** The CA files cannot be written. */
  CA_FILE_UNWRITABLE: 'AMBIT_ERR_CA_FILE_UNWRITABLE',
  /** The issued-certificate records cannot be read: the control plane refuses to start without its revocations. */
  CA_RECORDS_UNREADABLE: 'AMBIT_ERR_CA_RECORDS_UNREADABLE',
  /** An issued certificate cannot be recorded: nothing is issued until it can. */
  CA_RECORD_UNWRITABLE: 'AMBIT_ERR_CA_RECORD_UNWRITABLE',
  /** The join token file cannot be read. */
  CA_TOKENS_UNREADABLE: 'AMBIT_ERR_CA_TOKENS_UNREADABLE',
  /** A node already holds the most unexpired certificates allowed. */
  CA_TOO_MANY_CERTIFICATES: 'AMBIT_ERR_CA_TOO_MANY_CERTIFICATES',

  // The CA (ca/): refusals of a certificate request, sent to the proxies (gRPC status in src/xds/status.ts).

  /** A request that holds no PEM certificate request, or one that is not valid PKCS#10. */
  CA_BAD_CSR: 'AMBIT_ERR_CA_BAD_CSR',
  /** A request whose signature does not match its public key. */
  CA_BAD_CSR_SIGNATURE: 'AMBIT_ERR_CA_BAD_CSR_SIGNATURE',
  /** A request's key that the CA cannot read or does not accept (not ECDSA P-256 or RSA of 2048 bits or more). */
  CA_WEAK_KEY: 'AMBIT_ERR_CA_WEAK_KEY',
  /** A request with no URI SAN. */
  CA_NO_URI_SAN: 'AMBIT_ERR_CA_NO_URI_SAN',
  /** A request with more than one URI SAN. */
  CA_MULTIPLE_URI_SANS: 'AMBIT_ERR_CA_MULTIPLE_URI_SANS',
  /** A request whose URI SAN is not a valid SPIFFE ID. */
  CA_NOT_SPIFFE: 'AMBIT_ERR_CA_NOT_SPIFFE',
  /** A request for an identity outside the CA's trust domain. */
  CA_FOREIGN_TRUST_DOMAIN: 'AMBIT_ERR_CA_FOREIGN_TRUST_DOMAIN',
  /** A request carrying SANs (DNS, IP, other) besides its SPIFFE ID. */
  CA_UNEXPECTED_SAN: 'AMBIT_ERR_CA_UNEXPECTED_SAN',
  /** A request whose impersonated identity differs from the identity its CSR names. */
  CA_IDENTITY_MISMATCH: 'AMBIT_ERR_CA_IDENTITY_MISMATCH',
  /** A node asking for an identity it may not hold: another node's, the mesh's own, or a workload not placed on it. */
  CA_IMPERSONATION: 'AMBIT_ERR_CA_IMPERSONATION',
  /** A join token this control plane did not issue. */
  CA_UNKNOWN_TOKEN: 'AMBIT_ERR_CA_UNKNOWN_TOKEN',
  /** A join token that was revoked. */
  CA_REVOKED_TOKEN: 'AMBIT_ERR_CA_REVOKED_TOKEN',
  /** A join token that was already exchanged (tokens work once). */
  CA_TOKEN_USED: 'AMBIT_ERR_CA_TOKEN_USED',
  /** A join token that has expired. */
  CA_EXPIRED_TOKEN: 'AMBIT_ERR_CA_EXPIRED_TOKEN',
  /** A CA or config-stream caller without a node credential of this trust domain. */
  CA_UNAUTHENTICATED: 'AMBIT_ERR_CA_UNAUTHENTICATED',
  /** A CA or config-stream caller whose node credential was revoked. */
  CA_NODE_REVOKED: 'AMBIT_ERR_CA_NODE_REVOKED',

  // The config stream (stream.ts): refusals sent to the proxies (gRPC status in src/xds/status.ts).

  /** A config stream whose first request does not name the proxy (node { kind, name }) or names an unknown kind. */
  XDS_BAD_REQUEST: 'AMBIT_ERR_XDS_BAD_REQUEST',
  /** A config-stream request for a resource type the control plane does not serve. */
  XDS_UNKNOWN_TYPE: 'AMBIT_ERR_XDS_UNKNOWN_TYPE',
  /** A proxy that opened the config stream and did not name itself in time. */
  XDS_FIRST_REQUEST_TIMEOUT: 'AMBIT_ERR_XDS_FIRST_REQUEST_TIMEOUT',

  // The registry (registry/).

  /** A VIP range that is not an IPv4 CIDR from /8 to /30. (A CONFIG code for historical reasons: it is API.) */
  CONFIG_BAD_VIP_RANGE: 'AMBIT_ERR_CONFIG_BAD_VIP_RANGE',
  /** A replica whose vipRange is not the range the store's VIP table was allocated from. */
  VIP_RANGE_MISMATCH: 'AMBIT_ERR_CONTROL_VIP_RANGE_MISMATCH',

  // The store (store/).

  /** Another control plane holds the data directory's lock. */
  STORE_LOCKED: 'AMBIT_ERR_STORE_LOCKED',
  /** The data directory's lock was lost while running: another control plane may be writing. */
  STORE_LOCK_LOST: 'AMBIT_ERR_STORE_LOCK_LOST',
  /** A commit to a closed store. */
  STORE_CLOSED: 'AMBIT_ERR_STORE_CLOSED',
  /** The store's log could not be written (or repaired after a failed write). */
  STORE_WRITE: 'AMBIT_ERR_STORE_WRITE',
  /** The store's log is damaged in a way a crash cannot explain, or its snapshot is not one. */
  STORE_CORRUPT: 'AMBIT_ERR_STORE_CORRUPT',
  /** etcd did not answer (unreachable, or no quorum): the write was refused, or the store could not open. */
  STORE_UNAVAILABLE: 'AMBIT_ERR_STORE_UNAVAILABLE',
  /** `import` into a store that already holds resources. */
  IMPORT_NOT_EMPTY: 'AMBIT_ERR_CONTROL_IMPORT_NOT_EMPTY',
  /** A change larger than one etcd transaction may be (its --max-txn-ops). */
  STORE_TOO_LARGE: 'AMBIT_ERR_STORE_TOO_LARGE',
  /** A commit kept losing the race to other control-plane replicas writing at the same time. */
  STORE_CONFLICT: 'AMBIT_ERR_STORE_CONFLICT',
} as const;
