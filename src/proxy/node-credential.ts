// A node's credential (its certificate and key, and the roots it trusts) in its data directory: read
// it when it is still usable, or join with a token and keep what the CA gave. The node agent renews it;
// a waypoint on the same node reads it to ask the CA for its own identity.

import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AmbitError, describeError } from '../errors/index.ts';
import type { CertificateSource } from '../identity/index.ts';
import type { Logger } from '../log/index.ts';
import { CaClient, type NodeCredential } from '../xds/index.ts';
import { PROXY_ERRORS } from './errors.ts';

export const NODE_CREDENTIAL_FILE = 'node-credential.json';

export interface NodeCredentialOptions {
  node: string;
  dataDir: string;
  /** The control plane's gRPC address, host:port. */
  control: string;
  trustDomain: string;
  /** Roots that vouch for the control plane (the first contact needs them). */
  trustBundlePem: string;
  /** Needed only when the node has no usable credential yet. */
  token?: string;
  log: Logger;
}

/** The saved credential of `node`, if it is there, its own and unexpired. */
export async function readNodeCredential(
  dataDir: string,
  node: string,
  log: Logger,
): Promise<NodeCredential | undefined> {
  const file = join(dataDir, NODE_CREDENTIAL_FILE);
  try {
    const saved = JSON.parse(await readFile(file, 'utf8')) as NodeCredential;
    const expired = Date.parse(new X509Certificate(saved.certChainPem).validTo) <= Date.now();
    if (saved.node === node && !expired) return saved;
    log.warn({ file, saved: saved.node, expired }, 'the saved credential cannot be used');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      log.warn({ err: describeError(err) }, 'unreadable node credential');
  }
  return undefined;
}

export async function saveNodeCredential(dataDir: string, cred: NodeCredential): Promise<void> {
  const file = join(dataDir, NODE_CREDENTIAL_FILE);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await writeFile(`${file}.tmp`, JSON.stringify(cred), { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

/** The saved node credential, or a new one from the join token. */
export async function obtainNodeCredential(opts: NodeCredentialOptions): Promise<NodeCredential> {
  const saved = await readNodeCredential(opts.dataDir, opts.node, opts.log);
  if (saved) return saved;
  if (!opts.token) {
    throw new AmbitError(
      PROXY_ERRORS.NODE_NO_TOKEN,
      `node "${opts.node}" has not joined yet: create a token with \`ambit control token create --node ${opts.node}\` and pass --token`,
    );
  }
  const client = new CaClient({
    address: opts.control,
    trustDomain: opts.trustDomain,
    trustBundlePem: opts.trustBundlePem,
  });
  try {
    const cred = await client.join(opts.token, opts.node);
    await saveNodeCredential(opts.dataDir, cred);
    opts.log.info('joined the mesh');
    return cred;
  } finally {
    client.close();
  }
}

/**
 * A certificate source for a proxy beside the node agent (a waypoint replica, a sidecar): asks the CA
 * with the node's credential, read afresh for each request since the node agent renews it in place. The
 * CA signs only an identity placed on that node.
 */
export function nodeCredentialCertificates(
  o: Pick<NodeCredentialOptions, 'node' | 'dataDir' | 'control' | 'trustDomain' | 'log'>,
  who: string,
): CertificateSource {
  return {
    fetch: async (id, csr) => {
      const cred = await readNodeCredential(o.dataDir, o.node, o.log);
      if (!cred) throw new Error(`no usable credential of node ${o.node} in ${o.dataDir}`);
      const client = new CaClient({
        address: o.control,
        trustDomain: o.trustDomain,
        trustBundlePem: cred.trustBundlePem,
        credential: cred,
      });
      try {
        return await client.fetch(id, csr);
      } catch (err) {
        o.log.warn({ identity: id, err: describeError(err) }, `the CA refused the ${who} its certificate`);
        throw err;
      } finally {
        client.close();
      }
    },
  };
}
