// A CA and a server certificate for DNS names, written to files as a DestinationRule and a TLS server
// name them: for tests of TLS the waypoint originates to a host outside the mesh.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { createRootCa } from '../../src/control/index.ts';
import { generateKeyPair, importPrivateKeyPem, x509 } from '../../src/identity/index.ts';

export interface ServerFiles {
  dir: string;
  /** The CA that signed the server's certificate (what a client trusts). */
  caPath: string;
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
}

/** A fresh CA and a server certificate for `names` under it, in a directory removed after the test. */
export async function serverCertificateFiles(
  t: TestContext,
  names: string[],
  dir = mkdtempSync(join(tmpdir(), 'ambit-tls-')),
): Promise<ServerFiles> {
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await createRootCa({ trustDomain: 'outside.test', commonName: 'Outside Test CA' });
  const caCert = new x509.X509Certificate(ca.certPem);
  const signer = await importPrivateKeyPem(ca.keyPem);
  const pair = await generateKeyPair();
  const now = Date.now();
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: '0a1b2c',
    subject: [{ CN: [names[0] ?? 'server'] }],
    issuer: caCert.subjectName,
    publicKey: pair.keys.publicKey,
    signingKey: signer.key,
    signingAlgorithm: signer.algorithm,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 24 * 3600_000),
    extensions: [
      new x509.SubjectAlternativeNameExtension(
        names.map((value) => ({ type: 'dns' as const, value })),
        false,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    ],
  });
  const files = {
    dir,
    caPath: join(dir, 'ca.pem'),
    certPath: join(dir, 'server.pem'),
    keyPath: join(dir, 'server-key.pem'),
    certPem: leaf.toString('pem'),
    keyPem: pair.privateKeyPem,
  };
  writeFileSync(files.caPath, ca.certPem);
  writeFileSync(files.certPath, `${files.certPem}\n`);
  writeFileSync(files.keyPath, files.keyPem, { mode: 0o600 });
  return files;
}
