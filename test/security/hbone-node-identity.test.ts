// Issue 9 (Low): the data path takes workloads only. A node credential
// (`spiffe://<td>/ns/ambit-system/sa/node/<n>`, client usage), any other `ambit-system` identity, and a
// certificate without a workload certificate's usages (serverAuth and clientAuth) are refused in the HBONE
// handshake, although their chains and trust domain are fine; nothing reaches the upstream.

import assert from 'node:assert/strict';
import { before, describe, it, type TestContext } from 'node:test';
import type { CertificateAuthority } from '../../src/control/ca/index.ts';
import type { TlsMaterial } from '../../src/hbone/index.ts';
import {
  checkWorkloadPeer,
  controlPlaneId,
  createCsr,
  generateKeyPair,
  nodeId,
  type SpiffeId,
  TrustBundle,
  verifyPeer,
} from '../../src/identity/index.ts';
import {
  CLIENT,
  echoServer,
  HBONE_IP,
  hboneServer,
  materialFor,
  newAuthority,
  newPool,
  SERVER,
  TD,
} from '../integration/hbone/helpers.ts';

let ca: CertificateAuthority;
let server: TlsMaterial;

before(async () => {
  ca = await newAuthority();
  server = await materialFor(ca, SERVER);
});

/** Material for `id`, signed by the mesh CA with the given usage, as the CA's own paths issue them. */
async function issued(id: SpiffeId, usage: 'workload' | 'client' | 'server'): Promise<TlsMaterial> {
  const pair = await generateKeyPair();
  const cert = await ca.sign(await createCsr(id, pair.keys), { usage });
  return {
    identity: id,
    certChainPem: cert.chain.slice(0, -1).join(''),
    keyPem: pair.privateKeyPem,
    trustBundlePem: ca.bundle.toPem(),
  };
}

/** Tries one CONNECT presenting `client`; returns the error (or undefined) and what the upstream saw. */
async function tryClient(t: TestContext, client: TlsMaterial) {
  const upstream = await echoServer(t);
  const hbone = await hboneServer(t, { certFor: () => server });
  const error = await newPool(t)
    .connect({
      source: () => client,
      destination: { address: HBONE_IP, port: hbone.port },
      accepted: [SERVER],
      authority: `127.0.0.3:${upstream.port}`,
    })
    .then(
      (tunnel) => {
        tunnel.stream.destroy();
        return undefined;
      },
      (err: Error) => err,
    );
  return { error, upstream: upstream.accepted(), streams: hbone.records.length };
}

describe('HBONE refuses credentials that are not a workload’s', () => {
  it('accepts a workload certificate (the baseline)', async (t) => {
    const r = await tryClient(t, await issued(CLIENT, 'workload'));
    assert.equal(r.error, undefined);
    assert.equal(r.upstream, 1);
  });

  it('refuses a node credential as a client, at the handshake', async (t) => {
    const r = await tryClient(t, await issued(nodeId(TD, 'node-1'), 'client'));
    assert.ok(r.error, 'a node credential opened a tunnel');
    assert.equal((r.error as Error & { code?: string }).code, 'AMBIT_ERR_HBONE_CONNECT');
    assert.equal(r.upstream, 0);
    assert.equal(r.streams, 0);
  });

  it('refuses an ambit-system identity even with workload usages', async (t) => {
    const r = await tryClient(t, await issued(controlPlaneId(TD), 'workload'));
    assert.ok(r.error, 'an ambit-system identity opened a tunnel');
    assert.equal(r.upstream, 0);
  });

  it('refuses a workload identity whose certificate is for clients only', async (t) => {
    const r = await tryClient(t, await issued(CLIENT, 'client'));
    assert.ok(r.error, 'a client-only certificate opened a tunnel');
    assert.equal(r.upstream, 0);
  });

  it('names the reason with a stable code', async () => {
    const bundle = new TrustBundle(ca.bundle.toPem());
    const check = (m: TlsMaterial) =>
      assert.throws(
        () => verifyPeer(m.certChainPem, bundle, { trustDomain: TD, workload: true }),
        (err: Error & { code?: string }) => err.code === 'AMBIT_ERR_IDENTITY_NOT_A_WORKLOAD',
      );
    check(await issued(nodeId(TD, 'node-1'), 'client'));
    check(await issued(controlPlaneId(TD), 'server'));
    check(await issued(CLIENT, 'server'));
    const ok = verifyPeer((await issued(CLIENT, 'workload')).certChainPem, bundle, { trustDomain: TD });
    assert.doesNotThrow(() => checkWorkloadPeer(ok));
  });
});
