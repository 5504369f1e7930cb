// The CSR service through a real gRPC client on 127.0.0.1: join tokens, node credentials, the impersonation
// check, refusals by code, and a CA outage during renewal with recovery.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CaService,
  type CertificateAuthority,
  InMemoryPlacement,
  issueServingCertificate,
  JoinTokens,
} from '../../../src/control/ca/index.ts';
import { ControlGrpcServer, certificateServiceImplementation } from '../../../src/control/grpc/index.ts';
import { EmbeddedStore } from '../../../src/control/store/index.ts';
import { hasCode } from '../../../src/errors/index.ts';
import {
  CertificateManager,
  createCsr,
  generateKeyPair,
  type SpiffeId,
  verifyChain,
  workloadId,
} from '../../../src/identity/index.ts';
import { CaClient, CERTIFICATE_SERVICE_NAME, type NodeCredential } from '../../../src/xds/index.ts';
import { FakeClock } from '../../unit/identity/fake-clock.ts';
import { csrWith, newCa, rsaKeys, TD } from '../../unit/identity/helpers.ts';

const WEB = workloadId(TD, 'default', 'web');
const DB = workloadId(TD, 'default', 'db');

const code = (c: string) => (err: unknown) => {
  assert.ok(
    hasCode(err, c),
    `expected ${c}, got ${(err as { code?: string }).code}: ${(err as Error).message}`,
  );
  return true;
};

describe('CSR service over gRPC', () => {
  let ca: CertificateAuthority;
  let tokens: JoinTokens;
  let placement: InMemoryPlacement;
  let service: CaService;
  let storeDir: string;
  let store: EmbeddedStore;
  let server: ControlGrpcServer;
  let address: string;
  let port: number;
  const clients: CaClient[] = [];

  async function startServer(onPort = 0): Promise<void> {
    const serving = await issueServingCertificate(ca);
    server = new ControlGrpcServer({
      host: '127.0.0.1',
      port: onPort,
      tls: { trustBundlePem: ca.bundle.toPem(), certChainPem: serving.certChainPem, keyPem: serving.keyPem },
    });
    const { definition, implementation } = certificateServiceImplementation(service);
    server.addService(CERTIFICATE_SERVICE_NAME, definition, implementation);
    port = (await server.start()).port;
    address = `127.0.0.1:${port}`;
  }

  function client(credential?: NodeCredential): CaClient {
    const c = new CaClient({
      address,
      trustDomain: TD,
      trustBundlePem: ca.bundle.toPem(),
      credential,
      timeoutMs: 5000,
    });
    clients.push(c);
    return c;
  }

  async function joined(node: string): Promise<NodeCredential> {
    return client().join((await tokens.issue(node)).token, node);
  }

  before(async () => {
    ca = await newCa();
    storeDir = await mkdtemp(join(tmpdir(), 'ambit-ca-grpc-'));
    store = await EmbeddedStore.open(storeDir);
    tokens = new JoinTokens({ store });
    placement = new InMemoryPlacement();
    service = new CaService({ ca, tokens, placement, store });
    await startServer();
  });

  after(async () => {
    for (const c of clients) c.close();
    await server.stop(1000);
    await store.close();
    await rm(storeDir, { recursive: true, force: true });
  });

  it('exchanges a join token once for a node credential', async () => {
    const { token } = await tokens.issue('node-1');
    const cred = await client().join(token, 'node-1');
    assert.equal(cred.node, 'node-1');
    assert.equal(
      verifyChain(cred.certChainPem, ca.bundle).id,
      'spiffe://cluster.local/ns/ambit-system/sa/node/node-1',
    );
    await assert.rejects(client().join(token, 'node-1'), code('AMBIT_ERR_CA_TOKEN_USED'));
  });

  it('refuses unknown and revoked tokens, and a token used for another node', async () => {
    await assert.rejects(
      client().join('ambit-join-not-a-real-token', 'node-1'),
      code('AMBIT_ERR_CA_UNKNOWN_TOKEN'),
    );
    const revoked = await tokens.issue('node-2');
    await tokens.revoke(revoked.token);
    await assert.rejects(client().join(revoked.token, 'node-2'), code('AMBIT_ERR_CA_REVOKED_TOKEN'));
    const forTwo = await tokens.issue('node-2');
    await assert.rejects(client().join(forTwo.token, 'node-3'), code('AMBIT_ERR_CA_IMPERSONATION'));
    // The refused attempt did not spend the token.
    assert.equal((await client().join(forTwo.token, 'node-2')).node, 'node-2');
  });

  it('signs a workload identity only for the node it is placed on', async () => {
    const one = await joined('node-a');
    const two = await joined('node-b');
    placement.place('pod-web-1', 'node-a', WEB);
    const pair = await generateKeyPair();
    const csr = await createCsr(WEB, pair.keys);
    const chain = await client(one).fetch(WEB, csr);
    assert.equal(verifyChain(chain, ca.bundle).id, WEB);
    await assert.rejects(client(two).fetch(WEB, csr), (e) => {
      code('AMBIT_ERR_CA_IMPERSONATION')(e);
      assert.equal((e as { detail: { grpcStatus: number } }).detail.grpcStatus, 7); // PERMISSION_DENIED
      return true;
    });
    await assert.rejects(
      client(one).fetch(DB, await createCsr(DB, pair.keys)),
      code('AMBIT_ERR_CA_IMPERSONATION'),
    );
    // The impersonated identity must match the CSR.
    await assert.rejects(client(one).fetch(DB, csr), code('AMBIT_ERR_CA_IDENTITY_MISMATCH'));
    // Moving the workload moves the right to its certificate.
    placement.place('pod-web-1', 'node-b', WEB);
    assert.equal(verifyChain(await client(two).fetch(WEB, csr), ca.bundle).id, WEB);
    await assert.rejects(client(one).fetch(WEB, csr), code('AMBIT_ERR_CA_IMPERSONATION'));
    placement.remove('pod-web-1');
  });

  it("lets a node renew its own credential but not take another node's", async () => {
    const cred = await joined('node-c');
    const pair = await generateKeyPair();
    const self = 'spiffe://cluster.local/ns/ambit-system/sa/node/node-c' as SpiffeId;
    const chain = await client(cred).fetch(self, await createCsr(self, pair.keys));
    assert.equal(verifyChain(chain, ca.bundle).id, self);
    const other = 'spiffe://cluster.local/ns/ambit-system/sa/node/node-a' as SpiffeId;
    await assert.rejects(
      client(cred).fetch(other, await createCsr(other, pair.keys)),
      code('AMBIT_ERR_CA_IMPERSONATION'),
    );
  });

  it('refuses callers without a node credential, with a workload certificate, or from another root', async () => {
    placement.place('pod-web-2', 'node-a', WEB);
    const pair = await generateKeyPair();
    const csr = await createCsr(WEB, pair.keys);
    await assert.rejects(client().fetch(WEB, csr), code('AMBIT_ERR_CA_UNAUTHENTICATED'));
    // A workload certificate from the right CA is not a node credential.
    const issued = await ca.sign(csr);
    const asWorkload: NodeCredential = {
      node: 'node-a',
      trustDomain: TD,
      certChainPem: issued.chain.slice(0, -1).join(''),
      keyPem: pair.privateKeyPem,
      trustBundlePem: ca.bundle.toPem(),
    };
    await assert.rejects(client(asWorkload).fetch(WEB, csr), code('AMBIT_ERR_CA_UNAUTHENTICATED'));
    // A node credential from another CA is not verified by TLS, so it identifies nobody.
    const { createRootCa } = await import('../../../src/control/ca/index.ts');
    const evil = await newCa({ material: await createRootCa({ trustDomain: TD }) });
    const forged = await evil.sign(
      await createCsr('spiffe://cluster.local/ns/ambit-system/sa/node/node-a' as SpiffeId, pair.keys),
      { usage: 'client' },
    );
    const forgedCred = { ...asWorkload, certChainPem: forged.certPem };
    await assert.rejects(client(forgedCred).fetch(WEB, csr), code('AMBIT_ERR_CA_UNAUTHENTICATED'));
    placement.remove('pod-web-2');
  });

  it('refuses bad CSRs with INVALID_ARGUMENT and the Ambit code', async () => {
    const cred = await joined('node-d');
    placement.place('pod-web-3', 'node-d', WEB);
    const weak = await csrWith([{ type: 'url', value: WEB }], await rsaKeys(1024), {
      name: 'RSASSA-PKCS1-v1_5',
    });
    await assert.rejects(client(cred).fetch(WEB, weak), (e) => {
      code('AMBIT_ERR_CA_WEAK_KEY')(e);
      assert.equal((e as { detail: { grpcStatus: number } }).detail.grpcStatus, 3); // INVALID_ARGUMENT
      return true;
    });
    placement.remove('pod-web-3');
  });

  it('keeps workloads on their valid certificates through a CA outage and renews when it returns', async () => {
    const cred = await joined('node-e');
    placement.place('pod-web-4', 'node-e', WEB);
    const clock = new FakeClock();
    const caClient = client(cred);
    const manager = new CertificateManager({
      source: { fetch: (id, csr) => caClient.fetch(id, csr, 120) },
      clock,
      trustBundle: () => ca.bundle,
      initialBackoffMs: 1000,
    });
    try {
      manager.want([WEB]);
      await manager.idle();
      const first = manager.current(WEB)!;
      assert.ok(first, 'first certificate fetched');

      await server.stop(0);
      clock.advance(clock.nextTimerAt()! - clock.now()); // half life, with the CA away
      await manager.idle();
      const row = manager.status()[0]!;
      assert.equal(row.state, 'renewing');
      assert.match(row.lastError!, /AMBIT_ERR_CA_UNREACHABLE/);
      assert.equal(manager.current(WEB)!.serial, first.serial, 'the valid certificate stays in use');

      await startServer(port);
      await caClient.waitForReady(5000);
      clock.advance(clock.nextTimerAt()! - clock.now()); // the next retry
      await manager.idle();
      assert.equal(manager.status()[0]!.state, 'valid');
      assert.notEqual(manager.current(WEB)!.serial, first.serial);
    } finally {
      manager.close();
      placement.remove('pod-web-4');
    }
  });
});
