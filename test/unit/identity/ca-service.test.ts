// The CSR service's decisions without a transport: the impersonation check, the mesh's own identities,
// and the join tokens and revoked nodes it keeps in the store.

import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { CaService, InMemoryPlacement, JoinTokens } from '../../../src/control/ca/index.ts';
import { digest } from '../../../src/control/ca/tokens.ts';
import { EmbeddedStore } from '../../../src/control/store/index.ts';
import { hasCode } from '../../../src/errors/index.ts';
import { createCsr, generateKeyPair, type SpiffeId } from '../../../src/identity/index.ts';
import { newCa, WEB } from './helpers.ts';

/** A data directory for a store, removed when the test ends. */
async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-ca-service-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function openStore(t: TestContext, dir?: string): Promise<EmbeddedStore> {
  const store = await EmbeddedStore.open(dir ?? (await tempDir(t)));
  t.after(() => store.close());
  return store;
}

test('a node gets certificates only for identities placed on it, never for the mesh’s own', async (t) => {
  const placement = new InMemoryPlacement();
  const store = await openStore(t);
  const service = new CaService({ ca: await newCa(), tokens: new JoinTokens({ store }), placement, store });
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
  const dir = await tempDir(t);
  let now = 1_000_000;
  const store = await EmbeddedStore.open(dir);
  const first = new JoinTokens({ store, now: () => now });
  const a = await first.issue('node-1');
  const b = await first.issue('node-2');
  const short = await first.issue('node-3', 10);
  assert.equal(await first.redeem(b.token), 'node-2');
  await store.close();
  for (const file of await readdir(dir)) {
    const text = await readFile(join(dir, file), 'utf8');
    assert.equal(text.includes(a.token), false, `the token itself is never written (${file})`);
  }

  now += 60_000; // the short one has expired by the restart
  const second = new JoinTokens({ store: await openStore(t, dir), now: () => now });
  assert.throws(
    () => second.check(short.token),
    (e) => hasCode(e, 'AMBIT_ERR_CA_EXPIRED_TOKEN'),
  );
  assert.equal(await second.redeem(a.token), 'node-1');
  await assert.rejects(second.redeem(b.token), (e) => hasCode(e, 'AMBIT_ERR_CA_TOKEN_USED'));
  // The commit that spent `a` rewrote the list without the expired token.
  await assert.rejects(second.redeem(short.token), (e) => hasCode(e, 'AMBIT_ERR_CA_UNKNOWN_TOKEN'));
});

test('a token redeemed twice at once is spent once; a failed join gives it back', async (t) => {
  const tokens = new JoinTokens({ store: await openStore(t) });
  const { token } = await tokens.issue('node-1');
  const results = await Promise.allSettled([tokens.redeem(token), tokens.redeem(token)]);
  assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  await tokens.release(token);
  assert.equal(await tokens.redeem(token), 'node-1');
  await assert.rejects(tokens.revoke('ambit-join-unknown'), (e) => hasCode(e, 'AMBIT_ERR_CA_UNKNOWN_TOKEN'));
});

test('a join-tokens.json from before is taken over once; an unreadable one is refused by code', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'join-tokens.json');
  const record = (node: string) => ({ node, expiresAt: Date.now() + 60_000, state: 'open' });
  await writeFile(file, JSON.stringify({ [digest('ambit-join-old')]: record('node-1') }));
  const tokens = new JoinTokens({ store: await openStore(t, join(dir, 'store')) });
  await tokens.takeOver(file);
  assert.equal(tokens.check('ambit-join-old'), 'node-1');

  // The store holds the list now: the file no longer decides.
  await writeFile(file, JSON.stringify({ [digest('ambit-join-new')]: record('node-2') }));
  await tokens.takeOver(file);
  assert.throws(
    () => tokens.check('ambit-join-new'),
    (e) => hasCode(e, 'AMBIT_ERR_CA_UNKNOWN_TOKEN'),
  );

  await writeFile(join(dir, 'broken.json'), '{');
  const fresh = new JoinTokens({ store: await openStore(t) });
  await assert.rejects(fresh.takeOver(join(dir, 'broken.json')), (e) =>
    hasCode(e, 'AMBIT_ERR_CA_TOKENS_UNREADABLE'),
  );
});

test('a node revoked through one CA service is revoked for every other on the same store', async (t) => {
  const store = await openStore(t);
  const ca = await newCa();
  const service = (onRevokedChange?: (revoked: readonly string[]) => void) =>
    new CaService({
      ca,
      tokens: new JoinTokens({ store }),
      placement: new InMemoryPlacement(),
      store,
      onRevokedChange,
    });
  const here = service();
  const seen: Array<readonly string[]> = [];
  const there = service((revoked) => seen.push(revoked));
  t.after(() => {
    here.close();
    there.close();
  });
  await here.revokeNode('node-1');
  assert.equal(there.isRevoked('node-1'), true);
  assert.deepEqual(seen, [['node-1']]);
  assert.throws(
    () => there.nodeOf('spiffe://cluster.local/ns/ambit-system/sa/node/node-1' as SpiffeId),
    (e) => hasCode(e, 'AMBIT_ERR_CA_NODE_REVOKED'),
  );
  await here.revokeNode('node-1'); // already revoked: nothing changes
  assert.deepEqual(seen, [['node-1']]);
});
