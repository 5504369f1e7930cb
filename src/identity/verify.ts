// Chain verification against a trust bundle (several roots, so a root can be rotated without a failed
// handshake) and the mesh's peer checks: the client expects given identities, the server a trust domain.

import type { X509Certificate } from 'node:crypto';
import { AmbitError } from '../errors/index.ts';
import { parseChain, splitPem, subjectAltNames } from './certs.ts';
import { IDENTITY_ERRORS } from './errors.ts';
import { parseSpiffeId, type SpiffeId, SYSTEM_NAMESPACE } from './spiffe.ts';

/** The roots a proxy trusts. Immutable: `with` and `without` return a new bundle. */
export class TrustBundle {
  readonly roots: readonly X509Certificate[];

  constructor(roots: string | ReadonlyArray<string | Buffer | X509Certificate>) {
    const parsed = parseChain(roots);
    if (parsed.length === 0) {
      throw new AmbitError(
        IDENTITY_ERRORS.EMPTY_BUNDLE,
        'the trust bundle holds no certificate: give at least one root in PEM',
      );
    }
    for (const root of parsed) {
      if (!root.ca) {
        throw new AmbitError(
          IDENTITY_ERRORS.BAD_ROOT,
          `certificate "${root.subject}" (serial ${root.serialNumber}) is not a CA and cannot be a trust root`,
        );
      }
    }
    // Deduplicate by fingerprint so adding a root twice is harmless.
    const seen = new Set<string>();
    this.roots = parsed.filter((r) => !seen.has(r.fingerprint256) && seen.add(r.fingerprint256));
  }

  /** PEM of every root, concatenated: the `ca` option of Node's `tls`, or an OpenSSL CAfile. */
  toPem(): string {
    return this.roots.map((r) => r.toString()).join('');
  }

  with(root: string | X509Certificate): TrustBundle {
    return new TrustBundle([...this.roots, ...(typeof root === 'string' ? splitPem(root) : [root])]);
  }

  without(root: string | X509Certificate): TrustBundle {
    const gone = new Set(parseChain(typeof root === 'string' ? root : [root]).map((r) => r.fingerprint256));
    return new TrustBundle(this.roots.filter((r) => !gone.has(r.fingerprint256)));
  }

  has(cert: X509Certificate): boolean {
    return this.roots.some((r) => r.fingerprint256 === cert.fingerprint256);
  }
}

/** One revoked certificate, named as X.509 names it: its issuer's distinguished name and its serial. */
export interface RevokedCertificate {
  /** The issuer as Node's X509Certificate.issuer spells it. */
  issuer: string;
  /** Hex, either case, leading zeros optional. */
  serial: string;
  /** When the certificate expires: after that the entry is dropped, as expiry refuses it anyway. */
  notAfter: string;
}

/**
 * Certificates refused although they chain to the bundle (their node was revoked). Keyed by (issuer,
 * serial), which RFC 5280 makes unique per certificate; checked in every handshake with a set lookup.
 */
export class RevocationList {
  static readonly EMPTY = new RevocationList([]);
  readonly entries: readonly RevokedCertificate[];
  private readonly keys: ReadonlySet<string>;

  constructor(entries: readonly RevokedCertificate[]) {
    this.entries = entries;
    this.keys = new Set(entries.map((e) => revocationKey(e.issuer, e.serial)));
  }

  get size(): number {
    return this.keys.size;
  }

  has(cert: X509Certificate): boolean {
    return this.keys.size > 0 && this.keys.has(revocationKey(cert.issuer, cert.serialNumber));
  }
}

/** What names one revoked certificate: its serial (any case, leading zeros dropped) and its issuer. */
export function revocationKey(issuer: string, serial: string): string {
  return `${serial.toUpperCase().replace(/^0+(?=.)/, '')}|${issuer}`;
}

export interface VerifiedIdentity {
  id: SpiffeId;
  trustDomain: string;
  leaf: X509Certificate;
  /** The bundle root that anchored the chain. */
  root: X509Certificate;
}

function checkValidity(cert: X509Certificate, now: Date): void {
  const detail = { serial: cert.serialNumber, subject: cert.subject };
  if (now < cert.validFromDate) {
    throw new AmbitError(
      IDENTITY_ERRORS.CERT_NOT_YET_VALID,
      `certificate ${cert.serialNumber} is not valid until ${cert.validFromDate.toISOString()}: check the clocks of both ends`,
      { detail },
    );
  }
  if (now > cert.validToDate) {
    throw new AmbitError(
      IDENTITY_ERRORS.CERT_EXPIRED,
      `certificate ${cert.serialNumber} expired at ${cert.validToDate.toISOString()}: it must be renewed`,
      { detail },
    );
  }
}

function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

/**
 * Verifies a chain (leaf first, then intermediates; a trailing root is allowed) against the bundle, checks every
 * certificate's validity at `now`, and returns the leaf's SPIFFE ID (its only URI SAN).
 */
export function verifyChain(
  chainInput: string | ReadonlyArray<string | Buffer | X509Certificate>,
  bundle: TrustBundle,
  options: { now?: Date; revoked?: RevocationList } = {},
): VerifiedIdentity {
  const now = options.now ?? new Date();
  const chain = parseChain(chainInput);
  const leaf = chain[0];
  if (leaf === undefined) {
    throw new AmbitError(IDENTITY_ERRORS.EMPTY_CHAIN, 'the peer presented no certificate');
  }
  if (leaf.ca) {
    throw new AmbitError(
      IDENTITY_ERRORS.LEAF_IS_CA,
      `certificate ${leaf.serialNumber} is a CA and cannot be a workload identity`,
    );
  }
  let root: X509Certificate | undefined;
  for (let i = 0; i < chain.length && root === undefined; i++) {
    const cert = chain[i]!;
    checkValidity(cert, now);
    if (bundle.has(cert) && i > 0) {
      root = cert;
      break;
    }
    root = bundle.roots.find((r) => signedBy(cert, r));
    if (root !== undefined) {
      checkValidity(root, now);
      break;
    }
    const next = chain[i + 1];
    if (next === undefined) break;
    if (!next.ca || !signedBy(cert, next)) {
      throw new AmbitError(
        IDENTITY_ERRORS.BAD_CHAIN,
        `certificate ${cert.serialNumber} is not signed by the next certificate in the chain ("${next.subject}"): send the chain leaf first, in issuing order`,
      );
    }
  }
  if (root === undefined) {
    throw new AmbitError(
      IDENTITY_ERRORS.UNTRUSTED_ROOT,
      `certificate ${leaf.serialNumber} does not chain to any root in the trust bundle: it was issued by another CA (issuer "${chain.at(-1)!.issuer}")`,
      { detail: { serial: leaf.serialNumber, issuer: chain.at(-1)!.issuer } },
    );
  }
  const revoked = options.revoked?.size ? chain.find((c) => options.revoked!.has(c)) : undefined;
  if (revoked !== undefined) {
    throw new AmbitError(
      IDENTITY_ERRORS.CERT_REVOKED,
      `certificate ${revoked.serialNumber} (issuer "${revoked.issuer}") was revoked: the node it was issued to lost its credential`,
      { detail: { serial: revoked.serialNumber, issuer: revoked.issuer } },
    );
  }
  const id = spiffeIdOf(leaf);
  return { id, trustDomain: parseSpiffeId(id).trustDomain, leaf, root };
}

/** The SPIFFE ID of a leaf: its one and only URI SAN. Throws AMBIT_ERR_IDENTITY_NO_SPIFFE_ID otherwise. */
export function spiffeIdOf(leaf: X509Certificate): SpiffeId {
  const { uris } = subjectAltNames(leaf);
  if (uris.length !== 1) {
    throw new AmbitError(
      IDENTITY_ERRORS.NO_SPIFFE_ID,
      `certificate ${leaf.serialNumber} carries ${uris.length} URI SANs; a mesh identity has exactly one spiffe:// URI SAN`,
    );
  }
  try {
    return parseSpiffeId(uris[0]!).id;
  } catch (err) {
    throw new AmbitError(
      IDENTITY_ERRORS.NO_SPIFFE_ID,
      `certificate ${leaf.serialNumber} has a URI SAN that is not a SPIFFE ID`,
      {
        cause: err,
      },
    );
  }
}

/** Client side: the server must present one of the identities the destination may present. */
export function checkExpectedPeer(verified: VerifiedIdentity, expected: readonly SpiffeId[]): void {
  if (!expected.includes(verified.id)) {
    throw new AmbitError(
      IDENTITY_ERRORS.UNEXPECTED_PEER,
      `peer presented ${verified.id}, expected ${expected.length === 1 ? expected[0] : `one of ${expected.join(', ')}`}`,
      { detail: { actual: verified.id, expected } },
    );
  }
}

/** Server side: the client must belong to our trust domain; who may connect is then up to policy. */
export function checkTrustDomain(verified: VerifiedIdentity, trustDomain: string): void {
  if (verified.trustDomain !== trustDomain) {
    throw new AmbitError(
      IDENTITY_ERRORS.FOREIGN_TRUST_DOMAIN,
      `peer ${verified.id} is from trust domain "${verified.trustDomain}", not "${trustDomain}"`,
      { detail: { actual: verified.trustDomain, expected: trustDomain } },
    );
  }
}

/** Extended key usages (RFC 5280 §4.2.1.12) a workload certificate carries: it is both ends of mTLS. */
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/**
 * Data path: the peer must be a workload. Its identity is `/ns/<ns>/sa/<sa>` outside `ambit-system`
 * (node credentials and the control plane's certificate live there and never carry traffic), and its
 * certificate has a workload certificate's usages: serverAuth and clientAuth. A node credential (client
 * only) or the control plane's serving certificate (server only) is refused even where its chain and
 * trust domain are fine. Key usage (digitalSignature) is OpenSSL's check, made in the handshake.
 */
export function checkWorkloadPeer(verified: VerifiedIdentity): void {
  const { namespace, serviceAccount } = parseSpiffeId(verified.id);
  if (namespace === undefined || serviceAccount === undefined || namespace === SYSTEM_NAMESPACE) {
    throw new AmbitError(
      IDENTITY_ERRORS.NOT_A_WORKLOAD,
      `peer ${verified.id} is not a workload identity (/ns/<namespace>/sa/<service-account> outside ${SYSTEM_NAMESPACE}): node and control-plane credentials never carry mesh traffic`,
      { detail: { actual: verified.id } },
    );
  }
  // Node names the extended key usages `keyUsage`; undefined when the extension is absent.
  const usages = verified.leaf.keyUsage ?? [];
  if (!usages.includes(SERVER_AUTH) || !usages.includes(CLIENT_AUTH)) {
    throw new AmbitError(
      IDENTITY_ERRORS.NOT_A_WORKLOAD,
      `certificate ${verified.leaf.serialNumber} of ${verified.id} lacks a workload certificate's usages (extended key usage serverAuth and clientAuth; it has ${usages.length ? usages.join(', ') : 'none'})`,
      { detail: { actual: verified.id, usages } },
    );
  }
}

/**
 * Verify the chain and then the expected identities (client side) or trust domain (server side), and with
 * `workload` that the peer is a workload (see checkWorkloadPeer): what both ends of HBONE ask.
 */
export function verifyPeer(
  chain: string | ReadonlyArray<string | Buffer | X509Certificate>,
  bundle: TrustBundle,
  expect: {
    identities?: readonly SpiffeId[];
    trustDomain?: string;
    workload?: boolean;
    now?: Date;
    revoked?: RevocationList;
  },
): VerifiedIdentity {
  const verified = verifyChain(chain, bundle, { now: expect.now, revoked: expect.revoked });
  if (expect.identities !== undefined) checkExpectedPeer(verified, expect.identities);
  if (expect.trustDomain !== undefined) checkTrustDomain(verified, expect.trustDomain);
  if (expect.workload) checkWorkloadPeer(verified);
  return verified;
}
