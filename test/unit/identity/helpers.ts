// Shared fixtures for identity tests: CAs, key pairs and hand-made CSRs (including malformed ones).

import {
  type CaMaterial,
  CertificateAuthority,
  createIntermediateCa,
  createRootCa,
} from '../../../src/control/ca/index.ts';
import { ECDSA_P256, generateKeyPair, pemText, type SpiffeId, x509 } from '../../../src/identity/index.ts';

export const TD = 'cluster.local';
export const WEB = 'spiffe://cluster.local/ns/default/sa/web' as SpiffeId;

let cachedRoot: Promise<CaMaterial> | undefined;
/** One root per test process: key generation is the slow part. */
export function sharedRoot(): Promise<CaMaterial> {
  cachedRoot ??= createRootCa({ trustDomain: TD });
  return cachedRoot;
}

export async function newCa(
  options: { material?: CaMaterial; now?: () => number; policy?: Record<string, number> } = {},
): Promise<CertificateAuthority> {
  return CertificateAuthority.create({
    material: options.material ?? (await sharedRoot()),
    policy: { trustDomain: TD, minTtlSeconds: 1, ...options.policy },
    now: options.now,
  });
}

export async function newIntermediateCa(): Promise<{ root: CaMaterial; ca: CertificateAuthority }> {
  const root = await sharedRoot();
  const inter = await createIntermediateCa(root, { trustDomain: TD });
  return { root, ca: await newCa({ material: inter }) };
}

type San = { type: 'url' | 'dns' | 'ip'; value: string };

/** A CSR with exactly the given SANs, signed by `keys` (a fresh P-256 pair by default). */
export async function csrWith(
  sans: San[],
  keys?: CryptoKeyPair,
  algorithm: Algorithm = ECDSA_P256,
): Promise<string> {
  const pair = keys ?? (await generateKeyPair()).keys;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: pair,
    signingAlgorithm: algorithm,
    extensions: sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans, true)] : [],
  });
  return pemText(csr.toString('pem'));
}

export async function rsaKeys(bits: number): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(
    {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: bits,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    },
    true,
    ['sign', 'verify'],
  )) as CryptoKeyPair;
}

/** The same CSR with one byte of its signature changed: still parses, no longer verifies. */
export function tamperSignature(pem: string): string {
  const der = Buffer.from(x509.PemConverter.decode(pem)[0]!);
  der[der.length - 1] = der[der.length - 1]! ^ 0x01;
  return pemText(x509.PemConverter.encode(der, 'CERTIFICATE REQUEST'));
}
