// The certificate authority: root and intermediate creation, plug-in CA files, the signing policy, join
// tokens and node credentials, and the CSR service's decisions (including the impersonation check).

export {
  type AuthorityOptions,
  CertificateAuthority,
  DEFAULT_POLICY,
  type IssuedCertificate,
  type LeafUsage,
  type SigningPolicy,
} from './authority.ts';
export { type ValidatedCsr, validateCsr } from './csr.ts';
export { DEFAULT_MAX_PER_NODE, IssuedCertificates, type IssuedCertificatesOptions } from './issued.ts';
export { InMemoryPlacement, type WorkloadPlacement } from './placement.ts';
export { type CaMaterial, type CreateCaOptions, createIntermediateCa, createRootCa } from './root.ts';
export { CaService, type CaServiceOptions, type JoinResult } from './service.ts';
export { issueServingCertificate, type ServingIdentity } from './serving.ts';
export { loadOrCreateCa, readCaDir, writeCaDir, writePemFiles } from './store.ts';
export { type IssuedToken, JoinTokens } from './tokens.ts';
