// Making CA certificates: a self-signed root and intermediates below it, ECDSA P-256 keys, CA constraints and
// key identifiers set the way OpenSSL and Go expect. Used on a control plane's first start and by `ambit ca`.

import { X509Certificate } from 'node:crypto';
import { generateKeyPair, importPrivateKeyPem, pemText, x509 } from '../../identity/index.ts';
import { SerialSource } from './serial.ts';

/** A CA's files: its certificate and key, and the chain above it up to and including the root. */
export interface CaMaterial {
  certPem: string;
  keyPem: string;
  /** PEM chain from this CA's certificate (optional first) up to the root. Empty or absent for a root. */
  chainPem?: string;
}

const serials = new SerialSource();
const YEAR = 365 * 24 * 3600;

export interface CreateCaOptions {
  trustDomain: string;
  commonName?: string;
  ttlSeconds?: number;
  now?: Date;
}

function caExtensions(pathLength: number | undefined): InstanceType<typeof x509.Extension>[] {
  return [
    new x509.BasicConstraintsExtension(true, pathLength, true),
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
      true,
    ),
  ];
}

/** A new self-signed root CA, valid for ten years unless told otherwise. */
export async function createRootCa(options: CreateCaOptions): Promise<CaMaterial> {
  const now = options.now ?? new Date();
  const pair = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serials.next(),
    name: [{ O: [options.trustDomain] }, { CN: [options.commonName ?? 'Ambit Root CA'] }],
    keys: pair.keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + (options.ttlSeconds ?? 10 * YEAR) * 1000),
    extensions: [
      ...caExtensions(undefined),
      await x509.SubjectKeyIdentifierExtension.create(pair.keys.publicKey),
    ],
  });
  return { certPem: pemText(cert.toString('pem')), keyPem: pair.privateKeyPem };
}

/** A new intermediate CA signed by `parent`, valid for one year unless told otherwise (never past its parent). */
export async function createIntermediateCa(
  parent: CaMaterial,
  options: CreateCaOptions,
): Promise<CaMaterial> {
  const now = options.now ?? new Date();
  const parentCert = new x509.X509Certificate(parent.certPem);
  const parentNode = new X509Certificate(parent.certPem);
  const signer = await importPrivateKeyPem(parent.keyPem);
  const pair = await generateKeyPair();
  const wanted = now.getTime() + (options.ttlSeconds ?? YEAR) * 1000;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serials.next(),
    subject: [{ O: [options.trustDomain] }, { CN: [options.commonName ?? 'Ambit Intermediate CA'] }],
    issuer: parentCert.subjectName,
    publicKey: pair.keys.publicKey,
    signingKey: signer.key,
    signingAlgorithm: signer.algorithm,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(Math.min(wanted, parentNode.validToDate.getTime())),
    extensions: [
      ...caExtensions(0),
      await x509.SubjectKeyIdentifierExtension.create(pair.keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(parentCert.publicKey),
    ],
  });
  const certPem = pemText(cert.toString('pem'));
  const parentChain = parent.chainPem && parent.chainPem.trim() !== '' ? parent.chainPem : parent.certPem;
  return {
    certPem,
    keyPem: pair.privateKeyPem,
    chainPem: certPem + normalizeChainAbove(parent.certPem, parentChain),
  };
}

/** The parent's chain always starting with the parent's own certificate. */
function normalizeChainAbove(parentPem: string, chainPem: string): string {
  const parent = new X509Certificate(parentPem);
  const first = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/);
  if (first && new X509Certificate(first[0]).fingerprint256 === parent.fingerprint256) return chainPem;
  return pemText(parentPem) + chainPem;
}
