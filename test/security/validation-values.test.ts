// Issue 8, item 5 (one object): the object cap bounds an apply's count, but one object could still
// carry 16 MiB of bad values, each costing zod tens of microseconds and several issues — 400,000 bad
// labels in one Namespace took 26 s of the control plane's event loop and 1.5 GB, and ended in a
// stack overflow (500). A resource holds at most MAX_VALUES values, refused before zod reads it.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MAX_VALUES, validateResource } from '../../src/config/validate.ts';
import { ResourceApi } from '../../src/control/api/resources.ts';
import { EmbeddedStore } from '../../src/control/store/index.ts';
import { AmbitError } from '../../src/errors/index.ts';

const labelled = (count: number, key: (i: number) => string) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: {
    name: 'big',
    labels: Object.fromEntries(Array.from({ length: count }, (_, i) => [key(i), 'v'])),
  },
});

test('a resource with more values than the cap is refused with one issue naming where, before zod reads it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-sec-values-'));
  const store = await EmbeddedStore.open(dir);
  t.after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const api = new ResourceApi(store);
  let caught: unknown;
  await api.apply([labelled(20_000, (i) => `bad key ${i}`)]).catch((err) => {
    caught = err;
  });
  assert.ok(caught instanceof AmbitError, String(caught));
  assert.equal(caught.code, 'AMBIT_ERR_CONFIG_INVALID');
  const errors = caught.detail?.errors as Array<{ path: string; message: string }>;
  assert.equal(errors.length, 1, caught.message.slice(0, 500));
  assert.equal(errors[0]!.path, 'metadata.labels');
  assert.match(errors[0]!.message, new RegExp(`more than ${MAX_VALUES} values`));
  assert.equal(caught.detail?.omitted, 0);
  assert.equal(store.revision, 0);
});

test('a resource just under the value cap is still validated and accepted', () => {
  // metadata (1) + name (1) + labels (1) + the labels + the root: under the cap.
  const ok = validateResource(labelled(MAX_VALUES - 10, (i) => `k${i}`));
  assert.equal(ok.ok, true);
  const over = validateResource(labelled(MAX_VALUES, (i) => `k${i}`));
  assert.equal(over.ok, false);
});

test('an apply whose resources together hold more than the budget is refused before any is validated', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-sec-values-'));
  const store = await EmbeddedStore.open(dir);
  t.after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const api = new ResourceApi(store, { maxValuesPerApply: 50_000 });
  // Ten resources just under the per-resource cap, each with bad keys: 100,000 values in all.
  const batch = Array.from({ length: 10 }, (_, n) => ({
    ...labelled(MAX_VALUES - 10, (i) => `bad key ${n}.${i}`),
    metadata: {
      name: `big-${n}`,
      labels: labelled(MAX_VALUES - 10, (i) => `bad key ${n}.${i}`).metadata.labels,
    },
  }));
  const err = await api.apply(batch).then(
    () => assert.fail('accepted'),
    (e: AmbitError) => e,
  );
  assert.equal(err.code, 'AMBIT_ERR_CONFIG_INVALID');
  const errors = err.detail?.errors as Array<{ path: string; message: string }>;
  assert.equal(errors.length, 1, 'one issue: the budget, not 100 label errors');
  assert.equal(errors[0]!.path, 'objects[5]');
  assert.match(errors[0]!.message, /more than 50000 values/);
  assert.equal(store.revision, 0);
});
