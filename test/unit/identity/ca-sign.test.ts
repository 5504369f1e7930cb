import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { CertificateAuthority, createIntermediateCa, createRootCa } from '../../../src/control/ca/index.ts';
import { hasCode } from '../../../src/errors/index.ts';
import {
  createCsr,
  generateKeyPair,
  subjectAltNames,
  verifyChain,
  workloadId,
  x509,
} from '../../../src/identity/index.ts';
import { csrWith, newCa, newIntermediateCa, rsaKeys, TD, tamperSignature, WEB } from './helpers.ts';

const code = (c: string) => (err: unknown) => hasCode(err, c);

describe('CA signing', () => {
  it('issues a leaf carrying only the SPIFFE URI SAN, with the right usages and no CA bit', async () => {
    const ca = await newCa();
    const pair = await generateKeyPair();
    const issued = await ca.sign(await createCsr(workloadId(TD, 'default', 'web'), pair.keys), {
      ttlSeconds: 3600,
    });
    const leaf = new X509Certificate(issued.certPem);
    assert.equal(issued.id, WEB);
    assert.deepEqual(subjectAltNames(leaf), { uris: [WEB], dns: [], ips: [], other: 0 });
    assert.equal(leaf.ca, false);
    assert.equal(
      leaf.checkPrivateKey(await import('node:crypto').then((c) => c.createPrivateKey(pair.privateKeyPem))),
      true,
    );
    const parsed = new x509.X509Certificate(issued.certPem);
    const ku = parsed.getExtension(x509.KeyUsagesExtension)!;
    assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature);
    const eku = parsed.getExtension(x509.ExtendedKeyUsageExtension)!;
    assert.deepEqual(
      [...eku.usages].sort(),
      [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth].sort(),
    );
    assert.equal(parsed.getExtension(x509.BasicConstraintsExtension)!.ca, false);
    assert.equal(verifyChain(issued.chain, ca.bundle).id, WEB);
  });

  it('returns the chain leaf first, through the intermediate, to the root', async () => {
    const { root, ca } = await newIntermediateCa();
    const issued = await ca.sign(await csrWith([{ type: 'url', value: WEB }]));
    const chain = issued.chain.map((p) => new X509Certificate(p));
    assert.equal(chain.length, 3);
    assert.equal(chain[0]!.checkIssued(chain[1]!), true);
    assert.equal(chain[1]!.checkIssued(chain[2]!), true);
    assert.equal(chain[2]!.fingerprint256, new X509Certificate(root.certPem).fingerprint256);
  });

  it('gives every certificate a unique serial', async () => {
    const ca = await newCa();
    const csr = await csrWith([{ type: 'url', value: WEB }]);
    const serials = new Set<string>();
    for (let i = 0; i < 50; i++) serials.add((await ca.sign(csr)).serial);
    assert.equal(serials.size, 50);
  });

  it('clamps the requested lifetime between the minimum and the maximum', async () => {
    const now = Date.UTC(2030, 0, 1);
    const ca = await newCa({
      now: () => now,
      material: await createRootCa({ trustDomain: TD, now: new Date(now) }),
      policy: { minTtlSeconds: 600, maxTtlSeconds: 7200, defaultTtlSeconds: 3600, backdateSeconds: 0 },
    });
    const csr = await csrWith([{ type: 'url', value: WEB }]);
    const life = async (ttl?: number) => {
      const c = await ca.sign(csr, { ttlSeconds: ttl });
      return (c.notAfter.getTime() - c.notBefore.getTime()) / 1000;
    };
    assert.equal(await life(5), 600);
    assert.equal(await life(1800), 1800);
    assert.equal(await life(10 ** 9), 7200);
    assert.equal(await life(undefined), 3600);
  });

  it('accepts RSA-2048 keys', async () => {
    const ca = await newCa();
    const rsa = await rsaKeys(2048);
    const issued = await ca.sign(
      await csrWith([{ type: 'url', value: WEB }], rsa, { name: 'RSASSA-PKCS1-v1_5' }),
    );
    assert.equal(issued.id, WEB);
  });

  describe('refuses, with a stable code, and changes nothing', () => {
    const refusals: Array<[string, () => Promise<string>, string]> = [
      [
        'a non-SPIFFE URI SAN',
        () => csrWith([{ type: 'url', value: 'https://web.default.svc' }]),
        'AMBIT_ERR_CA_NOT_SPIFFE',
      ],
      [
        'a foreign trust domain',
        () => csrWith([{ type: 'url', value: 'spiffe://evil.example/ns/default/sa/web' }]),
        'AMBIT_ERR_CA_FOREIGN_TRUST_DOMAIN',
      ],
      [
        'two URI SANs',
        () =>
          csrWith([
            { type: 'url', value: WEB },
            { type: 'url', value: 'spiffe://cluster.local/ns/default/sa/db' },
          ]),
        'AMBIT_ERR_CA_MULTIPLE_URI_SANS',
      ],
      [
        'only a DNS SAN',
        () => csrWith([{ type: 'dns', value: 'web.default.svc' }]),
        'AMBIT_ERR_CA_NO_URI_SAN',
      ],
      ['no SAN at all', () => csrWith([]), 'AMBIT_ERR_CA_NO_URI_SAN'],
      [
        'a DNS SAN beside the SPIFFE ID',
        () =>
          csrWith([
            { type: 'url', value: WEB },
            { type: 'dns', value: 'web.default.svc' },
          ]),
        'AMBIT_ERR_CA_UNEXPECTED_SAN',
      ],
      [
        'an RSA-1024 key',
        async () =>
          csrWith([{ type: 'url', value: WEB }], await rsaKeys(1024), { name: 'RSASSA-PKCS1-v1_5' }),
        'AMBIT_ERR_CA_WEAK_KEY',
      ],
      [
        'a P-384 key',
        async () =>
          csrWith(
            [{ type: 'url', value: WEB }],
            (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, [
              'sign',
              'verify',
            ])) as CryptoKeyPair,
            { name: 'ECDSA', hash: 'SHA-384' } as Algorithm,
          ),
        'AMBIT_ERR_CA_WEAK_KEY',
      ],
      [
        'a bad CSR signature',
        async () => tamperSignature(await csrWith([{ type: 'url', value: WEB }])),
        'AMBIT_ERR_CA_BAD_CSR_SIGNATURE',
      ],
      ['garbage instead of a CSR', async () => 'hello', 'AMBIT_ERR_CA_BAD_CSR'],
      [
        'a truncated CSR',
        async () =>
          '-----BEGIN CERTIFICATE REQUEST-----\nMIIBATCBqAIBADAA\n-----END CERTIFICATE REQUEST-----\n',
        'AMBIT_ERR_CA_BAD_CSR',
      ],
    ];
    for (const [what, make, expected] of refusals) {
      it(what, async () => {
        const ca = await newCa();
        const before = ca.bundle.toPem();
        await assert.rejects(ca.sign(await make()), code(expected));
        assert.equal(ca.bundle.toPem(), before);
        // The CA still signs a good request afterwards.
        assert.equal((await ca.sign(await csrWith([{ type: 'url', value: WEB }]))).id, WEB);
      });
    }
  });
});

describe('CA material', () => {
  it('refuses a key that does not belong to the certificate', async () => {
    const a = await createRootCa({ trustDomain: TD });
    const b = await createRootCa({ trustDomain: TD });
    await assert.rejects(
      CertificateAuthority.create({
        material: { certPem: a.certPem, keyPem: b.keyPem },
        policy: { trustDomain: TD },
      }),
      code('AMBIT_ERR_CA_KEY_MISMATCH'),
    );
  });

  it('refuses a chain that does not lead to a self-signed root', async () => {
    const inter = await createIntermediateCa(await createRootCa({ trustDomain: TD }), { trustDomain: TD });
    const other = await createRootCa({ trustDomain: TD });
    await assert.rejects(
      CertificateAuthority.create({
        material: { ...inter, chainPem: other.certPem },
        policy: { trustDomain: TD },
      }),
      code('AMBIT_ERR_CA_BAD_CHAIN'),
    );
    await assert.rejects(
      CertificateAuthority.create({
        material: { certPem: inter.certPem, keyPem: inter.keyPem },
        policy: { trustDomain: TD },
      }),
      code('AMBIT_ERR_CA_BAD_CHAIN'),
    );
  });

  it('refuses a leaf certificate as CA material', async () => {
    const ca = await newCa();
    const pair = await generateKeyPair();
    const leaf = await ca.sign(await createCsr(workloadId(TD, 'default', 'web'), pair.keys));
    await assert.rejects(
      CertificateAuthority.create({
        material: { certPem: leaf.certPem, keyPem: pair.privateKeyPem },
        policy: { trustDomain: TD },
      }),
      code('AMBIT_ERR_CA_BAD_MATERIAL'),
    );
  });
});
