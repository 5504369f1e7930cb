// Issue 8, item 5 and the Low size items: validation cannot amplify memory. An apply carries at most
// 1,000 objects (refused before any is validated), an error lists the first 100 issues and counts
// the rest, every issue is clipped, a resource nests at most 64 levels, and annotations are capped
// at 256 KiB as Kubernetes caps them.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { ConfigIssue } from '../../src/config/index.ts';
import { ResourceApi, type ResourceApiOptions } from '../../src/control/api/resources.ts';
import { EmbeddedStore } from '../../src/control/store/index.ts';
import { AmbitError } from '../../src/errors/index.ts';

type After = { after: (fn: () => Promise<void> | void) => void };

async function api(t: After, opts: ResourceApiOptions = {}): Promise<ResourceApi> {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-sec-val-'));
  const store = await EmbeddedStore.open(dir);
  t.after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  return new ResourceApi(store, opts);
}

async function refusal(p: Promise<unknown>): Promise<AmbitError> {
  let caught: unknown;
  await p.then(
    () => assert.fail('the apply was accepted'),
    (err) => {
      caught = err;
    },
  );
  assert.ok(caught instanceof AmbitError, String(caught));
  assert.equal(caught.code, 'AMBIT_ERR_CONFIG_INVALID');
  return caught;
}

const namespace = (name: string, annotations?: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, ...(annotations ? { annotations } : {}) },
});

/** A DestinationRule whose free-form localityLbSetting nests `depth` objects deep. */
function nested(depth: number): unknown {
  let inner: Record<string, unknown> = {};
  for (let i = 0; i < depth; i++) inner = { d: inner };
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'deep', namespace: 'app' },
    spec: { host: 'web', trafficPolicy: { loadBalancer: { localityLbSetting: inner } } },
  };
}

describe('security: validation cannot amplify memory', () => {
  test('a 3 MB apply of 1,000,000 empty objects gets one small error before any object is read', async (t) => {
    const a = await api(t);
    const body = `[${'{},'.repeat(999_999)}{}]`;
    assert.ok(body.length >= 3_000_000);
    const objects = JSON.parse(body) as unknown[];
    let reads = 0;
    const watched = new Proxy(objects, {
      get(target, prop, receiver) {
        if (typeof prop === 'string' && /^\d+$/.test(prop)) reads++;
        return Reflect.get(target, prop, receiver);
      },
    });
    const err = await refusal(a.apply(watched));
    assert.equal(reads, 0, 'no object was looked at');
    const issues = err.detail!.errors as ConfigIssue[];
    assert.deepEqual(
      issues.map((i) => i.path),
      ['objects'],
    );
    assert.match(err.message, /1000000 objects in one apply; at most 1000/);
    assert.ok(JSON.stringify(err.detail).length < 1024);
  });

  test('the cap is configurable', async (t) => {
    const a = await api(t, { maxObjectsPerApply: 2 });
    await refusal(a.apply([namespace('a'), namespace('b'), namespace('c')]));
    assert.equal((await a.apply([namespace('a'), namespace('b')])).length, 2);
  });

  test('1,000 bad objects: the first 100 issues are listed and the rest counted', async (t) => {
    const a = await api(t);
    const err = await refusal(a.apply(Array.from({ length: 1000 }, () => ({}))));
    const issues = err.detail!.errors as ConfigIssue[];
    assert.equal(issues.length, 100);
    assert.equal(err.detail?.omitted, 900);
    assert.match(err.message, /^1000 problems in the configuration/);
    assert.match(err.message, /\.\.\. and 900 more/);
    assert.ok(err.message.length < 100 * 400);
  });

  test('a megabyte-long unknown key gives a clipped issue', async (t) => {
    const a = await api(t);
    const err = await refusal(a.apply([{ ...namespace('a'), spec: { ['k'.repeat(1 << 20)]: 1 } }]));
    assert.ok(err.message.length < 2048);
    assert.ok(JSON.stringify(err.detail).length < 2048);
  });
});

describe('security: resource size and depth', () => {
  test('a resource nested 4,000 deep is refused with a path and not stored', async (t) => {
    const a = await api(t);
    const err = await refusal(a.apply([nested(4000)]));
    const [issue] = err.detail!.errors as ConfigIssue[];
    assert.match(issue!.path, /^spec\.trafficPolicy\.loadBalancer\.localityLbSetting\.d\.d/);
    assert.match(issue!.message, /nested more than 64 levels/);
    assert.ok(issue!.path.length < 1024);
    assert.equal(a.list({ kind: 'DestinationRule' }).length, 0);
    // 64 levels is the limit: the resource is level 0, so 60 under localityLbSetting (level 4) fit.
    await a.apply([nested(59)]);
    await refusal(a.apply([nested(60)]));
  });

  test('annotations are capped at 256 KiB in total, as Kubernetes caps them', async (t) => {
    const a = await api(t);
    const key = 'example.com/blob';
    const fits = 'x'.repeat(262_144 - key.length);
    await a.apply([namespace('fits', { [key]: fits })]);
    const err = await refusal(a.apply([namespace('over', { [key]: `${fits}x` })]));
    const issues = err.detail!.errors as ConfigIssue[];
    assert.deepEqual(
      issues.map((i) => [i.path, i.message]),
      [['metadata.annotations', 'Too long: must have at most 262144 bytes']],
    );
    // Multi-byte characters count as bytes.
    await refusal(a.apply([namespace('utf8', { [key]: 'é'.repeat(131_072) })]));
  });

  test('annotation keys must be qualified names, as in Kubernetes', async (t) => {
    const a = await api(t);
    const err = await refusal(a.apply([namespace('bad', { 'not a key!': 'v' })]));
    assert.deepEqual(
      (err.detail!.errors as ConfigIssue[]).map((i) => i.path),
      ["metadata.annotations['not a key!']"],
    );
    await a.apply([
      namespace('ok', { 'kubectl.kubernetes.io/last-applied-configuration': '{}', Owner: 'x' }),
    ]);
  });
});
