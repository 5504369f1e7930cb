// Identity: SPIFFE IDs, workload keys and CSRs, certificate chains checked against a multi-root trust bundle,
// the expected-peer checks, and the certificate manager that keeps one certificate per identity on a node.

export {
  type CertificateSummary,
  parseCertificate,
  parseChain,
  pemText,
  type SubjectAltNames,
  sanOf,
  splitPem,
  subjectAltNames,
  summarize,
} from './certs.ts';
export { IDENTITY_ERRORS } from './errors.ts';
export {
  createCsr,
  ECDSA_P256,
  exportPrivateKeyPem,
  generateKeyPair,
  importPrivateKeyPem,
  type KeyPair,
  signingAlgorithmFor,
} from './keys.ts';
export {
  CertificateManager,
  type CertificateManagerOptions,
  type CertificateSource,
  type CertState,
  type CertStatus,
  type Clock,
  systemClock,
  type WorkloadCertificate,
} from './manager.ts';
export {
  controlPlaneId,
  DEFAULT_TRUST_DOMAIN,
  isSpiffeId,
  nodeId,
  type ParsedSpiffeId,
  parseSpiffeId,
  parseWorkloadId,
  principalOf,
  type SpiffeId,
  SYSTEM_NAMESPACE,
  trustDomainOf,
  validateTrustDomain,
  workloadId,
} from './spiffe.ts';
export {
  checkExpectedPeer,
  checkTrustDomain,
  checkWorkloadPeer,
  RevocationList,
  type RevokedCertificate,
  revocationKey,
  spiffeIdOf,
  TrustBundle,
  type VerifiedIdentity,
  verifyChain,
  verifyPeer,
} from './verify.ts';
export { x509 } from './x509.ts';
