// The control plane's serving certificate for port 15010, issued by its own CA to its own identity
// (spiffe://<td>/ns/ambit-system/sa/ambit-control) so nodes verify it like any mesh peer.

import { controlPlaneId, createCsr, generateKeyPair } from '../../identity/index.ts';
import type { CertificateAuthority, IssuedCertificate } from './authority.ts';

export interface ServingIdentity {
  issued: IssuedCertificate;
  /** Leaf and intermediates, PEM, as a TLS server presents them. */
  certChainPem: string;
  keyPem: string;
}

export async function issueServingCertificate(
  ca: CertificateAuthority,
  ttlSeconds?: number,
): Promise<ServingIdentity> {
  const pair = await generateKeyPair();
  const csr = await createCsr(controlPlaneId(ca.trustDomain), pair.keys);
  const issued = await ca.sign(csr, { ttlSeconds, usage: 'server' });
  // The root stays out of what the server sends: peers have it in their bundle already.
  return { issued, certChainPem: issued.chain.slice(0, -1).join(''), keyPem: pair.privateKeyPem };
}
