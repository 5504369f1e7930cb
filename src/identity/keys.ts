// Workload keys and certificate signing requests: ECDSA P-256 keys made with WebCrypto, PEM in and out,
// and a CSR whose only subject alternative name is the workload's SPIFFE ID (as ztunnel sends to istiod).

import { createPrivateKey } from 'node:crypto';
import { AmbitError } from '../errors/index.ts';
import { IDENTITY_ERRORS } from './errors.ts';
import type { SpiffeId } from './spiffe.ts';
import { subtle, x509 } from './x509.ts';

export const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface KeyPair {
  keys: CryptoKeyPair;
  /** PKCS#8 PEM of the private key, as Node's `tls` and OpenSSL read it. */
  privateKeyPem: string;
}

/** A fresh, extractable ECDSA P-256 key pair. */
export async function generateKeyPair(): Promise<KeyPair> {
  const keys = (await subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  return { keys, privateKeyPem: await exportPrivateKeyPem(keys.privateKey) };
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = await subtle.exportKey('pkcs8', key);
  return `${x509.PemConverter.encode(der, 'PRIVATE KEY')}\n`;
}

/** The WebCrypto signing algorithm that fits a private key (ECDSA P-256/P-384 or RSA PKCS#1 v1.5). */
export function signingAlgorithmFor(pem: string): RsaHashedImportParams | EcKeyImportParams {
  const key = createPrivateKey(pem);
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1')
      return { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as EcKeyImportParams;
    if (curve === 'secp384r1')
      return { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' } as EcKeyImportParams;
  }
  if (type === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048) {
    return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  }
  throw new AmbitError(
    IDENTITY_ERRORS.UNSUPPORTED_KEY,
    `unsupported private key (${type ?? 'unknown'} ${key.asymmetricKeyDetails?.namedCurve ?? key.asymmetricKeyDetails?.modulusLength ?? ''}): use ECDSA P-256, P-384 or RSA of at least 2048 bits`,
  );
}

/** Reads a PEM private key (PKCS#8, SEC1 or PKCS#1) into a WebCrypto signing key. */
export async function importPrivateKeyPem(pem: string): Promise<{ key: CryptoKey; algorithm: Algorithm }> {
  let pkcs8: Buffer;
  let algorithm: RsaHashedImportParams | EcKeyImportParams;
  try {
    algorithm = signingAlgorithmFor(pem);
    pkcs8 = createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' });
  } catch (err) {
    if (err instanceof AmbitError) throw err;
    throw new AmbitError(IDENTITY_ERRORS.BAD_KEY, 'cannot read the private key: expected a PEM private key', {
      cause: err,
    });
  }
  const key = (await subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign'])) as unknown as CryptoKey;
  return { key, algorithm };
}

/** A PEM CSR for `id`, signed with the pair's private key, carrying `id` as its only URI SAN. */
export async function createCsr(id: SpiffeId, keys: CryptoKeyPair): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: ECDSA_P256,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: id }], true)],
  });
  return `${csr.toString('pem')}\n`;
}
