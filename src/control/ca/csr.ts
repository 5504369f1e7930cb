// The CA's signing policy for certificate requests, checked in order: the CSR parses, its key is acceptable
// (P-256, or RSA >= 2048), its self-signature holds, and it names exactly one SPIFFE ID in our trust domain.

import { createPublicKey, type KeyObject } from 'node:crypto';
import { AmbitError } from '../../errors/index.ts';
import { type ParsedSpiffeId, parseSpiffeId, sanOf, x509 } from '../../identity/index.ts';

export interface ValidatedCsr {
  identity: ParsedSpiffeId;
  /** The requester's public key as SubjectPublicKeyInfo DER. */
  spki: ArrayBuffer;
  publicKey: KeyObject;
  keyType: 'ec' | 'rsa';
}

function refuse(code: string, message: string, detail?: Record<string, unknown>): AmbitError {
  return new AmbitError(code, message, { detail });
}

function parseCsr(pem: string): InstanceType<typeof x509.Pkcs10CertificateRequest> {
  if (typeof pem !== 'string' || !pem.includes('-----BEGIN CERTIFICATE REQUEST-----')) {
    throw refuse(
      'AMBIT_ERR_CA_BAD_CSR',
      'the request holds no PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)',
    );
  }
  try {
    return new x509.Pkcs10CertificateRequest(pem);
  } catch (err) {
    throw new AmbitError(
      'AMBIT_ERR_CA_BAD_CSR',
      'the certificate request is not valid PKCS#10: regenerate it',
      { cause: err },
    );
  }
}

function checkKey(spki: ArrayBuffer): { publicKey: KeyObject; keyType: 'ec' | 'rsa' } {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (err) {
    throw new AmbitError(
      'AMBIT_ERR_CA_WEAK_KEY',
      'the request carries a public key this CA cannot read: use ECDSA P-256',
      {
        cause: err,
      },
    );
  }
  const type = publicKey.asymmetricKeyType;
  const details = publicKey.asymmetricKeyDetails ?? {};
  if (type === 'ec' && details.namedCurve === 'prime256v1') return { publicKey, keyType: 'ec' };
  if (type === 'rsa' && (details.modulusLength ?? 0) >= 2048) return { publicKey, keyType: 'rsa' };
  const what =
    type === 'rsa'
      ? `RSA-${details.modulusLength}`
      : type === 'ec'
        ? `EC ${details.namedCurve}`
        : String(type);
  throw refuse(
    'AMBIT_ERR_CA_WEAK_KEY',
    `the request's key (${what}) is not accepted: use ECDSA P-256 or RSA of at least 2048 bits`,
    {
      key: what,
    },
  );
}

/** Validates a PEM CSR against the signing policy. Refusals carry AMBIT_ERR_CA_* codes and change nothing. */
export async function validateCsr(pem: string, trustDomain: string): Promise<ValidatedCsr> {
  const csr = parseCsr(pem);
  const spki = csr.publicKey.rawData;
  const { publicKey, keyType } = checkKey(spki);
  let signatureOk = false;
  try {
    signatureOk = await csr.verify();
  } catch {
    signatureOk = false;
  }
  if (!signatureOk) {
    throw refuse(
      'AMBIT_ERR_CA_BAD_CSR_SIGNATURE',
      "the request's signature does not match its public key: it was altered or signed with another key",
    );
  }
  const san = sanOf(csr.extensions);
  if (san.uris.length === 0) {
    throw refuse(
      'AMBIT_ERR_CA_NO_URI_SAN',
      `the request has no URI SAN${san.dns.length > 0 ? ` (only DNS: ${san.dns.join(', ')})` : ''}: put the SPIFFE ID in a URI SAN`,
      { dns: san.dns },
    );
  }
  if (san.uris.length > 1) {
    throw refuse(
      'AMBIT_ERR_CA_MULTIPLE_URI_SANS',
      `the request has ${san.uris.length} URI SANs (${san.uris.join(', ')}): exactly one is allowed`,
      {
        uris: san.uris,
      },
    );
  }
  const uri = san.uris[0]!;
  let identity: ParsedSpiffeId;
  try {
    identity = parseSpiffeId(uri);
  } catch (err) {
    throw new AmbitError(
      'AMBIT_ERR_CA_NOT_SPIFFE',
      `the request's URI SAN ${JSON.stringify(uri)} is not a valid SPIFFE ID`,
      {
        cause: err,
        detail: { uri },
      },
    );
  }
  if (identity.trustDomain !== trustDomain) {
    throw refuse(
      'AMBIT_ERR_CA_FOREIGN_TRUST_DOMAIN',
      `the request names ${uri}, outside this CA's trust domain "${trustDomain}"`,
      { uri, trustDomain },
    );
  }
  if (san.dns.length > 0 || san.ips.length > 0 || san.other > 0) {
    throw refuse(
      'AMBIT_ERR_CA_UNEXPECTED_SAN',
      'the request carries SANs besides its SPIFFE ID: a mesh certificate carries only the URI SAN',
      {
        dns: san.dns,
        ips: san.ips,
      },
    );
  }
  return { identity, spki, publicKey, keyType };
}
