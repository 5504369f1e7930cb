// The identity error catalogue: stable codes for every way parsing, issuing or verifying a mesh identity
// (SPIFFE IDs, keys, certificates, chains, the certificate manager) can fail.

export const IDENTITY_ERRORS = {
  /** A certificate that is neither PEM nor DER X.509. */
  BAD_CERTIFICATE: 'AMBIT_ERR_IDENTITY_BAD_CERTIFICATE',
  /** A private key that cannot be read as a PEM private key. */
  BAD_KEY: 'AMBIT_ERR_IDENTITY_BAD_KEY',
  /** A private key of a kind or size Ambit does not sign with (only ECDSA P-256/P-384 and RSA of 2048 bits or more). */
  UNSUPPORTED_KEY: 'AMBIT_ERR_IDENTITY_UNSUPPORTED_KEY',
  /** A string that is not a valid SPIFFE ID (scheme, trust domain or path). */
  INVALID_SPIFFE_ID: 'AMBIT_ERR_IDENTITY_INVALID_SPIFFE_ID',
  /** A trust domain name with characters or a length SPIFFE does not allow. */
  INVALID_TRUST_DOMAIN: 'AMBIT_ERR_IDENTITY_INVALID_TRUST_DOMAIN',
  /** A node name that cannot be part of a node's SPIFFE ID (not a lower-case DNS name). */
  INVALID_NODE_NAME: 'AMBIT_ERR_IDENTITY_INVALID_NODE_NAME',
  /** A trust bundle given with no certificate in it. */
  EMPTY_BUNDLE: 'AMBIT_ERR_IDENTITY_EMPTY_BUNDLE',
  /** A trust bundle certificate that is not a CA. */
  BAD_ROOT: 'AMBIT_ERR_IDENTITY_BAD_ROOT',
  /** The peer presented no certificate. */
  EMPTY_CHAIN: 'AMBIT_ERR_IDENTITY_EMPTY_CHAIN',
  /** The peer's leaf certificate is a CA, which never carries a workload identity. */
  LEAF_IS_CA: 'AMBIT_ERR_IDENTITY_LEAF_IS_CA',
  /** A certificate in the chain is not signed by the next one (wrong order or a missing intermediate). */
  BAD_CHAIN: 'AMBIT_ERR_IDENTITY_BAD_CHAIN',
  /** The chain does not end at any root of the trust bundle: another CA issued it. */
  UNTRUSTED_ROOT: 'AMBIT_ERR_IDENTITY_UNTRUSTED_ROOT',
  /** A certificate of the chain is not valid yet (often a clock skew between the two ends). */
  CERT_NOT_YET_VALID: 'AMBIT_ERR_IDENTITY_CERT_NOT_YET_VALID',
  /** A certificate of the chain has expired. */
  CERT_EXPIRED: 'AMBIT_ERR_IDENTITY_CERT_EXPIRED',
  /** A certificate of the chain is on the revocation list (its node lost its credential). */
  CERT_REVOKED: 'AMBIT_ERR_IDENTITY_CERT_REVOKED',
  /** A leaf without exactly one URI SAN, or whose URI SAN is not a SPIFFE ID. */
  NO_SPIFFE_ID: 'AMBIT_ERR_IDENTITY_NO_SPIFFE_ID',
  /** Client side: the server proved an identity other than the ones the destination may present. */
  UNEXPECTED_PEER: 'AMBIT_ERR_IDENTITY_UNEXPECTED_PEER',
  /** Server side: the client's identity is from another trust domain. */
  FOREIGN_TRUST_DOMAIN: 'AMBIT_ERR_IDENTITY_FOREIGN_TRUST_DOMAIN',
  /** The peer's identity is not a workload's (a node or control-plane identity, or no serverAuth+clientAuth usages). */
  NOT_A_WORKLOAD: 'AMBIT_ERR_IDENTITY_NOT_A_WORKLOAD',
  /** The CA returned no certificate, one for another identity, or one not for the key this node generated. */
  WRONG_CERT: 'AMBIT_ERR_IDENTITY_WRONG_CERT',
  /** The certificate manager has no valid certificate for an identity: fetching it failed, or it is backing off. */
  CERT_UNAVAILABLE: 'AMBIT_ERR_IDENTITY_CERT_UNAVAILABLE',
  /** The certificate manager was used after it was closed. */
  MANAGER_CLOSED: 'AMBIT_ERR_IDENTITY_MANAGER_CLOSED',
} as const;
