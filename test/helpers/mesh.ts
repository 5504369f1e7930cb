// An in-process control plane on 127.0.0.1 with a joined node, for integration tests.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { type ControlOptions, type ControlPlane, startControlPlane } from '../../src/control/index.ts';
import {
  CaClient,
  CONTROL_CHANNEL_OPTIONS,
  controlPlaneCredentials,
  type NodeCredential,
  TYPE,
  XdsClient,
} from '../../src/xds/index.ts';

export async function startTestControl(
  t: TestContext,
  dataDir?: string,
  more: Partial<ControlOptions> = {},
): Promise<ControlPlane> {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'ambit-cp-')));
  const cp = await startControlPlane({
    dataDir: dir,
    adminListen: '127.0.0.1:0',
    adminSocket: '',
    grpcListen: '127.0.0.1:0',
    ...more,
  }).catch(async (err) => {
    if (!dataDir) await rm(dir, { recursive: true, force: true });
    throw err;
  });
  // after() hooks run in the order they were added: close first, then remove what it was using.
  t.after(() => cp.close());
  if (!dataDir) t.after(() => rm(dir, { recursive: true, force: true }));
  return cp;
}

const adminTokens = new WeakMap<ControlPlane, string>();

/**
 * A request to the control plane's TCP admin listener with a cluster-admin token (made once per
 * control plane), as an operator's tool would send it.
 */
export async function adminFetch(cp: ControlPlane, path: string, init: RequestInit = {}): Promise<Response> {
  if (!cp.adminAddress) throw new Error('this control plane has no TCP admin listener (adminListen)');
  let token = adminTokens.get(cp);
  if (!token) {
    token = (await cp.adminTokens.create({ role: 'cluster-admin' })).token;
    adminTokens.set(cp, token);
  }
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(`http://${cp.adminAddress}${path}`, { ...init, headers });
}

/** Joins `node` to the control plane with a fresh token, as a node agent does. */
export async function joinNode(cp: ControlPlane, node: string): Promise<NodeCredential> {
  const { token } = await cp.tokens.issue(node);
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

/** A ztunnel's config stream to `cp` as `node` with its credential (workloads only), synced; stopped after the test. */
export async function syncedZtunnelStream(
  t: TestContext,
  cp: ControlPlane,
  cred: NodeCredential,
  node: string,
): Promise<XdsClient> {
  const stream = new XdsClient({
    target: cp.grpcAddress,
    credentials: () => controlPlaneCredentials(cp.ca.trustDomain, cred.trustBundlePem, cred),
    channelOptions: CONTROL_CHANNEL_OPTIONS,
    node: { kind: 'ztunnel', name: node },
    types: [TYPE.workload],
    apply: () => {},
    backoff: { initialMs: 50, maxMs: 200 },
  });
  stream.start();
  t.after(() => stream.stop());
  await stream.whenSynced();
  return stream;
}
