// The CSR service's decisions without a transport: the impersonation check and the mesh's own identities.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CaService, InMemoryPlacement, JoinTokens } from '../../../src/control/ca/index.ts';
import { hasCode } from '../../../src/errors/index.ts';
import { createCsr, generateKeyPair, type SpiffeId } from '../../../src/identity/index.ts';
import { newCa, WEB } from './helpers.ts';

test('a node gets certificates only for identities placed on it, never for the mesh’s own', async () => {
  const placement = new InMemoryPlacement();
  const service = new CaService({ ca: await newCa(), tokens: new JoinTokens(), placement });
  const control = 'spiffe://cluster.local/ns/ambit-system/sa/ambit-control' as SpiffeId;
  placement.place('web-1', 'node-1', WEB);
  placement.place('evil', 'node-1', control); // even if the registry were fooled into placing it
  const csr = async (id: SpiffeId) => createCsr(id, (await generateKeyPair()).keys);

  const issued = await service.createCertificate('node-1', await csr(WEB));
  assert.equal(issued.id, WEB);
  await assert.rejects(service.createCertificate('node-2', await csr(WEB)), (e) =>
    hasCode(e, 'AMBIT_ERR_CA_IMPERSONATION'),
  );
  await assert.rejects(service.createCertificate('node-1', await csr(control)), (e) =>
    hasCode(e, 'AMBIT_ERR_CA_IMPERSONATION'),
  );
});

test('join tokens survive a restart (only their digests are kept), once used they stay used', async (t) => {
  const { mkdtemp, readFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'ambit-tokens-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'join-tokens.json');
  let now = 1_000_000;
  const first = new JoinTokens({ file, now: () => now });
  const a = first.issue('node-1');
  const b = first.issue('node-2');
  const short = first.issue('node-3', 10);
  assert.equal((await readFile(file, 'utf8')).includes(a.token), false, 'the token itself is never written');
  assert.equal(first.redeem(b.token), 'node-2');

  now += 60_000; // the short one has expired by the restart
  const second = new JoinTokens({ file, now: () => now });
  assert.equal(second.redeem(a.token), 'node-1');
  assert.throws(
    () => second.redeem(b.token),
    (e) => hasCode(e, 'AMBIT_ERR_CA_TOKEN_USED'),
  );
  assert.throws(
    () => second.redeem(short.token),
    (e) => hasCode(e, 'AMBIT_ERR_CA_UNKNOWN_TOKEN'),
  );
});
