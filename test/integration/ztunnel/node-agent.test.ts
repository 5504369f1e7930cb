// The node agent in-process on loopback (no capture): it joins once with a token and keeps its
// credential, renews that credential at half life, and still talks to the control plane afterwards.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startControlPlane } from '../../../src/control/index.ts';
import { hasCode } from '../../../src/errors/index.ts';
import { NodeAgent } from '../../../src/ztunnel/index.ts';
import { eventually } from '../../helpers/lab.ts';

test('join once, keep the credential, renew it at half life, keep working', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-agent-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cp = await startControlPlane({
    dataDir: join(dir, 'control'),
    adminListen: '127.0.0.1:0',
    adminSocket: '',
    grpcListen: '127.0.0.1:0',
    nodeCertTtlSeconds: 4,
    caLifetimes: { minTtlSeconds: 1 },
  });
  t.after(() => cp.close().catch(() => {}));
  const agentDir = join(dir, 'node-1');
  const options = {
    node: 'node-1',
    dataDir: agentDir,
    control: cp.grpcAddress,
    trustDomain: cp.ca.trustDomain,
    trustBundlePem: cp.ca.bundle.toPem(),
    bindAddress: '127.0.3.1',
    ports: { socks5: 0, metrics: 0, readiness: 0, admin: 0 },
    drainMs: 200,
  };

  // No credential and no token: a clear refusal, and nothing left running.
  await assert.rejects(new NodeAgent(options).start(), (e) => hasCode(e, 'AMBIT_ERR_NODE_NO_TOKEN'));

  const agent = new NodeAgent({ ...options, token: (await cp.tokens.issue('node-1')).token });
  t.after(() => agent.stop());
  await agent.start();
  const file = join(agentDir, 'node-credential.json');
  const first = JSON.parse(await readFile(file, 'utf8'));
  const serial = (pem: string) => new X509Certificate(pem).serialNumber;

  const renewed = await eventually(
    async () => {
      const now = JSON.parse(await readFile(file, 'utf8'));
      return serial(now.certChainPem) !== serial(first.certChainPem) ? now : undefined;
    },
    10_000,
    'the node credential to be renewed',
  );
  assert.equal(
    new X509Certificate(renewed.certChainPem).subjectAltName,
    'URI:spiffe://cluster.local/ns/ambit-system/sa/node/node-1',
  );
  assert.notEqual(renewed.keyPem, first.keyPem, 'a renewal brings a new key');

  // Once the first credential has expired, a restarted control plane still lets the agent back in:
  // it reconnects with the renewed credential (and reports its workloads again).
  await new Promise((r) => setTimeout(r, 4_500));
  const address = cp.grpcAddress;
  await cp.close();
  const again = await startControlPlane({
    dataDir: join(dir, 'control'),
    adminListen: '127.0.0.1:0',
    adminSocket: '',
    grpcListen: address,
    nodeCertTtlSeconds: 4,
    caLifetimes: { minTtlSeconds: 1 },
  });
  t.after(() => again.close());
  await eventually(
    async () =>
      again.stream.status().find((p) => p.name === 'node-1')?.state === 'SYNCED' ? true : undefined,
    15_000,
    'the agent to reconnect and sync',
  );
});
