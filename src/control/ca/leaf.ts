// Building and signing leaf certificates under one signing CA. Everything that is the same for every leaf
// (issuer name, signature algorithm, AKI, constraint and usage extensions) is encoded once, when the CA loads.

import { createPrivateKey, type KeyObject, sign, type X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { id_ce_subjectAltName } from '@peculiar/asn1-x509';
import * as asn1js from 'asn1js';
import { type SpiffeId, signingAlgorithmFor, x509 } from '../../identity/index.ts';
import { childrenOf, DerShapeError, decode, PreEncoded, rawOf } from './der.ts';

/** What a leaf certificate may be used for: workloads are both ends of mTLS; node credentials are clients. */
export type LeafUsage = 'workload' | 'client' | 'server';

export interface LeafRequest {
  /** Hex, positive (top bit clear), as SerialSource makes them. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** The subject's SubjectPublicKeyInfo, already encoded (see spkiElementOf in csr.ts). */
  spki: PreEncoded;
  keyType: 'ec' | 'rsa';
  id: SpiffeId;
  usage: LeafUsage;
}

const CONTEXT = 3;

function ekuFor(usage: LeafUsage): PreEncoded {
  const eku = [
    ...(usage !== 'client' ? [x509.ExtendedKeyUsage.serverAuth] : []),
    ...(usage !== 'server' ? [x509.ExtendedKeyUsage.clientAuth] : []),
  ];
  return PreEncoded.from(new x509.ExtendedKeyUsageExtension(eku, false).rawData);
}

function keyUsageFor(keyType: 'ec' | 'rsa'): PreEncoded {
  let flags = x509.KeyUsageFlags.digitalSignature;
  if (keyType === 'rsa') flags |= x509.KeyUsageFlags.keyEncipherment;
  return PreEncoded.from(new x509.KeyUsagesExtension(flags, true).rawData);
}

/** The critical URI SAN that carries the identity: the only name a mesh leaf has. */
function sanFor(id: SpiffeId): asn1js.Sequence {
  // GeneralName uniformResourceIdentifier is [6] IMPLICIT IA5String; SPIFFE IDs are ASCII (see spiffe.ts).
  const uri = new asn1js.Primitive({
    idBlock: { tagClass: CONTEXT, tagNumber: 6 },
    valueHex: Buffer.from(id, 'ascii'),
  });
  return new asn1js.Sequence({
    value: [
      new asn1js.ObjectIdentifier({ value: id_ce_subjectAltName }),
      new asn1js.Boolean({ value: true }),
      new asn1js.OctetString({ valueHex: new asn1js.Sequence({ value: [uri] }).toBER() }),
    ],
  });
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds. */
function timeOf(date: Date): asn1js.UTCTime | asn1js.GeneralizedTime {
  const valueDate = new Date(Math.floor(date.getTime() / 1000) * 1000);
  return valueDate.getUTCFullYear() > 2049
    ? new asn1js.GeneralizedTime({ valueDate })
    : new asn1js.UTCTime({ valueDate });
}

/** The subject Name of a CA certificate, as the exact bytes it carries (a leaf's issuer must match them). */
function subjectOf(caDer: Uint8Array): Uint8Array {
  const [tbs] = childrenOf(decode(caDer), 'the CA certificate', asn1js.Sequence, { min: 3, max: 3 });
  const fields = childrenOf(tbs, 'the CA TBSCertificate', asn1js.Sequence, { min: 6, max: 10 });
  // version is [0] EXPLICIT and optional; subject is the fifth field after it.
  const first = fields[0]!;
  const hasVersion = first.idBlock.tagClass === CONTEXT && first.idBlock.tagNumber === 0;
  const subject = fields[hasVersion ? 5 : 4];
  if (!(subject instanceof asn1js.Sequence)) throw new DerShapeError('the CA subject is not a Name');
  return rawOf(subject);
}

export class LeafSigner {
  private readonly key: KeyObject;
  /** node:crypto's name for the digest, e.g. sha256. */
  private readonly hash: string;
  private readonly version = PreEncoded.from(
    new asn1js.Constructed({
      idBlock: { tagClass: CONTEXT, tagNumber: 0 },
      value: [new asn1js.Integer({ value: 2 })],
    }).toBER(),
  );
  /** An empty subject, as Istio issues: the identity lives only in the critical URI SAN. */
  private readonly subject = PreEncoded.from(new asn1js.Sequence().toBER());
  private readonly algorithm: PreEncoded;
  private readonly issuer: PreEncoded;
  private readonly basicConstraints = PreEncoded.from(
    new x509.BasicConstraintsExtension(false, undefined, true).rawData,
  );
  private readonly aki: PreEncoded;
  private readonly keyUsage = { ec: keyUsageFor('ec'), rsa: keyUsageFor('rsa') };
  /** Leaves issued in the same second with the same lifetime share their Validity. */
  private validity: { notBefore: number; notAfter: number; element: PreEncoded } | undefined;
  private readonly eku = { workload: ekuFor('workload'), client: ekuFor('client'), server: ekuFor('server') };

  private constructor(
    key: KeyObject,
    hash: string,
    algorithm: ArrayBuffer,
    issuer: Uint8Array,
    aki: ArrayBuffer,
  ) {
    this.key = key;
    this.hash = hash;
    this.algorithm = PreEncoded.from(algorithm);
    this.issuer = PreEncoded.from(issuer);
    this.aki = PreEncoded.from(aki);
  }

  /**
   * Prepares signing under the CA certificate `ca` with its key. Throws AMBIT_ERR_IDENTITY_* when the key
   * is not one a CA may sign with (see signingAlgorithmFor).
   */
  static async create(ca: X509Certificate, keyPem: string): Promise<LeafSigner> {
    const caDer = new Uint8Array(ca.raw);
    const webAlgorithm = signingAlgorithmFor(keyPem);
    const hash = String((webAlgorithm as { hash: string }).hash).replace('SHA-', 'sha');
    const algorithm = AsnConvert.serialize(new x509.AlgorithmProvider().toAsnAlgorithm(webAlgorithm));
    const caPublicKey = new x509.X509Certificate(caDer).publicKey;
    const aki = (await x509.AuthorityKeyIdentifierExtension.create(caPublicKey)).rawData;
    return new LeafSigner(createPrivateKey(keyPem), hash, algorithm, subjectOf(caDer), aki);
  }

  private validityOf(notBefore: Date, notAfter: Date): PreEncoded {
    const from = Math.floor(notBefore.getTime() / 1000);
    const to = Math.floor(notAfter.getTime() / 1000);
    const cached = this.validity;
    if (cached?.notBefore === from && cached.notAfter === to) return cached.element;
    const sequence = new asn1js.Sequence({ value: [timeOf(notBefore), timeOf(notAfter)] });
    const element = PreEncoded.of(sequence, new Uint8Array(sequence.toBER()));
    this.validity = { notBefore: from, notAfter: to, element };
    return element;
  }

  /** The leaf's DER: the TBS certificate is encoded once, signed with node:crypto, and wrapped as is. */
  sign(request: LeafRequest): ArrayBuffer {
    const tbs = new asn1js.Sequence({
      value: [
        this.version,
        new asn1js.Integer({ valueHex: Buffer.from(request.serial, 'hex') }),
        this.algorithm,
        this.issuer,
        this.validityOf(request.notBefore, request.notAfter),
        this.subject,
        request.spki,
        new asn1js.Constructed({
          idBlock: { tagClass: CONTEXT, tagNumber: 3 },
          value: [
            new asn1js.Sequence({
              value: [
                this.basicConstraints,
                this.keyUsage[request.keyType],
                this.eku[request.usage],
                sanFor(request.id),
                this.aki,
              ],
            }),
          ],
        }),
      ],
    });
    const tbsDer = new Uint8Array(tbs.toBER());
    // ECDSA signatures go into X.509 as DER, which is node:crypto's default encoding.
    const signature = sign(this.hash, tbsDer, this.key);
    return new asn1js.Sequence({
      // toBER left the TBS's content length in its length block: the signed bytes go in unchanged.
      value: [PreEncoded.of(tbs, tbsDer), this.algorithm, new asn1js.BitString({ valueHex: signature })],
    }).toBER();
  }
}
