// Stopping the mesh state waits for a derivation in flight, so its commit never meets a closed store;
// nothing asks for another derivation once it is stopped.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { ResourceApi } from '../../../src/control/api/resources.ts';
import { MeshState } from '../../../src/control/mesh.ts';
import { EmbeddedStore, readInternal } from '../../../src/control/store/index.ts';

const WEB = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { selector: { app: 'web' }, ports: [{ port: 80 }] },
  },
];

async function openStore(t: TestContext): Promise<EmbeddedStore> {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-mesh-stop-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = await EmbeddedStore.open(dir);
  t.after(() => store.close());
  return store;
}

test('stop() returns once the derivation in flight has committed its VIP table', async (t) => {
  const store = await openStore(t);
  const mesh = new MeshState(store, { debounceMs: 0, maxDelayMs: 0 });
  await mesh.start();
  t.after(() => mesh.stop());
  await new ResourceApi(store).apply(WEB);
  // The apply's commit scheduled a derivation at once: let its timer fire, so it is in flight.
  await new Promise((r) => setTimeout(r, 0));
  await mesh.stop();
  assert.deepEqual(Object.keys(readInternal(store, 'vips') ?? {}), ['shop/web']);
  assert.equal(mesh.registry.services.find((s) => s.name === 'web')?.vips.length, 1);
  await store.close(); // nothing of the mesh's is left to commit
});

test('nothing is derived after stop()', async (t) => {
  const store = await openStore(t);
  const mesh = new MeshState(store, { debounceMs: 0, maxDelayMs: 0 });
  await mesh.start();
  await mesh.stop();
  const derivations = mesh.derivations;
  mesh.schedule();
  await new ResourceApi(store).apply(WEB);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(mesh.derivations, derivations);
  assert.deepEqual(readInternal(store, 'vips'), {}, 'no VIP was allocated after the stop');
});
