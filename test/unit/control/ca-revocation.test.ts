// Revoking a node puts the certificates this replica issued to it on the revocation list. When that
// cannot be written for one node, the others are still revoked, the admin who revoked hears of it, and
// the failed node is tried again on the next change, so no certificate stays valid for good.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import {
  CaService,
  InMemoryPlacement,
  IssuedCertificates,
  JoinTokens,
} from '../../../src/control/ca/index.ts';
import { EmbeddedStore, writeInternal } from '../../../src/control/store/index.ts';
import { hasCode } from '../../../src/errors/index.ts';
import { createCsr, generateKeyPair, nodeId } from '../../../src/identity/index.ts';
import { newCa, TD } from '../identity/helpers.ts';

async function setUp(t: TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-ca-revocation-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = await EmbeddedStore.open(join(dir, 'store'));
  t.after(() => store.close());
  const records = join(dir, 'issued');
  const issued = new IssuedCertificates({ dir: records });
  const service = new CaService({
    ca: await newCa(),
    tokens: new JoinTokens({ store }),
    placement: new InMemoryPlacement(),
    store,
    issued,
  });
  t.after(() => service.close());
  /** A node credential issued (and recorded) for `node`; its serial. */
  const credential = async (node: string) => {
    const csr = await createCsr(nodeId(TD, node), (await generateKeyPair()).keys);
    await service.createCertificate(node, csr);
    return issued.issuedTo(node).map((c) => c.serial);
  };
  const revokedSerials = () => issued.revoked().map((c) => c.serial);
  return { store, records, issued, service, credential, revokedSerials };
}

/** A non-empty directory where a record file goes: no write can replace it, not even root's. */
async function block(path: string): Promise<void> {
  await rm(path, { force: true });
  await mkdir(join(path, 'blocked'), { recursive: true });
  await writeFile(join(path, 'blocked', 'x'), '');
}

test('a node whose records cannot be written does not keep the others off the revocation list', async (t) => {
  const { store, records, credential, revokedSerials } = await setUp(t);
  const [one] = await credential('node-1');
  const [two] = await credential('node-2');
  await block(join(records, 'node-node-1.json'));
  // Both revoked in one change, as another replica's commit can bring them.
  await store.commit(() => [writeInternal('revoked-nodes', ['node-1', 'node-2'])]);
  assert.ok(revokedSerials().includes(two!), 'node-2’s certificate is revoked although node-1 failed');
  assert.ok(revokedSerials().includes(one!));
});

test('a failed revocation is reported to the caller and tried again on the next change', async (t) => {
  const { records, service, credential, revokedSerials } = await setUp(t);
  const [one] = await credential('node-1');
  const [two] = await credential('node-2');
  await block(join(records, 'revoked.json'));
  await assert.rejects(service.revokeNode('node-1'), (e) => hasCode(e, 'AMBIT_ERR_CA_RECORD_UNWRITABLE'));
  assert.equal(service.isRevoked('node-1'), true, 'the node itself stays revoked');
  assert.deepEqual(revokedSerials(), []);

  await rm(join(records, 'revoked.json'), { recursive: true });
  await service.revokeNode('node-2');
  assert.deepEqual(revokedSerials().sort(), [one!, two!].sort(), 'node-1 was tried again with node-2');
});

test('revoking again retries a node whose certificates are still pending', async (t) => {
  const { records, service, credential, revokedSerials } = await setUp(t);
  const [one] = await credential('node-1');
  await block(join(records, 'revoked.json'));
  await assert.rejects(service.revokeNode('node-1'));
  await rm(join(records, 'revoked.json'), { recursive: true });
  await service.revokeNode('node-1'); // already revoked in the store: only the records are written
  assert.deepEqual(revokedSerials(), [one!]);
});
