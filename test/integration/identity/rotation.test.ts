// Root rotation without a failed handshake: trust the new root everywhere, switch signing to it, renew,
// then retire the old root. Every step is checked with real mutual-TLS handshakes on 127.0.0.1.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import * as tls from 'node:tls';
import {
  type CertificateAuthority,
  createRootCa,
  type IssuedCertificate,
} from '../../../src/control/ca/index.ts';
import {
  createCsr,
  generateKeyPair,
  type SpiffeId,
  type TrustBundle,
  verifyPeer,
  workloadId,
} from '../../../src/identity/index.ts';
import { newCa, TD } from '../../unit/identity/helpers.ts';

const SERVER = workloadId(TD, 'default', 'server');
const CLIENT = workloadId(TD, 'default', 'client');

interface Leaf {
  issued: IssuedCertificate;
  keyPem: string;
}

async function leafFor(ca: CertificateAuthority, id: SpiffeId): Promise<Leaf> {
  const pair = await generateKeyPair();
  return { issued: await ca.sign(await createCsr(id, pair.keys)), keyPem: pair.privateKeyPem };
}

const certChain = (leaf: Leaf) => leaf.issued.chain.slice(0, -1).join('');

/** One mTLS handshake: server and client each present a leaf and trust a bundle. Resolves true on success. */
async function handshake(
  server: { leaf: Leaf; bundle: TrustBundle },
  client: { leaf: Leaf; bundle: TrustBundle },
): Promise<boolean> {
  const srv = tls.createServer({
    cert: certChain(server.leaf),
    key: server.leaf.keyPem,
    ca: server.bundle.toPem(),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  });
  srv.on('secureConnection', (socket) => {
    // The server side's peer check: chain (done by TLS) and same trust domain.
    try {
      verifyPeer([socket.getPeerCertificate().raw], server.bundle, { trustDomain: TD });
      socket.end('ok');
    } catch {
      socket.destroy();
    }
  });
  srv.on('tlsClientError', () => {});
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  try {
    const { port } = srv.address() as AddressInfo;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      cert: certChain(client.leaf),
      key: client.leaf.keyPem,
      ca: client.bundle.toPem(),
      minVersion: 'TLSv1.3',
      // Client side: chain to the bundle and the expected SPIFFE ID, instead of a host name.
      checkServerIdentity: (_host, cert) => {
        try {
          verifyPeer([cert.raw], client.bundle, { identities: [SERVER] });
          return undefined;
        } catch (err) {
          return err as Error;
        }
      },
    });
    return await new Promise<boolean>((resolve) => {
      let data = '';
      socket.on('data', (d) => {
        data += d;
      });
      socket.on('end', () => resolve(data === 'ok'));
      socket.on('error', () => resolve(false));
      socket.on('close', () => resolve(data === 'ok'));
    });
  } finally {
    srv.close();
  }
}

describe('root rotation', () => {
  it('adds the new root, switches signing, and retires the old root without a failed handshake', async () => {
    const ca = await newCa({ material: await createRootCa({ trustDomain: TD, commonName: 'Old Root' }) });
    const oldRootPem = ca.signingRoot.toString();
    const oldServer = await leafFor(ca, SERVER);
    const oldClient = await leafFor(ca, CLIENT);
    assert.equal(
      await handshake({ leaf: oldServer, bundle: ca.bundle }, { leaf: oldClient, bundle: ca.bundle }),
      true,
    );

    // 1. Every proxy learns the new root before anything is signed under it.
    const newRoot = await createRootCa({ trustDomain: TD, commonName: 'New Root' });
    ca.addTrustedRoot(newRoot.certPem);
    assert.equal(ca.bundle.roots.length, 2);
    assert.equal(
      await handshake({ leaf: oldServer, bundle: ca.bundle }, { leaf: oldClient, bundle: ca.bundle }),
      true,
    );

    // 2. Signing switches to the new root; old and new leaves meet in both directions.
    await ca.switchSigning(newRoot);
    const newServer = await leafFor(ca, SERVER);
    const newClient = await leafFor(ca, CLIENT);
    assert.equal(newServer.issued.chain.at(-1), ca.signingRoot.toString());
    assert.notEqual(ca.signingRoot.toString(), oldRootPem);
    const both = ca.bundle;
    assert.equal(await handshake({ leaf: oldServer, bundle: both }, { leaf: newClient, bundle: both }), true);
    assert.equal(await handshake({ leaf: newServer, bundle: both }, { leaf: oldClient, bundle: both }), true);
    assert.equal(await handshake({ leaf: newServer, bundle: both }, { leaf: newClient, bundle: both }), true);

    // The root still signing cannot be retired by mistake.
    assert.throws(() => ca.retireRoot(newRoot.certPem), /switch signing/);

    // 3. Once every leaf is renewed under the new root, the old root is retired.
    ca.retireRoot(oldRootPem);
    const after = ca.bundle;
    assert.equal(after.roots.length, 1);
    assert.equal(
      await handshake({ leaf: newServer, bundle: after }, { leaf: newClient, bundle: after }),
      true,
    );
    // A leaf left over from the old root is now refused, by either end.
    assert.equal(
      await handshake({ leaf: newServer, bundle: after }, { leaf: oldClient, bundle: after }),
      false,
    );
    assert.equal(
      await handshake({ leaf: oldServer, bundle: after }, { leaf: newClient, bundle: after }),
      false,
    );
  });

  it('refuses a handshake with a certificate from another root, and an unexpected server identity', async () => {
    const ca = await newCa();
    const evil = await newCa({ material: await createRootCa({ trustDomain: TD }) });
    const server = await leafFor(ca, SERVER);
    const client = await leafFor(ca, CLIENT);
    const intruder = await leafFor(evil, CLIENT);
    assert.equal(
      await handshake({ leaf: server, bundle: ca.bundle }, { leaf: client, bundle: ca.bundle }),
      true,
    );
    assert.equal(
      await handshake({ leaf: server, bundle: ca.bundle }, { leaf: intruder, bundle: ca.bundle }),
      false,
    );
    // A server presenting the client's identity is not the one the client expects.
    assert.equal(
      await handshake({ leaf: client, bundle: ca.bundle }, { leaf: client, bundle: ca.bundle }),
      false,
    );
  });
});
