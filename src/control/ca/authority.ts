// The certificate authority: it holds the signing CA (generated root, intermediate, or the operator's
// plug-in CA), the trust bundle (several roots during rotation), and issues leaf certificates by policy.

import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { AmbitError } from '../../errors/index.ts';
import { type SpiffeId, splitPem, TrustBundle, validateTrustDomain } from '../../identity/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';
import { spkiElementOf, type ValidatedCsr, validateCsr } from './csr.ts';
import { pemOf } from './der.ts';
import { LeafSigner, type LeafUsage } from './leaf.ts';
import type { CaMaterial } from './root.ts';
import { SerialSource } from './serial.ts';

export interface SigningPolicy {
  trustDomain: string;
  /** Lifetime when the request names none (24 h, as Istio's). */
  defaultTtlSeconds: number;
  minTtlSeconds: number;
  /** Istio's maximum is 90 days. */
  maxTtlSeconds: number;
  /** notBefore is set this far in the past, to tolerate clock skew between nodes. */
  backdateSeconds: number;
}

export const DEFAULT_POLICY: Omit<SigningPolicy, 'trustDomain'> = {
  defaultTtlSeconds: 24 * 3600,
  minTtlSeconds: 60,
  maxTtlSeconds: 90 * 24 * 3600,
  backdateSeconds: 60,
};

export type { LeafUsage } from './leaf.ts';

export interface IssuedCertificate {
  id: SpiffeId;
  certPem: string;
  /** Leaf first, then the issuing chain up to and including the root. */
  chain: string[];
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

interface Signer {
  cert: X509Certificate;
  /** Issues leaves under `cert`, with everything per-CA already encoded. */
  leaves: LeafSigner;
  /** Certificates above the leaf: the signing CA first, the root last. */
  chain: string[];
  root: X509Certificate;
}

function caError(code: string, message: string, cause?: unknown): AmbitError {
  return new AmbitError(code, message, cause === undefined ? undefined : { cause });
}

function sameKey(a: KeyObject, b: KeyObject): boolean {
  return a.export({ format: 'der', type: 'spki' }).equals(b.export({ format: 'der', type: 'spki' }));
}

/** Checks a CA's files (key matches certificate, CA bit, chain signed up to a self-signed root) and loads them. */
async function loadSigner(material: CaMaterial, now: Date): Promise<Signer> {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(material.certPem);
  } catch (err) {
    throw caError(CONTROL_ERRORS.CA_BAD_MATERIAL, 'the CA certificate is not a PEM X.509 certificate', err);
  }
  if (!cert.ca) {
    throw caError(
      CONTROL_ERRORS.CA_BAD_MATERIAL,
      `certificate "${cert.subject}" is not a CA (basicConstraints CA:FALSE)`,
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(material.keyPem);
  } catch (err) {
    throw caError(CONTROL_ERRORS.CA_BAD_MATERIAL, 'the CA key is not a PEM private key', err);
  }
  if (!sameKey(createPublicKey(privateKey), cert.publicKey)) {
    throw caError(
      CONTROL_ERRORS.CA_KEY_MISMATCH,
      `the CA key does not belong to certificate "${cert.subject}": check you paired the right files`,
    );
  }
  if (now > cert.validToDate || now < cert.validFromDate) {
    throw caError(
      CONTROL_ERRORS.CA_EXPIRED,
      `the CA certificate "${cert.subject}" is valid only from ${cert.validFromDate.toISOString()} to ${cert.validToDate.toISOString()}`,
    );
  }
  const chainPems = splitPem(material.chainPem ?? '');
  const chainCerts = chainPems.map((p) => new X509Certificate(p));
  if (chainCerts[0]?.fingerprint256 === cert.fingerprint256) {
    chainCerts.shift();
    chainPems.shift();
  }
  const full = [cert, ...chainCerts];
  for (let i = 0; i + 1 < full.length; i++) {
    const child = full[i]!;
    const parent = full[i + 1]!;
    if (!parent.ca || !child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      throw caError(
        CONTROL_ERRORS.CA_BAD_CHAIN,
        `the CA chain is broken: "${child.subject}" is not signed by "${parent.subject}"; list it from the CA certificate up to the root`,
      );
    }
  }
  const root = full.at(-1)!;
  if (!root.checkIssued(root) || !root.verify(root.publicKey)) {
    throw caError(
      CONTROL_ERRORS.CA_BAD_CHAIN,
      `the CA chain ends at "${root.subject}", which is not a self-signed root: add the root certificate to the chain`,
    );
  }
  return {
    cert,
    leaves: await LeafSigner.create(cert, material.keyPem),
    chain: [cert.toString(), ...chainCerts.map((c) => c.toString())],
    root,
  };
}

export interface AuthorityOptions {
  material: CaMaterial;
  policy: Partial<SigningPolicy> & { trustDomain: string };
  /** Roots trusted besides the signing root (e.g. the next or previous root during rotation). */
  extraRoots?: string[];
  now?: () => number;
}

export class CertificateAuthority {
  readonly policy: SigningPolicy;
  private signer: Signer;
  private trust: TrustBundle;
  private readonly serials = new SerialSource();
  private readonly now: () => number;

  private constructor(policy: SigningPolicy, signer: Signer, trust: TrustBundle, now: () => number) {
    this.policy = policy;
    this.signer = signer;
    this.trust = trust;
    this.now = now;
  }

  static async create(options: AuthorityOptions): Promise<CertificateAuthority> {
    const policy = { ...DEFAULT_POLICY, ...options.policy };
    validateTrustDomain(policy.trustDomain);
    if (!(policy.minTtlSeconds > 0 && policy.minTtlSeconds <= policy.maxTtlSeconds)) {
      throw caError(
        CONTROL_ERRORS.CA_BAD_POLICY,
        `minimum lifetime ${policy.minTtlSeconds}s must be positive and at most the maximum ${policy.maxTtlSeconds}s`,
      );
    }
    const now = options.now ?? Date.now;
    const signer = await loadSigner(options.material, new Date(now()));
    const trust = new TrustBundle([signer.root, ...(options.extraRoots ?? []).flatMap((p) => splitPem(p))]);
    return new CertificateAuthority(policy, signer, trust, now);
  }

  get trustDomain(): string {
    return this.policy.trustDomain;
  }

  /** The roots every proxy must trust: the signing root plus any root being rotated in or out. */
  get bundle(): TrustBundle {
    return this.trust;
  }

  /** The certificate currently signing, and its root. */
  get signingCertificate(): X509Certificate {
    return this.signer.cert;
  }

  get signingRoot(): X509Certificate {
    return this.signer.root;
  }

  /** Root rotation step 1: trust a new root (before anything is signed under it). */
  addTrustedRoot(pem: string): void {
    this.trust = this.trust.with(pem);
  }

  /** Root rotation step 2: sign with new material; its root is trusted from now on, the old one still is. */
  async switchSigning(material: CaMaterial): Promise<void> {
    const signer = await loadSigner(material, new Date(this.now()));
    this.trust = this.trust.with(signer.root);
    this.signer = signer;
  }

  /** Root rotation step 3: stop trusting an old root. The signing root cannot be retired. */
  retireRoot(pem: string): void {
    const old = new X509Certificate(pem);
    if (old.fingerprint256 === this.signer.root.fingerprint256) {
      throw caError(
        CONTROL_ERRORS.CA_RETIRE_SIGNING_ROOT,
        'cannot retire the root that is still signing: switch signing to the new root first',
      );
    }
    this.trust = this.trust.without(old);
  }

  /** Validates a CSR against the policy (see csr.ts). */
  validate(csrPem: string): Promise<ValidatedCsr> {
    return validateCsr(csrPem, this.policy.trustDomain);
  }

  /** Validates and signs a CSR for any SPIFFE ID in the trust domain. Authorization is the caller's job. */
  async sign(
    csrPem: string,
    options: { ttlSeconds?: number; usage?: LeafUsage } = {},
  ): Promise<IssuedCertificate> {
    const csr = await this.validate(csrPem);
    return this.issue(csr, options);
  }

  /** Clamps a requested lifetime to the policy, and never past the signing CA's own expiry. */
  lifetime(requestedSeconds: number | undefined): number {
    const { minTtlSeconds, maxTtlSeconds, defaultTtlSeconds } = this.policy;
    const wanted =
      requestedSeconds === undefined || requestedSeconds <= 0 ? defaultTtlSeconds : requestedSeconds;
    return Math.min(maxTtlSeconds, Math.max(minTtlSeconds, wanted));
  }

  /** Issues a leaf for an already validated request. */
  async issue(
    csr: ValidatedCsr,
    options: { ttlSeconds?: number; usage?: LeafUsage } = {},
  ): Promise<IssuedCertificate> {
    const signer = this.signer;
    const nowMs = this.now();
    const notBefore = new Date(Math.floor(nowMs / 1000) * 1000 - this.policy.backdateSeconds * 1000);
    const notAfterMs = Math.min(
      nowMs + this.lifetime(options.ttlSeconds) * 1000,
      signer.cert.validToDate.getTime(),
    );
    const notAfter = new Date(Math.floor(notAfterMs / 1000) * 1000);
    const serial = this.serials.next();
    const der = signer.leaves.sign({
      serial,
      notBefore,
      notAfter,
      spki: spkiElementOf(csr),
      keyType: csr.keyType,
      id: csr.identity.id,
      usage: options.usage ?? 'workload',
    });
    const certPem = pemOf(der, 'CERTIFICATE');
    return { id: csr.identity.id, certPem, chain: [certPem, ...signer.chain], serial, notBefore, notAfter };
  }
}
