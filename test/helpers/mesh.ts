// An in-process control plane on 127.0.0.1 with a joined node, for integration tests.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { type ControlPlane, startControlPlane } from '../../src/control/index.ts';
import { CaClient, type NodeCredential } from '../../src/xds/index.ts';

export async function startTestControl(t: TestContext, dataDir?: string): Promise<ControlPlane> {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'ambit-cp-')));
  if (!dataDir) t.after(() => rm(dir, { recursive: true, force: true }));
  const cp = await startControlPlane({
    dataDir: dir,
    adminListen: '127.0.0.1:0',
    adminSocket: '',
    grpcListen: '127.0.0.1:0',
  });
  t.after(() => cp.close());
  return cp;
}

/** Joins `node` to the control plane with a fresh token, as a node agent does. */
export async function joinNode(cp: ControlPlane, node: string): Promise<NodeCredential> {
  const { token } = cp.tokens.issue(node);
  const client = new CaClient({
    address: cp.grpcAddress,
    trustDomain: cp.ca.trustDomain,
    trustBundlePem: cp.ca.bundle.toPem(),
  });
  try {
    return await client.join(token, node);
  } finally {
    client.close();
  }
}
