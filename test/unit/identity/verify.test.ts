import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRootCa } from '../../../src/control/ca/index.ts';
import { hasCode } from '../../../src/errors/index.ts';
import {
  checkExpectedPeer,
  TrustBundle,
  verifyChain,
  verifyPeer,
  workloadId,
} from '../../../src/identity/index.ts';
import { csrWith, newCa, newIntermediateCa, sharedRoot, TD, WEB } from './helpers.ts';

const code = (c: string) => (err: unknown) => hasCode(err, c);
const DB = workloadId(TD, 'default', 'db');

describe('chain verification', () => {
  it('accepts a chain through an intermediate, with or without the root at the end', async () => {
    const { root, ca } = await newIntermediateCa();
    const issued = await ca.sign(await csrWith([{ type: 'url', value: WEB }]));
    const bundle = new TrustBundle(root.certPem);
    assert.equal(verifyChain(issued.chain, bundle).id, WEB);
    assert.equal(verifyChain(issued.chain.slice(0, 2), bundle).id, WEB);
    assert.equal(verifyChain(issued.chain.join(''), bundle).trustDomain, TD);
  });

  it('refuses a certificate from another root', async () => {
    const ca = await newCa();
    const issued = await ca.sign(await csrWith([{ type: 'url', value: WEB }]));
    const other = new TrustBundle((await createRootCa({ trustDomain: TD })).certPem);
    assert.throws(() => verifyChain(issued.chain, other), code('AMBIT_ERR_IDENTITY_UNTRUSTED_ROOT'));
    assert.throws(() => verifyChain([issued.certPem], other), code('AMBIT_ERR_IDENTITY_UNTRUSTED_ROOT'));
  });

  it('accepts either root of a bundle holding two (root rotation)', async () => {
    const oldCa = await newCa();
    const newRoot = await createRootCa({ trustDomain: TD });
    const newCaAuth = await newCa({ material: newRoot });
    const bundle = oldCa.bundle.with(newRoot.certPem);
    assert.equal(bundle.roots.length, 2);
    const a = await oldCa.sign(await csrWith([{ type: 'url', value: WEB }]));
    const b = await newCaAuth.sign(await csrWith([{ type: 'url', value: DB }]));
    assert.equal(verifyChain(a.chain, bundle).id, WEB);
    assert.equal(verifyChain(b.chain, bundle).id, DB);
    const retired = bundle.without((await sharedRoot()).certPem);
    assert.throws(() => verifyChain(a.chain, retired), code('AMBIT_ERR_IDENTITY_UNTRUSTED_ROOT'));
    assert.equal(verifyChain(b.chain, retired).id, DB);
  });

  it('refuses an expired and a not-yet-valid certificate', async () => {
    const ca = await newCa({ policy: { backdateSeconds: 0 } });
    const issued = await ca.sign(await csrWith([{ type: 'url', value: WEB }]), { ttlSeconds: 600 });
    const later = new Date(issued.notAfter.getTime() + 1000);
    const earlier = new Date(issued.notBefore.getTime() - 1000);
    assert.throws(
      () => verifyChain(issued.chain, ca.bundle, { now: later }),
      code('AMBIT_ERR_IDENTITY_CERT_EXPIRED'),
    );
    assert.throws(
      () => verifyChain(issued.chain, ca.bundle, { now: earlier }),
      code('AMBIT_ERR_IDENTITY_CERT_NOT_YET_VALID'),
    );
    assert.equal(
      verifyChain(issued.chain, ca.bundle, { now: new Date(issued.notBefore.getTime() + 1000) }).id,
      WEB,
    );
  });

  it('refuses a chain in the wrong order and an empty chain', async () => {
    const { root, ca } = await newIntermediateCa();
    const issued = await ca.sign(await csrWith([{ type: 'url', value: WEB }]));
    const bundle = new TrustBundle(root.certPem);
    const swapped = [issued.chain[0]!, issued.chain[2]!, issued.chain[1]!];
    assert.throws(() => verifyChain(swapped, bundle), code('AMBIT_ERR_IDENTITY_BAD_CHAIN'));
    assert.throws(() => verifyChain([], bundle), code('AMBIT_ERR_IDENTITY_EMPTY_CHAIN'));
    assert.throws(() => verifyChain([issued.chain[1]!], bundle), code('AMBIT_ERR_IDENTITY_LEAF_IS_CA'));
  });

  it('checks the expected peer identity (client side) and trust domain (server side)', async () => {
    const ca = await newCa();
    const issued = await ca.sign(await csrWith([{ type: 'url', value: WEB }]));
    const v = verifyPeer(issued.chain, ca.bundle, { identities: [DB, WEB], trustDomain: TD });
    assert.equal(v.id, WEB);
    assert.throws(() => checkExpectedPeer(v, [DB]), code('AMBIT_ERR_IDENTITY_UNEXPECTED_PEER'));
    assert.throws(
      () => verifyPeer(issued.chain, ca.bundle, { trustDomain: 'other.domain' }),
      code('AMBIT_ERR_IDENTITY_FOREIGN_TRUST_DOMAIN'),
    );
  });

  it('refuses a bundle without roots or with a leaf in it', async () => {
    const ca = await newCa();
    const issued = await ca.sign(await csrWith([{ type: 'url', value: WEB }]));
    assert.throws(() => new TrustBundle(''), code('AMBIT_ERR_IDENTITY_EMPTY_BUNDLE'));
    assert.throws(() => new TrustBundle(issued.certPem), code('AMBIT_ERR_IDENTITY_BAD_ROOT'));
  });
});
