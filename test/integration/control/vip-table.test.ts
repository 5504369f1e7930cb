// The VIP table lives in the store: addresses survive a restart of the control plane, and a data
// directory written before (its vips.json) keeps the addresses it handed out.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ResourceApi } from '../../../src/control/api/resources.ts';
import { EmbeddedStore } from '../../../src/control/store/index.ts';
import { startTestControl } from '../../helpers/mesh.ts';

const objects = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { selector: { app: 'web' }, ports: [{ port: 80 }] },
  },
];

test('a vips.json from before is taken over once; the store keeps the table across restarts', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-vips-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // A data directory as an older control plane left it: resources in the store, VIPs in vips.json.
  const old = await EmbeddedStore.open(join(dir, 'store'));
  await new ResourceApi(old).apply(objects);
  await old.close();
  await writeFile(join(dir, 'vips.json'), JSON.stringify({ 'shop/web': '198.19.0.9' }));
  const vipOfWeb = (cp: Awaited<ReturnType<typeof startTestControl>>) =>
    cp.mesh.registry.services.find((s) => s.name === 'web')?.vips[0];
  {
    const cp = await startTestControl(t, dir);
    assert.equal(vipOfWeb(cp), '198.19.0.9', 'the address vips.json gave it');
    await cp.close();
  }
  // The file no longer decides: the store does.
  await writeFile(join(dir, 'vips.json'), JSON.stringify({ 'shop/web': '198.19.0.77' }));
  const again = await startTestControl(t, dir);
  assert.equal(vipOfWeb(again), '198.19.0.9');
});
