// The CA's fast leaf path against the reference: every leaf it issues must carry exactly the TBSCertificate that
// @peculiar/x509's generator builds from the same inputs (the CA's original, slow implementation), and the CSR
// checks it makes once must still refuse what they refused and accept what they accepted.

import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import {
  type CaMaterial,
  type CertificateAuthority,
  createIntermediateCa,
  createRootCa,
  type IssuedCertificate,
  type LeafUsage,
} from '../../../src/control/ca/index.ts';
import { hasCode } from '../../../src/errors/index.ts';
import { generateKeyPair, importPrivateKeyPem, subjectAltNames, x509 } from '../../../src/identity/index.ts';
import { csrWith, newCa, rsaKeys, sharedRoot, TD, tamperSignature, WEB } from './helpers.ts';

const code = (c: string) => (err: unknown) => hasCode(err, c);

/** What the CA signs, as received: the TBSCertificate bytes. */
function tbsOf(pem: string): Buffer {
  const raw = AsnConvert.parse(x509.PemConverter.decodeFirst(pem), Certificate).tbsCertificateRaw;
  assert.ok(raw, 'the certificate parses and has a TBSCertificate');
  return Buffer.from(raw);
}

/** The leaf @peculiar/x509 builds for the same request, serial and validity: the CA's reference output. */
async function referenceLeaf(
  material: CaMaterial,
  csrPem: string,
  issued: IssuedCertificate,
  usage: LeafUsage,
): Promise<string> {
  const ca = new x509.X509Certificate(material.certPem);
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  const signer = await importPrivateKeyPem(material.keyPem);
  const rsa = csr.publicKey.algorithm.name !== 'ECDSA';
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: issued.serial,
    subject: '',
    issuer: ca.subjectName,
    publicKey: csr.publicKey.rawData,
    signingKey: signer.key,
    signingAlgorithm: signer.algorithm,
    notBefore: issued.notBefore,
    notAfter: issued.notAfter,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | (rsa ? x509.KeyUsageFlags.keyEncipherment : 0),
        true,
      ),
      new x509.ExtendedKeyUsageExtension(
        [
          ...(usage !== 'client' ? [x509.ExtendedKeyUsage.serverAuth] : []),
          ...(usage !== 'server' ? [x509.ExtendedKeyUsage.clientAuth] : []),
        ],
        false,
      ),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: issued.id }], true),
      await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey),
    ],
  });
  return cert.toString('pem');
}

async function assertMatchesReference(
  material: CaMaterial,
  ca: CertificateAuthority,
  csrPem: string,
  usage: LeafUsage,
): Promise<IssuedCertificate> {
  const issued = await ca.sign(csrPem, { usage });
  assert.deepEqual(tbsOf(issued.certPem), tbsOf(await referenceLeaf(material, csrPem, issued, usage)));
  const leaf = new X509Certificate(issued.certPem);
  const signing = new X509Certificate(material.certPem);
  assert.equal(leaf.checkIssued(signing), true);
  assert.equal(leaf.verify(signing.publicKey), true);
  return issued;
}

describe('CA leaf encoding', () => {
  it('builds the same TBSCertificate as @peculiar/x509 for every usage, under a root', async () => {
    const material = await sharedRoot();
    const ca = await newCa({ material });
    const csr = await csrWith([{ type: 'url', value: WEB }]);
    for (const usage of ['workload', 'client', 'server'] as const) {
      await assertMatchesReference(material, ca, csr, usage);
    }
  });

  it('builds the same TBSCertificate under an intermediate, and for an RSA key (keyEncipherment)', async () => {
    const material = await createIntermediateCa(await sharedRoot(), { trustDomain: TD });
    const ca = await newCa({ material });
    await assertMatchesReference(material, ca, await csrWith([{ type: 'url', value: WEB }]), 'workload');
    const rsa = await csrWith([{ type: 'url', value: WEB }], await rsaKeys(2048), {
      name: 'RSASSA-PKCS1-v1_5',
    });
    await assertMatchesReference(material, ca, rsa, 'workload');
  });

  it('signs under P-384 and RSA CAs with the hash their keys call for', async () => {
    const kinds: Array<[EcKeyGenParams | RsaHashedKeyGenParams, Algorithm]> = [
      [{ name: 'ECDSA', namedCurve: 'P-384' }, { name: 'ECDSA', hash: 'SHA-384' } as Algorithm],
      [
        {
          name: 'RSASSA-PKCS1-v1_5',
          modulusLength: 2048,
          publicExponent: new Uint8Array([1, 0, 1]),
          hash: 'SHA-256',
        },
        { name: 'RSASSA-PKCS1-v1_5' },
      ],
    ];
    for (const [params, signingAlgorithm] of kinds) {
      const keys = (await crypto.subtle.generateKey(params, true, ['sign', 'verify'])) as CryptoKeyPair;
      const cert = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: '01',
        name: 'CN=Plug-in Root',
        keys,
        signingAlgorithm,
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 3600_000),
        extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
      });
      const pkcs8 = await crypto.subtle.exportKey('pkcs8', keys.privateKey);
      const material = {
        certPem: `${cert.toString('pem')}\n`,
        keyPem: `${x509.PemConverter.encode(pkcs8, 'PRIVATE KEY')}\n`,
      };
      const ca = await newCa({ material });
      await assertMatchesReference(material, ca, await csrWith([{ type: 'url', value: WEB }]), 'workload');
    }
  });

  it('writes GeneralizedTime for times from 2050 on, as RFC 5280 asks', async () => {
    const now = Date.UTC(2049, 11, 31, 23, 30);
    const material = await createRootCa({ trustDomain: TD, now: new Date(now) });
    const ca = await newCa({ material, now: () => now, policy: { backdateSeconds: 0 } });
    const issued = await assertMatchesReference(
      material,
      ca,
      await csrWith([{ type: 'url', value: WEB }]),
      'workload',
    );
    assert.equal(issued.notAfter.toISOString(), '2050-01-01T23:30:00.000Z');
    assert.equal(new X509Certificate(issued.certPem).validToDate.getTime(), issued.notAfter.getTime());
  });

  it('gives each lifetime its own validity, even within one second', async () => {
    const now = Date.UTC(2030, 0, 1);
    const material = await createRootCa({ trustDomain: TD, now: new Date(now) });
    const ca = await newCa({ material, now: () => now, policy: { backdateSeconds: 0 } });
    const csr = await csrWith([{ type: 'url', value: WEB }]);
    for (const ttl of [600, 1200, 600, 3600]) {
      const leaf = new X509Certificate((await ca.sign(csr, { ttlSeconds: ttl })).certPem);
      assert.equal((leaf.validToDate.getTime() - leaf.validFromDate.getTime()) / 1000, ttl);
    }
  });

  it('issues positive 16-octet serials, distinct across many blocks of random bytes', async () => {
    const ca = await newCa();
    const csr = await csrWith([{ type: 'url', value: WEB }]);
    const serials = new Set<string>();
    for (let i = 0; i < 600; i++) {
      const issued = await ca.sign(csr);
      assert.match(issued.serial, /^[4-7][0-9a-f]{31}$/);
      serials.add(issued.serial);
    }
    assert.equal(serials.size, 600);
  });

  it('keeps the PEM layout: 64 characters a line, ending in a newline', async () => {
    const ca = await newCa();
    const issued = await ca.sign(await csrWith([{ type: 'url', value: WEB }]));
    const der = x509.PemConverter.decodeFirst(issued.certPem);
    assert.equal(issued.certPem, `${x509.PemConverter.encode(der, 'CERTIFICATE')}\n`);
  });
});

describe('CA request checks', () => {
  it('accepts a P-256 request signed with ECDSA SHA-384', async () => {
    const ca = await newCa();
    const csr = await csrWith([{ type: 'url', value: WEB }], undefined, {
      name: 'ECDSA',
      hash: 'SHA-384',
    } as Algorithm);
    assert.equal((await ca.sign(csr)).id, WEB);
  });

  it('accepts a request with a subject name, and still issues an empty subject', async () => {
    const material = await sharedRoot();
    const ca = await newCa({ material });
    const pair = await generateKeyPair();
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=web, O=default',
      keys: pair.keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as Algorithm,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: WEB }], true)],
    });
    const issued = await assertMatchesReference(material, ca, csr.toString('pem'), 'workload');
    // Node reports an empty subject as no subject at all.
    assert.equal(new X509Certificate(issued.certPem).subject, undefined);
  });

  it('checks an RSA-PSS request through the complete path, and refuses it when altered', async () => {
    const ca = await newCa();
    const keys = (await crypto.subtle.generateKey(
      { name: 'RSA-PSS', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
      true,
      ['sign', 'verify'],
    )) as CryptoKeyPair;
    const csr = await csrWith([{ type: 'url', value: WEB }], keys, {
      name: 'RSA-PSS',
      saltLength: 32,
    } as Algorithm);
    assert.equal((await ca.sign(csr)).id, WEB);
    await assert.rejects(ca.sign(tamperSignature(csr)), code('AMBIT_ERR_CA_BAD_CSR_SIGNATURE'));
  });

  it('names the IP addresses it refuses beside the SPIFFE ID', async () => {
    const ca = await newCa();
    const csr = await csrWith([
      { type: 'url', value: WEB },
      { type: 'ip', value: '198.18.2.3' },
    ]);
    await assert.rejects(ca.sign(csr), (err: unknown) => {
      assert.ok(hasCode(err, 'AMBIT_ERR_CA_UNEXPECTED_SAN'));
      assert.deepEqual(err.detail, { dns: [], ips: ['198.18.2.3'] });
      return true;
    });
  });

  it('refuses a request whose signature was made by another key', async () => {
    const ca = await newCa();
    const mine = await csrWith([{ type: 'url', value: WEB }]);
    const theirs = await csrWith([{ type: 'url', value: WEB }]);
    // Swap in the other request's signature: both parse, neither signature fits the other's key.
    const a = AsnConvert.parse(x509.PemConverter.decodeFirst(mine), CertificationRequest);
    const b = AsnConvert.parse(x509.PemConverter.decodeFirst(theirs), CertificationRequest);
    a.signature = b.signature;
    const swapped = x509.PemConverter.encode(AsnConvert.serialize(a), 'CERTIFICATE REQUEST');
    await assert.rejects(ca.sign(swapped), code('AMBIT_ERR_CA_BAD_CSR_SIGNATURE'));
  });

  it('refuses a request whose extensions are not DER, with AMBIT_ERR_CA_BAD_CSR', async () => {
    const ca = await newCa();
    const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ]);
    // A SAN extension whose value is not a GeneralNames SEQUENCE, correctly signed.
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      keys: pair as CryptoKeyPair,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as Algorithm,
      extensions: [new x509.Extension('2.5.29.17', true, new Uint8Array([0x04, 0x01, 0x00]))],
    });
    await assert.rejects(ca.sign(csr.toString('pem')), code('AMBIT_ERR_CA_BAD_CSR'));
  });

  it('hands back the key it checked, matching the issued leaf', async () => {
    const ca = await newCa();
    const pair = await generateKeyPair();
    const csr = await csrWith([{ type: 'url', value: WEB }], pair.keys);
    const validated = await ca.validate(csr);
    const issued = await ca.issue(validated);
    const leaf = new X509Certificate(issued.certPem);
    assert.equal(leaf.checkPrivateKey(createPrivateKey(pair.privateKeyPem)), true);
    assert.equal(
      Buffer.from(validated.spki).equals(leaf.publicKey.export({ format: 'der', type: 'spki' })),
      true,
    );
    assert.deepEqual(subjectAltNames(leaf).uris, [WEB]);
  });
});
